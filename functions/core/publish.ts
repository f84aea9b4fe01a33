import * as z from 'zod';
import type { JobRecord } from './model.ts';

/**
 * Publishing a finished job to the production's tracker (docs/colour.md, "Publishing"): ShotGrid (Flow
 * Production Tracking), ftrack or Kitsu, each through its documented REST API. This module is pure: the
 * publisher settings, the facts of the delivered sequence, and each request as the tracker's API documents
 * it. adapters/trackers.ts sends them; the webhook delivery path retries them (services/webhooks.ts).
 */

export const TRACKERS = ['shotgrid', 'ftrack', 'kitsu'] as const;
export type Tracker = (typeof TRACKERS)[number];

/** The delivery target of a publisher, beside "job" and endpoint ids in event messages and delivery records. */
export const PUBLISH_TARGET = /^publish-(shotgrid|ftrack|kitsu)$/;
export const publishTarget = (tracker: Tracker) => `publish-${tracker}` as const;

/** Events a publisher may take: a job's success, and (once review gates exist) its approval. */
export const PUBLISH_EVENTS = ['job.succeeded', 'job.approved'] as const;

/** A Secrets Manager secret, by name or ARN, holding the tracker's credentials as JSON. */
const SecretId = z
  .string()
  .regex(/^[A-Za-z0-9/_+=.@:-]{1,2048}$/, 'must be a Secrets Manager secret name or ARN');

const Id = z.string().regex(/^[A-Za-z0-9-]{1,64}$/, 'must be a tracker id (letters, digits, "-")');

const common = {
  /** The tracker's site, e.g. https://studio.shotgrid.autodesk.com; https only (local mode may use http://127.0.0.1). */
  url: z.url().refine((u) => !u.endsWith('/'), 'must not end in "/"'),
  secret: SecretId,
  events: z.array(z.enum(PUBLISH_EVENTS)).min(1).default(['job.succeeded']),
};

export const PublisherSchema = z.discriminatedUnion('tracker', [
  z.strictObject({
    tracker: z.literal('shotgrid'),
    ...common,
    projectId: z.int().positive(),
    /** The PublishedFileType the sequence is published as (for example "Rendered Image"); optional. */
    publishedFileTypeId: z.int().positive().optional(),
  }),
  z.strictObject({
    tracker: z.literal('ftrack'),
    ...common,
    projectId: Id,
    /** The AssetType of the published asset (for example "Render"). */
    assetTypeId: Id,
    /** The location the frames are registered in (an unmanaged location: Framecast keeps the files). */
    locationId: Id,
  }),
  z.strictObject({
    tracker: z.literal('kitsu'),
    ...common,
    projectId: Id,
    outputTypeId: Id,
    taskTypeId: Id,
  }),
]);
export type PublisherConfig = z.output<typeof PublisherSchema>;

export const PublishersSchema = z
  .array(PublisherSchema)
  .max(3)
  .refine((list) => new Set(list.map((p) => p.tracker)).size === list.length, 'one publisher per tracker');

/** What each tracker's secret holds. */
export const CredentialsSchema = {
  shotgrid: z.object({ scriptName: z.string().min(1), scriptKey: z.string().min(1) }),
  ftrack: z.object({ user: z.string().min(1), apiKey: z.string().min(1) }),
  kitsu: z.object({ email: z.string().min(1), password: z.string().min(1) }),
} as const;
export type Credentials<T extends Tracker> = z.output<(typeof CredentialsSchema)[T]>;

/** A job's delivered frame sequence, as a tracker records it. */
export interface PublishedSequence {
  readonly shot: string;
  /** The version's name: the delivered names before the frame number, e.g. `EP101_SH040_comp_v003`. */
  readonly name: string;
  readonly version: number;
  /** The sequence with its frame number as a printf pattern: `s3://bucket/.../EP101_SH040_comp_v003.%04d.exr`. */
  readonly path: string;
  readonly pattern: string;
  readonly extension: string;
  readonly padding: number;
  readonly first: number;
  readonly last: number;
  readonly description: string;
  readonly jobId: string;
}

