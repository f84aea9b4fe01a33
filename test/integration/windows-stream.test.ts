import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import { type Provenance, readProvenance, withProvenance } from '../../functions/core/png.ts';
import type { JobResponse } from '../../functions/core/schemas.ts';
import { planWindows } from '../../functions/core/windows.ts';
import { ModelError } from '../../functions/worker/cog.ts';
import type { Worker, WorkerSettings } from '../../functions/worker/worker.ts';
import { isFinished } from '../support/api.ts';
import {
  api,
  frameEvents,
  model,
  objectsOf,
  range,
  storedFrames,
  useWindowsStack,
  VIDEO,
  windowedShot,
  withWorker,
} from '../support/windows.ts';

/**
 * Streamed windows on the local stack (docs/architecture.md, "Windows"): with `windowInMemoryMaxBytes` at
 * 0 even a window of 64x64 frames is streamed, each frame stored as the model's answer brings it. The same
 * shots are made in memory too, and the stored frames compared; the frames a worker holds at once are
 * counted on both paths; and a prediction that fails after its output was streamed records nothing.
 */

useWindowsStack();

const FRAMES = { start: 1, end: 100 };
const WINDOWS = planWindows(FRAMES, VIDEO);
const UPLOADS = 2;
const STREAMED: Partial<WorkerSettings> = { windowInMemoryMaxBytes: 0, uploadConcurrency: UPLOADS };
const IN_MEMORY: Partial<WorkerSettings> = { uploadConcurrency: UPLOADS };

/**
 * Makes a 100-frame windowed shot on a worker with `settings`; `during` may instrument the worker first.
 * Shots compared are given the same name: it is in each frame's provenance.
 */
async function makeShot(
  name: string,
  windowMode: 'chained' | 'parallel',
  settings: Partial<WorkerSettings>,
  during: (worker: Worker) => void = () => undefined,
  modelUrl?: string,
): Promise<JobResponse> {
  const created = await api.createJob(windowedShot(name, { windowMode, frames: FRAMES }));
  expect(created.status).toBe(202);
  return withWorker(
    (worker) => {
      during(worker);
      return api.waitForJob(created.body.id, isFinished, 120_000);
    },
    modelUrl,
    settings,
  );
}

/**
 * The most frames a chained shot's worker held at once: each frame it stores counted from when the model's
 * answer gives it (as the Cog client hands it on) until its upload to S3 ends. Uploads are slowed, so a
 * worker that does not wait for them would be seen holding its frames.
 */
function countHeldFrames(worker: Worker): { most: number } {
  const held = new Set<number>();
  const count = { most: 0 };
  const { model, frames } = worker.deps;
  const predictEach = model.predictEach.bind(model);
  model.predictEach = (id, input, onFile, signal) => {
    const w = WINDOWS.find((c) => c.start === input.start_frame)!;
    const firstKept = (WINDOWS[w.index - 1]?.end ?? 0) + 1;
    return predictEach(
      id,
      input,
      (file, index) => {
        const frame = w.start + index;
        if (frame >= firstKept && frame <= FRAMES.end) held.add(frame);
        count.most = Math.max(count.most, held.size);
        return onFile(file, index);
      },
      signal,
    );
  };
  const putFrame = frames.putFrame.bind(frames);
  frames.putFrame = async (key, body, metadata, ...rest) => {
    await new Promise((r) => setTimeout(r, 20));
    const out = await putFrame(key, body, metadata, ...rest);
    held.delete(Number(metadata?.frame));
    return out;
  };
  return count;
}

/** What a frame's provenance says but of its job: its job id, and its window's context as frame numbers. */
function ofAnyJob(p: Provenance) {
  return {
    ...p,
    jobId: undefined,
    ...(p.window && { window: { ...p.window, context: p.window.context?.map((c) => c.frame) } }),
  };
}

/** A stored frame's sha256 once its provenance is replaced by one record alike for every job. */
const pixelsAndChunks = (png: Buffer): string =>
  createHash('sha256')
    .update(withProvenance(png, { ...readProvenance(png)!, jobId: 'any', window: undefined }))
    .digest('hex');

/** Checks that two jobs stored the same frames: byte for byte but the provenance, which names the job. */
async function expectSameFrames(streamed: JobResponse, inMemory: JobResponse): Promise<void> {
  const [a, b] = await Promise.all([storedFrames(streamed.id), storedFrames(inMemory.id)]);
  expect(a.size).toBe(100);
  expect(b.size).toBe(100);
  for (const f of range(1, 100)) {
    const mine = a.get(f)!;
    const theirs = b.get(f)!;
    expect(pixelsAndChunks(mine.png), `frame ${f}`).toBe(pixelsAndChunks(theirs.png));
    expect(ofAnyJob(readProvenance(mine.png)!)).toEqual(ofAnyJob(readProvenance(theirs.png)!));
    // The stored file is the one recorded.
    expect(createHash('sha256').update(mine.png).digest('hex')).toBe(mine.sha256);
  }
}

