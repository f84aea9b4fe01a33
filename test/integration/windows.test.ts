import { createHash } from 'node:crypto';
import { beforeAll, describe, expect, it } from 'vitest';
import type { JobStore, StartFramesResult } from '../../functions/adapters/store/jobs.ts';
import { frameKey, thumbnailKey } from '../../functions/core/frames.ts';
import { decodeRgb, readProvenance } from '../../functions/core/png.ts';
import type { JobResponse } from '../../functions/core/schemas.ts';
import { crossFade, crossFadeWeight, planWindows, windowSeed } from '../../functions/core/windows.ts';
import { CogClient } from '../../functions/worker/cog.ts';
import type { Worker } from '../../functions/worker/worker.ts';
import { eventually, isFinished } from '../support/api.ts';
import {
  api,
  frameEvents,
  H,
  mad,
  makeShot,
  model,
  objectsOf,
  range,
  SHOT,
  stack,
  storedFrames,
  thumbnailsOf,
  useWindowsStack,
  VIDEO,
  W,
  windowedShot,
  withWorker,
} from '../support/windows.ts';

/**
 * Windows on the local stack with the real reference model (docs/architecture.md, "Windows"): a 200-frame
 * shot on `reference-window` (window 49, overlap 8, lengths 4n+1) made chained and in parallel, from a
 * model answering a list of PNGs and one answering a video, and the queue's guarantees again for windows:
 * duplicates, a killed worker, cancel, and a window that fails for good.
 *
 * The stack runs no worker of its own: each test runs workers against the model it needs.
 */

useWindowsStack();

