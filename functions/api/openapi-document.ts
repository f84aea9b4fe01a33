import * as z from 'zod';
import {
  ASSET_STATUSES,
  AssetFrame,
  AssetList,
  AssetResponse,
  AssetUploads,
  assetFilesSchema,
  assetRequestSchema,
} from '../core/assets.ts';
import {
  AuditList,
  BudgetRequest,
  BudgetView,
  DEFAULT_FRAME_LIMIT,
  DryRunResponse,
  ErrorResponse,
  EventList,
  FrameDetail,
  FrameList,
  FrameListQuery,
  JOB_STATUSES,
  JobList,
  JobResponse,
  jobRequestSchema,
  Redelivery,
  RejectRequest,
  Reroll,
  RerollRequest,
  SelectVersionRequest,
  USAGE_GROUPS,
  UsageReport,
  WebhookEndpoint,
  WebhookEndpointList,
  WebhookEndpointRequest,
  WebhookSecret,
} from '../core/schemas.ts';
import { ASSET_FILE_BYTES } from '../shared/resources.ts';
import { ROUTES } from '../shared/routes.ts';

/**
 * The OpenAPI 3.1 document, generated from the same zod schemas the handlers parse with, so the
 * document cannot drift from what the API accepts and answers.
 */

type Json = Record<string, unknown>;

const REF = (name: string) => ({ $ref: `#/components/schemas/${name}` });

/** Adds a schema and the named schemas inside it to `components`, and returns a reference to it. */
function component(components: Json, name: string, schema: z.ZodType, io: 'input' | 'output'): Json {
  const doc = z.toJSONSchema(schema, { io, unrepresentable: 'any', target: 'draft-2020-12' }) as Json;
  const text = JSON.stringify(doc).replaceAll('"#/$defs/', '"#/components/schemas/');
  const {
    $defs,
    $schema: _schema,
    $ref,
    ...rest
  } = JSON.parse(text) as Json & { $defs?: Json; $ref?: string };
  for (const [k, v] of Object.entries($defs ?? {})) components[k] ??= v;
  if (!$ref) components[name] = rest;
  return REF(name);
}

/** Every route may answer 503 (with Retry-After) when AWS throttles or is down past the SDK's retries. */
const errorResponses = (...codes: number[]) =>
  Object.fromEntries(
    [...new Set([...codes, 503])].map((code) => [
      String(code),
      { description: ERROR_TEXT[code] ?? 'Error', content: { 'application/json': { schema: REF('Error') } } },
    ]),
  );

const ERROR_TEXT: Record<number, string> = {
  400: 'Invalid request; the message names the field',
  401: 'Missing, unknown or revoked API key',
  403: 'The API key lacks the scope',
  404: 'Not found (another tenant’s resources are not found either)',
  409: 'Conflict with the resource’s state',
  413: 'Body too large',
  415: 'Body is not JSON',
  422: 'Unprocessable: an Idempotency-Key reused with another body, or an asset whose files are not what it says',
  402: 'budget_exceeded: the budget named in the message is at its stop threshold, or the job’s estimate is more than it has left',
  429: 'Too many requests',
  503: 'Temporarily unavailable (throttled or an outage); retry after the Retry-After seconds',
};

const idParam = {
  name: 'id',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^job_[0-9A-Z]{26}$' },
};

const frameParam = {
  name: 'frame',
  in: 'path',
  required: true,
  schema: { type: 'integer', minimum: 0, maximum: 9_999_999 },
  description: 'A frame number of the job',
};

const assetIdParam = {
  name: 'id',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^ast_[0-9A-Z]{26}$' },
};

export interface OpenApiOptions {
  readonly frameLimit?: number;
  /** The per-file limit of assets, in bytes (FRAMECAST_ASSET_MAX_FILE_BYTES). */
  readonly assetMaxFileBytes?: number;
  readonly serverUrl?: string;
}

