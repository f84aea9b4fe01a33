import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClients } from '../../functions/adapters/clients.ts';
import { Queue } from '../../functions/adapters/queues.ts';
import { type ReferenceModel, startReferenceModel } from '../../functions/model/reference/server.ts';
import { ENV } from '../../functions/shared/env.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, isFinished } from '../support/api.ts';
import {
  exited,
  keysUnder,
  killAll,
  random,
  sleep,
  startWorker,
  type WorkerProcess,
} from './support/processes.ts';

/**
 * Killed workers (issue 14, point 1): two workers, each a process of its own as in the GPU task, are
 * SIGKILLed at random moments 20 times over a 300-frame shot and started again: once over a shot of
 * chunks, once over a chained windowed shot (each window made from its predecessor's stored frames).
 * What must hold: every frame stored exactly once (one object per frame, and one thumbnail), the job's
 * counts exact, the job succeeded, one job.succeeded event and one frame.succeeded per frame. A killed
 * worker's chunks and windows come back after the visibility timeout, set to 3 s here
 * (FRAMECAST_WORKER_VISIBILITY_SECONDS), and each kill waits for the last one's replacement to be ready
 * (in the shot of chunks, 5 s at least), so each run takes two minutes or more.
 */

const FRAMES = 300;
const KILLS = 20;
/** The reference model's time for a frame in the shot of chunks. */
const FRAME_MS = 700;
// A run takes two minutes or more on an idle machine; on two cores shared with other work, several times
// that. The test fails on what it finds, not on how long it took.
const TIMEOUT_MS = 420_000;
// A fixed schedule, so a failure can be replayed: the kill times come from this seed.
const SEED = Number(process.env.KILL_SEED ?? 20261130);

let stack: LocalStack;
let api: ReturnType<typeof client>;
let windowModel: ReferenceModel | undefined;

beforeAll(async () => {
  // The reference model takes FRAME_MS a frame and has two slots: one for each worker. Chunks of one
  // frame, kills 5 to 7 s apart (killOver): slow enough that the shot outlasts the 20 kills, and a
  // returned chunk is rarely killed again on its next delivery.
  stack = await startLocalStack({
    withoutWorker: true,
    withoutWebhooks: true,
    referenceModel: { renderDelayMs: FRAME_MS },
    env: { [ENV.chunkSize]: '1' },
  });
  api = client(stack.url, stack.apiKey);
});
afterAll(async () => {
  await windowModel?.close();
  await stack?.stop();
});

/**
 * Kills the worker running longest at random moments, KILLS times or until the job ends, starting a new
 * one in its place each time. The longest running, because a restarted worker takes the chunks the last
 * kill returned, and a chunk killed on every delivery is given up after FRAMECAST_MAX_ATTEMPTS (a poison
 * chunk), which is not the fault these tests make. Each kill waits for the worker started by the last to
 * be ready, in the shot of chunks for the chunks the last kill returned to be made again (`spacingMs`),
 * and for the shot to have stored another frame since. A worker takes 2 to 5 s to start on a loaded
 * machine, longer than the 3 s a killed worker's chunks stay hidden, and kills every 2 to 3.5 s left the
 * other worker alone to take those chunks, each time the one killed next: a chunk went from one victim to
 * the next (7 tries of one frame, 6 allowed, in one run of three). With kills faster still, one message
 * went to eight workers in turn until SQS dead-lettered it.
 */
async function killOver(
  jobId: string,
  workers: WorkerProcess[],
  start: () => WorkerProcess,
  /** The least time from one kill to the next: what the returned work needs to be made again. */
  spacingMs = 0,
): Promise<number> {
  await Promise.all(workers.map((w) => w.ready));
  const born = workers.map((_, i) => Date.now() + i);
  const next = random(SEED);
  let kills = 0;
  let stored = 0;
  let killedAt = 0;
  while (kills < KILLS) {
    // 0.5 to 2 s after the last replacement is ready, and `spacingMs` after the last kill at least.
    const at = Math.max(Date.now() + 500 + next() * 1500, killedAt + spacingMs);
    await sleep(at - Date.now());
    let job = (await api.getJob(jobId)).body;
    const stalled = Date.now() + 120_000;
    while (!isFinished(job) && job.frames.succeeded <= stored) {
      if (Date.now() > stalled) {
        const dlq = await new Queue(createClients().sqs, stack.queues.frame.dlqUrl).depth();
        throw new Error(
          `no frame stored for 2 minutes after kill ${kills} (${job.frames.succeeded} stored, ${dlq.visible} messages in the frame DLQ)`,
        );
      }
      await sleep(200);
      job = (await api.getJob(jobId)).body;
    }
    if (isFinished(job)) break;
    stored = job.frames.succeeded;
    const victim = born.indexOf(Math.min(...born));
    workers[victim]!.kill('SIGKILL');
    killedAt = Date.now();
    await exited(workers[victim]!);
    kills++;
    workers[victim] = start();
    await workers[victim]!.ready;
    born[victim] = Date.now();
  }
  return kills;
}