/** The published facts of a finished job whose frames are named `prefix` + frame + `suffix`. */
export function publishedSequence(
  job: Pick<
    JobRecord,
    'id' | 'shot' | 'bucket' | 'prefix' | 'frames' | 'model' | 'prompt' | 'seed' | 'output'
  >,
  parts: { prefix: string; suffix: string; padding: number },
): PublishedSequence {
  const pattern = `${parts.prefix}%0${parts.padding}d${parts.suffix}`;
  return {
    shot: job.shot,
    name: parts.prefix.replace(/[._-]+$/, '') || job.shot,
    version: job.output?.version ?? 1,
    path: `s3://${job.bucket}/${job.prefix}${pattern}`,
    pattern,
    extension: parts.suffix.replace(/^.*\./, ''),
    padding: parts.padding,
    first: job.frames.start,
    last: job.frames.end,
    description: `Framecast ${job.id}: model ${job.model}, seed ${job.seed}. ${job.prompt}`.slice(0, 2000),
    jobId: job.id,
  };
}

/** One HTTP request to a tracker, relative to its site URL. */
export interface TrackerRequest {
  readonly method: 'GET' | 'POST';
  readonly path: string;
  readonly headers: Readonly<Record<string, string>>;
  readonly body?: string;
}

const JSON_HEADERS = { 'content-type': 'application/json', accept: 'application/json' };
const json = (path: string, body: unknown, headers: Record<string, string> = {}): TrackerRequest => ({
  method: 'POST',
  path,
  headers: { ...JSON_HEADERS, ...headers },
  body: JSON.stringify(body),
});

// ---- ShotGrid / Flow Production Tracking: REST API v1 -----------------------------------------------------

export const shotgrid = {
  /** A script's client-credentials grant: form-encoded, answered with a Bearer access token. */
  auth: (c: Credentials<'shotgrid'>): TrackerRequest => ({
    method: 'POST',
    path: '/api/v1/auth/access_token',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json' },
    body: new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: c.scriptName,
      client_secret: c.scriptKey,
    }).toString(),
  }),
  /** The project's Shot of this code: a search with filters in the API's array form. */
  findShot: (p: PublisherConfig & { tracker: 'shotgrid' }, s: PublishedSequence, token: string) => ({
    method: 'POST' as const,
    path: '/api/v1/entity/shots/_search',
    headers: {
      'content-type': 'application/vnd+shotgun.api3_array+json',
      accept: 'application/json',
      authorization: `Bearer ${token}`,
    },
    body: JSON.stringify({
      filters: [
        ['project', 'is', { type: 'Project', id: p.projectId }],
        ['code', 'is', s.shot],
      ],
      fields: ['id', 'code'],
    }),
  }),
  /** The Version: the sequence's path with its %04d pattern, and its frame range, linked to the Shot. */
  createVersion: (
    p: PublisherConfig & { tracker: 'shotgrid' },
    s: PublishedSequence,
    shotId: number,
    token: string,
  ): TrackerRequest =>
    json(
      '/api/v1/entity/versions',
      {
        project: { type: 'Project', id: p.projectId },
        code: s.name,
        entity: { type: 'Shot', id: shotId },
        description: s.description,
        sg_path_to_frames: s.path,
        sg_first_frame: s.first,
        sg_last_frame: s.last,
        frame_count: s.last - s.first + 1,
        frame_range: `${s.first}-${s.last}`,
      },
      { authorization: `Bearer ${token}` },
    ),
  /** The PublishedFile of the sequence, linked to the Shot and the Version. */
  createPublishedFile: (
    p: PublisherConfig & { tracker: 'shotgrid' },
    s: PublishedSequence,
    shotId: number,
    versionId: number,
    token: string,
  ): TrackerRequest =>
    json(
      '/api/v1/entity/published_files',
      {
        project: { type: 'Project', id: p.projectId },
        code: s.pattern,
        name: s.name,
        entity: { type: 'Shot', id: shotId },
        version: { type: 'Version', id: versionId },
        version_number: s.version,
        description: s.description,
        path: { url: s.path, name: s.pattern },
        ...(p.publishedFileTypeId !== undefined && {
          published_file_type: { type: 'PublishedFileType', id: p.publishedFileTypeId },
        }),
      },
      { authorization: `Bearer ${token}` },
    ),
};

