import { randomUUID } from 'node:crypto';
import middy, { type MiddlewareObj } from '@middy/core';
import type { APIGatewayProxyEventV2, APIGatewayProxyResultV2, Context } from 'aws-lambda';
import { hashApiKey } from '../core/api-keys.ts';
import { FramecastError } from '../core/errors.ts';
import type { ApiKeyRecord, Scope } from '../core/model.ts';
import { logger } from '../logger.ts';

/**
 * The HTTP edge shared by every API handler: body limits and JSON parsing, API-key authentication,
 * and the one error mapper. Handlers stay thin: parse, call one service, map the result.
 */

export const MAX_BODY_BYTES = 256 * 1024;
/** How long a looked-up key is trusted in this process: a revoked key stops working within this. */
const KEY_CACHE_MS = 60_000;
const UNKNOWN_KEY_CACHE_MS = 5_000;

export interface Caller {
  readonly tenant: string;
  readonly scopes: readonly Scope[];
}

export interface ApiRequest {
  readonly caller: Caller;
  readonly body: unknown;
  readonly path: Readonly<Record<string, string | undefined>>;
  readonly query: Readonly<Record<string, string | undefined>>;
  readonly headers: Readonly<Record<string, string | undefined>>;
  readonly requestId: string;
}

export interface ApiResult {
  readonly status: number;
  readonly body: unknown;
  readonly headers?: Record<string, string>;
}

export interface KeyLookup {
  getApiKey(hash: string): Promise<ApiKeyRecord | undefined>;
}

const json = (
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): APIGatewayProxyResultV2 => ({
  statusCode: status,
  headers: { 'content-type': 'application/json', 'cache-control': 'no-store', ...headers },
  body: JSON.stringify(body),
});

const errorBody = (code: string, message: string, details?: unknown) => ({
  error: { code, message, ...(details !== undefined && { details }) },
});

const cache = new Map<string, { key?: ApiKeyRecord; until: number }>();
const UNAUTHORIZED = () => new FramecastError('unauthorized', 'missing, unknown or revoked API key');

async function authenticate(header: string | undefined, keys: KeyLookup): Promise<Caller> {
  const match = /^Bearer (fc_[A-Za-z0-9_-]{16,128})$/.exec(header?.trim() ?? '');
  if (!match?.[1]) throw UNAUTHORIZED();
  const hash = hashApiKey(match[1]);
  const now = Date.now();
  let entry = cache.get(hash);
  if (!entry || entry.until < now) {
    const key = await keys.getApiKey(hash);
    entry = { key, until: now + (key ? KEY_CACHE_MS : UNKNOWN_KEY_CACHE_MS) };
    if (cache.size > 10_000) cache.clear();
    cache.set(hash, entry);
  }
  // Unknown and revoked keys answer alike, so a caller learns nothing about which keys exist.
  if (!entry.key || entry.key.revokedAt) throw UNAUTHORIZED();
  return { tenant: entry.key.tenant, scopes: entry.key.scopes };
}

/** Forgets cached keys: for tests and for the admin CLI running in the same process. */
export const clearKeyCache = (): void => cache.clear();

function readBody(event: APIGatewayProxyEventV2): unknown {
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

/** Deeper than any request needs; validators recurse, so a hostile body must stop here. */
const MAX_JSON_DEPTH = 32;

/** Nesting depth of parsed JSON, counted without recursion. */
function depthOf(value: unknown): number {
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

/** The one error mapper: domain errors keep their code; anything else is a 500 that says nothing internal. */
const errorMapper = (): MiddlewareObj<APIGatewayProxyEventV2, APIGatewayProxyResultV2> => ({
  onError: async (request) => {
    const err = request.error;
    const requestId = request.context.awsRequestId ?? randomUUID();
    if (err instanceof FramecastError) {
      if (err.status >= 500) logger.error('request failed', { requestId, error: err });
      const headers: Record<string, string> = err.status === 401 ? { 'www-authenticate': 'Bearer' } : {};
      request.response = json(err.status, errorBody(err.code, err.message, err.details), headers);
      return;
    }
    logger.error('unexpected error', { requestId, error: err as Error });
    request.response = json(
      500,
      errorBody('internal', `internal error; request id ${requestId}`, { requestId }),
    );
  },
});

export interface RouteOptions {
  /** The scope the API key needs; undefined: the route is public. */
  readonly scope?: Scope;
  /** Resolved at the first request, so a handler's cold start builds only the clients it uses. */
  readonly keys: () => KeyLookup;
}

/** Makes a Lambda handler for one API route. */
export function route(options: RouteOptions, fn: (req: ApiRequest) => Promise<ApiResult>) {
  const core = async (event: APIGatewayProxyEventV2, context: Context): Promise<APIGatewayProxyResultV2> => {
    const headers = Object.fromEntries(
      Object.entries(event.headers ?? {}).map(([k, v]) => [k.toLowerCase(), v]),
    ) as Record<string, string | undefined>;
    let caller: Caller = { tenant: '', scopes: [] };
    if (options.scope) {
      caller = await authenticate(headers.authorization, options.keys());
      if (!caller.scopes.includes(options.scope)) {
        throw new FramecastError('forbidden', `API key lacks the ${options.scope} scope`);
      }
    }
    const body = readBody({ ...event, headers });
    const result = await fn({
      caller,
      body,
      path: event.pathParameters ?? {},
      query: event.queryStringParameters ?? {},
      headers,
      requestId: context.awsRequestId,
    });
    if (result.status === 204)
      return { statusCode: 204, headers: { 'cache-control': 'no-store', ...result.headers } };
    return json(result.status, result.body, result.headers);
  };
  return middy<APIGatewayProxyEventV2, APIGatewayProxyResultV2>().use(errorMapper()).handler(core);
}