describe('a 200-frame shot on a model with windows (49, overlap 8), chained', () => {
  let job: JobResponse;
  let frames: Awaited<ReturnType<typeof storedFrames>>;
  /** The `context` input of each window's prediction, by window index. */
  const given = new Map<number, string[]>();
  /** In order: each window's prediction asked for (`ask w`), each frame sent to S3 (`put f`). */
  const order: string[] = [];

  beforeAll(async () => {
    // The default per-frame seeds: frame k of a window has the grain of its frame seed, so windows agree.
    // Thumbnails asked for (a job without a review gate has none by default): each window's frames get theirs.
    const created = await api.createJob(windowedShot('WIN_CHAIN', { thumbnails: true }));
    expect(created.status).toBe(202);
    job = await withWorker((worker) => {
      const predictFiles = worker.deps.model.predictFiles.bind(worker.deps.model);
      worker.deps.model.predictFiles = (predictionId, input, signal) => {
        const window = /-w(\d+)-\d+$/.exec(predictionId);
        if (window && Array.isArray(input.context)) given.set(Number(window[1]), input.context as string[]);
        order.push(`ask ${window?.[1]}`);
        return predictFiles(predictionId, input, signal);
      };
      const putFrame = worker.deps.frames.putFrame.bind(worker.deps.frames);
      worker.deps.frames.putFrame = (key, body, metadata, ...rest) => {
        order.push(`put ${metadata?.frame}`);
        return putFrame(key, body, metadata, ...rest);
      };
      return api.waitForJob(created.body.id, isFinished, 120_000);
    });
    frames = await storedFrames(job.id);
  }, 150_000);

  it('succeeds with 200 frames, each stored and counted once', async () => {
    expect(job.status).toBe('succeeded');
    expect(job.windowMode).toBe('chained');
    expect(job.window).toEqual({ size: 49, overlap: 8, count: 5 });
    expect(job.frames).toEqual({ start: 1, end: 200, total: 200, succeeded: 200, failed: 0, canceled: 0 });
    const keys = await objectsOf(job);
    expect(keys).toHaveLength(201);
    expect(keys.filter((k) => k.endsWith('.png')).sort()).toEqual(
      range(1, 200)
        .map((f) => frameKey('dev', 'WIN_CHAIN', job.id, f))
        .sort(),
    );
    // Each frame has its thumbnail beside it, once.
    expect((await thumbnailsOf(job)).sort()).toEqual(
      range(1, 200)
        .map((f) => thumbnailKey(frameKey('dev', 'WIN_CHAIN', job.id, f)))
        .sort(),
    );
    const { succeeded, types } = await frameEvents(job.id);
    expect(succeeded.sort((a, b) => a - b)).toEqual(range(1, 200));
    expect(types.filter((t) => t === 'job.succeeded')).toHaveLength(1);
    expect([...frames.values()].every((f) => f.attempts === 1)).toBe(true);
  });

  it("was made of the windows the design plans, each after the first given its predecessor's last 8 frames", () => {
    const planned = [
      [0, 1, 49],
      [1, 42, 90],
      [2, 83, 131],
      [3, 124, 172],
      [4, 165, 201],
    ];
    // The frames each window keeps: from the frame after its predecessor's end.
    const kept = [1, 50, 91, 132, 173];
    const madeBy = new Map<number, { index: number; start: number; end: number }>();
    for (const [frame, f] of frames) {
      const p = readProvenance(f.png)!;
      // Per-frame seeds: the frame's own seed, and its window's seed is that of the window's first frame.
      expect(p).toMatchObject({ model: 'reference-window', frame, jobId: job.id, seed: 1234 + frame - 1 });
      madeBy.set(frame, p.window!);
      const index = kept.findLastIndex((first) => frame >= first);
      const [, start, end] = planned[index]!;
      expect(p.window).toMatchObject({ index, start, end, seed: 1234 + start! - 1 });
      if (index === 0) {
        expect(p.window!.context).toBeUndefined();
      } else {
        // The context: frames start..previous end, as stored (their sha256 is the stored file's).
        const previousEnd = planned[index - 1]![2]!;
        expect(p.window!.context).toEqual(
          range(start!, previousEnd).map((c) => ({ frame: c, sha256: frames.get(c)!.sha256 })),
        );
      }
    }
    expect(new Set([...madeBy.values()].map((w) => `${w.index}:${w.start}-${w.end}`))).toEqual(
      new Set(planned.map(([i, s, e]) => `${i}:${s}-${e}`)),
    );
  });

  it("gives each window after the first its predecessor's last 8 frames from memory, the very bytes stored", () => {
    expect([...given.keys()].sort()).toEqual([1, 2, 3, 4]);
    const starts = [1, 42, 83, 124, 165];
    for (const [index, urls] of given) {
      expect(urls).toHaveLength(8);
      urls.forEach((url, k) => {
        const dataUrl = /^data:image\/png;base64,(.+)$/.exec(url);
        expect(dataUrl, `window ${index}'s context[${k}] is a data URL`).not.toBeNull();
        const sha256 = createHash('sha256').update(Buffer.from(dataUrl![1]!, 'base64')).digest('hex');
        expect(sha256).toBe(frames.get(starts[index]! + k)!.sha256);
      });
    }
  });

  it('asks the model for each window before it sends any frame of the window before to S3', () => {
    const kept = [1, 50, 91, 132, 173, 201];
    for (let i = 1; i <= 4; i++) {
      const firstPut = order.findIndex((e) => {
        const frame = Number(e.slice('put '.length));
        return e.startsWith('put ') && frame >= kept[i - 1]! && frame < kept[i]!;
      });
      expect(order.indexOf(`ask ${i}`)).toBeGreaterThanOrEqual(0);
      expect(order.indexOf(`ask ${i}`)).toBeLessThan(firstPut);
    }
  });

  it('does not jump at a seam more than between any two frames inside a window', () => {
    const seams = [49, 90, 131, 172]; // the last frame of each window but the last
    const inside: number[] = [];
    const atSeams: number[] = [];
    for (let f = 1; f < 200; f++) {
      const jump = mad(frames.get(f)!.rgb, frames.get(f + 1)!.rgb);
      (seams.includes(f) ? atSeams : inside).push(jump);
    }
    const largestInside = Math.max(...inside);
    console.log(
      `chained seams: ${atSeams.map((j) => j.toFixed(3)).join(', ')}; largest jump inside a window ${largestInside.toFixed(3)} (mean absolute difference, of 255)`,
    );
    for (const jump of atSeams) expect(jump).toBeLessThanOrEqual(largestInside);
  });

  it("writes a manifest that names each frame's window, seed and context", async () => {
    const { GetObjectCommand } = await import('@aws-sdk/client-s3');
    const obj = await stack.app.frameStore.s3.send(
      new GetObjectCommand({
        Bucket: stack.env.FRAMECAST_BUCKET,
        Key: `dev/WIN_CHAIN/${job.id}/manifest.json`,
      }),
    );
    const manifest = JSON.parse(await obj.Body!.transformToString()) as {
      request: { windowMode: string; window: unknown };
      frames: { frame: number; window: unknown }[];
    };
    expect(manifest.request).toMatchObject({ windowMode: 'chained', window: { size: 49, overlap: 8 } });
    for (const entry of manifest.frames) {
      expect(entry.window).toEqual(readProvenance(frames.get(entry.frame)!.png)!.window);
    }
  });

  it('gives the same stored frames when the model answers one video per window instead of a list of PNGs', async () => {
    const video = await model({ output: 'video' });
    const again = await makeShot(windowedShot('WIN_VIDEO'), video.url);
    expect(again.frames).toMatchObject({ total: 200, succeeded: 200 });
    expect(video.stats().succeeded).toBe(5);
    const fromVideo = await storedFrames(again.id);
    expect(fromVideo.size).toBe(200);
    for (const [frame, f] of frames) {
      expect(Buffer.from(fromVideo.get(frame)!.rgb).equals(Buffer.from(f.rgb))).toBe(true);
      expect(readProvenance(fromVideo.get(frame)!.png)!.window).toMatchObject({
        index: readProvenance(f.png)!.window!.index,
      });
    }
    expect(await objectsOf(again)).toHaveLength(201);
  }, 120_000);
});

