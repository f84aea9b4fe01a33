import { randomBytes } from 'node:crypto';
import type { ApiKeyStore } from '../adapters/store/api-keys.ts';
import { API_KEY_PATTERN, hashApiKey } from '../core/api-keys.ts';
import { isTenant } from '../core/ids.ts';
import { DEFAULT_SCOPES, type Scope } from '../core/model.ts';

/**
 * Issues an API key: `fc_` and 256 random bits. Only its SHA-256 is stored; the key itself is shown
 * once, to whoever created it.
 */
export async function createApiKey(
  store: Pick<ApiKeyStore, 'putApiKey'>,
  options: { tenant: string; scopes?: readonly Scope[]; name?: string; key?: string },
): Promise<string> {
  if (!isTenant(options.tenant)) {
    throw new Error('tenant must be 1 to 63 lowercase letters, digits or "-"');
  }
  const key = options.key ?? `fc_${randomBytes(32).toString('base64url')}`;
  if (!API_KEY_PATTERN.test(key)) throw new Error('an API key is fc_ and 16 to 128 URL-safe characters');
  await store.putApiKey({
    hash: hashApiKey(key),
    tenant: options.tenant,
    scopes: [...(options.scopes ?? DEFAULT_SCOPES)],
    name: options.name ?? 'api key',
    createdAt: new Date().toISOString(),
  });
  return key;
}
