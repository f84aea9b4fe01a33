import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AwsRequest } from '../../functions/adapters/clients.ts';
import type { JobResponse } from '../../functions/core/schemas.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, isFinished } from '../support/api.ts';

// A window of 2 chunks of 4 frames: a 400-frame shot is released in about 50 steps, each asked for by a
// worker, with two model slots finishing chunks out of order. Nothing but the releases moves it on.
let stack: LocalStack;
let api: ReturnType<typeof client>;
const seen: AwsRequest[] = [];

beforeAll(async () => {
  stack = await startLocalStack({
    worker: { concurrency: 2, retryBaseMs: 5 },
    withoutWebhooks: true,
    env: { FRAMECAST_CHUNK_SIZE: '4', FRAMECAST_FAIR_SHARE_CHUNKS: '2' },
    onAwsRequest: (r) => seen.push(r),
  });
  api = client(stack.url, stack.apiKey);
}, 60_000);
afterAll(() => stack?.stop());

describe('a shot released a window at a time', () => {
  it('is made whole, every frame once, by releases its own chunks ask for', async () => {
    const created = await api.createJob<JobResponse>({
      shot: 'STEPS_SH010',
      prompt: 'a crane swings its load across the harbour',
      frames: { start: 1, end: 400 },
      width: 64,
      height: 64,
    });
    expect(created.status).toBe(202);
    const done = await api.waitForJob(created.body.id, isFinished, 180_000);
    expect(done.status).toBe('succeeded');
    expect(done.frames).toMatchObject({ total: 400, succeeded: 400, failed: 0, canceled: 0 });
    const records = await stack.app.store.listFrames(done.id, 1, 400, true);
    expect(records.map((r) => r.frame)).toEqual(Array.from({ length: 400 }, (_, i) => i + 1));
    expect(records.every((r) => r.attempts === 1)).toBe(true);
    expect((await stack.app.store.getJob(done.id))?.plannedUpTo).toBe(401);

    // The plan messages asking for more: about one per release, not one per chunk.
    const asks = seen.filter(
      (r) =>
        r.operation.startsWith('SendMessage') &&
        (r.input as { QueueUrl?: string }).QueueUrl === stack.queues.plan.url,
    ).length;
    const releases = seen.filter(
      (r) =>
        r.operation === 'UpdateItem' &&
        JSON.stringify(r.input).includes('plannedUpTo = :upTo') &&
        JSON.stringify(r.input).includes(done.id),
    ).length;
    console.log(`400 frames in chunks of 4, window 8: ${releases} releases, ${asks} plan messages`);
    expect(asks).toBeLessThan(100);
  }, 240_000);
});