describe('the same shot in parallel mode', () => {
  let job: JobResponse;
  let frames: Awaited<ReturnType<typeof storedFrames>>;
  const predictions: string[] = [];

  beforeAll(async () => {
    const created = await api.createJob(windowedShot('WIN_PARALLEL', { windowMode: 'parallel' }));
    expect(created.status).toBe(202);
    job = await withWorker((worker) => {
      const predictFiles = worker.deps.model.predictFiles.bind(worker.deps.model);
      worker.deps.model.predictFiles = (predictionId, input, signal) => {
        predictions.push(predictionId);
        return predictFiles(predictionId, input, signal);
      };
      return api.waitForJob(created.body.id, isFinished, 120_000);
    });
    frames = await storedFrames(job.id);
  }, 150_000);

  it("counts each window's first attempt as its first, whatever its predecessor's attempts on the frames they share", () => {
    expect(predictions.sort()).toEqual([0, 1, 2, 3, 4].map((w) => `${job.id}-w${w}-1`));
  });

  it('succeeds with 200 frames stored once, and leaves no staged window frames behind', async () => {
    expect(job.status).toBe('succeeded');
    expect(job.windowMode).toBe('parallel');
    expect(job.frames).toMatchObject({ total: 200, succeeded: 200, failed: 0, canceled: 0 });
    const keys = await objectsOf(job);
    expect(keys).toHaveLength(201);
    expect(keys.some((k) => k.includes('.windows/'))).toBe(false);
    expect((await frameEvents(job.id)).succeeded.sort((a, b) => a - b)).toEqual(range(1, 200));
  });

  it("cross-fades the frames two windows share, each between the two windows' versions", async () => {
    // The versions the windows made, asked of the model again as the worker asked for them.
    const cog = new CogClient({ url: stack.modelUrl });
    await cog.waitUntilReady(10_000);
    const windows = planWindows(SHOT, VIDEO);
    const versions = new Map<number, Uint8Array[]>();
    for (const w of windows) {
      const out = await cog.predictFiles(
        `test-${job.id}-w${w.index}`,
        cog.inputFor({
          prompt: job.prompt,
          seed: windowSeed(1234, 'per-frame', w, SHOT),
          shot_seed: 1234,
          width: W,
          height: H,
          frame: w.start,
          start_frame: w.start,
          num_frames: w.end - w.start + 1,
          job_id: job.id,
          shot: job.shot,
        }),
      );
      versions.set(
        w.index,
        out.files.map((png) => decodeRgb(png).rgb),
      );
    }
    let faded = 0;
    let spread = 0;
    for (let f = 1; f <= 200; f++) {
      const stored = frames.get(f)!;
      const p = readProvenance(stored.png)!;
      const owners = windows.filter((w) => f >= w.start && f <= w.end);
      const [a, b] = owners.map((w) => versions.get(w.index)![f - w.start]!);
      if (owners.length === 1) {
        // A frame one window makes alone is that window's version.
        expect(p.crossFade).toBeUndefined();
        expect(Buffer.from(stored.rgb).equals(Buffer.from(a!))).toBe(true);
        continue;
      }
      // Windows overlap in time: frames 42-49, 83-90, 124-131, 165-172.
      const [first, second] = owners;
      const t = crossFadeWeight(second!, windows, f);
      expect(p.window).toMatchObject({ index: first!.index });
      expect(p.crossFade).toMatchObject({ window: { index: second!.index }, weight: t });
      expect(Buffer.from(stored.rgb).equals(Buffer.from(crossFade(a!, b!, t)))).toBe(true);
      for (let i = 0; i < stored.rgb.length; i++) {
        const v = stored.rgb[i]!;
        if (v < Math.min(a![i]!, b![i]!) || v > Math.max(a![i]!, b![i]!))
          throw new Error(`frame ${f} byte ${i}`);
      }
      faded++;
      spread = Math.max(spread, mad(a!, b!));
    }
    expect(faded).toBe(32);
    // Without context the windows' own grades differ: the overlap has something to fade.
    expect(spread).toBeGreaterThan(1);
    console.log(
      `parallel: ${faded} cross-faded frames, the two versions differing by up to ${spread.toFixed(2)} of 255`,
    );
  }, 60_000);
});