export function openApiDocument(options: OpenApiOptions = {}): Json {
  const components: Json = {};
  const assetLimits = {
    frameLimit: options.frameLimit ?? DEFAULT_FRAME_LIMIT,
    maxFileBytes: options.assetMaxFileBytes ?? ASSET_FILE_BYTES.default,
  };
  const assetRequest = component(components, 'AssetRequest', assetRequestSchema(assetLimits), 'input');
  const assetFiles = component(components, 'AssetFilesRequest', assetFilesSchema(assetLimits), 'input');
  const asset = component(components, 'Asset', AssetResponse, 'output');
  const assetUploads = component(components, 'AssetUploads', AssetUploads, 'output');
  const assetFrame = component(components, 'AssetFrame', AssetFrame, 'output');
  const assetList = component(components, 'AssetList', AssetList, 'output');
  const jobRequest = component(components, 'JobRequest', jobRequestSchema(options.frameLimit), 'input');
  const job = component(components, 'Job', JobResponse, 'output');
  const jobList = component(components, 'JobList', JobList, 'output');
  const frameList = component(components, 'FrameList', FrameList, 'output');
  const frameDetail = component(components, 'FrameDetail', FrameDetail, 'output');
  const rerollRequest = component(components, 'RerollRequest', RerollRequest, 'input');
  const reroll = component(components, 'Reroll', Reroll, 'output');
  const selectRequest = component(components, 'SelectVersionRequest', SelectVersionRequest, 'input');
  const rejectRequest = component(components, 'RejectRequest', RejectRequest, 'input');
  component(components, 'Error', ErrorResponse, 'output');
  const eventList = component(components, 'EventList', EventList, 'output');
  const redelivery = component(components, 'Redelivery', Redelivery, 'output');
  const endpointRequest = component(components, 'WebhookEndpointRequest', WebhookEndpointRequest, 'input');
  const endpoint = component(components, 'WebhookEndpoint', WebhookEndpoint, 'output');
  const endpointList = component(components, 'WebhookEndpointList', WebhookEndpointList, 'output');
  const secret = component(components, 'WebhookSecret', WebhookSecret, 'output');
  const auditList = component(components, 'AuditList', AuditList, 'output');
  const frameQuery = z.toJSONSchema(FrameListQuery, { io: 'input', unrepresentable: 'any' }) as {
    properties: Record<string, Json>;
  };
  const json = (schema: Json, description: string) => ({
    description,
    content: { 'application/json': { schema } },
  });

  const paths: Record<string, Record<string, Json>> = {
    '/v1/jobs': {
      post: {
        operationId: 'createJob',
        summary: 'Generate a shot',
        parameters: [
          {
            name: 'Idempotency-Key',
            in: 'header',
            required: false,
            schema: { type: 'string', minLength: 1, maxLength: 255 },
            description: 'Same key and body return the first job; same key with another body is a 422',
          },
          {
            name: 'dryRun',
            in: 'query',
            required: false,
            schema: { type: 'string', enum: ['true', 'false'] },
            description:
              'true: check the job as it would be accepted and answer 200 with its estimate (GPU seconds, ' +
              'cost, expected start and finish); nothing is written and no job is made',
          },
        ],
        requestBody: { required: true, content: { 'application/json': { schema: jobRequest } } },
        responses: {
          '200': json(
            component(components, 'DryRun', DryRunResponse, 'output'),
            'dryRun=true: the estimate; nothing was written',
          ),
          '202': json(job, 'Accepted; frames are generated in the background'),
          ...errorResponses(400, 401, 402, 403, 413, 415, 422, 429, 503),
        },
      },
      get: {
        operationId: 'listJobs',
        summary: 'The tenant’s jobs, newest first',
        parameters: [
          { name: 'shot', in: 'query', schema: { type: 'string' } },
          { name: 'status', in: 'query', schema: { type: 'string', enum: [...JOB_STATUSES] } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
          { name: 'cursor', in: 'query', schema: { type: 'string' } },
        ],
        responses: { '200': json(jobList, 'A page of jobs'), ...errorResponses(400, 401, 403, 429) },
      },
    },
    '/v1/jobs/{id}': {
      get: {
        operationId: 'getJob',
        summary: 'A job with its progress counts',
        parameters: [idParam],
        responses: { '200': json(job, 'The job'), ...errorResponses(401, 403, 404, 429) },
      },
    },
    '/v1/jobs/{id}/frames': {
      get: {
        operationId: 'listFrames',
        summary: 'A job’s frames in order, with download URLs once stored',
        parameters: [
          idParam,
          { name: 'limit', in: 'query', schema: frameQuery.properties.limit ?? { type: 'integer' } },
          { name: 'cursor', in: 'query', schema: { type: 'string' } },
        ],
        responses: { '200': json(frameList, 'A page of frames'), ...errorResponses(400, 401, 403, 404, 429) },
      },
    },
    '/v1/jobs/{id}/frames/{frame}': {
      get: {
        operationId: 'getFrame',
        summary: 'One frame with every version: seed, params, sha256, status, thumbnail and download URLs',
        parameters: [idParam, frameParam],
        responses: {
          '200': json(frameDetail, 'The frame and its versions'),
          ...errorResponses(400, 401, 403, 404, 429),
        },
      },
    },
    '/v1/jobs/{id}/frames/{frame}/retry': {
      post: {
        operationId: 'rerollFrame',
        summary: 'Re-roll a frame (for a model with windows, its window) into a new version',
        description:
          'Makes a new version of the frame, or of every frame its window owns, with the seed given (a new ' +
          'random seed when absent) and the params given laid over the job’s. Earlier versions are kept; the ' +
          'sequence name keeps pointing at the selected version until POST .../select. Refused with 409 while ' +
          'the frame is pending or running, is not succeeded, or a re-roll of it is not finished. Announced by ' +
          'frame.rerolled once made, and counted on the job (rerolls).',
        parameters: [
          idParam,
          frameParam,
          {
            name: 'Idempotency-Key',
            in: 'header',
            required: false,
            schema: { type: 'string', minLength: 1, maxLength: 255 },
            description: 'Same key and body return the first re-roll; same key with another body is a 422',
          },
        ],
        requestBody: { required: false, content: { 'application/json': { schema: rerollRequest } } },
        responses: {
          '202': json(reroll, 'Accepted; the version is made in the background'),
          ...errorResponses(400, 401, 403, 404, 409, 413, 415, 422, 429, 503),
        },
      },
    },
    '/v1/jobs/{id}/frames/{frame}/select': {
      post: {
        operationId: 'selectFrameVersion',
        summary: 'Point the sequence name at a version (for a model with windows, for the whole window)',
        parameters: [idParam, frameParam],
        requestBody: { required: true, content: { 'application/json': { schema: selectRequest } } },
        responses: {
          '200': json(frameDetail, 'The frame and its versions'),
          ...errorResponses(400, 401, 403, 404, 409, 413, 415, 429),
        },
      },
    },
    '/v1/jobs/{id}/approve': {
      post: {
        operationId: 'approveJob',
        summary: 'Approve a job awaiting review: the rest of its frames are made',
        parameters: [idParam],
        responses: {
          '200': json(job, 'The job, running again'),
          ...errorResponses(401, 403, 404, 409, 429, 503),
        },
      },
    },
    '/v1/jobs/{id}/reject': {
      post: {
        operationId: 'rejectJob',
        summary: 'Reject a job awaiting review: it is canceled',
        parameters: [idParam],
        requestBody: { required: false, content: { 'application/json': { schema: rejectRequest } } },
        responses: {
          '200': json(job, 'The job, canceled'),
          ...errorResponses(400, 401, 403, 404, 409, 413, 415, 429),
        },
      },
    },
    '/v1/jobs/{id}/cancel': {
      post: {
        operationId: 'cancelJob',
        summary: 'Stop a job; frames not started are never generated',
        parameters: [idParam],
        responses: { '200': json(job, 'The canceled job'), ...errorResponses(401, 403, 404, 409, 429) },
      },
    },
    '/v1/jobs/{id}/events': {
      get: {
        operationId: 'listJobEvents',
        summary: 'The job’s webhook events and their delivery attempts',
        parameters: [
          idParam,
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 500, default: 100 } },
          { name: 'cursor', in: 'query', schema: { type: 'string' } },
        ],
        responses: {
          '200': json(eventList, 'A page of events, oldest first'),
          ...errorResponses(400, 401, 403, 404, 429),
        },
      },
    },
    '/v1/events/{id}/redeliver': {
      post: {
        operationId: 'redeliverEvent',
        summary: 'Send an event again to its targets (one attempt each)',
        parameters: [
          {
            name: 'id',
            in: 'path',
            required: true,
            schema: { type: 'string', pattern: '^evt_[0-9A-Z]{26}$' },
          },
        ],
        responses: {
          '202': json(redelivery, 'Queued for delivery'),
          ...errorResponses(401, 403, 404, 409, 429),
        },
      },
    },
    '/v1/webhooks': {
      post: {
        operationId: 'createWebhookEndpoint',
        summary: 'Register a webhook endpoint for the tenant’s events',
        requestBody: { required: true, content: { 'application/json': { schema: endpointRequest } } },
        responses: {
          '201': json(endpoint, 'The endpoint'),
          ...errorResponses(400, 401, 403, 409, 413, 415, 429),
        },
      },
      get: {
        operationId: 'listWebhookEndpoints',
        summary: 'The tenant’s webhook endpoints',
        responses: { '200': json(endpointList, 'The endpoints'), ...errorResponses(401, 403, 429) },
      },
    },
    '/v1/webhooks/{id}': {
      delete: {
        operationId: 'deleteWebhookEndpoint',
        summary: 'Remove a webhook endpoint',
        parameters: [{ name: 'id', in: 'path', required: true, schema: { type: 'string' } }],
        responses: { '204': { description: 'Deleted' }, ...errorResponses(401, 403, 404, 429) },
      },
    },
    '/v1/webhooks/secret': {
      get: {
        operationId: 'getWebhookSecret',
        summary: 'The tenant’s signing secret (whsec_...)',
        responses: { '200': json(secret, 'The secret'), ...errorResponses(401, 403, 429) },
      },
    },
    '/v1/webhooks/secret/rotate': {
      post: {
        operationId: 'rotateWebhookSecret',
        summary: 'A new signing secret; the old one also signs for 24 h',
        responses: { '200': json(secret, 'The new secret'), ...errorResponses(401, 403, 409, 429) },
      },
    },
    '/v1/assets': {
      post: {
        operationId: 'createAsset',
        summary: 'Announce a still or a frame sequence by content; upload URLs for content not held yet',
        description:
          'Each file is named by its SHA-256 and size. The answer carries one presigned PUT per content the ' +
          'production does not hold yet, signed with its checksum and length: send the body with exactly ' +
          'the headers given, and S3 refuses bytes that are not the announced content. A sequence of more ' +
          'than 1000 files is announced in pages: the rest with POST /v1/assets/{id}/files.',
        requestBody: { required: true, content: { 'application/json': { schema: assetRequest } } },
        responses: {
          '201': json(assetUploads, 'The asset, uploading, with the upload URLs of this request’s files'),
          ...errorResponses(400, 401, 403, 413, 415, 429, 503),
        },
      },
      get: {
        operationId: 'listAssets',
        summary: 'The tenant’s assets, newest first',
        parameters: [
          { name: 'status', in: 'query', schema: { type: 'string', enum: [...ASSET_STATUSES] } },
          { name: 'limit', in: 'query', schema: { type: 'integer', minimum: 1, maximum: 100, default: 20 } },
          { name: 'cursor', in: 'query', schema: { type: 'string' } },
        ],
        responses: { '200': json(assetList, 'A page of assets'), ...errorResponses(400, 401, 403, 429) },
      },
    },
    '/v1/assets/{id}': {
      get: {
        operationId: 'getAsset',
        summary: 'An asset: its status, files announced, and width and height once complete',
        parameters: [assetIdParam],
        responses: { '200': json(asset, 'The asset'), ...errorResponses(401, 403, 404, 429) },
      },
      delete: {
        operationId: 'deleteAsset',
        summary: 'Remove an asset; stored content no other asset holds is deleted',
        parameters: [assetIdParam],
        responses: { '204': { description: 'Deleted' }, ...errorResponses(401, 403, 404, 429, 503) },
      },
    },
    '/v1/assets/{id}/frames/{frame}': {
      get: {
        operationId: 'getAssetFrame',
        summary: 'The file of one frame of a ready asset, with a presigned download URL',
        description:
          'A still answers for any frame, as it does as a job input. 404 for a frame outside the sequence, ' +
          '409 while the asset is not ready.',
        parameters: [
          assetIdParam,
          {
            name: 'frame',
            in: 'path',
            required: true,
            schema: { type: 'integer', minimum: 0, maximum: 9999999 },
          },
        ],
        responses: {
          '200': json(assetFrame, 'The frame’s file: its SHA-256, size and a download URL'),
          ...errorResponses(400, 401, 403, 404, 409, 429),
        },
      },
    },
    '/v1/assets/{id}/files': {
      post: {
        operationId: 'addAssetFiles',
        summary: 'More files of an uploading sequence, or files again for fresh upload URLs',
        parameters: [assetIdParam],
        requestBody: { required: true, content: { 'application/json': { schema: assetFiles } } },
        responses: {
          '200': json(assetUploads, 'The asset, with the upload URLs of this request’s files'),
          ...errorResponses(400, 401, 403, 404, 409, 413, 415, 429, 503),
        },
      },
    },
    '/v1/assets/{id}/complete': {
      post: {
        operationId: 'completeAsset',
        summary:
          'Check every file (presence, checksum, format, size limit, one size) and make the asset ready',
        description:
          'Answers 409 asset_incomplete naming the missing frames (details.missingFrames), or 422 ' +
          'asset_invalid naming the file that is not what the asset says (the asset is then failed). ' +
          'Repeating it on a ready asset answers the asset.',
        parameters: [assetIdParam],
        responses: {
          '200': json(asset, 'The asset, ready, with its width and height'),
          ...errorResponses(401, 403, 404, 409, 422, 429),
        },
      },
    },
    '/v1/audit': {
      get: {
        operationId: 'listAudit',
        summary: 'The tenant’s generation records (audit trail), oldest first, as JSON or CSV',
        description:
          'Who created, approved, rejected, re-rolled and selected what, with the model, its image digest, the prompt, seeds and every input’s hash. Records are written once and never updated. CSV (format=csv or Accept: text/csv) is RFC 4180, UTF-8, every cell quoted; a cell starting with = + - @ or a tab or CR is prefixed with a single quote (OWASP, CSV injection); its next page is in the Next-Cursor header.',
        parameters: [
          { name: 'from', in: 'query', schema: { type: 'string', format: 'date-time' } },
          { name: 'to', in: 'query', schema: { type: 'string', format: 'date-time' } },
          { name: 'tenant', in: 'query', schema: { type: 'string' }, description: 'The caller’s own only' },
          { name: 'format', in: 'query', schema: { type: 'string', enum: ['json', 'csv'] } },
          {
            name: 'limit',
            in: 'query',
            schema: { type: 'integer', minimum: 1, maximum: 1000, default: 200 },
          },
          { name: 'cursor', in: 'query', schema: { type: 'string' } },
        ],
        responses: {
          '200': {
            description: 'A page of records',
            headers: {
              'Next-Cursor': { schema: { type: 'string' }, description: 'CSV only: the next page' },
            },
            content: {
              'application/json': { schema: auditList },
              'text/csv': { schema: { type: 'string' } },
            },
          },
          ...errorResponses(400, 401, 403, 404, 429),
        },
      },
    },
    '/v1/usage': {
      get: {
        operationId: 'getUsage',
        summary: 'Spend (GPU seconds and USD) of the days from..to, by day, tenant, shot or model',
        description:
          "A key sees its own tenant's usage; a key with the admin scope may name another tenant, or, with " +
          'groupBy=tenant and no tenant, see every tenant. Default: this month so far, by day (UTC).',
        parameters: [
          { name: 'from', in: 'query', schema: { type: 'string', format: 'date' } },
          { name: 'to', in: 'query', schema: { type: 'string', format: 'date' } },
          {
            name: 'groupBy',
            in: 'query',
            schema: { type: 'string', enum: [...USAGE_GROUPS], default: 'day' },
          },
          { name: 'tenant', in: 'query', schema: { type: 'string' } },
        ],
        responses: {
          '200': json(component(components, 'UsageReport', UsageReport, 'output'), 'The spend, grouped'),
          ...errorResponses(400, 401, 403, 429),
        },
      },
    },
    '/v1/budgets/{tenant}': {
      put: {
        operationId: 'setBudget',
        summary: 'Set a tenant’s monthly budget and its graduated actions (admin scope)',
        description:
          'At warningPercent of the limit a budget.warning event (once a month) and the alarm; at stopPercent ' +
          'new jobs are refused with 402 budget_exceeded and unstarted frames of running jobs are held, until ' +
          'the budget is raised, when they resume by themselves. Months are UTC calendar months.',
        parameters: [
          {
            name: 'tenant',
            in: 'path',
            required: true,
            schema: { type: 'string', pattern: '^[a-z0-9][a-z0-9-]{0,62}$' },
          },
        ],
        requestBody: {
          required: true,
          content: {
            'application/json': { schema: component(components, 'BudgetRequest', BudgetRequest, 'input') },
          },
        },
        responses: {
          '200': json(
            component(components, 'Budget', BudgetView, 'output'),
            'The budget and where it stands',
          ),
          ...errorResponses(400, 401, 403, 413, 415, 429),
        },
      },
    },
    '/v1/openapi.json': {
      get: {
        operationId: 'openApi',
        summary: 'This document',
        security: [],
        responses: { '200': { description: 'OpenAPI 3.1 document', content: { 'application/json': {} } } },
      },
    },
  };

  // Every route the stack serves is described; a route added without a description fails the tests.
  for (const r of ROUTES) {
    const op = paths[r.path]?.[r.method.toLowerCase()];
    if (op && r.scope) op['x-framecast-scope'] = r.scope;
  }

  return {
    openapi: '3.1.0',
    info: {
      title: 'Framecast API',
      version: '1.0.0',
      description: 'Generate AI frame sequences for a shot: a frame range, a prompt and a seed.',
    },
    servers: [{ url: options.serverUrl ?? '/' }],
    security: [{ apiKey: [] }],
    paths,
    components: {
      schemas: components,
      securitySchemes: { apiKey: { type: 'http', scheme: 'bearer', description: 'An API key: fc_...' } },
    },
  };
}