// ---- ftrack: the one /api endpoint, a list of operations per request --------------------------------------

const ftrackHeaders = (c: Credentials<'ftrack'>) => ({ 'ftrack-user': c.user, 'ftrack-api-key': c.apiKey });

/** ftrack's query language quotes with double quotes; shot names and ids here cannot hold one. */
const quoted = (s: string) => `"${s.replace(/["\\]/g, '')}"`;

export const ftrack = {
  findShotAndAsset: (
    p: PublisherConfig & { tracker: 'ftrack' },
    s: PublishedSequence,
    c: Credentials<'ftrack'>,
  ) =>
    json(
      '/api',
      [
        {
          action: 'query',
          expression: `select id from Shot where name is ${quoted(s.shot)} and project_id is ${quoted(p.projectId)}`,
        },
        {
          action: 'query',
          expression: `select id from Asset where name is ${quoted(s.name.replace(/_v\d+$/, ''))} and parent.name is ${quoted(s.shot)} and parent.project_id is ${quoted(p.projectId)}`,
        },
      ],
      ftrackHeaders(c),
    ),
  /**
   * One batch: the Asset (when the shot has none of this name yet), an AssetVersion, a SequenceComponent
   * with the padding, and its ComponentLocation in the configured unmanaged location, whose resource
   * identifier is the sequence's pattern and frame range. Ids are made by the caller, as ftrack lets
   * clients, so the operations refer to each other within the batch.
   */
  publish: (
    p: PublisherConfig & { tracker: 'ftrack' },
    s: PublishedSequence,
    c: Credentials<'ftrack'>,
    at: { shotId: string; assetId?: string },
    ids: { asset: string; version: string; component: string },
  ) => {
    const assetId = at.assetId ?? ids.asset;
    return json(
      '/api',
      [
        ...(at.assetId
          ? []
          : [
              {
                action: 'create',
                entity_type: 'Asset',
                entity_data: {
                  id: ids.asset,
                  name: s.name.replace(/_v\d+$/, ''),
                  context_id: at.shotId,
                  type_id: p.assetTypeId,
                },
              },
            ]),
        {
          action: 'create',
          entity_type: 'AssetVersion',
          entity_data: { id: ids.version, asset_id: assetId, comment: s.description },
        },
        {
          action: 'create',
          entity_type: 'SequenceComponent',
          entity_data: {
            id: ids.component,
            name: 'main',
            version_id: ids.version,
            padding: s.padding,
            file_type: `.${s.extension}`,
          },
        },
        {
          action: 'create',
          entity_type: 'ComponentLocation',
          entity_data: {
            component_id: ids.component,
            location_id: p.locationId,
            resource_identifier: `${s.path} [${s.first}-${s.last}]`,
          },
        },
      ],
      ftrackHeaders(c),
    );
  },
};

// ---- Kitsu (Zou) -------------------------------------------------------------------------------------------

export const kitsu = {
  login: (c: Credentials<'kitsu'>): TrackerRequest =>
    json('/api/auth/login', { email: c.email, password: c.password }),
  findShot: (
    p: PublisherConfig & { tracker: 'kitsu' },
    s: PublishedSequence,
    token: string,
  ): TrackerRequest => ({
    method: 'GET',
    path: `/api/data/shots?${new URLSearchParams({ project_id: p.projectId, name: s.shot })}`,
    headers: { accept: 'application/json', authorization: `Bearer ${token}` },
  }),
  /** An output file of the shot: the sequence's revision, representation and frame count, its path in the comment. */
  createOutputFile: (
    p: PublisherConfig & { tracker: 'kitsu' },
    s: PublishedSequence,
    shotId: string,
    token: string,
  ): TrackerRequest =>
    json(
      `/api/data/entities/${encodeURIComponent(shotId)}/output-files/new`,
      {
        output_type_id: p.outputTypeId,
        task_type_id: p.taskTypeId,
        name: s.name,
        revision: s.version,
        representation: s.extension,
        extension: s.extension,
        nb_elements: s.last - s.first + 1,
        comment: `${s.path} [${s.first}-${s.last}]\n${s.description}`,
      },
      { authorization: `Bearer ${token}` },
    ),
};
