import { createHash } from 'node:crypto';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import {
  SendMessageBatchCommand,
  type SendMessageBatchRequestEntry,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createClients, RETRY } from '../../functions/adapters/clients.ts';
import type { EventRecord } from '../../functions/core/model.ts';
import { Container, useContainer } from '../../functions/services/container.ts';
import { ENV } from '../../functions/shared/env.ts';
import { createWorker } from '../../functions/worker/create.ts';
import type { Worker } from '../../functions/worker/worker.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, eventually, isFinished } from '../support/api.ts';
import { startReceiver } from '../support/receiver.ts';
import { keysUnder, random } from './support/processes.ts';

/**
 * Duplicates and reordering (issue 14, point 2): every plan, frame and event message is delivered twice
 * and out of order. Every SQS send of the API, the fan-out, the worker and webhook delivery goes through
 * a client that shuffles each batch, delays each message by 0 to 2 s at random, and sends every message
 * a second time in a batch of its own, shuffled and delayed apart: the copies of one message arrive
 * seconds apart, after or before later messages. SQS itself may do all of this.
 *
 * What must hold: each job succeeded with exact counts; one object per frame, whose bytes are the ones
 * the frame record and the manifest name; no event recorded twice; and each event delivered once to the
 * job's webhook (the delivery claim keeps the second copy of an event message from sending).
 */

const SEED = Number(process.env.DUP_SEED ?? 20261202);
const CHUNKED = { jobs: 4, frames: 30 };
const WINDOWED = 40;

let stack: LocalStack;
let api: ReturnType<typeof client>;
let receiver: Awaited<ReturnType<typeof startReceiver>>;
let worker: Worker;
let running: Promise<void>;
const sent = { originals: 0, copies: 0 };

/** An SQS client that sends every message twice, shuffled and delayed apart. */
function duplicatingSqs(): SQSClient {
  const next = random(SEED);
  const plain = new SQSClient({ ...RETRY });
  const delay = (at?: number) => Math.max(at ?? 0, Math.floor(next() * 3));
  const shuffled = <T>(items: readonly T[]): T[] => {
    const out = [...items];
    for (let i = out.length - 1; i > 0; i--) {
      const j = Math.floor(next() * (i + 1));
      [out[i], out[j]] = [out[j]!, out[i]!];
    }
    return out;
  };
  const sqs = new SQSClient({ ...RETRY });
  sqs.middlewareStack.add(
    (handle, context) => async (args) => {
      const input = args.input as { QueueUrl: string; Entries?: SendMessageBatchRequestEntry[] } & Record<
        string,
        unknown
      >;
      if (context.commandName === 'SendMessageBatchCommand' && input.Entries) {
        const entries = input.Entries;
        args.input = {
          ...input,
          Entries: shuffled(entries.map((e) => ({ ...e, DelaySeconds: delay(e.DelaySeconds) }))),
        };
        const out = await handle(args);
        await plain.send(
          new SendMessageBatchCommand({
            QueueUrl: input.QueueUrl,
            Entries: shuffled(entries.map((e) => ({ ...e, DelaySeconds: delay(e.DelaySeconds) }))),
          }),
        );
        sent.originals += entries.length;
        sent.copies += entries.length;
        return out;
      }
      if (context.commandName === 'SendMessageCommand') {
        const { DelaySeconds, ...rest } = input as {
          DelaySeconds?: number;
          QueueUrl: string;
          MessageBody: string;
        };
        args.input = { ...rest, DelaySeconds: delay(DelaySeconds) };
        const out = await handle(args);
        await plain.send(new SendMessageCommand({ ...rest, DelaySeconds: delay(DelaySeconds) }));
        sent.originals++;
        sent.copies++;
        return out;
      }
      return handle(args);
    },
    { step: 'initialize', name: 'duplicateAndReorder' },
  );
  return sqs;
}

beforeAll(async () => {
  receiver = await startReceiver();
  stack = await startLocalStack({ withoutWorker: true, env: { [ENV.chunkSize]: '3' } });
  api = client(stack.url, stack.apiKey);
  // From now on the API, the fan-out and webhook delivery (the handlers read the process's container)
  // and the worker send through the duplicating client; the pollers receive as before.
  const app = new Container(process.env, () => ({ ...createClients(), sqs: duplicatingSqs() }));
  useContainer(app);
  worker = createWorker(app, process.env, { waitSeconds: 1, retryBaseMs: 10, concurrency: 4 });
  running = worker.run();
});
afterAll(async () => {
  worker?.stop();
  await running;
  useContainer(stack.app);
  await stack?.stop();
  await receiver?.close();
});

const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('hex');

