import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { windowFrames } from '../../functions/core/fair-share.ts';
import { newJobId } from '../../functions/core/ids.ts';
import type { FrameRecord } from '../../functions/core/model.ts';
import type { JobResponse } from '../../functions/core/schemas.ts';
import { DEFAULT_FAIR_SHARE_CHUNKS } from '../../functions/shared/resources.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, eventually, isFinished } from '../support/api.ts';
import { jobRecord } from '../support/jobs.ts';

// A fleet of one worker with one slot, on the reference model at 64x64 with a fixed 10 ms a frame (so the
// queue ahead of a job is worth more than local mode's one-second plan polling), default chunks (8) and
// the default fair-share window. Counts frames, never milliseconds: order comes from the frame records.
const CHUNK = 8;
const WINDOW = windowFrames(CHUNK, DEFAULT_FAIR_SHARE_CHUNKS);

let stack: LocalStack;
let studio: ReturnType<typeof client>;
let vendor: ReturnType<typeof client>;

beforeAll(async () => {
  stack = await startLocalStack({
    worker: { concurrency: 1, retryBaseMs: 5 },
    referenceModel: { renderDelayMs: 10 },
    withoutWebhooks: true,
  });
  studio = client(stack.url, stack.apiKey);
  vendor = client(stack.url, await stack.createApiKey('vendor'));
}, 60_000);
afterAll(() => stack?.stop());

const shot = (name: string, frames: number, extra: Record<string, unknown> = {}) => ({
  shot: name,
  prompt: 'a water tower topples into the river',
  frames: { start: 1, end: frames },
  width: 64,
  height: 64,
  ...extra,
});

async function submit(api: ReturnType<typeof client>, body: Record<string, unknown>): Promise<JobResponse> {
  const created = await api.createJob<JobResponse>(body);
  expect(created.status).toBe(202);
  return created.body;
}

/** The frames a worker has taken so far, in the order it took them. */
async function started(job: JobResponse): Promise<FrameRecord[]> {
  const records = await stack.app.store.listFrames(job.id, job.frames.start, job.frames.end, true);
  return records
    .filter((r) => r.startedAt !== undefined && r.status !== 'canceled')
    .sort((a, b) => a.startedAt!.localeCompare(b.startedAt!));
}

const firstStart = async (job: JobResponse) =>
  eventually(async () => (await started(job))[0]?.startedAt, `the first frame of ${job.shot}`, 120_000);

describe("fair share: a tenant's 10,000-frame shot does not starve another tenant's 10-frame shot", () => {
  it(`gives the small shot its first frame within the window (${WINDOW} frames) plus one chunk of the big shot's frames, counted from when it is queued`, async () => {
    const big = await submit(studio, shot('BIG_SH010', 10_000));
    // The worker is well into the big shot, and the fan-out has released only its first window.
    await eventually(async () => ((await started(big)).length >= 20 ? true : undefined), 'the big shot');
    const planned = (await stack.app.store.getJob(big.id))?.plannedUpTo ?? 0;
    expect(planned - 1).toBeLessThanOrEqual(WINDOW + CHUNK + (await started(big)).length);

    const small = await submit(vendor, shot('SMALL_SH010', 10));
    // When its chunks are on the queue (the fan-out polls its queue once a second here): the big shot's
    // frames started until then went before any release that could count against the small shot.
    await eventually(
      async () => ((await stack.app.store.getJob(small.id))?.plannedUpTo !== undefined ? true : undefined),
      'the small shot queued',
    );
    const bigBeforeQueued = (await started(big)).filter((r) => r.startedAt! >= small.createdAt).length;
    const smallFirst = await firstStart(small);
    const bigBeforeSmall = (await started(big)).filter(
      (r) => r.startedAt! >= small.createdAt && r.startedAt! < smallFirst,
    ).length;
    console.log(
      `fair share: ${bigBeforeSmall} frames of the big shot between the small shot's submit and its first frame, ${bigBeforeQueued} of them before its chunks were queued (window ${WINDOW})`,
    );
    expect(bigBeforeSmall - bigBeforeQueued).toBeLessThanOrEqual(WINDOW + CHUNK);

    await studio.cancelJob(big.id);
    const done = await vendor.waitForJob(small.id, isFinished, 60_000);
    expect(done.status).toBe('succeeded');
    expect(done.frames.succeeded).toBe(10);
    const canceled = await studio.waitForJob(big.id, isFinished);
    expect(canceled.status).toBe('canceled');
  }, 180_000);
});

describe('startBy: a queue deadline', () => {
  it('refuses a startBy that is not in the future, naming the field, and writes nothing', async () => {
    const before = await studio.listJobs<{ jobs: JobResponse[] }>({ shot: 'LATE_SH000' });
    const past = await studio.createJob<{ error: { code: string; message: string } }>(
      shot('LATE_SH000', 8, { startBy: new Date(Date.now() - 1000).toISOString() }),
    );
    expect(past.status).toBe(400);
    expect(past.body.error.code).toBe('invalid_request');
    expect(past.body.error.message).toContain('startBy');
    const garbled = await studio.createJob<{ error: { message: string } }>(
      shot('LATE_SH000', 8, { startBy: 'tomorrow' }),
    );
    expect(garbled.status).toBe(400);
    expect(garbled.body.error.message).toContain('startBy');
    const after = await studio.listJobs<{ jobs: JobResponse[] }>({ shot: 'LATE_SH000' });
    expect(after.body.jobs).toHaveLength(before.body.jobs.length);
  });

  it('cancels the frames not started by then, and the job ends canceled saying why, its counts adding up', async () => {
    // A big shot ahead holds the one worker for longer than the deadline.
    const ahead = await submit(studio, shot('AHEAD_SH020', 10_000));
    await eventually(async () => ((await started(ahead)).length > 0 ? true : undefined), 'the shot ahead');
    const startBy = new Date(Date.now() + 500).toISOString();
    // Longer than the window: frames the fan-out never released are canceled too.
    const late = await submit(vendor, shot('LATE_SH020', 2 * WINDOW, { startBy }));
    expect(late.startBy).toBe(startBy);

    const done = await vendor.waitForJob(late.id, isFinished, 120_000);
    await studio.cancelJob(ahead.id);
    expect(done.status).toBe('canceled');
    expect(done.canceledReason).toContain(`startBy passed: frames not started by ${startBy}`);
    expect(done.frames).toMatchObject({ total: 2 * WINDOW, succeeded: 0, failed: 0, canceled: 2 * WINDOW });
    // No frame was made after the deadline.
    expect(await started(late)).toEqual([]);
    const frames = await vendor.api.allFrames(late.id);
    expect(frames.every((f) => f.status === 'canceled')).toBe(true);
  }, 180_000);
});

