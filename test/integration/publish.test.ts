import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { credentialsOf } from '../../functions/adapters/trackers.ts';
import { type EventMessage, eventMessageSchema } from '../../functions/core/messages.ts';
import type { EventRecord } from '../../functions/core/model.ts';
import { parseTemplate } from '../../functions/core/naming.ts';
import { PublishersSchema } from '../../functions/core/publish.ts';
import { publishers } from '../../functions/services/publishing.ts';
import { WebhookService } from '../../functions/services/webhooks.ts';
import { ENV } from '../../functions/shared/env.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, isFinished } from '../support/api.ts';
import { CREDENTIALS, publisherConfigs, SHOT, startTrackers } from '../support/trackers.ts';

/**
 * Publishing a finished job to the three trackers through the webhook delivery path, driven by hand with an
 * injected clock as the webhook retry tests are: a tracker that answers 503 is retried on the webhook
 * schedule until it takes the publish, and each tracker's attempts are recorded with the event.
 */

const STUDIO = '{shot}_{pass}_v{version:03}.{frame:04}.{ext}';
let stack: LocalStack;
let api: ReturnType<typeof client>;
let trackers: Awaited<ReturnType<typeof startTrackers>>;

beforeAll(async () => {
  [stack, trackers] = await Promise.all([
    startLocalStack({
      withoutWebhooks: true,
      env: { [ENV.namingTemplate]: STUDIO, [ENV.namingPass]: 'comp' },
    }),
    // The first two requests to ShotGrid find it unavailable: its first two attempts fail.
    startTrackers({ failFirst: { shotgrid: 2 } }),
  ]);
  api = client(stack.url, await stack.createApiKey('publish'));
});
afterAll(async () => {
  await stack?.stop();
  await trackers?.close();
});

function harness(configs: unknown = publisherConfigs(trackers.url)) {
  let now = Date.now();
  const queued: EventMessage[] = [];
  const dead: EventMessage[] = [];
  const service = new WebhookService({
    jobs: stack.app.store,
    events: stack.app.events,
    hooks: stack.app.hooksStore,
    policy: { allowLoopback: true },
    eventQueue: { send: async (body) => void queued.push(eventMessageSchema.parse(JSON.parse(body))) },
    eventDlq: { send: async (body) => void dead.push(eventMessageSchema.parse(JSON.parse(body))) },
    clock: () => new Date(now),
    random: () => 0.5,
    publishers: publishers(PublishersSchema.parse(configs), {
      jobs: stack.app.store,
      naming: parseTemplate(STUDIO),
      credentials: credentialsOf(CREDENTIALS, async () => {
        throw new Error('local credentials are given; no secret is read');
      }),
    }),
  });
  return { service, queued, dead, set: (t: number) => (now = t) };
}

const first = (e: EventRecord): EventMessage => ({ v: 1, eventId: e.id, jobId: e.jobId, tenant: e.tenant });

describe('a job that succeeds in a production that publishes to ShotGrid, ftrack and Kitsu', () => {
  it('is published to each, ShotGrid after two failed attempts retried on the webhook schedule', async () => {
    const created = await api.createJob({
      shot: SHOT,
      prompt: 'a collapsing tower at dusk',
      width: 64,
      height: 64,
      frames: { start: 1001, end: 1004 },
      output: { format: 'exr' },
    });
    const job = await api.waitForJob(created.body.id, isFinished);
    expect(job.status).toBe('succeeded');
    const events = await stack.app.events.listEvents(job.id);
    const succeeded = events.find((e) => e.type === 'job.succeeded')!;
    const started = events.find((e) => e.type === 'job.started')!;

    const h = harness();
    await h.service.deliver(first(started));
    expect(await stack.app.hooksStore.listDeliveries(started.id)).toEqual([]);

    await h.service.deliver(first(succeeded));
    while (h.queued.length > 0) {
      const retry = h.queued.shift()!;
      expect(retry.endpoint).toBe('publish-shotgrid');
      h.set(Date.parse(retry.notBefore!));
      await h.service.deliver(retry);
    }
    expect(h.dead).toEqual([]);
    expect(trackers.refusals).toEqual([]);

    const deliveries = await stack.app.hooksStore.listDeliveries(succeeded.id);
    const byTarget = Object.fromEntries(deliveries.map((d) => [d.target, d]));
    expect(byTarget['publish-ftrack']).toMatchObject({ status: 'succeeded', attemptCount: 1 });
    expect(byTarget['publish-kitsu']).toMatchObject({ status: 'succeeded', attemptCount: 1 });
    expect(byTarget['publish-shotgrid']).toMatchObject({ status: 'succeeded', attemptCount: 3 });
    expect(byTarget['publish-shotgrid']!.attempts.map((a) => a.status)).toEqual([503, 503, 200]);

    // One Version and one PublishedFile, whose %04d path names every stored frame.
    expect(trackers.published.shotgrid.versions).toHaveLength(1);
    const [version] = trackers.published.shotgrid.versions;
    expect(version).toMatchObject({ code: `${SHOT}_comp_v001`, sg_first_frame: 1001, sg_last_frame: 1004 });
    const path = String(version!.sg_path_to_frames);
    expect(path).toBe(`${job.outputPrefix}${SHOT}_comp_v001.%04d.exr`);
    const { s3, bucket } = stack.app.frameStore;
    for (let frame = 1001; frame <= 1004; frame++) {
      const key = path.replace(`s3://${bucket}/`, '').replace('%04d', String(frame));
      await expect(s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }))).resolves.toBeDefined();
    }
    expect(trackers.published.kitsu.outputFiles[0]).toMatchObject({
      revision: 1,
      nb_elements: 4,
      representation: 'exr',
    });
    expect(trackers.published.ftrack.creates.map((c) => c.entity_type)).toContain('SequenceComponent');
  });
});

describe('a gated job in a production that publishes on approval', () => {
  it('is published when a supervisor approves it, through the same delivery path', async () => {
    const created = await api.createJob({
      shot: SHOT,
      prompt: 'a collapsing tower at dusk, approved',
      width: 64,
      height: 64,
      frames: { start: 2001, end: 2004 },
      review: { frames: [2001] },
    });
    await api.waitForJob(created.body.id, (j) => j.status === 'awaiting_review');
    expect((await api.approveJob(created.body.id)).status).toBe(200);
    const approved = (await stack.app.events.listEvents(created.body.id)).find(
      (e) => e.type === 'job.approved',
    );
    expect(approved).toBeDefined();

    // Kitsu alone, and on approval: the production's publisher set for this case.
    const onApproval = publisherConfigs(trackers.url)
      .filter((p) => p.tracker === 'kitsu')
      .map((p) => ({ ...p, events: ['job.approved' as const] }));
    const before = trackers.published.kitsu.outputFiles.length;
    const { service } = harness(onApproval);
    await service.deliver(first(approved!));
    const deliveries = await stack.app.hooksStore.listDeliveries(approved!.id);
    expect(deliveries.map((d) => [d.target, d.status])).toEqual([['publish-kitsu', 'succeeded']]);
    expect(trackers.published.kitsu.outputFiles.length).toBe(before + 1);
    expect(trackers.refusals).toEqual([]);
  });
});
