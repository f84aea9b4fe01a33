import { Webhook } from 'standardwebhooks';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { EventView } from '../../functions/core/schemas.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, eventually, isFinished } from '../support/api.ts';
import { startReceiver } from '../support/receiver.ts';

let stack: LocalStack;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  stack = await startLocalStack({ worker: { retryBaseMs: 5 } });
  api = client(stack.url, stack.apiKey);
});
afterAll(() => stack?.stop());

type Body = { type: string; timestamp: string; data: { id: string; frame?: { frame: number } } };

describe('a vendor endpoint on a 24-frame shot', () => {
  it('receives every event of the shot, each signed by the Standard Webhooks specification', async () => {
    const receiver = await startReceiver();
    let endpointId: string | undefined;
    try {
      const registered = await api.createWebhook<{ id: string; url: string; disabled: boolean }>({
        url: receiver.url,
      });
      expect(registered.status).toBe(201);
      expect(registered.body).toMatchObject({ url: receiver.url, disabled: false });
      expect(registered.body.id).toMatch(/^whe_/);
      endpointId = registered.body.id;
      const { body: secret } = await api.getWebhookSecret<{ secret: string }>();
      expect(secret.secret).toMatch(/^whsec_/);

      const created = await api.createJob({
        shot: 'HOOK_SH010',
        prompt: 'glass shatters outward in slow motion',
        frames: { start: 1001, end: 1024 },
        width: 64,
        height: 64,
      });
      const job = await api.waitForJob(created.body.id, isFinished);
      expect(job.status).toBe('succeeded');
      await eventually(
        async () =>
          receiver.received.some((r) => (JSON.parse(r.body) as Body).type === 'job.succeeded')
            ? true
            : undefined,
        'job.succeeded to arrive',
      );

      const verifier = new Webhook(secret.secret);
      const bodies = receiver.received.map((r) => {
        const verified = verifier.verify(r.body, r.headers as Record<string, string>) as Body;
        expect(r.headers['content-type']).toMatch(/application\/json/);
        return { id: r.headers['webhook-id'] as string, body: verified };
      });
      const ofJob = bodies.filter((b) => b.body.data.id === job.id);
      const types = ofJob.map((b) => b.body.type);
      expect(types.filter((t) => t === 'job.started')).toHaveLength(1);
      expect(types.filter((t) => t === 'job.succeeded')).toHaveLength(1);
      const frames = ofJob
        .filter((b) => b.body.type === 'frame.succeeded')
        .map((b) => b.body.data.frame!.frame);
      expect(frames.sort((a, b) => a - b)).toEqual(Array.from({ length: 24 }, (_, i) => 1001 + i));
      const progress = ofJob.filter((b) => b.body.type === 'job.progress');
      expect(progress.length).toBeGreaterThanOrEqual(1);
      expect(progress.length).toBeLessThanOrEqual(9);
      // One webhook-id per event, and it is the event's id.
      expect(new Set(ofJob.map((b) => b.id)).size).toBe(ofJob.length);

      const events = await api.listEvents<{ events: EventView[] }>(job.id);
      expect(events.status).toBe(200);
      expect(events.body.events.map((e) => e.id).sort()).toEqual(ofJob.map((b) => b.id).sort());
      for (const e of events.body.events) {
        expect(e.deliveries).toHaveLength(1);
        expect(e.deliveries[0]).toMatchObject({ target: registered.body.id, status: 'succeeded' });
        expect(e.deliveries[0]!.attempts[0]).toMatchObject({ attempt: 1, status: 200 });
      }
    } finally {
      if (endpointId) await api.deleteWebhook(endpointId);
      await receiver.close();
    }
  });
});

