import type { MiddlewareObj } from '@middy/core';
import { FramecastError } from '../../core/errors.ts';
import { type ApiEvent, type ApiResponse, apiContext } from './context.ts';

export const MAX_BODY_BYTES = 256 * 1024;
/** Deeper than any request needs; validators recurse, so a hostile body must stop here. */
export const MAX_JSON_DEPTH = 32;

/**
 * Keys JavaScript gives a meaning to. `JSON.parse` makes them plain own properties, but the first copy
 * of the object (a schema's output, a spread) turns `__proto__` into the copy's prototype and drops it, and
 * an object whose own `constructor` is not a function cannot be stored (the DynamoDB marshaller reads
 * `value.constructor.name`). No field of the API takes them, so a body holding one anywhere is refused.
 */
const RESERVED_KEYS = new Set(['__proto__', 'constructor', 'prototype']);

/**
 * Walks parsed JSON without recursion: its nesting depth (counted up to just past the limit) and the
 * path of the first reserved key it holds, if any.
 */
export function inspectJson(value: unknown): { depth: number; reserved?: string } {
  let max = 0;
  const stack: [unknown, number, string][] = [[value, 1, 'body']];
  while (stack.length > 0) {
    const [v, d, path] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > max) max = d;
    if (max > MAX_JSON_DEPTH) return { depth: max };
    if (Array.isArray(v)) {
      for (const [i, child] of v.entries()) stack.push([child, d + 1, `${path}.${i}`]);
      continue;
    }
    for (const key of Object.keys(v)) {
      if (RESERVED_KEYS.has(key)) return { depth: max, reserved: `${path}.${key}` };
      stack.push([(v as Record<string, unknown>)[key], d + 1, `${path}.${key}`]);
    }
  }
  return { depth: max };
}

/** Nesting depth of parsed JSON, counted without recursion. */
export const depthOf = (value: unknown): number => inspectJson(value).depth;

/** The parsed JSON body of `event`, or the 413, 415 or 400 that names what is wrong with it. */
export function parseJsonBody(event: ApiEvent): unknown {
  if (event.body === undefined || event.body === null || event.body === '') return undefined;
  const raw = event.isBase64Encoded ? Buffer.from(event.body, 'base64') : Buffer.from(event.body, 'utf8');
  if (raw.byteLength > MAX_BODY_BYTES) {
    throw new FramecastError('payload_too_large', `body: must be at most ${MAX_BODY_BYTES} bytes`, {
      field: 'body',
    });
  }
  const type = event.headers?.['content-type'];
  if (type && !/^application\/(.+\+)?json\b/i.test(type)) {
    throw new FramecastError('unsupported_media_type', 'content-type: must be application/json', {
      field: 'content-type',
    });
  }
  let body: unknown;
  try {
    body = JSON.parse(raw.toString('utf8'));
  } catch (err) {
    throw new FramecastError('invalid_json', `body: is not valid JSON (${(err as Error).message})`, {
      field: 'body',
    });
  }
  const { depth, reserved } = inspectJson(body);
  if (depth > MAX_JSON_DEPTH) {
    throw new FramecastError('invalid_request', `body: is nested deeper than ${MAX_JSON_DEPTH} levels`, {
      field: 'body',
    });
  }
  if (reserved) {
    throw new FramecastError('invalid_request', `${reserved}: is a reserved key name`, { field: reserved });
  }
  return body;
}

/** Parses the body onto `request.context.body`: size limit, JSON content type, JSON, nesting depth, reserved keys. */
export const jsonBody = (): MiddlewareObj<ApiEvent, ApiResponse> => ({
  before: async (request) => {
    apiContext(request).body = parseJsonBody(request.event);
  },
});
