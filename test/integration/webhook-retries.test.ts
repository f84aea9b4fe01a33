import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { type EventMessage, eventMessageSchema } from '../../functions/core/messages.ts';
import type { EventRecord } from '../../functions/core/model.ts';
import { JITTER, MAX_ATTEMPTS, RETRY_SCHEDULE } from '../../functions/core/webhooks/schedule.ts';
import { WebhookService } from '../../functions/services/webhooks.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client } from '../support/api.ts';
import { startReceiver } from '../support/receiver.ts';

let stack: LocalStack;
let api: ReturnType<typeof client>;

// Delivery is driven by hand here, with an injected clock: a day of retries takes no time.
beforeAll(async () => {
  stack = await startLocalStack({ withoutWorker: true, withoutWebhooks: true });
  api = client(stack.url, stack.apiKey);
});
afterAll(() => stack?.stop());

/** A delivery service on the stack's table whose queues are lists the test reads. */
function harness(start: Date) {
  let now = start.getTime();
  const queued: { message: EventMessage; delay?: number }[] = [];
  const dead: EventMessage[] = [];
  const service = new WebhookService({
    jobs: stack.app.store,
    events: stack.app.events,
    hooks: stack.app.hooksStore,
    policy: { allowLoopback: true },
    eventQueue: {
      send: async (body, delay) =>
        void queued.push({ message: eventMessageSchema.parse(JSON.parse(body)), delay }),
    },
    eventDlq: { send: async (body) => void dead.push(eventMessageSchema.parse(JSON.parse(body))) },
    clock: () => new Date(now),
    random: () => 0.5,
  });
  return {
    service,
    queued,
    dead,
    at: () => now,
    set: (t: number) => {
      now = t;
    },
  };
}

/** A canceled job with a webhook: its job.canceled event is recorded and waits for delivery. */
async function eventFor(url: string): Promise<EventRecord> {
  const created = await api.createJob({
    shot: 'RETRY_SH',
    prompt: 'p',
    frames: { start: 1, end: 2 },
    webhook: { url },
  });
  await api.cancelJob(created.body.id);
  const [event] = await stack.app.events.listEvents(created.body.id);
  expect(event?.type).toBe('job.canceled');
  return event!;
}

const first = (e: EventRecord): EventMessage => ({ v: 1, eventId: e.id, jobId: e.jobId, tenant: e.tenant });

describe('a receiver that answers 500 three times and then 200', () => {
  it('gets the event on the fourth attempt, with one webhook-id across the attempts', async () => {
    const receiver = await startReceiver((n) => (n < 3 ? 500 : 200));
    try {
      const event = await eventFor(receiver.url);
      const h = harness(new Date());
      await h.service.deliver(first(event));
      for (let i = 0; i < 3; i++) {
        const retry = h.queued.shift()!;
        expect(retry.message.attempt).toBe(i + 2);
        h.set(Date.parse(retry.message.notBefore!));
        await h.service.deliver(retry.message);
      }
      expect(h.queued).toEqual([]);
      expect(receiver.received.map((r) => r.headers['webhook-id'])).toEqual(Array(4).fill(event.id));
      // Each attempt is signed afresh for its own time; the library recomputes and agrees.
      const { secret } = await stack.app.webhooks.secret(event.tenant);
      const wh = new Webhook(secret);
      for (const r of receiver.received) {
        const at = new Date(Number(r.headers['webhook-timestamp']) * 1000);
        expect(r.headers['webhook-signature']).toContain(wh.sign(event.id, at, r.body));
      }
      const [delivery] = await stack.app.hooksStore.listDeliveries(event.id);
      expect(delivery).toMatchObject({ target: 'job', status: 'succeeded', attemptCount: 4 });
      expect(delivery!.attempts.map((a) => a.status)).toEqual([500, 500, 500, 200]);
    } finally {
      await receiver.close();
    }
  });
});