/** A job that succeeded with every frame stored, recorded and announced once, and no work file left. */
async function expectEveryFrameOnce(job: JobResponse): Promise<void> {
  expect(job.status).toBe('succeeded');
  expect(job.frames).toMatchObject({ total: 100, succeeded: 100, failed: 0, canceled: 0 });
  const keys = await objectsOf(job);
  expect(keys.filter((k) => k.endsWith('.png'))).toHaveLength(100);
  expect(keys.some((k) => k.includes('.windows/'))).toBe(false);
  const { succeeded } = await frameEvents(job.id);
  expect(succeeded.sort((x, y) => x - y)).toEqual(range(1, 100));
}

describe('a window of large frames, streamed to S3 as the model answers it', () => {
  let chained: { streamed: JobResponse; inMemory: JobResponse; held: number; heldInMemory: number };
  let parallel: { streamed: JobResponse; inMemory: JobResponse };

  beforeAll(async () => {
    let held = { most: 0 };
    let heldInMemory = { most: 0 };
    chained = {
      streamed: await makeShot('WIN_CHAIN', 'chained', STREAMED, (w) => {
        held = countHeldFrames(w);
      }),
      inMemory: await makeShot('WIN_CHAIN', 'chained', IN_MEMORY, (w) => {
        heldInMemory = countHeldFrames(w);
      }),
      held: 0,
      heldInMemory: 0,
    };
    chained.held = held.most;
    chained.heldInMemory = heldInMemory.most;
    parallel = {
      streamed: await makeShot('WIN_PARALLEL', 'parallel', STREAMED),
      inMemory: await makeShot('WIN_PARALLEL', 'parallel', IN_MEMORY),
    };
  }, 240_000);

  it('makes a chained shot with every frame stored and recorded once, the same frames as in memory', async () => {
    await expectEveryFrameOnce(chained.streamed);
    await expectEveryFrameOnce(chained.inMemory);
    await expectSameFrames(chained.streamed, chained.inMemory);
  });

  it('makes a parallel shot with every frame stored and recorded once, the same frames as in memory', async () => {
    await expectEveryFrameOnce(parallel.streamed);
    await expectSameFrames(parallel.streamed, parallel.inMemory);
  });

  it('holds no more frames at once than its uploads and the one being read, where in memory a whole window', () => {
    console.log(
      `frames held at once, chained, ${UPLOADS} uploads at a time: streamed ${chained.held}, in memory ${chained.heldInMemory}`,
    );
    // A chained window keeps no context frames in memory when streamed: they are stored with the rest.
    expect(chained.held).toBeGreaterThan(0);
    expect(chained.held).toBeLessThanOrEqual(UPLOADS + 1);
    expect(chained.heldInMemory).toBeGreaterThanOrEqual(49);
  });
});

describe('a streamed window from other kinds of output', () => {
  it('downloads, stores and drops one file at a time when the model answers http URLs', async () => {
    const http = await model({ outputMode: 'http' });
    let held = { most: 0 };
    const job = await makeShot(
      'WIN_HTTP',
      'chained',
      STREAMED,
      (w) => {
        held = countHeldFrames(w);
      },
      http.url,
    );
    await expectEveryFrameOnce(job);
    expect(held.most).toBeGreaterThan(0);
    expect(held.most).toBeLessThanOrEqual(UPLOADS + 1);
  });

  it('makes a window a video model answers in memory: one file for the window cannot be cut up as it comes', async () => {
    const video = await model({ output: 'video' });
    const job = await makeShot('WIN_VIDEO', 'chained', STREAMED, undefined, video.url);
    await expectEveryFrameOnce(job);
    expect(video.stats().succeeded).toBe(3);
  });
});

describe('a streamed window whose prediction fails after its output', () => {
  it('records nothing of that attempt, and the next attempt stores and records each frame once', async () => {
    const puts = new Map<number, number>();
    const job = await makeShot('STREAM_FAILED', 'chained', STREAMED, (worker) => {
      const { model, frames } = worker.deps;
      const predictEach = model.predictEach.bind(model);
      model.predictEach = async (id, input, onFile, signal) => {
        const out = await predictEach(id, input, onFile, signal);
        // Every frame handed on and uploaded, then Cog's `status` says failed.
        if (id.endsWith('-w1-1')) throw new ModelError('model failed: injected after its output');
        return out;
      };
      const putFrame = frames.putFrame.bind(frames);
      frames.putFrame = (key, body, metadata, ...rest) => {
        const frame = Number(metadata?.frame);
        puts.set(frame, (puts.get(frame) ?? 0) + 1);
        return putFrame(key, body, metadata, ...rest);
      };
    });
    await expectEveryFrameOnce(job);
    // Window 1 keeps frames 50-90: uploaded by both attempts, recorded by the second.
    const all = await api.allFrames(job.id);
    for (const f of all) {
      const again = f.frame >= 50 && f.frame <= 90;
      expect(f.attempts, `frame ${f.frame}`).toBe(again ? 2 : 1);
      expect(puts.get(f.frame), `frame ${f.frame}`).toBe(again ? 2 : 1);
    }
  }, 120_000);
});