describe('every plan, frame and event message delivered twice and out of order', () => {
  it('makes each job once: exact counts, the frames the records name, each event recorded and delivered once', async () => {
    const secret = (await api.api.getWebhookSecret()).secret;
    const started = Date.now();
    const bodies = [
      ...Array.from({ length: CHUNKED.jobs }, (_, j) => ({
        shot: `DUP2_SH${j}`,
        prompt: 'a ferris wheel rolls off its axle onto the pier',
        frames: { start: 1001, end: 1000 + CHUNKED.frames },
      })),
      {
        shot: 'DUP2_WIN',
        prompt: 'a ferris wheel rolls off its axle onto the pier',
        model: 'reference-window',
        windowMode: 'chained',
        window: { size: 13, overlap: 4 },
        frames: { start: 1001, end: 1000 + WINDOWED },
      },
    ];
    const ids: string[] = [];
    for (const body of bodies) {
      const created = await api.createJob({
        ...body,
        width: 64,
        height: 64,
        thumbnails: true,
        webhook: { url: receiver.url },
      });
      expect(created.status, JSON.stringify(created.body)).toBe(202);
      ids.push(created.body.id);
    }
    const jobs = await Promise.all(ids.map((id) => api.waitForJob(id, isFinished, 180_000)));

    const s3 = createClients().s3;
    const events: EventRecord[] = [];
    let madeTwice = 0;
    for (const job of jobs) {
      const total = job.frames.total;
      expect(job.status).toBe('succeeded');
      expect(job.frames).toMatchObject({ succeeded: total, failed: 0, canceled: 0 });
      const keys = await keysUnder(stack, job.outputPrefix);
      expect(keys).toHaveLength(2 * total + 2);
      // The bytes stored under each frame's name are those its record and the manifest name.
      const records = await api.allFrames(job.id);
      expect(records).toHaveLength(total);
      const prefix = job.outputPrefix.replace(/^s3:\/\/[^/]+\//, '');
      const manifest = JSON.parse(
        await (
          await s3.send(
            new GetObjectCommand({ Bucket: stack.env[ENV.bucket], Key: `${prefix}manifest.json` }),
          )
        ).Body!.transformToString(),
      ) as { frames: { frame: number; sha256: string }[] };
      const inManifest = new Map(manifest.frames.map((f) => [f.frame, f.sha256]));
      for (const f of records) {
        const key = `${prefix}${job.shot}.${f.frame}.png`;
        const bytes = await (
          await s3.send(new GetObjectCommand({ Bucket: stack.env[ENV.bucket], Key: key }))
        ).Body!.transformToByteArray();
        expect(sha256(bytes), key).toBe(f.sha256);
        expect(inManifest.get(f.frame), key).toBe(f.sha256);
        // Both copies of a chunk may take its frames while neither has finished: made twice, kept once.
        if (f.attempts > 1) madeTwice++;
      }
      const recorded = await stack.app.events.listEvents(job.id);
      const types = recorded.map((e) => e.type);
      expect(types.filter((t) => t === 'job.started')).toHaveLength(1);
      expect(types.filter((t) => t === 'job.succeeded')).toHaveLength(1);
      const frames = recorded
        .filter((e) => e.type === 'frame.succeeded')
        .map((e) => (e.data.frame as { frame: number }).frame);
      expect(frames.sort((a, b) => a - b)).toEqual(records.map((f) => f.frame).sort((a, b) => a - b));
      events.push(...recorded);
    }

    // Each recorded event reaches the webhook once, signed; the second copy of its message sent nothing.
    const expected = new Set(events.map((e) => e.id));
    await eventually(
      async () => {
        const got = new Set(receiver.received.map((r) => r.headers['webhook-id'] as string));
        return [...expected].every((id) => got.has(id)) ? true : undefined;
      },
      'every event delivered',
      60_000,
    );
    // Both copies of every message are gone from the queues before the deliveries are counted.
    for (const queue of [stack.app.planQueue, stack.app.frameQueue, stack.app.eventQueue]) {
      await eventually(async () => {
        const { visible, inFlight } = await queue.depth();
        return visible + inFlight === 0 ? true : undefined;
      }, 'the queues to drain');
    }
    const verifier = new Webhook(secret);
    for (const r of receiver.received) verifier.verify(r.body, r.headers as Record<string, string>);
    const delivered = receiver.received.map((r) => r.headers['webhook-id'] as string);
    expect(delivered.sort()).toEqual([...expected].sort());
    expect(sent.copies).toBeGreaterThan(0);
    expect(sent.copies).toBe(sent.originals);
    console.log(
      `duplicates: ${sent.originals} messages sent twice, out of order; ${jobs.length} jobs, ${jobs.reduce((n, j) => n + j.frames.total, 0)} frames, ${events.length} events, ${delivered.length} deliveries, ${madeTwice} frames made twice, worker duplicates seen ${worker.stats.duplicates + worker.stats.framesSkipped}, ${((Date.now() - started) / 1000).toFixed(1)} s`,
    );
  }, 300_000); // generous: two cores shared with other work make minutes of seconds
});
