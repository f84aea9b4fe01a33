import type { Context, SQSBatchResponse, SQSEvent, SQSRecord } from 'aws-lambda';
import type * as z from 'zod';
import { type MessageSchema, parseMessage } from '../core/messages.ts';
import { logger } from '../logger.ts';

export interface SqsBatchOptions {
  /**
   * Records of one batch handled at once: 1 (the default) handles them one by one, in order;
   * `Number.POSITIVE_INFINITY` all at once.
   */
  readonly concurrency?: number;
}

export type MessageHandler<M> = (message: M, record: SQSRecord, context: Context) => Promise<void>;

/**
 * The Lambda side of a queue: parses every record with `schema`, hands the good ones to `handle`, and
 * answers a partial batch response (the event source mapping has `reportBatchItemFailures`).
 *
 * A malformed record (not JSON, of a version this code does not read, or not of the schema) is logged
 * and reported as failed, never handled: SQS delivers it again until its receive count passes the
 * queue's maxReceiveCount and then moves it to the DLQ, whose alarm shows it to ops. A record whose
 * handling throws is reported the same way and retried. Neither stops the rest of the batch.
 *
 * Duplicates are handled like any message: SQS delivers at least once, and each handler is idempotent.
 */
export function sqsBatch<S extends MessageSchema>(
  schema: S,
  handle: MessageHandler<Readonly<z.output<S>>>,
  options: SqsBatchOptions = {},
): (event: SQSEvent, context: Context) => Promise<SQSBatchResponse> {
  const concurrency = options.concurrency ?? 1;
  // Zero lanes would handle nothing and report nothing failed: every message deleted unread.
  if (!(concurrency >= 1)) throw new RangeError(`concurrency must be 1 or more, not ${concurrency}`);
  return async (event, context) => {
    const failed = new Set<string>();
    const one = async (record: SQSRecord) => {
      const parsed = parseMessage(schema, record.body);
      if (!parsed.ok) {
        logger.error('malformed message; it goes to the DLQ after its retries', {
          messageId: record.messageId,
          reason: parsed.reason,
          receiveCount: record.attributes.ApproximateReceiveCount,
          source: record.eventSourceARN,
        });
        failed.add(record.messageId);
        return;
      }
      try {
        await handle(parsed.message, record, context);
      } catch (err) {
        logger.error('message failed; SQS will deliver it again', {
          messageId: record.messageId,
          message: parsed.message,
          error: err as Error,
        });
        failed.add(record.messageId);
      }
    };
    let next = 0;
    const lanes = Array.from({ length: Math.min(concurrency, event.Records.length) }, async () => {
      while (next < event.Records.length) await one(event.Records[next++]!);
    });
    await Promise.all(lanes);
    return {
      batchItemFailures: event.Records.filter((r) => failed.has(r.messageId)).map((r) => ({
        itemIdentifier: r.messageId,
      })),
    };
  };
}
