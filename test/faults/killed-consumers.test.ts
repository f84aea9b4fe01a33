import type { ChildProcess } from 'node:child_process';
import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Queue } from '../../functions/adapters/queues.ts';
import type { EventRecord } from '../../functions/core/model.ts';
import { ENV } from '../../functions/shared/env.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, eventually, isFinished } from '../support/api.ts';
import { startReceiver } from '../support/receiver.ts';
import { exited, keysUnder, killAll, random, sleep, spawnEntry } from './support/processes.ts';

/**
 * The fan-out and the webhook sender killed mid-batch (issue 14, point 1). Each runs as a process of its
 * own (./support/consumer.ts: local mode's event source calling the deployed handler module), and is
 * SIGKILLed at random moments while its queue holds work, then started again, as Lambda's sandbox dies
 * with a batch in hand. The worker runs in the test's process. Plans and events a killed consumer held
 * come back after 3 s (the consumers' receive visibility here, 6 min in AWS), and a webhook attempt its
 * killed sender claimed goes stale after 2 s (FRAMECAST_WEBHOOK_CLAIM_STALE_SECONDS, 90 s in AWS).
 *
 * What must hold: every frame planned, stored and counted once, each job succeeded with one
 * job.succeeded; every recorded event delivered to the job's webhook, signed, with its event id as
 * webhook-id, and recorded delivered. A receiver may see an event twice (the sender died between
 * sending and recording: delivery is at least once, and webhook-id lets it drop the copy), never an
 * event that was not recorded.
 */

const JOBS = 10;
const FRAMES = 40;
const KILLS = 10;
const SEED = Number(process.env.KILL_SEED ?? 20261201);

let stack: LocalStack;
let api: ReturnType<typeof client>;
let receiver: Awaited<ReturnType<typeof startReceiver>>;

beforeAll(async () => {
  // The receiver answers within 20 to 80 ms, as a vendor's endpoint might: a batch of webhooks is in
  // flight long enough for a kill to land in it.
  const wait = random(SEED + 1);
  receiver = await startReceiver(async () => {
    await sleep(20 + wait() * 60);
    return 200;
  });
  stack = await startLocalStack({
    withoutFanout: true,
    withoutWebhooks: true,
    worker: { concurrency: 4 },
    env: { [ENV.chunkSize]: '1' },
  });
  api = client(stack.url, stack.apiKey);
});
afterAll(async () => {
  await stack?.stop();
  await receiver?.close();
});

const consumerEnv = {
  CONSUMER_VISIBILITY_SECONDS: '3',
  // A plan of 40 one-frame chunks is four batches of ten: 250 ms before each makes it last a second.
  CONSUMER_SEND_DELAY_MS: '250',
  [ENV.webhookClaimStaleSeconds]: '2',
};
const startConsumer = (which: 'fanout' | 'webhooks') =>
  spawnEntry(stack, 'test/faults/support/consumer.ts', [which], consumerEnv);

/**
 * Kills the consumer at random moments, each time once it holds a batch (messages in flight on its
 * queue), KILLS times or until the jobs are done; counts the kills that found messages in flight.
 */
async function killWhileBusy(
  which: 'fanout' | 'webhooks',
  queue: Queue,
  processes: ChildProcess[],
  pause: () => number,
  done: () => boolean,
) {
  let kills = 0;
  let midBatch = 0;
  while (kills < KILLS && !done()) {
    await sleep(pause());
    // Up to 5 s for the restarted consumer to take a batch; a kill of an idle one is a kill too.
    let inFlight = 0;
    for (let i = 0; i < 50 && !done(); i++) {
      inFlight = (await queue.depth()).inFlight;
      if (inFlight > 0) break;
      await sleep(100);
    }
    if (done()) break;
    processes[0]!.kill('SIGKILL');
    await exited(processes[0]!);
    kills++;
    if (inFlight > 0) midBatch++;
    processes[0] = startConsumer(which);
  }
  return { kills, midBatch };
}