describe('two parallel windows finishing together', () => {
  it('cross-fade and record each frame they share once', async () => {
    // Two windows, 1-49 and 42-90, made at once on the stack's model, which has two slots: frames 42-49
    // are shared.
    const shared = range(42, 49);
    const created = await api.createJob(
      windowedShot('WIN_TOGETHER', { windowMode: 'parallel', frames: { start: 1, end: 90 } }),
    );
    const staged: string[] = [];
    const job = await withWorker(
      (worker) => {
        const { frames } = worker.deps;
        const putFile = frames.putFile.bind(frames);
        frames.putFile = (...args: Parameters<typeof putFile>) => {
          const [key] = args;
          if (key.includes('.windows/')) staged.push(key.slice(key.indexOf('.windows/')));
          return putFile(...args);
        };
        return api.waitForJob(created.body.id, isFinished, 60_000);
      },
      stack.modelUrl,
      { concurrency: 2 },
    );
    expect(job.frames).toMatchObject({ total: 90, succeeded: 90, failed: 0, canceled: 0 });
    expect((await frameEvents(job.id)).succeeded.sort((a, b) => a - b)).toEqual(range(1, 90));
    // Each window staged its version of each shared frame once, before it looked for the other's.
    expect(staged).toHaveLength(2 * shared.length);
    expect(new Set(staged).size).toBe(staged.length);
    expect((await objectsOf(job)).some((k) => k.includes('.windows/'))).toBe(false);
    const frames = await storedFrames(job.id);
    for (const f of shared) {
      expect(readProvenance(frames.get(f)!.png)!.crossFade).toMatchObject({ window: { index: 1 } });
    }
  }, 60_000);
});

