import { afterEach, describe, expect, it, vi } from 'vitest';
import { sqsBatch } from '../../../functions/consumers/batch.ts';
import { newJobId } from '../../../functions/core/ids.ts';
import { type ChunkMessage, chunkMessageSchema, encodeChunk } from '../../../functions/core/messages.ts';
import { logger } from '../../../functions/logger.ts';
import { lambdaContext } from '../../../local/gateway.ts';
import { failedIds, sqsEvent } from '../../support/sqs.ts';

const jobId = newJobId();
const chunk = (...frames: number[]) => encodeChunk({ jobId, tenant: 'acme', frames });
const context = lambdaContext('batch-test');

/** A handler that records what it was given and how many ran at once; `failOn` frames throw. */
function recorder(options: { failOn?: number; delayMs?: number } = {}) {
  const handled: ChunkMessage[] = [];
  let running = 0;
  let most = 0;
  const handle = async (message: ChunkMessage) => {
    running++;
    most = Math.max(most, running);
    try {
      await new Promise((r) => setTimeout(r, options.delayMs ?? 1));
      if (message.frames.includes(options.failOn ?? -1)) throw new Error('the table is down');
      handled.push(message);
    } finally {
      running--;
    }
  };
  return { handle, handled, mostAtOnce: () => most };
}

afterEach(() => vi.restoreAllMocks());

describe('a batch of queue messages', () => {
  it('hands every good message to the handler, one by one and in order by default', async () => {
    const r = recorder();
    const out = await sqsBatch(chunkMessageSchema, r.handle)(
      sqsEvent([chunk(1), chunk(2), chunk(3)]),
      context,
    );
    expect(out).toEqual({ batchItemFailures: [] });
    expect(r.handled.map((m) => m.frames[0])).toEqual([1, 2, 3]);
    expect(r.mostAtOnce()).toBe(1);
  });

  it('sends a malformed message to the DLQ without stopping the batch: reported, logged, never handled', async () => {
    const errors = vi.spyOn(logger, 'error');
    const r = recorder();
    const bodies = [
      chunk(1),
      '{"v": 1, "jobId": ', // not JSON
      chunk(2),
      JSON.stringify({ v: 1, jobId, tenant: 'acme', frames: ['3'] }), // wrong type
      JSON.stringify({ v: 1, jobId, frames: [4] }), // a field missing
      JSON.stringify({ v: 9, jobId, tenant: 'acme', frames: [5] }), // a version this code does not read
      chunk(6),
    ];
    const out = await sqsBatch(chunkMessageSchema, r.handle)(sqsEvent(bodies), context);
    expect(failedIds(out)).toEqual(['m2', 'm4', 'm5', 'm6']);
    expect(r.handled.map((m) => m.frames[0])).toEqual([1, 2, 6]);
    const malformed = (messageId: string, reason: RegExp) =>
      expect.objectContaining({ messageId, reason: expect.stringMatching(reason) });
    expect(errors.mock.calls.map(([, extra]) => extra)).toEqual([
      malformed('m2', /^not JSON/),
      malformed('m4', /^frames\.0: /),
      malformed('m5', /^tenant: /),
      malformed('m6', /^unknown version 9; this code reads v1, v2, v3$/),
    ]);
  });

  it('reports a message whose handling throws, for SQS to retry, and handles the rest', async () => {
    const errors = vi.spyOn(logger, 'error');
    const r = recorder({ failOn: 2 });
    const out = await sqsBatch(chunkMessageSchema, r.handle)(
      sqsEvent([chunk(1), chunk(2), chunk(3)]),
      context,
    );
    expect(failedIds(out)).toEqual(['m2']);
    expect(r.handled.map((m) => m.frames[0])).toEqual([1, 3]);
    expect(errors).toHaveBeenCalledWith(
      expect.stringMatching(/deliver it again/),
      expect.objectContaining({ messageId: 'm2', error: expect.any(Error) }),
    );
  });

  it('parses and handles both copies of a duplicated message: being idempotent is the handler’s part', async () => {
    const r = recorder();
    const out = await sqsBatch(chunkMessageSchema, r.handle)(sqsEvent([chunk(7, 8), chunk(7, 8)]), context);
    expect(out).toEqual({ batchItemFailures: [] });
    expect(r.handled).toEqual([
      { v: 1, jobId, tenant: 'acme', frames: [7, 8] },
      { v: 1, jobId, tenant: 'acme', frames: [7, 8] },
    ]);
  });

  it('handles messages at once up to the concurrency asked for', async () => {
    const bodies = Array.from({ length: 10 }, (_, i) => chunk(i));
    const two = recorder({ delayMs: 10 });
    await sqsBatch(chunkMessageSchema, two.handle, { concurrency: 2 })(sqsEvent(bodies), context);
    expect(two.mostAtOnce()).toBe(2);
    expect(two.handled).toHaveLength(10);
    const all = recorder({ delayMs: 10 });
    await sqsBatch(chunkMessageSchema, all.handle, { concurrency: Number.POSITIVE_INFINITY })(
      sqsEvent(bodies),
      context,
    );
    expect(all.mostAtOnce()).toBe(10);
    expect(all.handled).toHaveLength(10);
  });

  it('hands the handler its record and the Lambda context', async () => {
    const handle = vi.fn(async () => undefined);
    await sqsBatch(chunkMessageSchema, handle)(sqsEvent([chunk(1)]), context);
    expect(handle).toHaveBeenCalledWith(
      { v: 1, jobId, tenant: 'acme', frames: [1] },
      expect.objectContaining({ messageId: 'm1' }),
      context,
    );
  });

  it('refuses a concurrency below one, which would handle nothing and delete everything', () => {
    expect(() => sqsBatch(chunkMessageSchema, async () => undefined, { concurrency: 0 })).toThrow(RangeError);
    expect(() => sqsBatch(chunkMessageSchema, async () => undefined, { concurrency: Number.NaN })).toThrow(
      RangeError,
    );
  });
});
