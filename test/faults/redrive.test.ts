import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClients } from '../../functions/adapters/clients.ts';
import { Queue } from '../../functions/adapters/queues.ts';
import { deadLetterNote, encodeChunk, parseFrameQueueMessage } from '../../functions/core/messages.ts';
import { startReferenceModel } from '../../functions/model/reference/server.ts';
import { ENV } from '../../functions/shared/env.ts';
import { CONSUMER_TIMEOUT_SECONDS } from '../../functions/shared/resources.ts';
import { createWorker } from '../../functions/worker/create.ts';
import { pollQueue } from '../../local/event-source.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, eventually, isFinished } from '../support/api.ts';
import { keysUnder } from './support/processes.ts';

/**
 * Poison and redrive (issue 14, point 3): messages that could not be worked on reach their DLQ, and
 * `framecast redrive` (docs/operations.md) brings them back once the fault is fixed. The fault here is a
 * consumer that fails every delivery before it does anything (as with the table unreachable for hours):
 * the test receives each message and lets it go, until SQS's redrive policy moves it to the DLQ (after 5
 * receives on the plan queue, 8 on the frame queue). A malformed message is dead-lettered beside them.
 * Then the fan-out and a worker run, the CLI redrives each DLQ, and the shot completes: every frame
 * stored, counted and announced once; the malformed message, handed back by the worker, goes back to
 * the DLQ without holding anything up.
 */

const FRAMES = 24;
const BIN = join(import.meta.dirname, '../../bin/framecast.mjs');
const dataDir = mkdtempSync(join(tmpdir(), 'framecast-redrive-'));

let stack: LocalStack;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  stack = await startLocalStack({
    withoutFanout: true,
    withoutWorker: true,
    withoutWebhooks: true,
    connectionFile: join(dataDir, 'local.json'),
  });
  api = client(stack.url, stack.apiKey);
});
afterAll(async () => {
  await stack?.stop();
  rmSync(dataDir, { recursive: true, force: true });
});

/** `framecast redrive --queue <queue> --json` against the running local stack, as ops would type it. */
function redrive(queue: string): Promise<{ moved: number; status: string }> {
  return new Promise((ok, fail) =>
    execFile(
      process.execPath,
      [BIN, 'redrive', '--queue', queue, '--local', dataDir, '--json'],
      { env: { PATH: process.env.PATH, HOME: dataDir } },
      (err, stdout, stderr) => (err ? fail(new Error(`${err.message}\n${stderr}`)) : ok(JSON.parse(stdout))),
    ),
  );
}

/** Runs the fan-out on the plan queue for `work`, as local mode does: this stack runs without one. */
async function withFanout<T>(work: () => Promise<T>): Promise<T> {
  const fanout = (await import('../../functions/fanout/handler.ts')) as {
    handler: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
  };
  const poller = pollQueue(stack.app.planQueue, fanout.handler, {
    name: 'functions/fanout/handler.ts',
    timeoutMs: CONSUMER_TIMEOUT_SECONDS.plan * 1000,
    waitSeconds: 1,
  });
  try {
    return await work();
  } finally {
    await poller.close();
  }
}

/** Receives and deletes whatever a queue holds: a test's leftovers. */
async function empty(queue: Queue): Promise<void> {
  for (;;) {
    const got = await queue.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 30 });
    if (got.length === 0) return;
    for (const m of got) await queue.delete(m.receiptHandle);
  }
}

/** A consumer that fails every delivery: receives and lets go until SQS dead-letters everything. */
async function deadLetterAll(queue: Queue): Promise<void> {
  await eventually(async () => {
    await queue.receive({ max: 10, waitSeconds: 0, visibilitySeconds: 0 });
    const { visible, inFlight } = await queue.depth();
    return visible + inFlight === 0 ? true : undefined;
  }, `every message of ${queue.url} dead-lettered`);
}