describe('a dead receiver', () => {
  it('sees attempts follow the schedule, then the delivery fails and its message lands in the DLQ; redriven once the receiver is back, it is delivered once', async () => {
    // Down for every scheduled attempt, back for the redrive.
    const receiver = await startReceiver((n) => (n < MAX_ATTEMPTS ? 503 : 200));
    try {
      const event = await eventFor(receiver.url);
      const start = Date.now();
      const h = harness(new Date(start));
      await h.service.deliver(first(event));
      const attemptTimes = [h.at()];
      while (h.queued.length > 0) {
        const retry = h.queued.shift()!;
        const due = Date.parse(retry.message.notBefore!);
        // Before it is due, a retry only hops back onto the queue (SQS delays stop at 15 minutes).
        if (due - h.at() > 900_000) {
          await h.service.deliver(retry.message);
          const hop = h.queued.pop()!;
          expect(hop.message).toEqual(retry.message);
          expect(hop.delay).toBe(900);
        }
        h.set(due);
        await h.service.deliver(retry.message);
        attemptTimes.push(h.at());
      }
      expect(receiver.received).toHaveLength(MAX_ATTEMPTS);
      const gaps = attemptTimes.slice(1).map((t, i) => (t - attemptTimes[i]!) / 1000);
      gaps.forEach((gap, i) => {
        const nominal = RETRY_SCHEDULE[i + 1]!;
        expect(gap).toBeGreaterThanOrEqual(Math.floor(nominal * (1 - JITTER)));
        expect(gap).toBeLessThanOrEqual(Math.ceil(nominal * (1 + JITTER)));
      });
      const span = (attemptTimes.at(-1)! - start) / 3600_000;
      expect(span).toBeGreaterThan(20);
      expect(span).toBeLessThan(34);

      // The dead letter names the attempt a redrive makes.
      expect(h.dead).toEqual([{ ...first(event), endpoint: 'job', attempt: MAX_ATTEMPTS + 1 }]);
      const [delivery] = await stack.app.hooksStore.listDeliveries(event.id);
      expect(delivery).toMatchObject({ status: 'failed', attemptCount: MAX_ATTEMPTS });
      expect(delivery!.attempts.every((a) => a.status === 503)).toBe(true);

      // The DLQ redriven (framecast redrive --queue event), twice over: one more attempt, delivered once.
      await h.service.deliver(h.dead[0]!);
      await h.service.deliver(h.dead[0]!);
      expect(receiver.received).toHaveLength(MAX_ATTEMPTS + 1);
      const [after] = await stack.app.hooksStore.listDeliveries(event.id);
      expect(after).toMatchObject({ status: 'succeeded', attemptCount: MAX_ATTEMPTS + 1 });
      expect(h.queued).toHaveLength(0);
    } finally {
      await receiver.close();
    }
  });

  it('honours Retry-After on 429 by waiting at least that long', async () => {
    const receiver = await startReceiver((n) =>
      n === 0 ? { status: 429, headers: { 'retry-after': '120' } } : 200,
    );
    try {
      const event = await eventFor(receiver.url);
      const h = harness(new Date());
      await h.service.deliver(first(event));
      const retry = h.queued.shift()!;
      expect(Date.parse(retry.message.notBefore!) - h.at()).toBeGreaterThanOrEqual(120_000);
    } finally {
      await receiver.close();
    }
  });
});

describe('delivery is idempotent', () => {
  it('sends a duplicated queue message once', async () => {
    const receiver = await startReceiver();
    try {
      const event = await eventFor(receiver.url);
      const h = harness(new Date());
      await Promise.all([h.service.deliver(first(event)), h.service.deliver(first(event))]);
      await h.service.deliver(first(event));
      expect(receiver.received).toHaveLength(1);
    } finally {
      await receiver.close();
    }
  });
});

describe('a receiver that answers 410 Gone', () => {
  it('disables the endpoint, which then gets no more events', async () => {
    const receiver = await startReceiver(() => 410);
    try {
      const vendor = client(stack.url, await stack.createApiKey('gone'));
      const endpoint = await vendor.createWebhook<{ id: string }>({ url: receiver.url });
      const job = await vendor.createJob({ shot: 'GONE_SH', prompt: 'p', frames: { start: 1, end: 1 } });
      await vendor.cancelJob(job.body.id);
      const [event] = await stack.app.events.listEvents(job.body.id);
      const h = harness(new Date());
      await h.service.deliver(first(event!));
      expect(h.queued).toEqual([]);
      const listed = await vendor.listWebhooks<{
        endpoints: { id: string; disabled: boolean; disabledReason?: string }[];
      }>();
      expect(listed.body.endpoints).toEqual([
        expect.objectContaining({
          id: endpoint.body.id,
          disabled: true,
          disabledReason: expect.stringMatching(/410/),
        }),
      ]);
      const next = await vendor.createJob({ shot: 'GONE_SH', prompt: 'p', frames: { start: 1, end: 1 } });
      await vendor.cancelJob(next.body.id);
      const [later] = await stack.app.events.listEvents(next.body.id);
      await h.service.deliver(first(later!));
      expect(receiver.received).toHaveLength(1);
    } finally {
      await receiver.close();
    }
  });
});
