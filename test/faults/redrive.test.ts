import { execFile } from 'node:child_process';
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClients } from '../../functions/adapters/clients.ts';
import { Queue } from '../../functions/adapters/queues.ts';
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
    const fanout = (await import('../../functions/fanout/handler.ts')) as {
      handler: (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;
    };
    const poller = pollQueue(stack.app.planQueue, fanout.handler, {
      name: 'functions/fanout/handler.ts',
      timeoutMs: CONSUMER_TIMEOUT_SECONDS.plan * 1000,
      waitSeconds: 1,
    });
    try {
      expect(await redrive('plan')).toMatchObject({ moved: 1, status: 'COMPLETED' });
      await eventually(async () => {
        const job = await stack.app.store.getJob(id);
        return job?.plannedUpTo === 1001 + FRAMES ? true : undefined;
      }, 'the redriven plan planned');
    } finally {
      await poller.close();
    }
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
