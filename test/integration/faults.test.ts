import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeChunk } from '../../functions/core/messages.ts';
import type { JobResponse } from '../../functions/core/schemas.ts';
import { createWorker } from '../../functions/worker/create.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, eventually, isFinished } from '../support/api.ts';

const FAILING_FRAME = 13;
let stack: LocalStack;
let api: ReturnType<typeof client>;

// The reference model fails frame 13 every time and takes 40 ms a frame, long enough to cancel mid-shot.
beforeAll(async () => {
  stack = await startLocalStack({
    referenceModel: { failFrames: [FAILING_FRAME], renderDelayMs: 40 },
    worker: { retryBaseMs: 5 },
  });
  api = client(stack.url, stack.apiKey);
});
afterAll(() => stack?.stop());

const shot = (name: string, start: number, end: number) => ({
  shot: name,
  prompt: 'a water tower topples into the river',
  frames: { start, end },
  seed: 5,
  width: 64,
  height: 64,
});

async function storedKeys(job: JobResponse): Promise<string[]> {
  const out = await stack.app.frameStore.s3.send(
    new ListObjectsV2Command({ Bucket: stack.env.FRAMECAST_BUCKET, Prefix: `dev/${job.shot}/${job.id}/` }),
  );
  return (out.Contents ?? []).map((o) => o.Key!).filter((k) => k.endsWith('.png'));
}

describe('a model that fails one frame every time', () => {
  it('fails that frame after every attempt, and the job fails listing it', async () => {
    const created = await api.createJob(shot('FAIL_SH', 10, 16));
    const job = await api.waitForJob(created.body.id, isFinished);
    expect(job.status).toBe('failed');
    expect(job.failedFrames).toEqual([FAILING_FRAME]);
    expect(job.frames).toMatchObject({ total: 7, succeeded: 6, failed: 1, canceled: 0 });
    const frames = await api.allFrames(job.id);
    const failed = frames.find((f) => f.frame === FAILING_FRAME)!;
    expect(failed).toMatchObject({ status: 'failed', attempts: 3 });
    expect(failed.error).toMatch(/fail/i);
    expect(failed.url).toBeUndefined();
    expect(frames.filter((f) => f.status === 'succeeded')).toHaveLength(6);
    const events = (await stack.app.events.listEvents(job.id)).map((e) => e.type);
    expect(events.filter((t) => t === 'frame.failed')).toHaveLength(1);
    expect(events.at(-1)).toBe('job.failed');
  });
});

describe('canceling in mid-shot', () => {
  it('stops the shot: frames not started are never generated and the counts add up', async () => {
    const created = await api.createJob(shot('CANCEL_SH', 100, 199));
    await api.waitForJob(created.body.id, (j) => j.frames.succeeded >= 3);
    const canceled = await api.cancelJob(created.body.id);
    expect(canceled.status).toBe(200);
    expect(canceled.body.status).toBe('canceled');

    // Let the worker finish what it had in hand: the queue drains as the canceled job's chunks are dropped.
    await eventually(async () => {
      const { visible, inFlight } = await stack.app.frameQueue.depth();
      return visible + inFlight === 0 ? true : undefined;
    }, 'the frame queue to drain');
    const later = (await api.getJob(created.body.id)).body;
    expect(later.frames).toEqual(canceled.body.frames);
    const { total, succeeded, failed, canceled: n } = later.frames;
    expect(succeeded + failed + n).toBe(total);
    expect(succeeded).toBeLessThan(total);

    const frames = await api.allFrames(created.body.id);
    expect(frames.filter((f) => f.status === 'succeeded')).toHaveLength(succeeded);
    expect(frames.filter((f) => f.status === 'canceled')).toHaveLength(n);
    expect(await storedKeys(later)).toHaveLength(succeeded);
    expect((await stack.app.events.listEvents(created.body.id)).at(-1)?.type).toBe('job.canceled');

    const again = await api.cancelJob(created.body.id);
    expect(again.status).toBe(200);
    expect(again.body.frames).toEqual(later.frames);
  });

  it('refuses to cancel a finished job with 409', async () => {
    const created = await api.createJob(shot('DONE_SH', 1, 2));
    await api.waitForJob(created.body.id, isFinished);
    const r = await api.cancelJob(created.body.id);
    expect(r.status).toBe(409);
  });
});

describe('a frame delivered more than once', () => {
  it('is generated again at most, but counted, stored and announced once', async () => {
    // A second worker competes with the stack's own, and every chunk is sent a second time by hand.
    const second = createWorker(stack.app, process.env, { waitSeconds: 1, retryBaseMs: 5 });
    const running = second.run();
    const seen = (w: { stats: { duplicates: number; framesSkipped: number } }) =>
      w.stats.duplicates + w.stats.framesSkipped;
    const seenBefore = seen(stack.worker!);
    try {
      const created = await api.createJob(shot('DUP_SH', 101, 124));
      const chunks = Array.from({ length: 6 }, (_, i) => [101, 102, 103, 104].map((n) => n + i * 4));
      await stack.app.frameQueue.sendAll(
        chunks.map((frames) => encodeChunk({ jobId: created.body.id, tenant: 'dev', frames })),
      );
      const job = await api.waitForJob(created.body.id, isFinished);
      expect(job.status).toBe('succeeded');
      expect(job.frames).toMatchObject({ total: 24, succeeded: 24, failed: 0 });

      // Wait until both copies of every chunk are gone from the queue, then check nothing counted twice.
      await eventually(async () => {
        const { visible, inFlight } = await stack.app.frameQueue.depth();
        return visible + inFlight === 0 ? true : undefined;
      }, 'the frame queue to drain');
      // Every frame really did arrive twice: the second copy was recognised as done (or as a frame of a
      // finished job), not counted.
      expect(seen(stack.worker!) - seenBefore + seen(second)).toBeGreaterThanOrEqual(24);
      const after = (await api.getJob(job.id)).body;
      expect(after.frames).toEqual(job.frames);
      expect(await storedKeys(after)).toHaveLength(24);
      const events = await stack.app.events.listEvents(job.id);
      expect(events.filter((e) => e.type === 'frame.succeeded')).toHaveLength(24);
      expect(events.filter((e) => e.type === 'job.succeeded')).toHaveLength(1);
      expect(events.filter((e) => e.type === 'job.started')).toHaveLength(1);
    } finally {
      second.stop();
      await running;
    }
  });
});