describe('plans and chunks dead-lettered by a fault, redriven once it is fixed', () => {
  it('complete the shot exactly once; a malformed message goes back to the DLQ and holds nothing up', async () => {
    const started = Date.now();
    const sqs = createClients().sqs;
    const dlq = (url: string) => new Queue(sqs, url);
    const planDlq = dlq(stack.queues.plan.dlqUrl);
    const frameDlq = dlq(stack.queues.frame.dlqUrl);

    const created = await api.createJob({
      // Asked for, so that each frame's second object is checked for duplicates too.
      thumbnails: true,
      shot: 'REDRIVE_SH010',
      prompt: 'a lighthouse lamp shatters in the gale',
      width: 64,
      height: 64,
      frames: { start: 1001, end: 1000 + FRAMES },
    });
    expect(created.status).toBe(202);
    const id = created.body.id;

    // The fan-out fails every delivery: the plan ends in the plan DLQ; the job waits, queued.
    await deadLetterAll(stack.app.planQueue);
    expect((await planDlq.depth()).visible).toBe(1);
    expect((await api.getJob(id)).body.status).toBe('queued');

    // Fixed: the fan-out runs again; the redrive brings the plan back and it is planned.
    await withFanout(async () => {
      expect(await redrive('plan')).toMatchObject({ moved: 1, status: 'COMPLETED' });
      await eventually(async () => {
        const job = await stack.app.store.getJob(id);
        return job?.plannedUpTo === 1001 + FRAMES ? true : undefined;
      }, 'the redriven plan planned');
    });
    const chunks = (await stack.app.frameQueue.depth()).visible;
    expect(chunks).toBeGreaterThan(0);

    // The worker fails every delivery before it takes a frame: every chunk, and a malformed message
    // beside them, end in the frame DLQ; no frame was taken.
    await stack.app.frameQueue.send('{"v": 1, "jobId": "not a job"');
    await deadLetterAll(stack.app.frameQueue);
    expect((await frameDlq.depth()).visible).toBe(chunks + 1);
    expect((await api.getJob(id)).body.frames.succeeded).toBe(0);

    // Fixed: a worker runs; the redrive brings every chunk back, and the malformed message with them.
    const worker = createWorker(stack.app, process.env, { waitSeconds: 1, retryBaseMs: 10 });
    const running = worker.run();
    try {
      expect(await redrive('frames')).toMatchObject({ moved: chunks + 1, status: 'COMPLETED' });
      const done = await api.waitForJob(id, isFinished, 120_000);
      expect(done.status).toBe('succeeded');
      expect(done.frames).toMatchObject({ total: FRAMES, succeeded: FRAMES, failed: 0, canceled: 0 });
      expect(await keysUnder(stack, done.outputPrefix)).toHaveLength(2 * FRAMES + 2);
      const records = await api.allFrames(id);
      expect(records.every((f) => f.status === 'succeeded' && f.attempts === 1)).toBe(true);
      const events = await stack.app.events.listEvents(id);
      expect(events.filter((e) => e.type === 'job.started')).toHaveLength(1);
      expect(events.filter((e) => e.type === 'job.succeeded')).toHaveLength(1);
      expect(events.filter((e) => e.type === 'frame.succeeded')).toHaveLength(FRAMES);
      // The malformed message was handed back on each delivery and is dead-lettered again, alone.
      await eventually(async () => {
        const back = await frameDlq.depth();
        const queue = await stack.app.frameQueue.depth();
        return back.visible === 1 && queue.visible + queue.inFlight === 0 ? true : undefined;
      }, 'the malformed message back in the DLQ');
      // Nothing in the event DLQ: a redrive of it moves nothing.
      expect(await redrive('event')).toMatchObject({ moved: 0, status: 'COMPLETED' });
      console.log(
        `redrive: 1 plan and ${chunks} chunks dead-lettered and redriven with a malformed message; ${FRAMES} frames once, ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    } finally {
      worker.stop();
      await running;
    }
  }, 180_000); // generous: two cores shared with other work make minutes of seconds
});

describe('a frame that always fails (poison), redriven once the model is fixed', () => {
  it('reaches the frame DLQ after its attempts, fails the job naming it, and the redrive completes the job once', async () => {
    const started = Date.now();
    const FAILING = 1005;
    const sqs = createClients().sqs;
    const frameDlq = new Queue(sqs, stack.queues.frame.dlqUrl);
    await empty(frameDlq);
    const broken = await startReferenceModel({ port: 0, concurrency: 1, failFrames: [FAILING] });
    const workerOn = (modelUrl: string) =>
      createWorker(
        stack.app,
        { ...process.env, [ENV.modelUrl]: modelUrl },
        { waitSeconds: 1, retryBaseMs: 10 },
      );

    // The model fails frame 1005 every time: after its attempts it is recorded failed and dead-lettered.
    let id: string;
    const first = workerOn(broken.url);
    let running = first.run();
    try {
      const failed = await withFanout(async () => {
        const created = await api.createJob({
          thumbnails: true,
          shot: 'POISON_SH020',
          prompt: 'a bell tower sways and falls into the square',
          width: 64,
          height: 64,
          frames: { start: 1001, end: 1000 + FRAMES },
        });
        expect(created.status).toBe(202);
        id = created.body.id;
        return api.waitForJob(id, isFinished, 120_000);
      });
      expect(failed.status).toBe('failed');
      expect(failed.failedFrames).toEqual([FAILING]);
      expect(failed.frames).toMatchObject({ total: FRAMES, succeeded: FRAMES - 1, failed: 1, canceled: 0 });
      const poisoned = (await api.allFrames(id!)).find((f) => f.frame === FAILING)!;
      expect(poisoned).toMatchObject({ status: 'failed', attempts: 3 });
      expect(broken.stats().predictions).toBe(FRAMES - 1 + 3);
    } finally {
      first.stop();
      await running;
      await broken.close();
    }
    // In the DLQ, alone: a dead letter naming the frame and why it failed (looked at, and left there).
    expect((await frameDlq.depth()).visible).toBe(1);
    const [letter] = await frameDlq.receive({ max: 1, waitSeconds: 0, visibilitySeconds: 0 });
    const parsed = parseFrameQueueMessage(letter!.body);
    expect(parsed).toMatchObject({
      ok: true,
      message: {
        kind: 'chunk',
        v: 3,
        jobId: id!,
        frames: [FAILING],
        deadLetter: { reason: expect.stringMatching(/injected failure: frame 1005/) },
      },
    });

    // Fixed: a worker on a sound model, and the redrive, as docs/operations.md says.
    const second = workerOn(stack.modelUrl);
    running = second.run();
    try {
      expect(await redrive('frames')).toMatchObject({ moved: 1, status: 'COMPLETED' });
      const done = await api.waitForJob(id!, (j) => j.status === 'succeeded', 120_000);
      expect(done.failedFrames).toEqual([]);
      expect(done.frames).toMatchObject({ total: FRAMES, succeeded: FRAMES, failed: 0, canceled: 0 });
      const records = await api.allFrames(id!);
      expect(records.every((f) => f.status === 'succeeded')).toBe(true);
      // Made afresh: one attempt on the sound model.
      expect(records.find((f) => f.frame === FAILING)).toMatchObject({ status: 'succeeded', attempts: 1 });

      // A second copy of the dead letter (SQS delivers at least once) changes nothing.
      await stack.app.frameQueue.send(letter!.body);
      await eventually(async () => {
        const { visible, inFlight } = await stack.app.frameQueue.depth();
        return visible + inFlight === 0 ? true : undefined;
      }, 'the second copy consumed');
    } finally {
      second.stop();
      await running;
    }
    // Every frame once: 24 PNGs, their thumbnails, the manifest (now the succeeded one) and the clip.
    const job = (await api.getJob(id!)).body;
    expect(job.status).toBe('succeeded');
    expect(job.frames).toMatchObject({ total: FRAMES, succeeded: FRAMES, failed: 0, canceled: 0 });
    const keys = await keysUnder(stack, job.outputPrefix);
    expect(keys).toHaveLength(2 * FRAMES + 2);
    const prefix = job.outputPrefix.replace(/^s3:\/\/[^/]+\//, '');
    const manifest = JSON.parse(
      await (
        await createClients().s3.send(
          new GetObjectCommand({ Bucket: stack.env[ENV.bucket], Key: `${prefix}manifest.json` }),
        )
      ).Body!.transformToString(),
    ) as { job: { status: string; failedFrames: number[] }; frames: { frame: number; status: string }[] };
    expect(manifest.job).toMatchObject({ status: 'succeeded', failedFrames: [] });
    expect(manifest.frames.filter((f) => f.status === 'succeeded')).toHaveLength(FRAMES);
    // The studio is told: the job failed, was reopened, and succeeded, each once.
    const types = (await stack.app.events.listEvents(id!)).map((e) => e.type);
    const count = (t: string) => types.filter((x) => x === t).length;
    expect(count('job.started')).toBe(1);
    expect(count('job.failed')).toBe(1);
    expect(count('job.reopened')).toBe(1);
    expect(count('job.succeeded')).toBe(1);
    expect(count('frame.failed')).toBe(1);
    expect(count('frame.succeeded')).toBe(FRAMES);
    expect(types.indexOf('job.reopened')).toBeGreaterThan(types.indexOf('job.failed'));
    expect(types.at(-1)).toBe('job.succeeded');
    // The audit trail says so too: a reopen between the two ends.
    const { records: audit } = await stack.app.auditStore.list('dev', {
      from: '2000-01-01T00:00:00.000Z',
      to: '2999-01-01T00:00:00.000Z',
      limit: 1000,
    });
    const ours = audit.filter((r) => r.jobId === id!).map((r) => `${r.kind}:${r.status ?? ''}`);
    expect(ours).toEqual([
      'job.created:',
      'job.finished:failed',
      'job.reopened:running',
      'job.finished:succeeded',
    ]);
    // Nothing waits in the DLQ.
    expect((await frameDlq.depth()).visible).toBe(0);
    console.log(
      `poison: frame ${FAILING} failed 3 attempts, dead-lettered, the job failed naming it; redriven on a sound model, the job succeeded with ${FRAMES} frames once; ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  }, 240_000);

  it('drops a dead letter whose job was canceled meanwhile: its failed frame stays failed, nothing is made', async () => {
    const created = await api.createJob({
      shot: 'POISON_SH030',
      prompt: 'a crane boom folds over the quay',
      width: 64,
      height: 64,
      frames: { start: 1, end: 4 },
    });
    const id = created.body.id;
    // Frame 2 failed every attempt (recorded as the worker records it), then the job was canceled.
    const { store } = stack.app;
    const queued = (await store.getJob(id))!;
    await store.markStarted(queued);
    const running = { ...queued, status: 'running' as const };
    await store.startFrames(running, [{ frame: 2, seed: 2 }]);
    await store.frameFailed(running, { frame: 2, seed: 2, attempts: 3, error: 'injected failure' });
    expect((await api.cancelJob(id)).body.status).toBe('canceled');
    await stack.app.frameQueue.send(
      encodeChunk({
        jobId: id,
        tenant: 'dev',
        frames: [2],
        deadLetter: deadLetterNote('injected failure'),
      }),
    );
    const worker = createWorker(stack.app, process.env, { waitSeconds: 1, retryBaseMs: 10 });
    const working = worker.run();
    try {
      await eventually(async () => {
        const { visible, inFlight } = await stack.app.frameQueue.depth();
        return visible + inFlight === 0 ? true : undefined;
      }, 'the dead letter consumed');
    } finally {
      worker.stop();
      await working;
    }
    // Not reopened: the failed frame keeps its record and its count, and nothing was made.
    const job = (await api.getJob(id)).body;
    expect(job.status).toBe('canceled');
    expect(job.frames).toMatchObject({ total: 4, succeeded: 0, failed: 1, canceled: 3 });
    expect(job.failedFrames).toEqual([2]);
    expect((await api.allFrames(id)).find((f) => f.frame === 2)).toMatchObject({
      status: 'failed',
      attempts: 3,
    });
    expect(worker.stats.framesSucceeded).toBe(0);
    const types = (await stack.app.events.listEvents(id)).map((e) => e.type);
    expect(types).not.toContain('job.reopened');
  });
});
