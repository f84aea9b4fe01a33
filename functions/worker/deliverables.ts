import { createHash } from 'node:crypto';
import type { ColourSettings } from '../core/colour.ts';
import { isExr } from '../core/colour.ts';
import { deliveredKey, jobPrefix, versionKey } from '../core/frames.ts';
import type { JobRecord } from '../core/model.ts';
import {
  DEFAULT_NAMING_TEMPLATE,
  jobSequenceParts,
  type NamingTemplate,
  parseTemplate,
} from '../core/naming.ts';
import { sequenceTimeline } from '../core/otio.ts';
import { PROVENANCE_KEYWORD, readPng } from '../core/png.ts';
import { CONVERTED_PLATES_PREFIX } from '../shared/resources.ts';

/**
 * The worker's side of the colour pipeline (docs/colour.md), as two seams that know nothing of chunks or
 * windows: EXR plates are handed to the model as PNGs in its colour space, and a frame is delivered as the
 * job asks (the model's PNG, or half EXR in the plates' colour space).
 */

/** The conversions, done by OpenImageIO and OpenColorIO (adapters/oiio.ts). */
export interface Conversions {
  readonly colour: ColourSettings;
  plateToModel(exr: Uint8Array): Promise<Buffer>;
  modelToExr(png: Uint8Array, provenance?: string): Promise<Buffer>;
}

/** Where the worker reads asset content and stages its model-space copies (the frames bucket). */
export interface PlateStaging {
  /** The first bytes of one content of the tenant (a ranged GET). */
  head(tenant: string, sha256: string): Promise<Uint8Array>;
  /** The whole of one content of the tenant. */
  read(tenant: string, sha256: string): Promise<Uint8Array>;
  /** A GET URL of the content as it is, for the model. */
  presign(tenant: string, sha256: string): Promise<string>;
  exists(key: string): Promise<boolean>;
  put(key: string, png: Uint8Array): Promise<void>;
  presignStaged(key: string): Promise<string>;
}

/** Model-space copies of EXR plates live under this prefix of the frames bucket; a lifecycle rule expires them. */
export const CONVERTED_PREFIX = CONVERTED_PLATES_PREFIX;

/** Kept per worker: whether a content is an EXR, and conversions done or under way. */
const CACHE_ENTRIES = 20_000;

/**
 * The asset-input dependencies (presign, read) with EXR plates converted: an EXR content is given to the
 * model as an 8-bit PNG in the model's colour space, made once per content and colour settings, and staged
 * at `.colour/<tenant>/<sha256>-<settings hash>.png`, where any job of the tenant that uses the same plate
 * frame finds it. PNG and JPEG contents pass through untouched. The frame's provenance still names the EXR's
 * sha256: that is the footage it was made from.
 */
export function exrPlates(staging: PlateStaging, conversions: Conversions) {
  const { config, plates, model } = conversions.colour;
  const settings = createHash('sha256').update(`${config}\n${plates}\n${model}`).digest('hex').slice(0, 16);
  const kinds = new Map<string, Promise<boolean>>();
  const converted = new Map<string, Promise<Buffer | undefined>>();
  const bounded = <T>(map: Map<string, T>) => {
    if (map.size > CACHE_ENTRIES) map.clear();
    return map;
  };

  const exr = (tenant: string, sha256: string) => {
    const id = `${tenant}/${sha256}`;
    let kind = kinds.get(id);
    if (!kind) {
      kind = staging.head(tenant, sha256).then(isExr);
      kind.catch(() => kinds.delete(id));
      bounded(kinds).set(id, kind);
    }
    return kind;
  };
  const keyOf = (tenant: string, sha256: string) => `${CONVERTED_PREFIX}${tenant}/${sha256}-${settings}.png`;

  /** The staged copy's key, converted now unless it is there; the PNG when it was made here. */
  const stage = (tenant: string, sha256: string) => {
    const key = keyOf(tenant, sha256);
    let done = converted.get(key);
    if (!done) {
      done = (async () => {
        if (await staging.exists(key)) return undefined;
        const png = await conversions.plateToModel(await staging.read(tenant, sha256));
        await staging.put(key, png);
        return png;
      })();
      // A failure is not remembered: the next attempt tries again.
      done.catch(() => converted.delete(key));
      bounded(converted).set(key, done);
    }
    return done;
  };

  return {
    presign: async (tenant: string, sha256: string): Promise<string> => {
      if (!(await exr(tenant, sha256))) return staging.presign(tenant, sha256);
      await stage(tenant, sha256);
      return staging.presignStaged(keyOf(tenant, sha256));
    },
    /** For inputs encoded into a video: the PNG the model would read. */
    read: async (tenant: string, sha256: string): Promise<Uint8Array> => {
      if (!(await exr(tenant, sha256))) return staging.read(tenant, sha256);
      return (await stage(tenant, sha256)) ?? conversions.plateToModel(await staging.read(tenant, sha256));
    },
  };
}

