import { TransactionCanceledException } from '@aws-sdk/client-dynamodb';

/**
 * Jobs, frames, events, API keys and idempotency keys share one DynamoDB table (docs/architecture.md,
 * "Data model: one table"). This module holds what the stores of each record kind share: the keys and
 * the way a stored item becomes a record.
 *
 *   job        pk JOB#<id>            sk JOB              gsi1 TENANT#<t> / <id>, gsi2 TENANT#<t>#SHOT#<shot> / <id>
 *   frame      pk JOB#<id>            sk FRAME#<10 digits>
 *   event      pk EVENT#<id>          sk EVENT            gsi1 JOB#<id>#EVENTS / <event id>
 *   api key    pk KEY#<sha256>        sk KEY
 *   idem key   pk IDEM#<t>#<sha256>   sk IDEM             expires after IDEMPOTENCY_TTL_SECONDS
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
export const nowIso = (now: Date) => now.toISOString();

const INTERNAL = ['pk', 'sk', 'gsi1pk', 'gsi1sk', 'gsi2pk', 'gsi2sk', 'expiresAt'] as const;

/** A stored item without its keys: the record it holds. */
export function strip<T>(item: Record<string, unknown>): T {
  const copy = { ...item };
  for (const k of INTERNAL) delete copy[k];
  return copy as T;
}

export function cancellationReasons(err: unknown): string[] | undefined {
  if (!(err instanceof TransactionCanceledException)) return undefined;
  return (err.CancellationReasons ?? []).map((r) => r.Code ?? 'None');
}
