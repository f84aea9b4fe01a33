import { describe, expect, it } from 'vitest';
import { createClients } from '../../functions/adapters/clients.ts';
import { Queue } from '../../functions/adapters/queues.ts';
import { encodeWindow, parseFrameQueueMessage } from '../../functions/core/messages.ts';
import { readProvenance } from '../../functions/core/png.ts';
import { planWindows } from '../../functions/core/windows.ts';
import { CogClient } from '../../functions/worker/cog.ts';
import { Worker } from '../../functions/worker/worker.ts';
import { client, eventually, isFinished } from '../support/api.ts';
import { responseValidator } from '../support/openapi.ts';
import {
  api,
  frameEvents,
  makeShot,
  model,
  objectsOf,
  range,
  SHOT,
  stack,
  storedFrames,
  useWindowsStack,
  VIDEO,
  windowedShot,
  withWorker,
} from '../support/windows.ts';

/**
 * Windows under faults on the local stack (docs/architecture.md, "Windows"): a window message duplicated or
 * redelivered, a worker killed mid-window, a stop, a cancel, a window that fails for good, several chains
 * at once, and a queue deadline. In the fault suite (`npm run test:faults`) beside the killed workers and the
 * redrives: its fourteen runs take over a minute of one core, which `npm test` cannot spare on two. What it
 * shares with test/integration/windows*.test.ts is test/support/windows.ts.
 */

useWindowsStack();

/**
 * A worker that dies at a chosen point: from then on every call it makes fails, as after a kill (nothing
 * more is written; its messages come back after their 2 s visibility timeout). `settled` is awaited before
 * it dies after a prediction (what it may still finish first); with `framesHeld`, no frame it stores reaches
 * S3 before it dies (a slow S3), so nothing it made is stored.
 */
function doomedWorker(
  killAt: {
    afterPrediction?: (predictionId: string) => boolean;
    settled?: () => Promise<unknown>;
    beforePrediction?: (predictionId: string) => boolean;
    afterSend?: (body: string) => boolean;
    framesHeld?: boolean;
  },
  chainHoldSeconds?: number,
) {
  const state = { dead: false };
  let die = () => {};
  const killed = new Promise<void>((resolve) => {
    die = () => {
      state.dead = true;
      resolve();
    };
  });
  const guard = <T extends object>(
    target: T,
    after?: (name: string, args: unknown[]) => void,
    held?: (name: string) => boolean,
  ): T =>
    new Proxy(target, {
      get(t, key) {
        const value = Reflect.get(t, key, t) as unknown;
        if (typeof value !== 'function') return value;
        return async (...args: unknown[]) => {
          if (held?.(String(key))) await killed;
          if (state.dead) throw new Error('killed');
          const out = await (value as (...a: unknown[]) => Promise<unknown>).apply(t, args);
          after?.(String(key), args);
          return out;
        };
      },
    });
  const model = new CogClient({ url: stack.modelUrl });
  const predictFiles = model.predictFiles.bind(model);
  model.predictFiles = async (predictionId, input, signal) => {
    if (killAt.beforePrediction?.(predictionId)) die();
    if (state.dead) throw new Error('killed');
    const out = await predictFiles(predictionId, input, signal);
    if (killAt.afterPrediction?.(predictionId)) {
      await killAt.settled?.();
      die();
    }
    return out;
  };
  const worker = new Worker({
    store: guard(stack.app.store),
    events: guard(stack.app.events),
    frames: guard(
      stack.app.frameStore,
      undefined,
      (name) => killAt.framesHeld === true && name === 'putFrame',
    ),
    queue: guard(stack.app.frameQueue, (name, args) => {
      if (name === 'send' && killAt.afterSend?.(String(args[0]))) die();
    }),
    model,
    publishEvents: async (events) => {
      if (state.dead) throw new Error('killed');
      await stack.app.publishEvents(events);
    },
    settings: {
      concurrency: 1,
      maxAttempts: 3,
      visibilitySeconds: 2,
      heartbeatSeconds: 0.5,
      waitSeconds: 1,
      retryBaseMs: 10,
      modelImage: 'framecast/reference-model',
      ...(chainHoldSeconds !== undefined && { chainHoldSeconds }),
    },
  });
  return {
    worker,
    get dead() {
      return state.dead;
    },
  };
}