describe('the store: frames canceled by a missed startBy are counted once', () => {
  it('counts the never released frames with the first late chunk, a late duplicate or a racing release never again, and leaves started frames to be made', async () => {
    const id = newJobId();
    const startBy = new Date(Date.now() - 1000).toISOString();
    const record = jobRecord({
      id,
      shot: 'RACE_SH040',
      frames: { start: 1, end: 40 },
      seed: 7,
      startBy,
      createdAt: new Date().toISOString(),
      requestHash: id,
    });
    const { store } = stack.app;
    await store.createJob(record);
    // Chunks of frames 1-16 were released; frame 9 was started before the deadline.
    await store.advancePlan(id, 17);
    await store.startFrames(record, [{ frame: 9, seed: 15 }]);
    const seeds = (frames: number[]) => frames.map((frame) => ({ frame, seed: 6 + frame }));
    const reason = 'startBy passed';

    const first = await store.cancelUnstarted(record, seeds([9, 10, 11, 12, 13, 14, 15, 16]), reason);
    expect(first).toEqual({ ok: true, canceled: [10, 11, 12, 13, 14, 15, 16] });
    // Seven of the chunk, and the 24 frames from 17 that no chunk holds.
    expect(await store.getJob(id)).toMatchObject({ canceled: 31, plannedUpTo: 41, canceledReason: reason });

    // A second delivery of that chunk, read before the first one's write: nothing more is counted.
    expect(await store.cancelUnstarted(record, seeds([10, 11]), reason)).toEqual({ ok: true, canceled: [] });
    // A chunk a fan-out released at the same moment (frames past the cut): recorded canceled, not counted.
    expect(await store.cancelUnstarted(record, seeds([17, 18, 19, 20]), reason)).toEqual({
      ok: true,
      canceled: [17, 18, 19, 20],
    });
    // The first chunk, late too: counted.
    await store.cancelUnstarted(record, seeds([1, 2, 3, 4, 5, 6, 7, 8]), 'another reason');
    const job = await store.getJob(id);
    expect(job).toMatchObject({ canceled: 39, succeeded: 0, failed: 0, canceledReason: reason });
    // Frame 9, started before the deadline, is the one frame left to finish.
    expect((await store.getFrame(id, 9))?.status).toBe('running');
  });
});

describe('the store: a late chunk of 100 frames', () => {
  it('is canceled over transactions of DynamoDB’s size, with the frames never released, each counted once', async () => {
    const id = newJobId();
    const { store } = stack.app;
    const record = jobRecord({
      id,
      shot: 'RACE_SH050',
      frames: { start: 1, end: 300 },
      seed: 7,
      seedMode: 'fixed',
      startBy: new Date(Date.now() - 1000).toISOString(),
      createdAt: new Date().toISOString(),
      requestHash: id,
    });
    await store.createJob(record);
    await store.advancePlan(id, 101);
    const chunk = Array.from({ length: 100 }, (_, i) => ({ frame: i + 1, seed: 7 }));
    const out = await store.cancelUnstarted(record, chunk, 'startBy passed');
    expect(out.ok && out.canceled.length).toBe(100);
    expect(await store.getJob(id)).toMatchObject({ canceled: 300, plannedUpTo: 301 });
  });
});

describe('priority orders work between jobs', () => {
  it('makes a high-priority shot before a low-priority one submitted earlier, while a normal shot runs', async () => {
    const running = await submit(studio, shot('NORMAL_SH030', 10_000));
    await eventually(
      async () => ((await started(running)).length > 0 ? true : undefined),
      'the running shot',
    );
    const low = await submit(vendor, shot('LOW_SH030', 16, { priority: 10 }));
    const high = await submit(vendor, shot('HIGH_SH030', 16, { priority: 90 }));
    expect([low.priority, high.priority]).toEqual([10, 90]);

    const highDone = await vendor.waitForJob(high.id, isFinished, 120_000);
    expect(highDone.status).toBe('succeeded');
    // The high band is drained before the normal one, and the low band waits for both.
    expect(await started(low)).toEqual([]);
    const highFrames = await started(high);
    const normalDuringHigh = (await started(running)).filter(
      (r) => r.startedAt! > highFrames[0]!.startedAt! && r.startedAt! < highFrames.at(-1)!.startedAt!,
    );
    expect(normalDuringHigh).toEqual([]);

    await studio.cancelJob(running.id);
    const lowDone = await vendor.waitForJob(low.id, isFinished, 60_000);
    expect(lowDone.status).toBe('succeeded');
    expect((await started(low))[0]!.startedAt! > highFrames.at(-1)!.startedAt!).toBe(true);
  }, 180_000);
});
