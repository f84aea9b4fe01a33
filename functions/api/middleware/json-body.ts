import type { MiddlewareObj } from '@middy/core';
import { FramecastError } from '../../core/errors.ts';
import { type ApiEvent, type ApiResponse, apiContext } from './context.ts';

export const MAX_BODY_BYTES = 256 * 1024;
/** Deeper than any request needs; validators recurse, so a hostile body must stop here. */
export const MAX_JSON_DEPTH = 32;

/** Nesting depth of parsed JSON, counted without recursion. */
export function depthOf(value: unknown): number {
  let max = 0;
  const stack: [unknown, number][] = [[value, 1]];
  while (stack.length > 0) {
    const [v, d] = stack.pop()!;
    if (v === null || typeof v !== 'object') continue;
    if (d > max) max = d;
    if (max > MAX_JSON_DEPTH) return max;
    for (const child of Array.isArray(v) ? v : Object.values(v)) stack.push([child, d + 1]);
  }
  return max;
}

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
  if (depthOf(body) > MAX_JSON_DEPTH) {
    throw new FramecastError('invalid_request', `body: is nested deeper than ${MAX_JSON_DEPTH} levels`, {
      field: 'body',
    });
  }
  return body;
}

/** Parses the body onto `request.context.body`: size limit, JSON content type, JSON, nesting depth. */
export const jsonBody = (): MiddlewareObj<ApiEvent, ApiResponse> => ({
  before: async (request) => {
    apiContext(request).body = parseJsonBody(request.event);
  },
});