describe("the queue's guarantees for windows", () => {
  it('stores nothing twice when a window message is duplicated, or redelivered after its successor was sent', async () => {
    const created = await api.createJob(windowedShot('WIN_DUP', { frames: { start: 1, end: 100 } }));
    const id = created.body.id;
    const windowMessage = (window: number) => encodeWindow({ jobId: id, tenant: 'dev', window });
    // The fan-out's window 0 and a duplicate of it, taken at once by the worker's two slots.
    await stack.app.frameQueue.send(windowMessage(0));
    const done = await withWorker(async (worker) => {
      const job = await api.waitForJob(id, isFinished, 60_000);
      // Late redeliveries (a worker died after sending the next window, before deleting its own): they
      // find their frames done, and send on nothing already under way.
      const before = worker.stats.received;
      await stack.app.frameQueue.sendAll([windowMessage(0), windowMessage(1)]);
      await eventually(async () => {
        const { visible, inFlight } = await stack.app.frameQueue.depth();
        return visible + inFlight === 0 && worker.stats.received >= before + 2 ? true : undefined;
      }, 'the redeliveries to be handled');
      return job;
    });
    expect(done.status).toBe('succeeded');
    expect(done.frames).toMatchObject({ total: 100, succeeded: 100, failed: 0, canceled: 0 });
    expect(await objectsOf(done)).toHaveLength(101);
    const { succeeded, types } = await frameEvents(id);
    expect(succeeded.sort((a, b) => a - b)).toEqual(range(1, 100));
    expect(types.filter((t) => t === 'job.succeeded')).toHaveLength(1);
  });

  it("loses nothing when a worker is killed between a window's prediction and storing it", async () => {
    const created = await api.createJob(windowedShot('WIN_KILL', { frames: { start: 1, end: 100 } }));
    const id = created.body.id;

    // The doomed worker: once the model has made window 1, every call it makes fails, as after a kill.
    // Window 0's frames are stored and recorded beside window 1's prediction: it dies once they are.
    const doomed = doomedWorker({
      afterPrediction: (predictionId) => predictionId === `${id}-w1-1`,
      settled: () =>
        eventually(
          async () => ((await api.getJob(id)).body.frames.succeeded >= 49 ? true : undefined),
          'window 0',
        ),
    });
    const running = doomed.worker.run();
    await eventually(async () => (doomed.dead ? true : undefined), 'the doomed worker to make window 1');
    doomed.worker.stop();
    await running;
    const partial = (await api.getJob(id)).body;
    expect(partial.frames.succeeded).toBe(49);

    // Window 0's message, which the worker held while it made window 1, comes back after its visibility
    // timeout; another worker finds window 0 done and makes window 1 again.
    const done = await withWorker(() => api.waitForJob(id, isFinished, 60_000));
    expect(done.status).toBe('succeeded');
    expect(done.frames).toMatchObject({ total: 100, succeeded: 100, failed: 0, canceled: 0 });
    const attempts = new Map((await api.allFrames(id)).map((f) => [f.frame, f.attempts]));
    for (const f of range(1, 100)) expect(attempts.get(f)).toBe(f >= 50 && f <= 90 ? 2 : 1);
    expect(await objectsOf(done)).toHaveLength(101);
    expect((await frameEvents(id)).succeeded.sort((a, b) => a - b)).toEqual(range(1, 100));
  });

  it("asks for the next window while the window before is still being stored, giving it that window's frames from memory; killed then, it loses nothing", async () => {
    const created = await api.createJob(windowedShot('WIN_AHEAD', { frames: { start: 1, end: 100 } }));
    const id = created.body.id;
    // No frame the doomed worker stores reaches S3 before it dies, and it dies as it asks for window 1:
    // window 1 was asked for while none of window 0's frames was stored (a worker that waited for them
    // would never ask, and this test would time out).
    const doomed = doomedWorker({
      beforePrediction: (predictionId) => predictionId === `${id}-w1-1`,
      framesHeld: true,
    });
    const running = doomed.worker.run();
    await eventually(async () => (doomed.dead ? true : undefined), 'the doomed worker to ask for window 1');
    doomed.worker.stop();
    await running;
    expect((await api.getJob(id)).body.frames.succeeded).toBe(0);

    // Window 0's message comes back: window 0 is made again, and window 1 from window 0's stored frames.
    const done = await withWorker(() => api.waitForJob(id, isFinished, 60_000));
    expect(done.status).toBe('succeeded');
    expect(done.frames).toMatchObject({ total: 100, succeeded: 100, failed: 0, canceled: 0 });
    const attempts = new Map((await api.allFrames(id)).map((f) => [f.frame, f.attempts]));
    for (const f of range(1, 100)) expect(attempts.get(f)).toBe(f <= 90 ? 2 : 1);
    expect(await objectsOf(done)).toHaveLength(101);
    const stored = await storedFrames(id);
    for (const f of range(50, 100)) {
      const { context } = readProvenance(stored.get(f)!.png)!.window!;
      for (const c of context!) expect(c.sha256).toBe(stored.get(c.frame)!.sha256);
    }
    expect((await frameEvents(id)).succeeded.sort((a, b) => a - b)).toEqual(range(1, 100));
  });

  it('stores and records a context too large to go in a request first, and gives it as presigned URLs', async () => {
    const created = await api.createJob(windowedShot('WIN_LARGE', { frames: { start: 1, end: 100 } }));
    const id = created.body.id;
    const given = new Map<number, string[]>();
    const done = await withWorker(
      (worker) => {
        const predictFiles = worker.deps.model.predictFiles.bind(worker.deps.model);
        worker.deps.model.predictFiles = (predictionId, input, signal) => {
          const window = /-w(\d+)-\d+$/.exec(predictionId);
          if (window && Array.isArray(input.context)) given.set(Number(window[1]), input.context as string[]);
          return predictFiles(predictionId, input, signal);
        };
        return api.waitForJob(id, isFinished, 60_000);
      },
      undefined,
      { contextInMemoryMaxBytes: 0 },
    );
    expect(done.frames).toMatchObject({ total: 100, succeeded: 100, failed: 0, canceled: 0 });
    expect([...given.keys()].sort()).toEqual([1, 2]);
    for (const urls of given.values()) {
      expect(urls).toHaveLength(8);
      for (const url of urls) expect(url).toMatch(/^https?:\/\//);
    }
    const stored = await storedFrames(id);
    for (const f of range(50, 100)) {
      const { context } = readProvenance(stored.get(f)!.png)!.window!;
      for (const c of context!) expect(c.sha256).toBe(stored.get(c.frame)!.sha256);
    }
    expect((await api.allFrames(id)).every((f) => f.attempts === 1)).toBe(true);
    expect(await objectsOf(done)).toHaveLength(101);
  });

  it('makes a chain on the worker that holds its first message: one message for every window, nothing twice', async () => {
    const created = await api.createJob(windowedShot('WIN_HELD', { frames: { start: 1, end: 100 } }));
    const id = created.body.id;
    const { job, received, windows } = await withWorker(async (worker) => {
      const job = await api.waitForJob(id, isFinished, 60_000);
      return { job, received: worker.stats.received, windows: worker.stats.windowsSucceeded };
    });
    expect(job.status).toBe('succeeded');
    expect(job.window?.count).toBe(3);
    // Window 0's message, from the fan-out, is the only one: windows 1 and 2 followed it on this worker.
    expect(received).toBe(1);
    expect(windows).toBe(3);
    expect((await api.allFrames(id)).every((f) => f.attempts === 1)).toBe(true);
    expect(await objectsOf(job)).toHaveLength(101);
  });

  it('hands a chain back when its worker stops between windows, and another worker goes on from there', async () => {
    const created = await api.createJob(windowedShot('WIN_STOP', { frames: { start: 1, end: 100 } }));
    const id = created.body.id;
    // A model slow enough that the worker is stopped while it makes window 1, whose take recorded window 0.
    const slow = await model({ renderDelayMs: 1000 });
    await withWorker(() => api.waitForJob(id, (j) => j.frames.succeeded >= 49, 60_000), slow.url);
    // Stopped (scale-in) after window 0 at least: the message went back at once, no window is made twice.
    const stopped = (await api.getJob(id)).body;
    expect(stopped.frames.succeeded).toBeLessThan(100);
    const done = await withWorker(() => api.waitForJob(id, isFinished, 60_000));
    expect(done.status).toBe('succeeded');
    expect(done.frames).toMatchObject({ total: 100, succeeded: 100, failed: 0, canceled: 0 });
    expect((await api.allFrames(id)).every((f) => f.attempts === 1)).toBe(true);
    expect(await objectsOf(done)).toHaveLength(101);
    expect((await frameEvents(id)).succeeded.sort((a, b) => a - b)).toEqual(range(1, 100));
  });

  it('sends the next window again, harmlessly, when a worker dies after sending it and before deleting its own', async () => {
    const created = await api.createJob(windowedShot('WIN_RESEND', { frames: { start: 1, end: 100 } }));
    const id = created.body.id;
    // A worker that holds a chain no longer than a window (a chain held past chainHoldSeconds goes on by
    // a message of its own) dies right after sending window 1, before deleting window 0's message, which
    // therefore comes back.
    const doomed = doomedWorker({ afterSend: (body) => body.includes(id) && body.includes('"window":1') }, 0);
    const running = doomed.worker.run();
    await eventually(async () => (doomed.dead ? true : undefined), 'the doomed worker to send window 1');
    doomed.worker.stop();
    await running;
    expect((await api.getJob(id)).body.frames.succeeded).toBe(49);

    const done = await withWorker(async (worker) => {
      const job = await api.waitForJob(id, isFinished, 60_000);
      // Window 0's message, redelivered, is taken too and makes nothing: it finds its frames done
      // (duplicates) or, when the rest of the chain ended the job within its 2 s of visibility (as on a
      // fast or a loaded machine), the job ended (skipped).
      await eventually(async () => {
        const { visible, inFlight } = await stack.app.frameQueue.depth();
        return visible + inFlight === 0 ? true : undefined;
      }, 'the redelivered window 0 to be handled');
      expect(worker.stats.duplicates + worker.stats.framesSkipped).toBeGreaterThanOrEqual(49);
      return job;
    });
    expect(done.status).toBe('succeeded');
    expect(done.frames).toMatchObject({ total: 100, succeeded: 100, failed: 0, canceled: 0 });
    // Window 1 may now arrive twice at once (sent by the doomed worker and again by window 0's
    // redelivery); both deliveries may take its frames, so an attempt may be counted twice. What must hold
    // is that every frame is stored and announced once.
    // Named when it fails: which frames, how many times.
    const triedMore = (await api.allFrames(id)).filter((f) => f.attempts > 2);
    expect(triedMore.map((f) => ({ frame: f.frame, attempts: f.attempts }))).toEqual([]);
    expect(await objectsOf(done)).toHaveLength(101);
    const { succeeded, types } = await frameEvents(id);
    expect(succeeded.sort((a, b) => a - b)).toEqual(range(1, 100));
    expect(types.filter((t) => t === 'job.succeeded')).toHaveLength(1);
  });

  it('stops the chain when the job is canceled: no window after it is made', async () => {
    // Each window takes 2 s of model time; the job is canceled as soon as window 1 is under way (its
    // prediction started), so the cancel lands well before window 1 ends whatever the machine's load.
    // Waiting instead for window 0's frames to be counted left the cancel to race window 1's end.
    const slow = await model({ renderDelayMs: 2000 });
    const created = await api.createJob(windowedShot('WIN_CANCEL'));
    const id = created.body.id;
    const canceled = await withWorker(async (worker) => {
      await eventually(
        async () => (slow.stats().predictions >= 2 ? true : undefined),
        'window 1 to be under way',
        60_000,
      );
      const answer = await api.cancelJob(id);
      expect(answer.status).toBe(200);
      // The window under way when the job was canceled, and nothing after it.
      await eventually(async () => {
        const { visible, inFlight } = await stack.app.frameQueue.depth();
        return visible + inFlight === 0 && slow.stats().running === 0 ? true : undefined;
      }, 'the frame queue to drain');
      await new Promise((r) => setTimeout(r, 1500));
      expect(worker.stats.windowsSucceeded).toBeLessThanOrEqual(2);
      return (await api.getJob(id)).body;
    }, slow.url);
    expect(canceled.status).toBe('canceled');
    const { succeeded, failed, canceled: n, total } = canceled.frames;
    expect(succeeded + failed + n).toBe(total);
    expect(slow.stats().predictions).toBeLessThanOrEqual(2);
    const recorded = (await stack.app.store.listFrames(id, 1, 200)).map((f) => f.frame);
    expect(Math.max(...recorded)).toBeLessThanOrEqual(90);
    expect((await objectsOf(canceled)).length).toBe(succeeded);
  });

  it('fails the frames of a window that always fails, cancels the later ones, and says which window', async () => {
    const failing = await model({ failFrames: [100] });
    const job = await makeShot(windowedShot('WIN_FAIL'), failing.url);
    expect(job.status).toBe('failed');
    expect(job.failedWindow).toEqual({
      index: 2,
      start: 91,
      end: 131,
      error: expect.stringMatching(/injected failure: frame 100/),
    });
    expect(job.failedFrames).toEqual(range(91, 131));
    expect(job.frames).toEqual({ start: 1, end: 200, total: 200, succeeded: 90, failed: 41, canceled: 69 });
    const listed = await api.allFrames(job.id);
    expect(listed.filter((f) => f.status === 'succeeded').map((f) => f.frame)).toEqual(range(1, 90));
    expect(listed.filter((f) => f.status === 'failed').every((f) => f.attempts === 3)).toBe(true);
    expect(listed.filter((f) => f.status === 'canceled').map((f) => f.frame)).toEqual(range(132, 200));
    // Three attempts at window 2, none at the windows after it.
    expect(failing.stats().predictions).toBe(2 + 3);
    const { events } = await frameEvents(job.id);
    const end = events.find((e) => e.type === 'job.failed')!;
    expect(end.data).toMatchObject({ failedWindow: { index: 2, start: 91, end: 131 } });
    // As the OpenAPI document says a job is.
    const doc = await client(stack.url).getOpenApi<Parameters<typeof responseValidator>[0]>();
    const got = await api.getJob(job.id);
    expect(responseValidator(doc.body)('GET', '/v1/jobs/{id}', got.status, got.body)).toEqual([]);
  });

  it('waits in the frame DLQ, and redriven on a sound model reopens the window and the chain makes the rest, once', async () => {
    const failing = await model({ failFrames: [100] });
    const failed = await makeShot(windowedShot('WIN_POISON', { seed: 4321 }), failing.url);
    expect(failed.status).toBe('failed');
    expect(failed.frames).toMatchObject({ succeeded: 90, failed: 41, canceled: 69 });
    // The dead letter: window 2 of this job, with the error (others' dead letters are left alone).
    const dlq = new Queue(createClients().sqs, stack.queues.frame.dlqUrl);
    const letter = await eventually(async () => {
      for (const m of await dlq.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 30 })) {
        const parsed = parseFrameQueueMessage(m.body);
        if (parsed.ok && parsed.message.jobId === failed.id) return { m, parsed: parsed.message };
        await dlq.setVisibility(m.receiptHandle, 0);
      }
      return undefined;
    }, 'the dead letter of window 2');
    expect(letter.parsed).toMatchObject({
      kind: 'window',
      v: 3,
      window: 2,
      deadLetter: { reason: expect.stringMatching(/injected failure: frame 100/) },
    });
    // Redriven (moved back to the frame queue, as `framecast redrive --queue frame` does) on a sound model.
    await stack.app.frameQueue.send(letter.m.body);
    await dlq.delete(letter.m.receiptHandle);
    const done = await withWorker(() => api.waitForJob(failed.id, (j) => j.status === 'succeeded', 120_000));
    expect(done.frames).toMatchObject({ total: 200, succeeded: 200, failed: 0, canceled: 0 });
    expect(done.failedFrames).toEqual([]);
    expect(done.failedWindow).toBeUndefined();
    expect(await objectsOf(done)).toHaveLength(200 + 1);
    const stored = await storedFrames(done.id);
    expect(stored.size).toBe(200);
    // Frames 1 to 90 were made once, before the failure; the reopened window's from its stored context.
    expect([...stored.values()].every((f) => f.attempts === 1)).toBe(true);
    const { types } = await frameEvents(done.id);
    const count = (t: string) => types.filter((x) => x === t).length;
    expect([count('job.failed'), count('job.reopened'), count('job.succeeded')]).toEqual([1, 1, 1]);
    expect(count('frame.succeeded')).toBe(200);
    expect(types.at(-1)).toBe('job.succeeded');
  });
});

