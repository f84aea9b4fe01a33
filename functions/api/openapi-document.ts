import * as z from 'zod';
import {
  ErrorResponse,
  EventList,
  FrameList,
  FrameListQuery,
  JOB_STATUSES,
  JobList,
  JobResponse,
  jobRequestSchema,
  Redelivery,
  WebhookEndpoint,
  WebhookEndpointList,
  WebhookEndpointRequest,
  WebhookSecret,
} from '../core/schemas.ts';
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

const errorResponses = (...codes: number[]) =>
  Object.fromEntries(
    codes.map((code) => [
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
  422: 'Idempotency-Key reused with another body',
  429: 'Too many requests',
  503: 'Temporarily unavailable; retry',
};

const idParam = {
  name: 'id',
  in: 'path',
  required: true,
  schema: { type: 'string', pattern: '^job_[0-9A-Z]{26}$' },
};

export function openApiDocument(options: { frameLimit?: number; serverUrl?: string } = {}): Json {
  const components: Json = {};
  const jobRequest = component(components, 'JobRequest', jobRequestSchema(options.frameLimit), 'input');
  const job = component(components, 'Job', JobResponse, 'output');
  const jobList = component(components, 'JobList', JobList, 'output');
  const frameList = component(components, 'FrameList', FrameList, 'output');
  component(components, 'Error', ErrorResponse, 'output');
  const eventList = component(components, 'EventList', EventList, 'output');
  const redelivery = component(components, 'Redelivery', Redelivery, 'output');
  const endpointRequest = component(components, 'WebhookEndpointRequest', WebhookEndpointRequest, 'input');
  const endpoint = component(components, 'WebhookEndpoint', WebhookEndpoint, 'output');
  const endpointList = component(components, 'WebhookEndpointList', WebhookEndpointList, 'output');
  const secret = component(components, 'WebhookSecret', WebhookSecret, 'output');
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
        ],
        requestBody: { required: true, content: { 'application/json': { schema: jobRequest } } },
        responses: {
          '202': json(job, 'Accepted; frames are generated in the background'),
          ...errorResponses(400, 401, 403, 413, 415, 422, 429, 503),
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