/** What a shot made through kills must show: each frame stored, counted and announced once. */
async function expectExactlyOnce(id: string, shot: string) {
  const done = await api.waitForJob(id, isFinished, 180_000);
  expect(done.status).toBe('succeeded');
  expect(done.frames).toMatchObject({ total: FRAMES, succeeded: FRAMES, failed: 0, canceled: 0 });

  // One object per frame and one thumbnail, a manifest and a clip: nothing twice, nothing stray.
  const prefix = done.outputPrefix.replace(/^s3:\/\/[^/]+\//, '');
  const keys = await keysUnder(stack, done.outputPrefix);
  const frames = keys.filter((k) => k.endsWith('.png') && !k.includes('/thumbnails/'));
  expect(frames.sort()).toEqual(
    Array.from({ length: FRAMES }, (_, i) => `${prefix}${shot}.${1001 + i}.png`).sort(),
  );
  expect(keys.filter((k) => k.includes('/thumbnails/'))).toHaveLength(FRAMES);
  expect(keys).toHaveLength(2 * FRAMES + 2);

  const records = await api.allFrames(id);
  expect(records.filter((f) => f.status === 'succeeded')).toHaveLength(FRAMES);
  const events = await stack.app.events.listEvents(id);
  expect(events.filter((e) => e.type === 'job.succeeded')).toHaveLength(1);
  expect(events.filter((e) => e.type === 'job.started')).toHaveLength(1);
  const announced = events
    .filter((e) => e.type === 'frame.succeeded')
    .map((e) => (e.data.frame as { frame: number }).frame);
  expect(announced.sort((a, b) => a - b)).toEqual(Array.from({ length: FRAMES }, (_, i) => 1001 + i));
  return records;
}

describe('two worker processes killed 20 times over a 300-frame shot', () => {
  it(
    'store every frame exactly once, count it once and announce the job once',
    async () => {
      const created = await api.createJob({
        shot: 'KILL_SH010',
        prompt: 'a gantry crane folds into the harbour',
        width: 64,
        height: 64,
        frames: { start: 1001, end: 1000 + FRAMES },
        // Asked for, so that each frame's second object is checked for duplicates too.
        thumbnails: true,
      });
      expect(created.status).toBe(202);
      const id = created.body.id;
      const workers = [startWorker(stack), startWorker(stack)];
      try {
        // A kill's chunks come back after the 3 s visibility timeout, and are made within three frames'
        // time by whichever worker took them (each holds at most 3 one-frame chunks).
        const kills = await killOver(id, workers, () => startWorker(stack), 3000 + 3 * FRAME_MS);
        // The shot outlasted every kill: the kills hit it at work, not after it ended.
        expect(kills).toBe(KILLS);
        const records = await expectExactlyOnce(id, 'KILL_SH010');
        // Some frames were tried again after a kill: the attempts say so.
        expect(records.some((f) => f.attempts > 1)).toBe(true);
        console.log(
          `killed workers: ${kills} kills, ${records.filter((f) => f.attempts > 1).length} frames tried more than once, max attempts ${Math.max(...records.map((f) => f.attempts))}`,
        );
      } finally {
        await killAll(workers);
      }
    },
    TIMEOUT_MS,
  );
});

describe('two worker processes killed 20 times over a chained windowed shot of 300 frames', () => {
  it(
    'store every frame exactly once, in one chain, and announce the job once',
    async () => {
      // Windows of 13 frames sharing 4 (33 windows, one at a time: each is made from the last frames its
      // predecessor stored), 1.5 s a window on a model of their own (the worker makes a chain without a queue hop per window):
      // about 50 s of chain before any kill,
      // and each kill of the worker holding the window adds its 3 s visibility and a restart.
      windowModel = await startReferenceModel({ port: 0, concurrency: 2, renderDelayMs: 1500 });
      const created = await api.createJob({
        shot: 'KILL_WIN010',
        prompt: 'a dam wall gives way, the water takes the valley road',
        model: 'reference-window',
        windowMode: 'chained',
        window: { size: 13, overlap: 4 },
        width: 64,
        height: 64,
        frames: { start: 1001, end: 1000 + FRAMES },
        // Asked for, so that each frame's second object is checked for duplicates too.
        thumbnails: true,
      });
      expect(created.status, JSON.stringify(created.body)).toBe(202);
      const id = created.body.id;
      const url = windowModel.url;
      const workers = [startWorker(stack, url), startWorker(stack, url)];
      const started = Date.now();
      try {
        const kills = await killOver(id, workers, () => startWorker(stack, url));
        expect(kills).toBe(KILLS);
        const records = await expectExactlyOnce(id, 'KILL_WIN010');
        // A window is the unit of retry: a kill that hit one made each of its frames again.
        const again = records.filter((f) => f.attempts > 1);
        expect(again.length).toBeGreaterThan(0);
        const windows = created.body.window!;
        console.log(
          `killed workers, chained windows: ${kills} kills over ${windows.count} windows, ${again.length} frames made more than once, max attempts ${Math.max(...records.map((f) => f.attempts))}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
        );
      } finally {
        await killAll(workers);
      }
    },
    TIMEOUT_MS,
  );
});