describe('a parallel window that always fails', () => {
  it('fails its frames and those its neighbours share with it, and the rest of the shot is made', async () => {
    const failing = await model({ failFrames: [100] });
    const job = await makeShot(windowedShot('WIN_PAR_FAIL', { windowMode: 'parallel' }), failing.url);
    expect(job.status).toBe('failed');
    expect(job.failedWindow).toMatchObject({ index: 2, start: 83, end: 131 });
    expect(job.failedFrames).toEqual(range(83, 131));
    expect(job.frames).toEqual({ start: 1, end: 200, total: 200, succeeded: 151, failed: 49, canceled: 0 });
    const listed = await api.allFrames(job.id);
    expect(listed.filter((f) => f.status === 'succeeded').map((f) => f.frame)).toEqual([
      ...range(1, 82),
      ...range(132, 200),
    ]);
    const { types } = await frameEvents(job.id);
    expect(types.filter((t) => t === 'frame.failed')).toHaveLength(49);
  });
});

describe('several chained shots', () => {
  it("run side by side on the fleet: one shot's chain does not wait for the other's to end", async () => {
    const short = { start: 1, end: 100 };
    const [a, b] = await Promise.all([
      api.createJob(windowedShot('WIN_SIDE_A', { frames: short })),
      api.createJob(windowedShot('WIN_SIDE_B', { frames: short, seed: 99 })),
    ]);
    const done = await withWorker(() =>
      Promise.all([a, b].map((c) => api.waitForJob(c.body.id, isFinished, 120_000))),
    );
    expect(done.map((j) => j.status)).toEqual(['succeeded', 'succeeded']);
    // Each chain's windows run one after another, but the two chains overlap in time: one shot's first
    // window started before the other shot's last frame was done, both ways round.
    const span = async (id: string) => {
      const frames = await stack.app.store.listFrames(id, short.start, short.end, true);
      return {
        start: Math.min(...frames.map((f) => Date.parse(f.startedAt!))),
        end: Math.max(...frames.map((f) => Date.parse(f.finishedAt!))),
      };
    };
    const [sa, sb] = await Promise.all([span(a.body.id), span(b.body.id)]);
    expect(Math.max(sa.start, sb.start)).toBeLessThan(Math.min(sa.end, sb.end));
  });
});

