import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';
import {
  type DynamoDBDocumentClient,
  TransactWriteCommand,
  type TransactWriteCommandInput,
} from '@aws-sdk/lib-dynamodb';

/**
 * Jobs, frames, events, API keys and idempotency keys share one DynamoDB table (docs/architecture.md,
 * "Data model: one table"). This module holds what the stores of each record kind share: the keys and
 * the way a stored item becomes a record, the status conditions as the state machine gives them, and
 * the reading of a refused transaction.
 *
 *   job        pk JOB#<id>            sk JOB              gsi1 TENANT#<t> / <id>, gsi2 TENANT#<t>#SHOT#<shot> / <id>
 *   frame      pk JOB#<id>            sk FRAME#<10 digits>
 *   version    pk JOB#<id>            sk VERSION#<10 digits>#<4 digits>   (./versions.ts)
 *   unit       pk JOB#<id>            sk UNIT#<10 digits>                 (./versions.ts)
 *   event      pk EVENT#<id>          sk EVENT            gsi1 JOB#<id>#EVENTS / <event id>
 *   api key    pk KEY#<sha256>        sk KEY              gsi1 APIKEYS / <key id: first 12 hex of the hash>
 *   idem key   pk IDEM#<t>#<sha256>   sk IDEM             expires after IDEMPOTENCY_TTL_SECONDS
 *   asset      pk ASSET#<id>          sk ASSET            gsi1 TENANT#<t>#ASSETS / <id>
 *   asset file pk ASSET#<id>          sk FILE#<10 digits> (FILE#STILL for a still)
 *   content    pk CONTENT#<t>#<sha256> sk CONTENT        holders: the assets holding it; a removal claim
 *   audit      pk AUDIT#<t>           sk <ISO time>#<job>#<kind>...  written once, never updated (./audit.ts)
 *
 *   usage      pk USAGE#<t>           sk DAY#<yyyy-mm-dd> | SPLIT#<day>#MODEL#<m>#SHOT#<s>   (./usage.ts)
 *                                     the day total: gsi1 USAGE / <day>#<t> (every tenant's, for admins)
 *   model stats pk MODELSTATS#<model>  sk STATS            gpuMs and pixels of finished jobs (./usage.ts)
 *   budget     pk BUDGET#<t>          sk BUDGET            a tenant's limit, thresholds, warned month (./budgets.ts)
 *
 * Webhook endpoints, secrets and deliveries live in the same table: see ../webhook-store.ts.
 */

export const jobKey = (id: string) => ({ pk: `JOB#${id}`, sk: 'JOB' });
export const frameSk = (frame: number) => `FRAME#${String(frame).padStart(10, '0')}`;
export const frameKey = (jobId: string, frame: number) => ({ pk: `JOB#${jobId}`, sk: frameSk(frame) });
export const eventKey = (id: string) => ({ pk: `EVENT#${id}`, sk: 'EVENT' });
export const apiKeyKey = (hash: string) => ({ pk: `KEY#${hash}`, sk: 'KEY' });
export const idempotencyKey = (tenant: string, hash: string) => ({
  pk: `IDEM#${tenant}#${hash}`,
  sk: 'IDEM',
});
export const assetKey = (id: string) => ({ pk: `ASSET#${id}`, sk: 'ASSET' });
export const assetFileSk = (frame: number | undefined) =>
  frame === undefined ? 'FILE#STILL' : `FILE#${String(frame).padStart(10, '0')}`;
export const assetFileKey = (id: string, frame: number | undefined) => ({
  pk: `ASSET#${id}`,
  sk: assetFileSk(frame),
});
export const contentRecordKey = (tenant: string, sha256: string) => ({
  pk: `CONTENT#${tenant}#${sha256}`,
  sk: 'CONTENT',
});
export const usageKey = (tenant: string, sk: string) => ({ pk: `USAGE#${tenant}`, sk });
export const modelStatsKey = (model: string) => ({ pk: `MODELSTATS#${model}`, sk: 'STATS' });
export const budgetKey = (tenant: string) => ({ pk: `BUDGET#${tenant}`, sk: 'BUDGET' });
export const nowIso = (now: Date) => now.toISOString();

/** Tries of a transaction that met a concurrent one on the same items, before the error is thrown. */
export const CONFLICT_ROUNDS = 5;
/** The wait before try `round + 1` of a transaction that met a concurrent one. */
export const backOff = (round: number) =>
  new Promise((resolve) => setTimeout(resolve, 20 * 2 ** round + Math.random() * 20));

const INTERNAL = ['pk', 'sk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk', 'expiresAt'] as const;

/** A stored item without its keys: the record it holds. */
export function strip<T>(item: Record<string, unknown>): T {
  const copy = { ...item };
  for (const k of INTERNAL) delete copy[k];
  return copy as T;
}

/**
 * The condition that the attribute `name` holds one of `statuses`, with its values. The statuses come
 * from the state machine (core/state.ts: `jobStatusesBefore`, `frameStatusesBefore`, ...), never from a
 * list typed here; `prefix` keeps the value names apart from those of the update around it.
 */
export function statusIn(
  statuses: readonly string[],
  name = '#status',
  prefix = 'was',
): { condition: string; values: Record<string, string> } {
  if (statuses.length === 0) throw new Error(`no status allows this write (${name})`);
  const values = Object.fromEntries(statuses.map((s) => [`:${prefix}_${s}`, s]));
  const placeholders = Object.keys(values);
  const condition =
    placeholders.length === 1 ? `${name} = ${placeholders[0]}` : `${name} IN (${placeholders.join(', ')})`;
  return { condition, values };
}

export type TransactItem = NonNullable<TransactWriteCommandInput['TransactItems']>[number];

export type Transacted<Name extends string> =
  | { readonly ok: true }
  | {
      readonly ok: false;
      /** The first item whose condition failed, by the name it was given; none when only a conflict. */
      readonly failed: Name | undefined;
      /** Every item whose condition failed, in the order given. */
      readonly failedAll: readonly Name[];
      /** A concurrent transaction touched the same items: the same write may succeed if tried again. */
      readonly conflict: boolean;
      /** The error as DynamoDB gave it, for the writer to throw when the failure is not one it expects. */
      readonly error: unknown;
    };

/**
 * Writes the named items in one transaction, in the order given. A refusal for a failed condition or a
 * conflict comes back naming the item, so each writer says in a line what that means; any other error
 * (throttling, validation, a network fault) is thrown.
 */
export async function transact<Name extends string>(
  db: DynamoDBDocumentClient,
  items: Readonly<Record<Name, TransactItem>>,
): Promise<Transacted<Name>> {
  const names = Object.keys(items) as Name[];
  try {
    await db.send(new TransactWriteCommand({ TransactItems: names.map((n) => items[n]) }));
    return { ok: true };
  } catch (error) {
    if (!(error instanceof TransactionCanceledException)) throw error;
    const codes = (error.CancellationReasons ?? []).map((r) => r.Code ?? 'None');
    const failedAt = codes.indexOf('ConditionalCheckFailed');
    const conflict = codes.includes('TransactionConflict');
    if (failedAt < 0 && !conflict) throw error;
    const failedAll = names.filter((_, i) => codes[i] === 'ConditionalCheckFailed');
    return { ok: false, failed: failedAt < 0 ? undefined : names[failedAt], failedAll, conflict, error };
  }
}

/** A single conditional write refused because its condition did not hold. */
export const isConditionFailure = (err: unknown): boolean =>
  (err as Error | undefined)?.name === 'ConditionalCheckFailedException';
