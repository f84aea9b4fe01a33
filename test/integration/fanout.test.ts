import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { newJobId } from '../../functions/core/ids.ts';
import {
  type ChunkMessage,
  chunkMessageSchema,
  parseFrameQueueMessage,
} from '../../functions/core/messages.ts';
import type { JobRecord } from '../../functions/core/model.ts';
import { fanOut } from '../../functions/fanout/plan.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { eventually } from '../support/api.ts';
import { jobRecord } from '../support/jobs.ts';

let stack: LocalStack;

// No worker: the frame queue keeps what the fan-out puts on it, for the test to read.
beforeAll(async () => {
  // Chunks of 4, as the plans these tests make by hand, for the continuations the stack's fan-out takes;
  // a fair-share window wider than any shot here, since nothing finishes chunks (test/integration/fair-share.test.ts).
  stack = await startLocalStack({
    withoutWorker: true,
    withoutWebhooks: true,
    env: { FRAMECAST_CHUNK_SIZE: '4', FRAMECAST_FAIR_SHARE_CHUNKS: '1000' },
  });
});
afterAll(() => stack?.stop());

async function jobOf(
  start: number,
  end: number,
  window?: JobRecord['window'],
  extra: Partial<JobRecord> = {},
): Promise<JobRecord> {
  const id = newJobId();
  const job = jobRecord({
    id,
    tenant: 'fan',
    shot: 'FAN_SH',
    status: 'queued',
    frames: { start, end },
    ...(window && { window, model: 'reference-window' }),
    createdAt: new Date().toISOString(),
    requestHash: id,
    ...extra,
  });
  await stack.app.store.createJob(job);
  return job;
}

async function drainChunks(): Promise<ChunkMessage[]> {
  const out: ChunkMessage[] = [];
  for (;;) {
    const got = await stack.app.frameQueue.receive({ max: 10, waitSeconds: 0 });
    if (got.length === 0) {
      const { visible, inFlight } = await stack.app.frameQueue.depth();
      if (visible + inFlight === 0) return out;
      continue;
    }
    out.push(...got.map((m) => chunkMessageSchema.parse(JSON.parse(m.body))));
    await Promise.all(got.map((m) => stack.app.frameQueue.delete(m.receiptHandle)));
  }
}

describe('the fan-out', () => {
  it('hands the rest to a continuation when its time runs short, and the shot is still planned once', async () => {
    const job = await jobOf(1001, 1400); // 100 chunks of 4
    const deps = {
      store: stack.app.store,
      frameQueueFor: () => stack.app.frameQueue,
      planQueue: stack.app.planQueue,
      chunkSize: 4,
    };
    const outcome = await fanOut(deps, { v: 1, jobId: job.id, tenant: job.tenant }, () => 5_000);
    expect(outcome).toBe('continued');
    expect((await stack.app.store.getJob(job.id))?.plannedUpTo).toBe(1041);

    // The stack's fan-out consumer takes the continuation message and finishes the plan.
    await eventually(
      async () => ((await stack.app.store.getJob(job.id))?.plannedUpTo === 1401 ? true : undefined),
      'the plan',
    );
    const chunks = await drainChunks();
    expect(chunks.flatMap((c) => c.frames)).toEqual(Array.from({ length: 400 }, (_, i) => 1001 + i));
    expect(chunks.every((c) => c.jobId === job.id && c.tenant === 'fan' && c.frames.length === 4)).toBe(true);
  });

  it('resumes a redelivered plan where the last one stopped', async () => {
    const job = await jobOf(1, 100);
    await stack.app.store.advancePlan(job.id, 61);
    const deps = {
      store: stack.app.store,
      frameQueueFor: () => stack.app.frameQueue,
      planQueue: stack.app.planQueue,
      chunkSize: 10,
    };
    expect(await fanOut(deps, { v: 1, jobId: job.id, tenant: job.tenant })).toBe('planned');
    const chunks = await drainChunks();
    expect(chunks.map((c) => c.frames[0])).toEqual([61, 71, 81, 91]);
  });

  it('queues nothing for a canceled job or a plan naming another tenant', async () => {
    const job = await jobOf(1, 40);
    const deps = {
      store: stack.app.store,
      frameQueueFor: () => stack.app.frameQueue,
      planQueue: stack.app.planQueue,
      chunkSize: 4,
    };
    expect(await fanOut(deps, { v: 1, jobId: job.id, tenant: 'someone-else' })).toBe('skipped');
    await stack.app.store.cancelJob(job.id);
    expect(await fanOut(deps, { v: 1, jobId: job.id, tenant: job.tenant })).toBe('skipped');
    expect(await drainChunks()).toEqual([]);
  });
});