describe('asking for windows', () => {
  it('takes a smaller window and another overlap, and refuses what the model cannot do, naming the field', async () => {
    const smaller = await api.createJob(windowedShot('WIN_ASK', { window: { size: 25, overlap: 4 } }));
    expect(smaller.status).toBe(202);
    expect(smaller.body).toMatchObject({
      windowMode: 'chained',
      window: { size: 25, overlap: 4, count: planWindows(SHOT, { ...VIDEO, window: 25, overlap: 4 }).length },
    });
    await stack.app.store.cancelJob(smaller.body.id);

    const refusals: [Record<string, unknown>, string][] = [
      [{ model: 'reference', windowMode: 'parallel' }, 'body.windowMode'],
      [{ model: 'reference', window: { size: 9 } }, 'body.window'],
      [{ window: { size: 30 } }, 'body.window.size'],
      [{ window: { size: 53 } }, 'body.window.size'],
      [{ window: { overlap: 30 } }, 'body.window.overlap'],
      [{ windowMode: 'sideways' }, 'body.windowMode'],
    ];
    for (const [extra, field] of refusals) {
      const res = await api.createJob(windowedShot('WIN_ASK', extra));
      expect(res.status, JSON.stringify(extra)).toBe(400);
      expect((res.body as unknown as { error: { details: { field: string } } }).error.details.field).toBe(
        field,
      );
    }
  });
});