describe('keeping the model busy between windows', () => {
  it('takes the frames of a window in hand while the model makes another, so the model does not wait for the take', async () => {
    const slow = await model({ renderDelayMs: 1500, concurrency: 1 });
    const created = await api.createJob(
      windowedShot('WIN_TAKE', { windowMode: 'parallel', frames: { start: 1, end: 100 } }),
    );
    const id = created.body.id;
    // The frames each window takes: from the frame after its predecessor's end.
    const own = [
      [1, 49],
      [50, 90],
      [91, 100],
    ];
    const done = await withWorker(
      async (worker) => {
        const asked: number[] = [];
        let answered = 0;
        const predictFiles = worker.deps.model.predictFiles.bind(worker.deps.model);
        worker.deps.model.predictFiles = async (predictionId, input, signal) => {
          asked.push(Number(/-w(\d+)-\d+$/.exec(predictionId)![1]));
          try {
            return await predictFiles(predictionId, input, signal);
          } finally {
            answered++;
          }
        };
        // While the model makes the first window asked for, the worker's other window in hand (two a
        // slot) has taken its frames already.
        await eventually(async () => {
          if (asked.length !== 1 || answered > 0) return undefined;
          const [start, end] = own[asked[0]!]!;
          const running = (await api.allFrames(id)).filter((f) => f.status === 'running');
          // Read while the first prediction was still running: no other window had its slot.
          if (answered > 0) return undefined;
          return running.some((f) => f.frame < start! || f.frame > end!) ? true : undefined;
        }, "another window's frames taken while the model makes the first");
        return api.waitForJob(id, isFinished, 60_000);
      },
      slow.url,
      { concurrency: 1 },
    );
    expect(done.frames).toMatchObject({ total: 100, succeeded: 100, failed: 0, canceled: 0 });
    expect((await api.allFrames(id)).every((f) => f.attempts === 1)).toBe(true);
  });
});

describe('a window being stored', () => {
  it('does not hold back the next message: the worker takes it in hand once the model is done with the window', async () => {
    const model1 = await model({ renderDelayMs: 300, concurrency: 1 });
    const created = await api.createJob(windowedShot('WIN_STORING', { windowMode: 'parallel' }));
    const id = created.body.id;
    const receivedAtAnswers: number[] = [];
    const done = await withWorker(
      async (worker) => {
        // Storing slower than making: each frame's upload waits 100 ms, so a window's frames take longer
        // to store than the next window takes to make.
        const { frames } = worker.deps;
        const putFrame = frames.putFrame.bind(frames);
        frames.putFrame = async (...args: Parameters<typeof putFrame>) => {
          await new Promise((r) => setTimeout(r, 100));
          return putFrame(...args);
        };
        const predictFiles = worker.deps.model.predictFiles.bind(worker.deps.model);
        worker.deps.model.predictFiles = async (...args: Parameters<typeof predictFiles>) => {
          try {
            return await predictFiles(...args);
          } finally {
            receivedAtAnswers.push(worker.stats.received);
          }
        };
        return api.waitForJob(id, isFinished, 120_000);
      },
      model1.url,
      { concurrency: 1 },
    );
    expect(done.frames).toMatchObject({ total: 200, succeeded: 200, failed: 0, canceled: 0 });
    // Two messages a slot in hand while the model works; when the second window is answered, the first
    // is still being stored, and a third message is in hand already (a worker that counted the storing
    // window as in hand would have received it only once that window was stored).
    expect(receivedAtAnswers.length).toBeGreaterThanOrEqual(5);
    expect(receivedAtAnswers[1]).toBeGreaterThanOrEqual(3);
  }, 120_000);
});

