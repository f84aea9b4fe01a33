import * as z from 'zod';
import {
  ErrorResponse,
  FrameList,
  FrameListQuery,
  JOB_STATUSES,
  JobList,
  JobResponse,
  jobRequestSchema,
} from '../core/schemas.ts';
import { ROUTES } from './routes.ts';

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
  const { $defs, $schema: _schema, $ref, ...rest } = JSON.parse(text) as Json & { $defs?: Json; $ref?: string };
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

const idParam = { name: 'id', in: 'path', required: true, schema: { type: 'string', pattern: '^job_[0-9A-Z]{26}$' } };

export function openApiDocument(options: { frameLimit?: number; serverUrl?: string } = {}): Json {
  const components: Json = {};
  const jobRequest = component(components, 'JobRequest', jobRequestSchema(options.frameLimit), 'input');
  const job = component(components, 'Job', JobResponse, 'output');
  const jobList = component(components, 'JobList', JobList, 'output');
  const frameList = component(components, 'FrameList', FrameList, 'output');
  component(components, 'Error', ErrorResponse, 'output');
  const frameQuery = z.toJSONSchema(FrameListQuery, { io: 'input', unrepresentable: 'any' }) as {
    properties: Record<string, Json>;
  };
  const json = (schema: Json, description: string) => ({ description, content: { 'application/json': { schema } } });

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
        responses: { '202': json(job, 'Accepted; frames are generated in the background'), ...errorResponses(400, 401, 403, 413, 415, 422, 429, 503) },
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