describe('a chained shot with a queue deadline (startBy)', () => {
  it('makes the windows started before it and cancels the rest, saying why, its counts adding up', async () => {
    // Two seconds a window: the first starts well before the deadline, the third well after it.
    const slow = await model({ renderDelayMs: 2000 });
    const startBy = new Date(Date.now() + 4000).toISOString();
    const created = await api.createJob(windowedShot('WIN_LATE', { windowMode: 'chained', startBy }));
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    const job = await withWorker(() => api.waitForJob(created.body.id, isFinished, 120_000), slow.url);
    expect(job.status).toBe('canceled');
    expect(job.canceledReason).toContain(`startBy passed: frames not started by ${startBy}`);
    expect(job.frames.succeeded).toBeGreaterThan(0);
    expect(job.frames.canceled).toBeGreaterThan(0);
    expect(job.frames.succeeded + job.frames.canceled).toBe(job.frames.total);
    // What was made is the chain up to the deadline; everything after it is canceled, nothing is missing.
    const frames = await api.allFrames(job.id);
    expect(frames.map((f) => f.frame)).toEqual(Array.from({ length: SHOT.end }, (_, i) => i + 1));
    const cut = frames.findIndex((f) => f.status === 'canceled');
    expect(frames.slice(0, cut).every((f) => f.status === 'succeeded')).toBe(true);
    expect(frames.slice(cut).every((f) => f.status === 'canceled')).toBe(true);
  }, 150_000);
});
