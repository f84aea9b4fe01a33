import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FramecastClient } from '../../client/index.ts';
import { type AwsRequest, createClients } from '../../functions/adapters/clients.ts';
import { Container } from '../../functions/services/container.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';

// What one shot costs in AWS requests, counted as the bench counts them (docs/performance.md): the
// batched frame state (one transaction to take a chunk, one to record it), one job read per chunk, and no
// frame event sent when nobody listens. Counts, not timings: only the pollers' receives vary with time,
// so they are left out of the bounds.
let stack: LocalStack;
let api: FramecastClient;
let seen: AwsRequest[] = [];
// The test's own polling goes through clients that are not counted.
let observer: Container;

beforeAll(async () => {
  stack = await startLocalStack({
    onAwsRequest: (r) => seen.push(r),
    // One look at the tenant's budgets for the whole test (the worker looks at most every 5 s: a count
    // that would otherwise follow the clock).
    worker: { concurrency: 1, retryBaseMs: 5, budgetCheckMs: 3_600_000 },
  });
  api = new FramecastClient({ baseUrl: stack.url, apiKey: stack.apiKey });
  observer = new Container(process.env, () => createClients());
});

async function ended(id: string) {
  for (;;) {
    const job = await observer.store.getJob(id);
    if (job && ['succeeded', 'failed', 'canceled'].includes(job.status)) return job;
    await new Promise((r) => setTimeout(r, 50));
  }
}
afterAll(() => stack?.stop());

const FRAMES = 48;
const CHUNKS = FRAMES / 8;

async function shot(name: string, extra: Record<string, unknown> = {}) {
  seen = [];
  const job = await api.createJob({
    shot: name,
    prompt: 'a chimney falls in one piece',
    frames: { start: 1001, end: 1000 + FRAMES },
    width: 64,
    height: 64,
    ...extra,
  });
  const done = await ended(job.id);
  const requests = [...seen];
  expect(done.status).toBe('succeeded');
  expect(done.succeeded).toBe(FRAMES);
  const count = (op: string) => requests.filter((r) => `${r.service}.${r.operation}` === op).length;
  const toEvents = requests
    .filter((r) => r.service === 'SQS' && r.operation.startsWith('SendMessage'))
    .filter((r) => (r.input as { QueueUrl?: string }).QueueUrl === stack.queues.event.url)
    .reduce((n, r) => n + ((r.input as { Entries?: unknown[] }).Entries?.length ?? 1), 0);
  return { job: done, requests, count, toEvents };
}

describe('the AWS requests of a 48-frame shot (6 chunks of 8)', () => {
  it('take and record each chunk in one transaction each, read the job once per chunk, and put each frame once', async () => {
    const { count, requests, toEvents } = await shot('REQ_SH010');
    // Per chunk: the start and the record transactions; per job: its start, its progress steps and end.
    expect(count('DynamoDB.TransactWriteItems')).toBeLessThanOrEqual(2 * CHUNKS + 12);
    expect(count('DynamoDB.TransactWriteItems')).toBeGreaterThanOrEqual(2 * CHUNKS);
    // Each chunk is recorded in one form: the last chunk's (it has the job's last frame) does not ask that
    // more frames remain, which would fail it and have it sent again without asking. (A transaction may be
    // sent again in the same form when it meets another on the job item.)
    type Item = { Update?: { Key?: unknown; UpdateExpression?: string; ConditionExpression?: string } };
    const forms = new Map<string, Set<string>>();
    for (const r of requests) {
      if (r.operation !== 'TransactWriteItems') continue;
      const items = (r.input as { TransactItems: Item[] }).TransactItems;
      const job = items.find((i) => i.Update?.UpdateExpression?.startsWith('SET succeeded = succeeded +'));
      if (!job) continue;
      const frames = JSON.stringify(items.filter((i) => i !== job && i.Update).map((i) => i.Update!.Key));
      forms.set(frames, (forms.get(frames) ?? new Set()).add(job.Update!.ConditionExpression ?? ''));
    }
    expect(forms.size).toBe(CHUNKS);
    expect([...forms.values()].every((f) => f.size === 1)).toBe(true);
    expect([...forms.values()].filter((f) => ![...f][0]!.includes('unfinished >'))).toHaveLength(1);
    // Per chunk the job's read; per job event the webhook consumer's reads of the event and the job; once
    // a job, the API key, the fan-out's reads of the job and the last chunk's read of the job's end; and
    // money, none of it per frame: at submit the model's record and the tenant's budget (estimate and
    // budget check), and the worker's look at the tenant's budget (docs/operations.md). This tenant has
    // none; one that has costs a read of its month more each time.
    const money = 2 + 1;
    expect(count('DynamoDB.GetItem')).toBeLessThanOrEqual(CHUNKS + 2 * toEvents + 5 + money);
    // Each frame once (no review gate: no thumbnails), the manifest and the OpenTimelineIO clip.
    expect(count('S3.PutObject')).toBe(FRAMES + 2);
    // Everything but polling: one PUT a frame; a receive, a job read, two transactions and a delete a
    // chunk; about ten a job event (its send, delivery and the consumer's reads); and what a job costs
    // once whatever its length (its POST, plan and fan-out, manifest, clip, end): a dozen, seen at 11 with
    // two job events. Money adds its reads above and, at submit, the frame queue's depth (the estimate's
    // backlog). Over the bench's 300 frames this is about 2 a frame (docs/performance.md).
    const notPolling = requests.filter((r) => !(r.operation === 'ReceiveMessage' && r.received === 0));
    expect(notPolling.length).toBeLessThanOrEqual(FRAMES + 5 * CHUNKS + 10 * toEvents + 12 + money + 1);
  });

  it('puts each frame and its thumbnail once when the job asks for thumbnails', async () => {
    const { count } = await shot('REQ_SH015', { thumbnails: true });
    expect(count('S3.PutObject')).toBe(2 * FRAMES + 2);
  });

  it('sends no frame event when no endpoint or job webhook wants one, yet records them for the job', async () => {
    const { job, toEvents } = await shot('REQ_SH020');
    // Only the job's own events go to the event queue: started, progress steps, succeeded.
    expect(toEvents).toBeLessThanOrEqual(11);
    const events = await api.allEvents(job.id);
    expect(events.filter((e) => e.type === 'frame.succeeded')).toHaveLength(FRAMES);
  });

  it('sends every frame event when the job webhook asks for them', async () => {
    const { toEvents } = await shot('REQ_SH030', {
      webhook: { url: 'http://127.0.0.1:9/hook', events: ['frame.succeeded'] },
    });
    expect(toEvents).toBeGreaterThanOrEqual(FRAMES);
  });
});
