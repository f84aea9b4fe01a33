import { DynamoDBClient, ProvisionedThroughputExceededException } from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, HeadObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import {
  SendMessageBatchCommand,
  SendMessageCommand,
  SQSClient,
  SQSServiceException,
} from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { mockClient } from 'aws-sdk-client-mock';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { type AwsClients, createClients } from '../../functions/adapters/clients.ts';
import { clearKeyCache } from '../../functions/api/http.ts';
import type { AssetResponse, AssetUploads } from '../../functions/core/assets.ts';
import { Container, useContainer } from '../../functions/services/container.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, eventually } from '../support/api.ts';
import { plate, uploadAll } from '../support/assets.ts';

/**
 * Outages on the API side (issue 14, point 4), on the local stack: the handlers run as in local mode,
 * with the table, the buckets and the queues on the emulators, and one AWS service at a time made to
 * refuse with aws-sdk-client-mock (throttling and 503s the emulators cannot make). The API's container
 * is swapped for one whose faulty client is mocked; the fan-out and the queues' own pollers keep theirs.
 * What must hold: a 503 with Retry-After and the code `unavailable`, never a 500; nothing half-written
 * (no job visible without its plan, no asset ready without its files, no cancel without its event);
 * and once the service is back, the same request succeeds.
 */

let stack: LocalStack;
let api: ReturnType<typeof client>;
let real: AwsClients;

beforeAll(async () => {
  stack = await startLocalStack({ withoutWorker: true, withoutWebhooks: true });
  api = client(stack.url, stack.apiKey);
  real = createClients();
});
afterEach(() => {
  useContainer(stack.app);
  clearKeyCache();
});
afterAll(() => stack?.stop());

/** From now on the API runs with `faulty` in place of one of its clients. */
function outage(faulty: Partial<AwsClients>): void {
  useContainer(new Container(process.env, () => ({ ...real, ...faulty })));
}

const sqsThrottled = () =>
  new SQSServiceException({
    name: 'RequestThrottled',
    $fault: 'client',
    $metadata: { httpStatusCode: 403 },
    message: 'Request is throttled.',
  });
const slowDown = () =>
  new S3ServiceException({
    name: 'SlowDown',
    $fault: 'server',
    $metadata: { httpStatusCode: 503 },
    message: 'Please reduce your request rate.',
  });
const throughput = () =>
  new ProvisionedThroughputExceededException({
    message: 'The level of configured provisioned throughput for the table was exceeded',
    $metadata: { httpStatusCode: 400 },
  });

function expectUnavailable(reply: { status: number; headers: Headers; body: unknown }, what: string) {
  expect(reply.status, `${what}: ${JSON.stringify(reply.body)}`).toBe(503);
  expect(reply.headers.get('retry-after'), what).toMatch(/^\d+$/);
  const { error } = reply.body as { error: { code: string; message: string } };
  expect(error.code).toBe('unavailable');
  expect(error.message).not.toMatch(/throttl|SlowDown|dynamodb|sqs|arn:/i);
}

const job = (shot: string) => ({ shot, prompt: 'rain on the window', frames: { start: 1, end: 4 } });

describe('the plan queue refuses every message', () => {
  it('answers 503 and leaves no job visible, with or without an Idempotency-Key; the retry makes one job', async () => {
    const sqs = new SQSClient({});
    const refused = mockClient(sqs);
    refused.on(SendMessageCommand).rejects(sqsThrottled());
    refused.on(SendMessageBatchCommand).rejects(sqsThrottled());
    outage({ sqs });
    expectUnavailable(await api.createJob(job('SH100')), 'without a key');
    expectUnavailable(await api.createJob(job('SH101'), { 'idempotency-key': 'retry-me' }), 'with a key');
    expect(refused.commandCalls(SendMessageBatchCommand).length).toBeGreaterThanOrEqual(2);
    // Taken back: neither job is listed or readable, and the key is free again.
    expect((await api.listJobs({ shot: 'SH100' })).body.jobs).toEqual([]);
    expect((await api.listJobs({ shot: 'SH101' })).body.jobs).toEqual([]);

    useContainer(stack.app);
    const retried = await api.createJob(job('SH101'), { 'idempotency-key': 'retry-me' });
    expect(retried.status).toBe(202);
    expect(retried.headers.get('idempotent-replayed')).toBeNull();
    expect((await api.listJobs({ shot: 'SH101' })).body.jobs.map((j) => j.id)).toEqual([retried.body.id]);
    // And its plan went out: the fan-out planned it.
    await eventually(
      async () => ((await stack.app.store.getJob(retried.body.id))?.plannedUpTo === 5 ? true : undefined),
      'the retried job planned',
    );
  });
});