describe('a window whose slot frees before its take is written', () => {
  /**
   * The worker's store, its take of a window's frames (`startFrames`) run through `around`, and the job's
   * start (queued -> running) through `starting`.
   */
  const takeThrough = (
    worker: Worker,
    around: (first: number, take: () => Promise<StartFramesResult>) => Promise<StartFramesResult>,
    starting?: <T>(start: () => Promise<T>) => Promise<T>,
  ) => {
    const store = worker.deps.store;
    const wrapped: JobStore = Object.create(store);
    wrapped.startFrames = (job, frames, now) =>
      around(frames[0]!.frame, () => store.startFrames(job, frames, now));
    if (starting) wrapped.markStarted = (job, now) => starting(() => store.markStarted(job, now));
    (worker.deps as { store: JobStore }).store = wrapped;
  };

  it('asks the model beside the take, and keeps the answer once the take holds', async () => {
    const created = await api.createJob(windowedShot('WIN_BESIDE', { frames: { start: 1, end: 100 } }));
    const id = created.body.id;
    // In order: each window's prediction asked for (`ask w`), each take written (`taken <first frame>`).
    const order: string[] = [];
    const done = await withWorker(async (worker) => {
      // A slow table: the job's start and each take are written 300 ms after they are sent.
      const slowly = async <T>(write: () => Promise<T>, done: string) => {
        await new Promise((r) => setTimeout(r, 300));
        const out = await write();
        order.push(done);
        return out;
      };
      takeThrough(
        worker,
        (first, take) => slowly(take, `taken ${first}`),
        (start) => slowly(start, 'job started'),
      );
      const predictFiles = worker.deps.model.predictFiles.bind(worker.deps.model);
      worker.deps.model.predictFiles = (predictionId, input, signal) => {
        order.push(`ask ${/-w(\d+)-\d+$/.exec(predictionId)![1]}`);
        return predictFiles(predictionId, input, signal);
      };
      return api.waitForJob(id, isFinished, 60_000);
    });
    expect(done.frames).toMatchObject({ total: 100, succeeded: 100, failed: 0, canceled: 0 });
    // Windows 0, 1 and 2 take frames from 1, 50 and 91; each is asked for before its take is written,
    // and the first before the job's start, which its take follows.
    expect(order).toEqual(['ask 0', 'job started', 'taken 1', 'ask 1', 'taken 50', 'ask 2', 'taken 91']);
    const { types } = await frameEvents(id);
    expect(types[0]).toBe('job.started');
    expect((await api.allFrames(id)).every((f) => f.attempts === 1)).toBe(true);
  });

  it('does not wait for a busy slot when the take finds the job canceled', async () => {
    const slow = await model({ renderDelayMs: 5000, concurrency: 1 });
    const busy = await api.createJob(
      windowedShot('WIN_BUSY', { windowMode: 'parallel', frames: { start: 1, end: 49 } }),
    );
    const skipped = await withWorker(
      async (worker) => {
        await eventually(async () => (slow.stats().running === 1 ? true : undefined), 'the model busy');
        const created = await api.createJob(
          windowedShot('WIN_BUSY_CANCEL', { windowMode: 'parallel', frames: { start: 1, end: 49 } }),
        );
        // Canceled while its take is on its way, as the only slot makes the other shot's window.
        takeThrough(worker, async (_first, take) => {
          await api.cancelJob(created.body.id);
          return take();
        });
        await eventually(
          async () => (worker.stats.framesSkipped >= 49 ? true : undefined),
          'the window dropped',
        );
        const during = slow.stats();
        await api.waitForJob(busy.body.id, isFinished, 30_000);
        return { during, job: (await api.getJob(created.body.id)).body };
      },
      slow.url,
      { concurrency: 1 },
    );
    // Dropped while the model still made the other window, which it alone was asked for.
    expect(skipped.during).toMatchObject({ running: 1, predictions: 1 });
    expect(skipped.job.status).toBe('canceled');
    expect(slow.stats().predictions).toBe(1);
  });

  it('stops the prediction and stores nothing when the take finds the job canceled', async () => {
    const slow = await model({ renderDelayMs: 3000, concurrency: 1 });
    const created = await api.createJob(
      windowedShot('WIN_BESIDE_CANCEL', { frames: { start: 1, end: 100 } }),
    );
    const id = created.body.id;
    const job = await withWorker(
      async (worker) => {
        // The job is canceled while the first window's take is on its way: the take fails its condition.
        takeThrough(worker, async (_first, take) => {
          expect((await api.cancelJob(id)).status).toBe(200);
          return take();
        });
        await eventually(
          async () => (worker.stats.framesSkipped > 0 && slow.stats().running === 0 ? true : undefined),
          'the window dropped and the model free',
        );
        return (await api.getJob(id)).body;
      },
      slow.url,
      { concurrency: 1 },
    );
    expect(job.status).toBe('canceled');
    expect(job.frames).toMatchObject({ total: 100, succeeded: 0, failed: 0 });
    // Asked for once, and stopped long before its 3 s were up.
    expect(slow.stats()).toMatchObject({ predictions: 1, canceled: 1, succeeded: 0 });
    expect(await objectsOf(job)).toEqual([]);
    expect(await stack.app.store.listFrames(id, 1, 100)).toSatisfy((frames: { status: string }[]) =>
      frames.every((f) => f.status !== 'succeeded'),
    );
  });
});
