import type { MiddlewareObj } from '@middy/core';
import { type Caller, hashApiKey, type KeyLookup, keyIdOf } from '../../core/api-keys.ts';
import { FramecastError } from '../../core/errors.ts';
import type { Scope } from '../../core/model.ts';
import { type ApiEvent, type ApiResponse, apiContext } from './context.ts';

/** How long a looked-up key is trusted in this process: a revoked key stops working within this. */
const KEY_CACHE_MS = 60_000;
const UNKNOWN_KEY_CACHE_MS = 5_000;
const BEARER = /^Bearer (fc_[A-Za-z0-9_-]{16,128})$/;
const ANONYMOUS: Caller = { tenant: '', scopes: [] };

const cache = new Map<string, { key?: Awaited<ReturnType<KeyLookup['getApiKey']>>; until: number }>();
const unauthorized = () => new FramecastError('unauthorized', 'missing, unknown or revoked API key');

/** Forgets cached keys: for tests and for the admin CLI running in the same process. */
export const clearKeyCache = (): void => cache.clear();

/** The caller a `Bearer` header names, or a 401 that says nothing about which keys exist. */
export async function callerOf(header: string | undefined, keys: KeyLookup): Promise<Caller> {
  const match = BEARER.exec(header?.trim() ?? '');
  if (!match?.[1]) throw unauthorized();
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
  if (!entry.key || entry.key.revokedAt) throw unauthorized();
  return {
    tenant: entry.key.tenant,
    scopes: entry.key.scopes,
    keyId: keyIdOf(hash),
    keyName: entry.key.name,
  };
}

/**
 * Puts the caller on `request.context.caller`, as middy's http-jwt puts its identity there. A route
 * without a scope is public and its caller anonymous; a key without the route's scope is a 403.
 * `keys` is resolved at the first request, so a cold start builds only the clients it uses.
 */
export const authenticate = (
  scope: Scope | undefined,
  keys: () => KeyLookup,
): MiddlewareObj<ApiEvent, ApiResponse> => ({
  before: async (request) => {
    apiContext(request).caller = ANONYMOUS;
    if (!scope) return;
    const caller = await callerOf(request.event.headers?.authorization, keys());
    if (!caller.scopes.includes(scope))
      throw new FramecastError('forbidden', `API key lacks the ${scope} scope`);
    apiContext(request).caller = caller;
  },
});