describe('the table is throttled past the SDK’s retries', () => {
  it('answers reads and writes with 503, and the job written before is unchanged', async () => {
    const created = await api.createJob(job('SH200'));
    expect(created.status).toBe(202);
    const base = new DynamoDBClient({});
    const dynamo = DynamoDBDocumentClient.from(base);
    const throttled = mockClient(dynamo);
    throttled.onAnyCommand().rejects(throughput());
    outage({ dynamo });
    // The caller's key is cached: the handler's own reads and writes meet the throttling.
    expectUnavailable(await api.getJob(created.body.id), 'get');
    expectUnavailable(await api.listJobs(), 'list');
    expectUnavailable(await api.cancelJob(created.body.id), 'cancel');
    expectUnavailable(await api.createJob(job('SH201')), 'create');
    expect(throttled.commandCalls(GetCommand).length).toBeGreaterThan(0);
    // The create meets the throttling at its first read (the model's record, for the job's estimate, and
    // the tenant's budget) and never reaches its write (docs/operations.md, "Estimates").
    expect(throttled.commandCalls(TransactWriteCommand)).toHaveLength(0);
    // A key not cached yet cannot be looked up: 503 as well, not a 401 that would make a studio drop it.
    clearKeyCache();
    expectUnavailable(await api.getJob(created.body.id), 'key lookup');

    useContainer(stack.app);
    clearKeyCache();
    const after = await api.getJob(created.body.id);
    expect(after.status).toBe(200);
    expect(after.body.status).not.toBe('canceled');
    expect((await api.listJobs({ shot: 'SH201' })).body.jobs).toEqual([]);
  });
});

describe('the event queue refuses the cancel’s event', () => {
  it('answers 503; the retried cancel queues the job.canceled event it recorded, so it is never lost', async () => {
    const created = await api.createJob(job('SH300'));
    const sqs = new SQSClient({});
    const refused = mockClient(sqs);
    refused.on(SendMessageBatchCommand).rejects(sqsThrottled());
    refused.on(SendMessageCommand).rejects(sqsThrottled());
    outage({ sqs });
    const backlog = async () => {
      const { visible, inFlight } = await stack.app.eventQueue.depth();
      return visible + inFlight;
    };
    const before = await backlog();
    expectUnavailable(await api.cancelJob(created.body.id), 'cancel');
    expect(await backlog()).toBe(before);

    useContainer(stack.app);
    const again = await api.cancelJob(created.body.id);
    expect(again.status).toBe(200);
    expect(again.body.status).toBe('canceled');
    const events = await api.call<{ events: { id: string; type: string }[] }>(
      'GET',
      `/v1/jobs/${created.body.id}/events`,
    );
    const canceled = events.body.events.filter((e) => e.type === 'job.canceled');
    expect(canceled).toHaveLength(1);
    expect(await backlog()).toBe(before + 1);
    const [message] = await stack.app.eventQueue.receive({ max: 10, waitSeconds: 0 });
    expect(JSON.parse(message!.body)).toMatchObject({ eventId: canceled[0]!.id, jobId: created.body.id });
  });
});

describe('S3 answers SlowDown while an asset is completed', () => {
  it('answers 503 and the asset stays uploading; once S3 is back it completes', async () => {
    const seq = await plate(3, 1001, 42);
    const created = await api.call<AssetUploads>('POST', '/v1/assets', {
      name: 'plate_slowdown',
      format: 'png',
      frames: { start: 1001, end: 1003 },
      files: seq.files,
    });
    expect(created.status).toBe(201);
    await uploadAll(created.body.uploads, seq.bySha);

    const s3 = new S3Client({
      requestChecksumCalculation: 'WHEN_REQUIRED',
      responseChecksumValidation: 'WHEN_REQUIRED',
    });
    const slow = mockClient(s3);
    slow.on(HeadObjectCommand).rejects(slowDown());
    slow.on(GetObjectCommand).rejects(slowDown());
    outage({ s3 });
    const path = `/v1/assets/${created.body.id}`;
    expectUnavailable(await api.call('POST', `${path}/complete`), 'complete');
    expect((await api.call<AssetResponse>('GET', path)).body.status).toBe('uploading');

    useContainer(stack.app);
    const done = await api.call<AssetResponse>('POST', `${path}/complete`);
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body.status).toBe('ready');
  });
});
