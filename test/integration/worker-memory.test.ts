import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startReferenceModel } from '../../functions/model/reference/server.ts';
import { ENV } from '../../functions/shared/env.ts';
import { createWorker } from '../../functions/worker/create.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, isFinished } from '../support/api.ts';

/**
 * What the worker holds (docs/performance.md, "Memory"), counted by instrumenting its model and its frame
 * store: a model faster than S3 does not fill the worker with frames waiting for their upload. And the
 * order of its model requests against its uploads and the model's answers (pipelining).
 */

let stack: LocalStack;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  stack = await startLocalStack({ withoutWorker: true });
  api = client(stack.url, stack.apiKey);
});
afterAll(() => stack?.stop());

/** Runs `worker` while a shot of `frames` frames is made, and expects it to succeed. */
async function makeShot(worker: ReturnType<typeof createWorker>, shot: string, frames: number) {
  const running = worker.run();
  try {
    const created = await api.createJob({
      shot,
      prompt: 'a dam bursts',
      frames: { start: 1, end: frames },
      width: 64,
      height: 64,
    });
    const job = await api.waitForJob(created.body.id, isFinished, 60_000);
    expect(job.status).toBe('succeeded');
  } finally {
    worker.stop();
    await running;
  }
}

describe("the worker's memory", () => {
  it('makes no frame while as many as it uploads at once wait for S3, and still stores beside the model', async () => {
    const worker = createWorker(stack.app, process.env, {
      concurrency: 1,
      waitSeconds: 1,
      retryBaseMs: 5,
      uploadConcurrency: 2,
    });
    // Frames made and not yet stored, at their most: each made frame is held until its upload ends.
    let made = 0;
    let stored = 0;
    let most = 0;
    const predict = worker.deps.model.predict.bind(worker.deps.model);
    worker.deps.model.predict = async (...args: Parameters<typeof predict>) => {
      const out = await predict(...args);
      made++;
      most = Math.max(most, made - stored);
      return out;
    };
    // A slow S3: each upload waits before it starts, far longer than the model takes for a 64x64 frame.
    const put = worker.deps.frames.putFrame.bind(worker.deps.frames);
    worker.deps.frames.putFrame = async (...args: Parameters<typeof put>) => {
      await new Promise((r) => setTimeout(r, 150));
      try {
        return await put(...args);
      } finally {
        stored++;
      }
    };
    await makeShot(worker, 'MEMORY_SH', 16);
    expect(made).toBe(16);
    // Two uploading and none more: the chunk's 8 frames are never all held at once.
    expect(most).toBe(2);
  });

  it("stores a made frame only once the next frame's prediction request is on its way", async () => {
    // Room to upload the whole chunk at once: a full upload set would store the frame before (above).
    const worker = createWorker(stack.app, process.env, {
      concurrency: 1,
      waitSeconds: 1,
      retryBaseMs: 5,
      uploadConcurrency: 8,
    });
    const events: string[] = [];
    const frameOf = (id: string) => id.split('-').at(-3);
    const predict = worker.deps.model.predict.bind(worker.deps.model);
    worker.deps.model.predict = (id, input, signal, options) =>
      predict(id, input, signal, {
        onSent: () => {
          events.push(`sent ${frameOf(id)}`);
          options?.onSent?.();
        },
      });
    const put = worker.deps.frames.putFrame.bind(worker.deps.frames);
    worker.deps.frames.putFrame = (...args: Parameters<typeof put>) => {
      events.push(`store ${args[2]?.frame}`);
      return put(...args);
    };
    await makeShot(worker, 'ORDER_SH', 8);
    // One chunk of 8: frame f is stored after frame f + 1's request is sent; the last, after its own.
    for (let f = 1; f <= 8; f++) {
      const next = events.indexOf(`sent ${Math.min(f + 1, 8)}`);
      expect(next).toBeGreaterThanOrEqual(0);
      expect(events.indexOf(`store ${f}`)).toBeGreaterThan(next);
    }
  });

  /** The worker's model requests and answers in order, over a shot of `frames` on a 40 ms model. */
  async function requestOrder(shotName: string, frames: number, env: Record<string, string> = {}) {
    // A model slow enough (40 ms a frame) that the second chunk is in hand before the first ends.
    const model = await startReferenceModel({ port: 0, concurrency: 1, renderDelayMs: 40 });
    try {
      const worker = createWorker(
        stack.app,
        { ...process.env, [ENV.modelUrl]: model.url, ...env },
        // Room to upload every frame at once: no request waits for an upload.
        { concurrency: 1, waitSeconds: 1, retryBaseMs: 5, uploadConcurrency: 16 },
      );
      const events: string[] = [];
      const frameOf = (id: string) => id.split('-').at(-3);
      const predict = worker.deps.model.predict.bind(worker.deps.model);
      worker.deps.model.predict = async (id, input, signal, options) => {
        const out = await predict(id, input, signal, {
          onSent: () => {
            events.push(`sent ${frameOf(id)}`);
            options?.onSent?.();
          },
        });
        events.push(`answered ${frameOf(id)}`);
        return out;
      };
      await makeShot(worker, shotName, frames);
      const sends = events.filter((e) => e.startsWith('sent ')).map((e) => e.slice(5));
      expect(sends).toHaveLength(frames);
      // For each request after the first: sent before the one ahead of it was answered?
      const early = sends
        .slice(1)
        .map((f, i) => events.indexOf(`sent ${f}`) < events.indexOf(`answered ${sends[i]}`));
      return { early, worker, stats: model.stats() };
    } finally {
      await model.close();
    }
  }

  it('asks for each frame while the model runs the one before, across chunks, and is never refused', async () => {
    const { early, worker, stats } = await requestOrder('PIPELINE_SH', 16);
    // Every request after the first went out before the frame sent ahead of it was answered, the first
    // of the second chunk included: the model's slot never waited for the worker.
    expect(early).toEqual(Array(15).fill(true));
    expect(worker.deps.model.pipelining).toBe(true);
    expect(worker.stats.modelRefusals).toBe(0);
    expect(stats).toMatchObject({ predictions: 16, rejectedBusy: 0 });
  });

  it('asks for one frame at a time with FRAMECAST_MODEL_PIPELINING=0', async () => {
    const { early, worker, stats } = await requestOrder('ONE_AT_A_TIME_SH', 8, {
      FRAMECAST_MODEL_PIPELINING: '0',
    });
    expect(early).toEqual(Array(7).fill(false));
    expect(worker.deps.model.pipelining).toBe(false);
    expect(stats).toMatchObject({ predictions: 8, rejectedBusy: 0 });
  });
});