/** A frame as it is stored and delivered. */
export interface DeliveredFrame {
  readonly key: string;
  readonly body: Uint8Array;
  readonly contentType: string;
}

/** A frame as the job asks it stored: under its sequence name, or under a version's key (`version`). */
export type DeliverFrame = (
  job: JobRecord,
  frame: number,
  png: Buffer,
  version?: number,
) => Promise<DeliveredFrame>;

/**
 * What a job's frame is stored as: the model's PNG with its provenance (the default), or, for a job that
 * asks for `output: {format: 'exr'}`, a half EXR in the plates' colour space whose header names the colour
 * space and carries the same provenance record. Without conversions (no oiiotool), only PNG.
 */
export function deliverFrames(
  conversions?: Pick<Conversions, 'modelToExr'>,
  naming: NamingTemplate = parseTemplate(DEFAULT_NAMING_TEMPLATE),
): DeliverFrame {
  return async (job, frame, png, version) => {
    const exr = job.output?.format === 'exr';
    const key =
      version === undefined ? deliveredKey(job, frame, naming) : versionKey(job, frame, version, naming);
    if (!exr) return { key, body: png, contentType: 'image/png' };
    if (!conversions) throw new Error('this worker cannot write EXR frames');
    const provenance = readPng(png).text[PROVENANCE_KEYWORD];
    return {
      key,
      body: await conversions.modelToExr(png, provenance),
      contentType: 'image/x-exr',
    };
  };
}

/** Where a job's OpenTimelineIO file goes: beside its manifest, named after the shot. */
export const timelineKey = (job: Pick<JobRecord, 'tenant' | 'shot' | 'id'>): string =>
  `${jobPrefix(job.tenant, job.shot, job.id)}${job.shot}.otio`;

export interface TimelineSettings {
  readonly naming: NamingTemplate;
  /** Frames per second of the clip. */
  readonly rate: number;
  /** The colour space EXR frames are written in, recorded in the timeline's metadata. */
  readonly exrColourSpace?: string;
}

/** The OTIO timeline of a finished job (core/otio.ts): one clip, its media the job's delivered frames. */
export function jobTimeline(job: JobRecord, s: TimelineSettings) {
  const exr = job.output?.format === 'exr';
  const { prefix, suffix, padding } = jobSequenceParts(s.naming, job);
  return sequenceTimeline({
    name: job.shot,
    targetUrlBase: `s3://${job.bucket}/${job.prefix}`,
    prefix,
    suffix,
    padding,
    frames: job.frames,
    rate: s.rate,
    complete: job.status === 'succeeded',
    metadata: {
      jobId: job.id,
      model: job.model,
      seed: job.seed,
      status: job.status,
      ...(exr && s.exrColourSpace !== undefined && { colourSpace: s.exrColourSpace }),
    },
  });
}

/** Writes a finished job's timeline beside its manifest; the worker calls it where it writes the manifest. */
export const timelineWriter =
  (putJson: (key: string, value: unknown) => Promise<void>, s: TimelineSettings) =>
  (job: JobRecord): Promise<void> =>
    putJson(timelineKey(job), jobTimeline(job, s));