describe('the fan-out of a job on a model with windows', () => {
  const VIDEO = { window: 49, overlap: 8, lengths: { multiple: 4, offset: 1 } };
  const deps = () => ({
    store: stack.app.store,
    frameQueueFor: () => stack.app.frameQueue,
    planQueue: stack.app.planQueue,
    chunkSize: 4,
  });
  async function drainWindows(): Promise<number[]> {
    const out: number[] = [];
    for (;;) {
      const got = await stack.app.frameQueue.receive({ max: 10, waitSeconds: 0 });
      if (got.length === 0) {
        const { visible, inFlight } = await stack.app.frameQueue.depth();
        if (visible + inFlight === 0) return out;
        continue;
      }
      for (const m of got) {
        const parsed = parseFrameQueueMessage(m.body);
        if (!parsed.ok || parsed.message.kind !== 'window') throw new Error(`not a window: ${m.body}`);
        out.push(parsed.message.window);
      }
      await Promise.all(got.map((m) => stack.app.frameQueue.delete(m.receiptHandle)));
    }
  }

  it('queues every window at once in parallel mode, and resumes after the last window queued', async () => {
    const job = await jobOf(1, 200, { ...VIDEO, mode: 'parallel' });
    expect(await fanOut(deps(), { v: 1, jobId: job.id, tenant: job.tenant })).toBe('planned');
    expect(await drainWindows()).toEqual([0, 1, 2, 3, 4]);
    expect((await stack.app.store.getJob(job.id))?.plannedUpTo).toBe(201);

    // Windows 0 and 1 were queued (frames up to 90) when the plan stopped.
    const again = await jobOf(1, 200, { ...VIDEO, mode: 'parallel' });
    await stack.app.store.advancePlan(again.id, 91);
    expect(await fanOut(deps(), { v: 1, jobId: again.id, tenant: again.tenant })).toBe('planned');
    expect(await drainWindows()).toEqual([2, 3, 4]);
  });

  it('queues only the first window in chained mode: each window sends the next once it is stored', async () => {
    const job = await jobOf(1, 200, { ...VIDEO, mode: 'chained' });
    expect(await fanOut(deps(), { v: 1, jobId: job.id, tenant: job.tenant })).toBe('planned');
    expect(await drainWindows()).toEqual([0]);
    expect((await stack.app.store.getJob(job.id))?.plannedUpTo).toBe(201);
    expect(await fanOut(deps(), { v: 1, jobId: job.id, tenant: job.tenant })).toBe('planned');
    expect(await drainWindows()).toEqual([]);
  });
});

describe('routing by model', () => {
  it('sends the chunks of a job to the frame queue of its model, and refuses a model with no queue', async () => {
    const job = await jobOf(1, 8);
    const sent: string[] = [];
    const deps = {
      store: stack.app.store,
      frameQueueFor: (model: string) => {
        if (model !== 'reference') throw new Error(`no frame queue for ${model}`);
        return { sendAll: async (bodies: readonly string[]) => void sent.push(...bodies) };
      },
      planQueue: stack.app.planQueue,
      chunkSize: 4,
    };
    expect(await fanOut(deps, { v: 1, jobId: job.id, tenant: job.tenant })).toBe('planned');
    expect(sent).toHaveLength(2);
    expect(() => stack.app.frameQueueFor('no-such-model')).toThrow(/FRAMECAST_FRAME_QUEUE_URLS/);
    expect(stack.app.frameQueueFor('reference').url).toBe(stack.app.frameQueue.url);
  });
});

describe('the fan-out of a job with a review gate', () => {
  const deps = () => ({
    store: stack.app.store,
    frameQueueFor: () => stack.app.frameQueue,
    planQueue: stack.app.planQueue,
    chunkSize: 4,
  });
  const plan = (job: JobRecord) => fanOut(deps(), { v: 1, jobId: job.id, tenant: job.tenant });
  const approved = { approvedAt: '2026-11-30T21:00:00.000Z', approvedBy: { tenant: 'fan', keyId: 'k' } };
  const VIDEO = { window: 49, overlap: 8, lengths: { multiple: 4, offset: 1 } };

  async function drainWindows(): Promise<number[]> {
    const out: number[] = [];
    for (;;) {
      const got = await stack.app.frameQueue.receive({ max: 10, waitSeconds: 0 });
      if (got.length === 0) {
        const { visible, inFlight } = await stack.app.frameQueue.depth();
        if (visible + inFlight === 0) return out.sort((a, b) => a - b);
        continue;
      }
      for (const m of got) {
        const parsed = parseFrameQueueMessage(m.body);
        if (parsed.ok && parsed.message.kind === 'window') out.push(parsed.message.window);
      }
      await Promise.all(got.map((m) => stack.app.frameQueue.delete(m.receiptHandle)));
    }
  }

  it('queues only the review frames before approval, and after it the rest without them', async () => {
    const review = { frames: [3, 9, 10, 11, 12] };
    const gated = await jobOf(1, 20, undefined, { review });
    expect(await plan(gated)).toBe('planned');
    expect((await drainChunks()).map((c) => c.frames)).toEqual([[3, 9, 10, 11], [12]]);

    const released = await jobOf(1, 20, undefined, { review: { ...review, ...approved } });
    await plan(released);
    expect((await drainChunks()).map((c) => c.frames)).toEqual([
      [1, 2, 4],
      [5, 6, 7, 8],
      [13, 14, 15, 16],
      [17, 18, 19, 20],
    ]);
  });

  it('queues nothing for a job awaiting review', async () => {
    const waiting = await jobOf(1, 20, undefined, { review: { frames: [3] }, status: 'awaiting_review' });
    expect(await plan(waiting)).toBe('skipped');
    expect(await drainChunks()).toEqual([]);
  });

  it('queues the review windows first on a model with windows, and the others once approved', async () => {
    // 1-200 in windows of 49 overlapping by 8: frame 60 is window 1's (42-90).
    const review = { frames: [60] };
    await plan(await jobOf(1, 200, { ...VIDEO, mode: 'parallel' }, { review }));
    expect(await drainWindows()).toEqual([1]);
    await plan(await jobOf(1, 200, { ...VIDEO, mode: 'parallel' }, { review: { ...review, ...approved } }));
    expect(await drainWindows()).toEqual([0, 2, 3, 4]);
    // Chained: the chain starts at window 0 (the worker stops it after window 1), and after approval
    // resumes at window 2.
    await plan(await jobOf(1, 200, { ...VIDEO, mode: 'chained' }, { review }));
    expect(await drainWindows()).toEqual([0]);
    await plan(await jobOf(1, 200, { ...VIDEO, mode: 'chained' }, { review: { ...review, ...approved } }));
    expect(await drainWindows()).toEqual([2]);
  });
});
