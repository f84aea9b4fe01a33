import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClients } from '../../functions/adapters/clients.ts';
import { Queue, type ReceivedMessage } from '../../functions/adapters/queues.ts';
import { frameSeed } from '../../functions/core/frames.ts';
import { newJobId } from '../../functions/core/ids.ts';
import { startReferenceModel } from '../../functions/model/reference/server.ts';
import { QUEUES } from '../../functions/shared/resources.ts';
import { createWorker } from '../../functions/worker/create.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, eventually, isFinished } from '../support/api.ts';

let stack: LocalStack;
let api: ReturnType<typeof client>;

// No worker of the stack's own: each test runs and stops workers itself. 150 ms a frame.
beforeAll(async () => {
  stack = await startLocalStack({ withoutWorker: true, referenceModel: { renderDelayMs: 150 } });
  api = client(stack.url, stack.apiKey);
});
afterAll(() => stack?.stop());

const worker = () => createWorker(stack.app, process.env, { waitSeconds: 1, retryBaseMs: 5, concurrency: 1 });

async function queued(): Promise<number> {
  const { visible, inFlight } = await stack.app.frameQueue.depth();
  return visible + inFlight;
}

describe('a worker told to stop (scale-in, Spot interruption)', () => {
  it('hands the chunks it has not started back at once, and another worker finishes the shot', async () => {
    const created = await api.createJob({
      shot: 'STOP_SH',
      prompt: 'a crane swings through fog',
      frames: { start: 1, end: 16 },
      width: 64,
      height: 64,
    });
    await eventually(
      async () => ((await queued()) === 2 ? true : undefined),
      'the fan-out to queue 2 chunks of 8',
    );

    const first = worker();
    const running = first.run();
    await api.waitForJob(created.body.id, (j) => j.frames.succeeded >= 1);
    first.stop();
    await running;
    expect(first.stats.handedBack).toBeGreaterThanOrEqual(1);

    // Handed back means visible now, not after the 120 s visibility timeout.
    const { visible, inFlight } = await stack.app.frameQueue.depth();
    expect(inFlight).toBe(0);
    expect(visible).toBeGreaterThanOrEqual(1);
    const partial = (await api.getJob(created.body.id)).body;
    expect(partial.status).toBe('running');

    const next = worker();
    const again = next.run();
    const done = await api.waitForJob(created.body.id, isFinished);
    next.stop();
    await again;
    expect(done.status).toBe('succeeded');
    expect(done.frames).toMatchObject({ total: 16, succeeded: 16, failed: 0, canceled: 0 });
  });
});

describe('a worker killed in mid-frame', () => {
  it('loses nothing: the chunk comes back after its visibility timeout and the frame is tried again', async () => {
    const created = await api.createJob({
      shot: 'KILL_SH',
      prompt: 'sparks fall from a broken sign',
      frames: { start: 1, end: 4 },
      seed: 77,
      width: 64,
      height: 64,
    });
    await eventually(
      async () => ((await queued()) === 1 ? true : undefined),
      'the fan-out to queue the chunk',
    );

    // The dead worker: it took the chunk, started frame 1 and was never heard from again.
    const [taken] = await stack.app.frameQueue.receive({ max: 1, waitSeconds: 1, visibilitySeconds: 1 });
    expect(taken).toBeDefined();
    const job = (await stack.app.store.getJob(created.body.id))!;
    await stack.app.store.markStarted(job);
    const running = (await stack.app.store.getJob(created.body.id))!;
    expect(await stack.app.store.startFrame(running, 1, frameSeed(77, 'per-frame', 1, 1))).toEqual({
      started: true,
      attempts: 1,
    });

    const survivor = worker();
    const run = survivor.run();
    const done = await api.waitForJob(created.body.id, isFinished);
    survivor.stop();
    await run;
    expect(done.status).toBe('succeeded');
    const frames = await api.allFrames(created.body.id);
    expect(frames.map((f) => [f.frame, f.status, f.attempts])).toEqual([
      [1, 'succeeded', 2],
      [2, 'succeeded', 1],
      [3, 'succeeded', 1],
      [4, 'succeeded', 1],
    ]);
  });
});

describe('a chunk that takes longer than its visibility timeout', () => {
  it('stays hidden by the heartbeat, so no other delivery starts its frames again', async () => {
    // A slower model of its own: 500 ms a frame, one slot. The second chunk (of 8) waits ~4 s for the slot
    // and takes ~4 s more, past its 2 s visibility; only the heartbeat keeps it from being delivered again.
    const slow = await startReferenceModel({ port: 0, renderDelayMs: 500, concurrency: 1 });
    try {
      const created = await api.createJob({
        shot: 'BEAT_SH',
        prompt: 'embers drift upward',
        frames: { start: 1, end: 16 },
        width: 64,
        height: 64,
      });
      await eventually(
        async () => ((await queued()) === 2 ? true : undefined),
        'the fan-out to queue 2 chunks',
      );
      const w = createWorker(
        stack.app,
        { ...process.env, FRAMECAST_MODEL_URL: slow.url },
        { waitSeconds: 1, concurrency: 1, visibilitySeconds: 2, heartbeatSeconds: 0.5 },
      );
      const run = w.run();
      const done = await api.waitForJob(created.body.id, isFinished);
      w.stop();
      await run;
      expect(done.status).toBe('succeeded');
      expect(w.stats.received).toBe(2);
      expect(w.stats.duplicates).toBe(0);
      expect((await api.allFrames(created.body.id)).every((f) => f.attempts === 1)).toBe(true);
    } finally {
      await slow.close();
    }
  });
});

describe('a message on the frame queue that is not a chunk this worker reads', () => {
  it('is neither worked on nor deleted: SQS moves it to the frame DLQ after maxReceiveCount receives', async () => {
    const dlq = new Queue(createClients().sqs, stack.queues.frame.dlqUrl);
    const bodies = [
      '{"v": 1, "jobId": ',
      JSON.stringify({ v: 2, jobId: newJobId(), tenant: 'dev', frames: [1, 2] }),
    ];
    await stack.app.frameQueue.sendAll(bodies);
    const w = worker();
    const run = w.run();
    const dead: ReceivedMessage[] = [];
    try {
      await eventually(async () => {
        dead.push(...(await dlq.receive({ max: 10, waitSeconds: 1 })));
        return dead.length >= bodies.length ? true : undefined;
      }, 'both messages in the frame DLQ');
    } finally {
      w.stop();
      await run;
    }
    await Promise.all(dead.map((m) => dlq.delete(m.receiptHandle)));
    expect(dead.map((m) => m.body).sort()).toEqual([...bodies].sort());
    expect(w.stats.malformed).toBe(bodies.length * QUEUES.frame.maxReceiveCount);
    expect(w.stats.framesSucceeded + w.stats.framesFailed + w.stats.framesSkipped).toBe(0);
    expect(await queued()).toBe(0);
  });
});
