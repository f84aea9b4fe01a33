import { GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FrameResponse, JobResponse } from '../../functions/core/schemas.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, isFinished } from '../support/client.ts';

/**
 * Review gates on the local stack (docs/architecture.md, "Versions and review"): the review frames (or
 * their windows) are made first and alone, the job then waits in awaiting_review with nothing on the
 * frame queue, approve makes the rest, reject cancels; who and when is on the job and in its events.
 */

let stack: LocalStack;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  stack = await startLocalStack({
    worker: { retryBaseMs: 5 },
    env: { FRAMECAST_CORS_ORIGINS: 'https://review.studio.example' },
  });
  api = client(stack.url, stack.apiKey);
});
afterAll(() => stack?.stop());

const shot = (name: string, extra: Record<string, unknown> = {}) => ({
  shot: name,
  prompt: 'a supervisor looks at hero frames',
  frames: { start: 1, end: 12 },
  seed: 7,
  width: 64,
  height: 64,
  ...extra,
});

const awaiting = (job: JobResponse) => job.status === 'awaiting_review' || isFinished(job);

async function eventsOf(id: string) {
  const r = await api.call<{ events: { type: string; data: Record<string, unknown> }[] }>(
    'GET',
    `/v1/jobs/${id}/events?limit=500`,
  );
  return r.body.events;
}

/** Messages on the frame queue, visible or held by a worker: what the fleet scales on. */
async function frameBacklog(): Promise<number> {
  const sqs = new SQSClient({});
  const out = await sqs.send(
    new GetQueueAttributesCommand({
      QueueUrl: stack.env.FRAMECAST_FRAME_QUEUE_URL ?? stack.queues.frame.url,
      AttributeNames: ['ApproximateNumberOfMessages', 'ApproximateNumberOfMessagesNotVisible'],
    }),
  );
  return (
    Number(out.Attributes?.ApproximateNumberOfMessages ?? 0) +
    Number(out.Attributes?.ApproximateNumberOfMessagesNotVisible ?? 0)
  );
}

const statusByFrame = (frames: FrameResponse[]) => new Map(frames.map((f) => [f.frame, f.status]));

