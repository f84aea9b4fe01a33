import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { SetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FramecastClient, type Job } from '../../client/index.ts';
import { ENV } from '../../functions/shared/env.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, eventually, isFinished } from '../support/api.ts';
import { startReceiver } from '../support/receiver.ts';
import { keysUnder } from './support/processes.ts';

/**
 * Emulators stopped and started again under load (issue 14, point 4): while a shot is being made,
 * DynamoDB Local is stopped and started again on its port (its data in a data directory, as DynamoDB
 * keeps it), then the SQS emulator stops answering and comes back (its messages kept, as SQS keeps
 * them). Everything runs meanwhile: the API, the fan-out, the worker and webhook delivery, whose calls
 * fail with refused connections past the SDK's retries. What must hold: nothing lost and nothing twice:
 * the job succeeded with exact counts, one object per frame, each event recorded once and delivered.
 */

const FRAMES = 120;
const DOWN_MS = 3000;
const dataDir = mkdtempSync(join(tmpdir(), 'framecast-outage-'));

let stack: LocalStack;
let receiver: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  receiver = await startReceiver();
  stack = await startLocalStack({
    dataDir,
    referenceModel: { renderDelayMs: 60 },
    // A chunk whose worker could not hand it back during the outage returns after 6 s, not 120 s.
    worker: { concurrency: 2, retryBaseMs: 10, visibilitySeconds: 6, heartbeatSeconds: 2 },
    // A webhook attempt claimed just before the table went away (its write applied, its answer lost) is
    // stale by the message's next delivery, as in AWS (90 s claims, 6 min visibility), and is sent then.
    env: { [ENV.chunkSize]: '2', [ENV.webhookClaimStaleSeconds]: '4' },
  });
  // A plan or event whose handler failed on the outage comes back after 6 s rather than the Lambdas'
  // 6 minutes: the same retry, sooner.
  const sqs = new SQSClient({});
  for (const queue of [stack.queues.plan, stack.queues.event])
    await sqs.send(
      new SetQueueAttributesCommand({ QueueUrl: queue.url, Attributes: { VisibilityTimeout: '6' } }),
    );
  sqs.destroy();
});
afterAll(async () => {
  await stack?.stop();
  await receiver?.close();
  rmSync(dataDir, { recursive: true, force: true });
});

describe('DynamoDB Local and the SQS emulator restarted in mid-shot', () => {
  it('lose nothing: the shot finishes with every frame stored, counted and announced once', async () => {
    // A client as a studio's: it retries 503s and refused connections, honouring Retry-After.
    const studio = new FramecastClient({ baseUrl: stack.url, apiKey: stack.apiKey });
    const api = client(stack.url, stack.apiKey);
    const job = await studio.createJob({
      // Asked for, so that each frame's second object is checked for duplicates too.
      thumbnails: true,
      shot: 'OUTAGE_SH010',
      prompt: 'the lights of a stadium fail one bank at a time',
      width: 64,
      height: 64,
      frames: { start: 1001, end: 1000 + FRAMES },
      webhook: { url: receiver.url },
    });
    const started = Date.now();
    /** The job as a poll sees it, or undefined while the table is away. */
    const read = () => studio.getJob(job.id).catch(() => undefined);
    const progress = async (at: number) =>
      eventually(
        async () => {
          const j = await read();
          return j && j.frames.succeeded >= at ? j : undefined;
        },
        `${at} frames made`,
        120_000,
      );

    const before = await progress(FRAMES / 4);
    await stack.restartEmulator('dynamodb', DOWN_MS);
    const between = await progress(FRAMES / 2);
    await stack.restartEmulator('sqs', DOWN_MS);
    let done: Job | undefined;
    await eventually(
      async () => {
        done = await read();
        return done && isFinished(done) ? done : undefined;
      },
      'the job to finish',
      180_000,
    );
    expect(before.status).toBe('running');
    expect(between.frames.succeeded).toBeLessThan(FRAMES);
    expect(done!.status).toBe('succeeded');
    expect(done!.frames).toMatchObject({ total: FRAMES, succeeded: FRAMES, failed: 0, canceled: 0 });
    expect(await keysUnder(stack, done!.outputPrefix)).toHaveLength(2 * FRAMES + 2);
    const records = await api.allFrames(job.id);
    expect(records.filter((f) => f.status === 'succeeded')).toHaveLength(FRAMES);

    const events = await stack.app.events.listEvents(job.id);
    expect(new Set(events.map((e) => e.id)).size).toBe(events.length);
    expect(events.filter((e) => e.type === 'job.succeeded')).toHaveLength(1);
    expect(events.filter((e) => e.type === 'frame.succeeded')).toHaveLength(FRAMES);
    // Every recorded event reaches the webhook (at least once; a copy keeps its webhook-id).
    const missing = () => {
      const got = new Set(receiver.received.map((r) => r.headers['webhook-id'] as string));
      return events.filter((e) => !got.has(e.id));
    };
    await eventually(
      async () => (missing().length === 0 ? true : undefined),
      'every event delivered',
      60_000,
    ).catch((err: Error) => {
      throw new Error(
        `${err.message}: ${missing()
          .map((e) => `${e.type} ${e.timestamp}`)
          .join(', ')}`,
      );
    });
    const sent = receiver.received.map((r) => r.headers['webhook-id'] as string);
    expect(sent.every((id) => events.some((e) => e.id === id))).toBe(true);
    console.log(
      `emulator restarts: DynamoDB Local and SQS each down ${DOWN_MS / 1000} s at ${before.frames.succeeded} and ${between.frames.succeeded} of ${FRAMES} frames; ${records.filter((f) => f.attempts > 1).length} frames made again, ${events.length} events, ${sent.length} deliveries (${sent.length - new Set(sent).size} twice), ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  }, 300_000); // generous: two cores shared with other work make minutes of seconds
});