describe('the fan-out and the webhook sender killed mid-batch', () => {
  it('plan, store and count every frame once, and deliver every event', async () => {
    const secret = (await api.api.getWebhookSecret()).secret;
    const fanout = [startConsumer('fanout')];
    const sender = [startConsumer('webhooks')];
    const started = Date.now();
    try {
      const ids: string[] = [];
      for (let j = 0; j < JOBS; j++) {
        const created = await api.createJob({
          // Asked for, so that each frame's second object is checked for duplicates too.
          thumbnails: true,
          shot: `KILLC_SH${String(j).padStart(3, '0')}`,
          prompt: 'a radio mast buckles in the storm',
          width: 64,
          height: 64,
          frames: { start: 1001, end: 1000 + FRAMES },
          webhook: { url: receiver.url },
        });
        expect(created.status).toBe(202);
        ids.push(created.body.id);
      }
      let finished = false;
      const next = random(SEED);
      const [planKills, senderKills] = await Promise.all([
        killWhileBusy(
          'fanout',
          stack.app.planQueue,
          fanout,
          () => 500 + next() * 1000,
          () => finished,
        ),
        killWhileBusy(
          'webhooks',
          stack.app.eventQueue,
          sender,
          () => 1000 + next() * 1000,
          () => finished,
        ),
        (async () => {
          for (const id of ids) await api.waitForJob(id, isFinished, 200_000);
          finished = true;
        })(),
      ]);

      // Each job: succeeded, exact counts, one object per frame (and its thumbnail), a manifest, a clip.
      const events: EventRecord[] = [];
      for (const id of ids) {
        const job = (await api.getJob(id)).body;
        expect(job.status).toBe('succeeded');
        expect(job.frames).toMatchObject({ total: FRAMES, succeeded: FRAMES, failed: 0, canceled: 0 });
        expect(await keysUnder(stack, job.outputPrefix)).toHaveLength(2 * FRAMES + 2);
        const recorded = await stack.app.events.listEvents(id);
        expect(recorded.filter((e) => e.type === 'job.succeeded')).toHaveLength(1);
        expect(recorded.filter((e) => e.type === 'frame.succeeded')).toHaveLength(FRAMES);
        events.push(...recorded);
      }

      // Every recorded event reaches the receiver and is recorded delivered, whatever the kills held.
      const expected = new Set(events.map((e) => e.id));
      const verifier = new Webhook(secret);
      await eventually(
        async () => {
          const got = new Set(receiver.received.map((r) => r.headers['webhook-id'] as string));
          return [...expected].every((id) => got.has(id)) ? true : undefined;
        },
        'every event delivered',
        120_000,
      );
      for (const r of receiver.received) verifier.verify(r.body, r.headers as Record<string, string>);
      const sent = receiver.received.map((r) => r.headers['webhook-id'] as string);
      expect(sent.every((id) => expected.has(id))).toBe(true);
      await eventually(
        async () => {
          for (const e of events) {
            const [delivery] = await stack.app.hooksStore.listDeliveries(e.id);
            if (delivery?.status !== 'succeeded') return undefined;
          }
          return true;
        },
        'every delivery recorded',
        60_000,
      );
      const twice = sent.length - new Set(sent).size;
      // Nothing left behind: the plan and event queues drained, and their DLQs empty.
      for (const q of [stack.app.planQueue, stack.app.eventQueue]) {
        await eventually(async () => {
          const { visible, inFlight } = await q.depth();
          return visible + inFlight === 0 ? true : undefined;
        }, 'the queues to drain');
      }
      expect(planKills.kills).toBeGreaterThan(0);
      expect(senderKills.kills).toBeGreaterThan(0);
      console.log(
        `killed consumers: fan-out ${planKills.kills} kills (${planKills.midBatch} with plans in hand), webhook sender ${senderKills.kills} kills (${senderKills.midBatch} with events in hand); ${JOBS * FRAMES} frames, ${events.length} events, ${sent.length} deliveries (${twice} sent again after a kill), ${((Date.now() - started) / 1000).toFixed(1)} s`,
      );
    } finally {
      await killAll([...fanout, ...sender]);
    }
  }, 420_000); // generous: two cores shared with other work make minutes of seconds
});