describe('a job with a review gate', () => {
  it('makes only its review frames, waits for review holding nothing, and makes the rest once approved', async () => {
    const created = await api.createJob(shot('GATE_SH', { review: { frames: [9, 3, 9] } }));
    expect(created.status).toBe(202);
    expect(created.body.review).toEqual({ frames: [3, 9], status: 'pending' });
    const id = created.body.id;

    const waiting = await api.waitForJob(id, awaiting);
    expect(waiting.status).toBe('awaiting_review');
    expect(waiting.review).toMatchObject({ frames: [3, 9], status: 'awaiting' });
    expect(waiting.review?.requestedAt).toBeDefined();
    expect(waiting.frames).toMatchObject({ total: 12, succeeded: 2, failed: 0, canceled: 0 });
    const statuses = statusByFrame(await api.allFrames(id));
    expect([...statuses].filter(([, s]) => s === 'succeeded').map(([f]) => f)).toEqual([3, 9]);
    expect([...statuses].filter(([, s]) => s === 'pending')).toHaveLength(10);
    // No GPU is held: nothing of the job is queued or in flight while it waits.
    expect(await frameBacklog()).toBe(0);
    const requested = (await eventsOf(id)).filter((e) => e.type === 'job.review_requested');
    expect(requested).toHaveLength(1);
    expect(requested[0]!.data).toMatchObject({ id, status: 'awaiting_review' });

    const approved = await api.call<JobResponse>('POST', `/v1/jobs/${id}/approve`);
    expect(approved.status).toBe(200);
    expect(approved.body.status).toBe('running');
    expect(approved.body.review).toMatchObject({ status: 'approved', approvedBy: { tenant: 'dev' } });
    expect(approved.body.review?.approvedBy?.keyId).toMatch(/^[0-9a-f]{12}$/);
    expect(approved.body.review?.approvedAt).toBeDefined();

    const done = await api.waitForJob(id, isFinished);
    expect(done.status).toBe('succeeded');
    expect(done.frames).toMatchObject({ total: 12, succeeded: 12 });
    const events = await eventsOf(id);
    const types = events.map((e) => e.type);
    expect(types.filter((t) => t === 'job.approved')).toHaveLength(1);
    expect(types.indexOf('job.review_requested')).toBeLessThan(types.indexOf('job.approved'));
    expect(types.indexOf('job.approved')).toBeLessThan(types.indexOf('job.succeeded'));
    expect(types.filter((t) => t === 'frame.succeeded')).toHaveLength(12);
    const approvedEvent = events.find((e) => e.type === 'job.approved')!;
    expect(approvedEvent.data.review).toMatchObject({ status: 'approved', approvedBy: { tenant: 'dev' } });

    // Approving again a job that has finished is a conflict, and changes nothing.
    const again = await api.call<{ error: { code: string } }>('POST', `/v1/jobs/${id}/approve`);
    expect(again.status).toBe(409);
    expect((await api.getJob(id)).body.status).toBe('succeeded');
  });

  it('reviews every N-th frame when asked so', async () => {
    const created = await api.createJob(shot('EVERY_SH', { review: { every: 5 } }));
    expect(created.body.review?.frames).toEqual([1, 6, 11]);
    const waiting = await api.waitForJob(created.body.id, awaiting);
    expect(waiting.status).toBe('awaiting_review');
    expect(waiting.frames.succeeded).toBe(3);
    expect((await api.call('POST', `/v1/jobs/${created.body.id}/reject`)).status).toBe(200);
  });

  it('is canceled when rejected, with who, when and why on the job and in its job.canceled event', async () => {
    const created = await api.createJob(shot('REJECT_SH', { review: { frames: [1] } }));
    const id = created.body.id;
    await api.waitForJob(id, awaiting);
    const rejected = await api.call<JobResponse>('POST', `/v1/jobs/${id}/reject`, {
      reason: 'the dust reads as snow',
    });
    expect(rejected.status).toBe(200);
    expect(rejected.body.status).toBe('canceled');
    expect(rejected.body.frames).toMatchObject({ total: 12, succeeded: 1, canceled: 11 });
    expect(rejected.body.review).toMatchObject({
      status: 'rejected',
      reason: 'the dust reads as snow',
      rejectedBy: { tenant: 'dev' },
    });
    expect(rejected.body.review?.rejectedAt).toBeDefined();
    const canceledEvent = (await eventsOf(id)).find((e) => e.type === 'job.canceled');
    expect(canceledEvent?.data.review).toMatchObject({
      status: 'rejected',
      reason: 'the dust reads as snow',
    });
    const statuses = statusByFrame(await api.allFrames(id));
    expect([...statuses.values()].filter((s) => s === 'canceled')).toHaveLength(11);

    // Neither approve nor reject moves a job that no longer awaits review.
    for (const action of ['approve', 'reject']) {
      const r = await api.call<{ error: { code: string; message: string } }>(
        'POST',
        `/v1/jobs/${id}/${action}`,
      );
      expect(r.status).toBe(409);
      expect(r.body.error.message).toMatch(/not awaiting_review/);
    }
    expect((await api.getJob(id)).body.status).toBe('canceled');
  });

  it('refuses approve and reject of a job without a gate, of an unknown job, and without jobs:write', async () => {
    const plain = await api.createJob(shot('PLAIN_SH', { frames: { start: 1, end: 1 } }));
    await api.waitForJob(plain.body.id, isFinished);
    const r = await api.call<{ error: { message: string } }>('POST', `/v1/jobs/${plain.body.id}/approve`);
    expect(r.status).toBe(409);
    expect(r.body.error.message).toMatch(/no review gate/);
    expect((await api.call('POST', '/v1/jobs/job_00000000000000000000000000/approve')).status).toBe(404);
    expect((await api.call('POST', '/v1/jobs/job_00000000000000000000000000/reject')).status).toBe(404);
    const reader = client(stack.url, await stack.createApiKey('dev', ['jobs:read']));
    expect((await reader.call('POST', `/v1/jobs/${plain.body.id}/approve`)).status).toBe(403);
    const other = client(stack.url, await stack.createApiKey('other-tenant'));
    expect((await other.call('POST', `/v1/jobs/${plain.body.id}/approve`)).status).toBe(404);
    const bad = await api.call<{ error: { details: { field: string } } }>(
      'POST',
      `/v1/jobs/${plain.body.id}/reject`,
      { because: 'x' },
    );
    expect(bad.status).toBe(400);
    expect(bad.body.error.details.field).toBe('body.because');
  });

  it('refuses a gate outside the shot, with both frames and every, or covering every frame, naming the field', async () => {
    const cases: [Record<string, unknown>, string][] = [
      [{ frames: [3, 13] }, 'body.review.frames.1'],
      [{ frames: [3], every: 2 }, 'body.review'],
      [{ frames: [] }, 'body.review.frames'],
      [{ every: 0 }, 'body.review.every'],
      [{ frames: [1], hero: true }, 'body.review.hero'],
      [{ every: 1 }, 'body.review'],
    ];
    for (const [review, field] of cases) {
      const r = await api.call<{ error: { details: { field: string } } }>(
        'POST',
        '/v1/jobs',
        shot('BAD_GATE', { review }),
      );
      expect(r.status, JSON.stringify(review)).toBe(400);
      expect(r.body.error.details.field, JSON.stringify(review)).toBe(field);
    }
    expect((await api.listJobs('?shot=BAD_GATE')).body.jobs).toEqual([]);
  });
});