describe('the job’s own webhook', () => {
  it('gets only the events it asks for, and a redelivery sends one again with the same webhook-id', async () => {
    const receiver = await startReceiver();
    try {
      const created = await api.createJob({
        shot: 'HOOK_SH020',
        prompt: 'a lamp post bends in the wind',
        frames: { start: 1, end: 4 },
        width: 64,
        height: 64,
        webhook: { url: receiver.url, events: ['job.succeeded', 'job.failed'] },
      });
      expect(created.status).toBe(202);
      await api.waitForJob(created.body.id, isFinished);
      const first = await eventually(
        async () => receiver.received.find((r) => (JSON.parse(r.body) as Body).data.id === created.body.id),
        'the job webhook',
      );
      expect((JSON.parse(first.body) as Body).type).toBe('job.succeeded');

      const { body } = await api.listEvents<{ events: EventView[] }>(created.body.id);
      const done = body.events.find((e) => e.type === 'job.succeeded')!;
      const redelivered = await api.redeliverEvent<{ event: string; targets: string[] }>(done.id);
      expect(redelivered.status).toBe(202);
      expect(redelivered.body.targets).toContain('job');
      const again = await eventually(
        async () =>
          receiver.received.filter((r) => r.headers['webhook-id'] === done.id).length >= 2 ? true : undefined,
        'the redelivery',
      );
      expect(again).toBe(true);
      const ofJob = receiver.received.filter((r) => (JSON.parse(r.body) as Body).data.id === created.body.id);
      expect(ofJob.every((r) => (JSON.parse(r.body) as Body).type === 'job.succeeded')).toBe(true);
      const listed = await api.listEvents<{ events: EventView[] }>(created.body.id);
      const delivery = listed.body.events
        .find((e) => e.id === done.id)!
        .deliveries.find((d) => d.target === 'job')!;
      expect(delivery.attempts.map((a) => [a.attempt, a.status, a.manual ?? false])).toEqual([
        [1, 200, false],
        [2, 200, true],
      ]);
    } finally {
      await receiver.close();
    }
  });
});

describe('a receiver that hangs', () => {
  it('delays no other tenant: their events arrive while it still holds its request', async () => {
    let release: () => void = () => undefined;
    const held = new Promise<number>((ok) => {
      release = () => ok(200);
    });
    const slow = await startReceiver(() => held);
    const fast = await startReceiver();
    try {
      const slowTenant = client(stack.url, await stack.createApiKey('slow-vendor'));
      const fastTenant = client(stack.url, await stack.createApiKey('fast-vendor'));
      await slowTenant.createWebhook({ url: slow.url, events: ['job.canceled'] });
      await fastTenant.createWebhook({ url: fast.url, events: ['job.canceled'] });
      const a = await slowTenant.createJob({ shot: 'SLOW', prompt: 'p', frames: { start: 1, end: 1 } });
      await slowTenant.cancelJob(a.body.id);
      await eventually(
        async () => (slow.received.length === 1 ? true : undefined),
        'the slow receiver to be called',
      );

      const b = await fastTenant.createJob({ shot: 'FAST', prompt: 'p', frames: { start: 1, end: 1 } });
      await fastTenant.cancelJob(b.body.id);
      await eventually(
        async () => (fast.received.length === 1 ? true : undefined),
        'the other tenant’s event',
      );
      // The slow receiver has not answered yet: the other tenant's event did not wait for it.
      expect(slow.received).toHaveLength(1);
      release();
    } finally {
      release();
      await slow.close();
      await fast.close();
    }
  });
});

describe('managing endpoints and the secret', () => {
  it('lists and deletes endpoints, and a rotation signs with both secrets for a day', async () => {
    const vendor = client(stack.url, await stack.createApiKey('vendor-mgmt'));
    const a = await vendor.createWebhook<{ id: string }>({
      url: 'http://127.0.0.1:9/a',
      events: ['frame.failed'],
    });
    expect(a.status).toBe(201);
    expect(
      (await vendor.listWebhooks<{ endpoints: { id: string }[] }>()).body.endpoints.map((e) => e.id),
    ).toEqual([a.body.id]);
    expect((await vendor.deleteWebhook(a.body.id)).status).toBe(204);
    expect((await vendor.deleteWebhook(a.body.id)).status).toBe(404);
    expect((await vendor.listWebhooks<{ endpoints: unknown[] }>()).body.endpoints).toEqual([]);

    const before = (await vendor.getWebhookSecret<{ secret: string }>()).body.secret;
    const rotated = await vendor.rotateWebhookSecret<{ secret: string; previousExpiresAt: string }>();
    expect(rotated.status).toBe(200);
    expect(rotated.body.secret).not.toBe(before);
    const overlap = Date.parse(rotated.body.previousExpiresAt) - Date.now();
    expect(overlap).toBeGreaterThan(23.9 * 3600 * 1000);
    expect(overlap).toBeLessThanOrEqual(24 * 3600 * 1000);
    expect((await vendor.getWebhookSecret<{ secret: string }>()).body.secret).toBe(rotated.body.secret);
  });

  it('keeps one tenant’s endpoints and events from another', async () => {
    const other = client(stack.url, await stack.createApiKey('vendor-other'));
    const mine = (await api.listJobs({ limit: 1 })).body.jobs[0]!;
    expect((await other.listEvents(mine.id)).status).toBe(404);
    const { body } = await api.listEvents<{ events: EventView[] }>(mine.id);
    expect((await other.redeliverEvent(body.events[0]!.id)).status).toBe(404);
    expect((await other.listWebhooks<{ endpoints: unknown[] }>()).body.endpoints).toEqual([]);
  });
});
