import { readFile } from 'node:fs/promises';
import { join, resolve } from 'node:path';
import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';
import { ApiKeyStore, type ApiKeyView } from '../../functions/adapters/store/api-keys.ts';
import { API_KEY_PATTERN, hashApiKey, KEY_ID_PATTERN, keyIdOf } from '../../functions/core/api-keys.ts';

export { KEY_CACHE_MS } from '../../functions/api/middleware/authenticate.ts';

import { isTenant } from '../../functions/core/ids.ts';
import { DEFAULT_SCOPES, SCOPES, type Scope } from '../../functions/core/model.ts';
import { createApiKey } from '../../functions/services/api-keys.ts';
import { ENV } from '../../functions/shared/env.ts';
import type { LocalConnectionFile } from '../../local/stack.ts';

/**
 * `framecast keys`: API keys straight in a production's table, as ops make them (there is no HTTP route
 * for keys: a key that could make keys would be a master key). Where the table is:
 *
 * - `--table NAME` or FRAMECAST_TABLE: a deployed stack's table (its `TableName` output), reached with
 *   the standard AWS credential chain and region (AWS_PROFILE, AWS_REGION or `--region`, ...);
 * - else the local stack that `npm run dev` runs from this folder: it writes `.framecast/local.json`
 *   (DynamoDB Local's endpoint and the table) while it runs, and `--local DIR` names another data folder.
 */

/** The file local mode writes into its data folder while it runs (local/stack.ts). */
export const LOCAL_FILE = 'local.json';

export class KeysUsageError extends Error {}

export interface TableTarget {
  readonly store: ApiKeyStore;
  /** Where the keys are, for the human output: `table T (region R)` or `the local stack at ...`. */
  readonly where: string;
  readonly local: boolean;
}

// The SDK warns on every run under Node 20 that its releases from 2027 need Node 22: news for whoever
// upgrades the SDK (docs say so), not for someone making a key. A setting of the variable is kept.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export async function keyTable(
  flags: { table?: string; region?: string; local?: string },
  env: NodeJS.ProcessEnv = process.env,
): Promise<TableTarget> {
  const table = flags.table ?? env[ENV.table];
  if (table) {
    const base = new DynamoDBClient({ maxAttempts: 5, ...(flags.region && { region: flags.region }) });
    const region = await base.config.region().catch(() => undefined);
    if (!region)
      throw new KeysUsageError(`no AWS region for table ${table}: give --region or set AWS_REGION`);
    return {
      store: new ApiKeyStore(DynamoDBDocumentClient.from(base), table),
      where: `table ${table} (${region})`,
      local: false,
    };
  }
  const path = join(resolve(flags.local ?? '.framecast'), LOCAL_FILE);
  let file: LocalConnectionFile;
  try {
    file = JSON.parse(await readFile(path, 'utf8')) as LocalConnectionFile;
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ENOENT')
      throw new KeysUsageError(
        `no table: give --table NAME (the stack's TableName output) or set ${ENV.table}, or start the local stack here (npm run dev writes ${path})`,
      );
    throw new KeysUsageError(`${path}: ${(err as Error).message}`);
  }
  if (!running(file.pid))
    throw new KeysUsageError(
      `the local stack that wrote ${path} (process ${file.pid}) is not running: start it with npm run dev`,
    );
  const { endpoint, region, table: localTable } = file.dynamodb;
  // DynamoDB Local runs with -sharedDb: any letters-and-digits credentials see the same tables.
  const base = new DynamoDBClient({
    endpoint,
    region,
    credentials: { accessKeyId: 'local', secretAccessKey: 'local' },
    maxAttempts: 1,
  });
  return {
    store: new ApiKeyStore(DynamoDBDocumentClient.from(base), localTable),
    where: `the local stack (${file.apiUrl}, from ${path})`,
    local: true,
  };
}

/** Whether a process of this id runs (a stack killed without its stop leaves its file behind). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return (err as NodeJS.ErrnoException).code === 'EPERM';
  }
}

export function parseScopes(value: string | undefined): Scope[] {
  if (value === undefined) return [...DEFAULT_SCOPES];
  const scopes = value
    .split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  const unknown = scopes.filter((s) => !(SCOPES as readonly string[]).includes(s));
  if (scopes.length === 0 || unknown.length > 0)
    throw new KeysUsageError(
      `--scopes: ${unknown.length > 0 ? `unknown ${unknown.join(', ')}` : 'none given'}; known: ${SCOPES.join(', ')}`,
    );
  return scopes as Scope[];
}

export interface CreatedKey {
  /** The key itself: shown once, never stored. */
  readonly key: string;
  readonly id: string;
  readonly tenant: string;
  readonly scopes: readonly Scope[];
  readonly name: string;
}

export async function createKey(
  store: ApiKeyStore,
  options: { tenant: string; scopes: Scope[]; name?: string },
): Promise<CreatedKey> {
  if (!isTenant(options.tenant))
    throw new KeysUsageError(
      `--tenant must be 1 to 63 lowercase letters, digits or "-", not "${options.tenant}"`,
    );
  const name = options.name ?? `created ${new Date().toISOString()}`;
  const key = await createApiKey(store, { tenant: options.tenant, scopes: options.scopes, name });
  return { key, id: keyIdOf(hashApiKey(key)), tenant: options.tenant, scopes: options.scopes, name };
}

/** Revokes the key of a short id (from `keys list`), or the key itself when that is what ops hold. */
export async function revokeKey(store: ApiKeyStore, idOrKey: string): Promise<ApiKeyView> {
  let hash: string;
  if (API_KEY_PATTERN.test(idOrKey)) hash = hashApiKey(idOrKey);
  else if (KEY_ID_PATTERN.test(idOrKey)) {
    const found = await store.findApiKey(idOrKey);
    if (!found) throw new Error(`no key has the id ${idOrKey}`);
    hash = found.hash;
  } else
    throw new KeysUsageError(
      `give a key id (12 hex digits, as keys list shows) or the key (fc_...), not "${idOrKey}"`,
    );
  try {
    const record = await store.revokeApiKey(hash);
    return { id: keyIdOf(hash), ...record };
  } catch (err) {
    if ((err as Error).name === 'ConditionalCheckFailedException') throw new Error('no such key');
    throw err;
  }
}

/** A key as `keys list` prints it: its id names it; the hash is left out, as nobody needs it. */
export const keyView = ({ hash: _hash, ...key }: ApiKeyView) => key;