describe('a review page on another origin', () => {
  it('gets CORS answers from local mode for the configured origin only', async () => {
    const preflight = await fetch(`${stack.url}/v1/jobs/job_00000000000000000000000000/approve`, {
      method: 'OPTIONS',
      headers: {
        origin: 'https://review.studio.example',
        'access-control-request-method': 'POST',
        'access-control-request-headers': 'authorization, content-type',
      },
    });
    expect(preflight.status).toBe(204);
    expect(preflight.headers.get('access-control-allow-origin')).toBe('https://review.studio.example');
    expect(preflight.headers.get('access-control-allow-headers')).toBe(
      'authorization, content-type, idempotency-key',
    );
    const listed = await api.call('GET', '/v1/jobs?limit=1', undefined, {
      origin: 'https://review.studio.example',
    });
    expect(listed.status).toBe(200);
    expect(listed.headers.get('access-control-allow-origin')).toBe('https://review.studio.example');
    const stranger = await api.call('GET', '/v1/jobs?limit=1', undefined, { origin: 'https://evil.example' });
    expect(stranger.headers.get('access-control-allow-origin')).toBeNull();
  });
});

describe('a gated job on a model with windows', () => {
  // Window 17, overlap 4 over frames 1-60: windows own 1-17, 18-30, 31-43, 44-56, 57-60.
  const windowed = (name: string, mode: 'chained' | 'parallel', frames: number[]) =>
    shot(name, {
      model: 'reference-window',
      frames: { start: 1, end: 60 },
      window: { size: 17, overlap: 4 },
      windowMode: mode,
      review: { frames },
    });

  it('in chained mode makes the chain up to the window of the last review frame, then the rest', async () => {
    const created = await api.createJob(windowed('GATE_CHAIN', 'chained', [20]));
    const id = created.body.id;
    const waiting = await api.waitForJob(id, awaiting, 120_000);
    expect(waiting.status).toBe('awaiting_review');
    expect(waiting.frames.succeeded).toBe(30);
    const statuses = statusByFrame(await api.allFrames(id));
    for (let f = 1; f <= 60; f++)
      expect(statuses.get(f), `frame ${f}`).toBe(f <= 30 ? 'succeeded' : 'pending');
    expect(await frameBacklog()).toBe(0);
    expect((await api.call('POST', `/v1/jobs/${id}/approve`)).status).toBe(200);
    const done = await api.waitForJob(id, isFinished, 120_000);
    expect(done).toMatchObject({ status: 'succeeded', frames: { succeeded: 60 } });
  });

  it('in parallel mode makes only the window of the review frame, its overlaps waiting for their neighbours', async () => {
    // Frame 50 is made by window 3 alone (frames 40-56); 40-43 and 53-56 are shared with windows 2 and 4.
    const created = await api.createJob(windowed('GATE_PAR', 'parallel', [50]));
    const id = created.body.id;
    const waiting = await api.waitForJob(id, awaiting, 120_000);
    expect(waiting.status).toBe('awaiting_review');
    const statuses = statusByFrame(await api.allFrames(id));
    const made = [...statuses].filter(([, s]) => s === 'succeeded').map(([f]) => f);
    expect(made).toEqual(Array.from({ length: 9 }, (_, i) => 44 + i));
    expect(await frameBacklog()).toBe(0);
    expect((await api.call('POST', `/v1/jobs/${id}/approve`)).status).toBe(200);
    const done = await api.waitForJob(id, isFinished, 120_000);
    expect(done).toMatchObject({ status: 'succeeded', frames: { succeeded: 60 } });
  });
});
