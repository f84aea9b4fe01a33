import {
  DynamoDBClient,
  ProvisionedThroughputExceededException,
  ThrottlingException,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SendMessageBatchCommand, SendMessageCommand, SQSClient } from '@aws-sdk/client-sqs';
import {
  DynamoDBDocumentClient,
  GetCommand,
  QueryCommand,
  TransactWriteCommand,
} from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clearKeyCache, route } from '../../../functions/api/http.ts';
import { hashApiKey } from '../../../functions/core/api-keys.ts';
import { Container } from '../../../functions/services/container.ts';
import { lambdaContext } from '../../../local/gateway.ts';
import { jobRecord } from '../../support/jobs.ts';

// Faults the emulators cannot make: a throttled table and a queue that refuses messages.
const KEY = `fc_${'k'.repeat(43)}`;
const env = {
  FRAMECAST_TABLE: 'table',
  FRAMECAST_BUCKET: 'bucket',
  FRAMECAST_PLAN_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/plan',
  FRAMECAST_EVENT_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/event',
};
const dynamo = mockClient(DynamoDBDocumentClient);
const sqs = mockClient(SQSClient);

function app(): Container {
  const doc = DynamoDBDocumentClient.from(new DynamoDBClient({ region: 'us-east-1' }));
  return new Container(env, () => ({
    dynamo: doc,
    s3: new S3Client({ region: 'us-east-1' }),
    sqs: new SQSClient({ region: 'us-east-1' }),
  }));
}

function event(body?: unknown, headers: Record<string, string> = {}): APIGatewayProxyEventV2 {
  return {
    version: '2.0',
    routeKey: 'POST /v1/jobs',
    rawPath: '/v1/jobs',
    rawQueryString: '',
    headers: { authorization: `Bearer ${KEY}`, 'content-type': 'application/json', ...headers },
    requestContext: {} as APIGatewayProxyEventV2['requestContext'],
    isBase64Encoded: false,
    ...(body !== undefined && { body: JSON.stringify(body) }),
  };
}

const createJob = (c: Container) =>
  route({ scope: 'jobs:write', keys: () => c.apiKeys }, async (req) => {
    const { job } = await c.jobs.create(req.caller.tenant, req.body, req.headers['idempotency-key']);
    return { status: 202, body: job };
  });

/** SQS's throttling error, as the SDK raises it once its retries are used up. */
class QueueThrottled extends Error {
  override name = 'RequestThrottled';
  readonly $fault = 'client';
}

const keyItem = { Item: { pk: `KEY#${hashApiKey(KEY)}`, sk: 'KEY', tenant: 'acme', scopes: ['jobs:write'] } };
const request = { shot: 'SH010', prompt: 'p', frames: { start: 1, end: 10 } };

beforeEach(() => {
  dynamo.reset();
  sqs.reset();
  // A query finds nothing unless a test says otherwise (the tenant's month of spend: no day yet).
  dynamo.on(QueryCommand).resolves({ Items: [] });
  clearKeyCache();
});
afterEach(() => clearKeyCache());

const throughput = () =>
  new ProvisionedThroughputExceededException({
    message: 'Rate of requests exceeds the allowed throughput on table arn:aws:dynamodb:secret',
    $metadata: { httpStatusCode: 400 },
  });

async function submit(c: Container, key: string) {
  const res = (await createJob(c)(
    event(request, { 'idempotency-key': key }),
    lambdaContext('t'),
  )) as APIGatewayProxyStructuredResultV2;
  return {
    ...res,
    json: JSON.parse(res.body!) as { error: { code: string; message: string; details?: { jobId?: string } } },
  };
}

describe('a throttled table, once the SDK has given up retrying', () => {
  it('answers 503 with Retry-After and a code that says so, naming nothing internal', async () => {
    dynamo.on(TransactWriteCommand).rejects(throughput());
    dynamo.on(GetCommand).resolves(keyItem);
    const res = await submit(app(), 'k1');
    expect(res.statusCode).toBe(503);
    expect(res.headers?.['retry-after']).toMatch(/^\d+$/);
    expect(res.json.error.code).toBe('unavailable');
    expect(res.json.error.message).not.toMatch(/throughput|arn:|dynamodb/i);
    expect(res.json.error.message).toMatch(/request id/);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
    expect(sqs.commandCalls(SendMessageCommand)).toHaveLength(0);
  });

  it('is a 503 too when the key lookup itself is throttled, not a 401 or a 500', async () => {
    dynamo.on(GetCommand).rejects(new ThrottlingException({ message: 'slow down', $metadata: {} }));
    const res = await submit(app(), 'k1b');
    expect(res.statusCode).toBe(503);
    expect(res.json.error.code).toBe('unavailable');
  });

  it('still answers a bug with a bare 500: only "not now" errors become 503', async () => {
    dynamo.on(GetCommand).resolves(keyItem);
    dynamo.on(TransactWriteCommand).rejects(new TypeError('cannot read properties of undefined'));
    const res = await submit(app(), 'k1c');
    expect(res.statusCode).toBe(500);
    expect(res.json.error.code).toBe('internal');
    expect(res.headers?.['retry-after']).toBeUndefined();
  });
});

describe('a plan queue that refuses messages', () => {
  const planSent = () => [
    ...sqs.commandCalls(SendMessageCommand).map((c) => c.args[0].input.MessageBody!),
    ...sqs
      .commandCalls(SendMessageBatchCommand)
      .flatMap((c) => c.args[0].input.Entries!.map((e) => e.MessageBody!)),
  ];

  it('takes the job back with its key, so no job is visible that nothing plans, and answers 503', async () => {
    dynamo.on(GetCommand).resolves(keyItem);
    dynamo.on(TransactWriteCommand).resolves({});
    sqs.on(SendMessageCommand).rejects(new QueueThrottled());
    sqs.on(SendMessageBatchCommand).rejects(new QueueThrottled());
    const res = await submit(app(), 'k2');
    expect(res.statusCode).toBe(503);
    expect(res.headers?.['retry-after']).toMatch(/^\d+$/);
    expect(res.json.error.message).toContain('not accepted; retry');
    const [write, undo] = dynamo
      .commandCalls(TransactWriteCommand)
      .map((c) => c.args[0].input.TransactItems!);
    const job = write!.find((i) => i.Put?.Item?.sk === 'JOB')!.Put!.Item!;
    // The job's audit record goes with it: it records a job that was never accepted.
    const audit = write!.find((i) => String(i.Put?.Item?.pk).startsWith('AUDIT#'))!.Put!.Item!;
    expect(undo!.map((i) => i.Delete?.Key)).toEqual([
      { pk: job.pk, sk: 'JOB' },
      { pk: audit.pk, sk: audit.sk },
      { pk: write!.find((i) => i.Put?.Item?.sk === 'IDEM')!.Put!.Item!.pk, sk: 'IDEM' },
    ]);
    // Taken back only while nothing planned it.
    expect(undo![0]!.Delete!.ConditionExpression).toContain('attribute_not_exists(plannedUpTo)');
  });

  it('keeps the job when it cannot be taken back either, and a retry with the same key queues it', async () => {
    // No budget, usage or model record: what a create reads besides the key finds nothing.
    dynamo.on(GetCommand).resolves({});
    dynamo.on(GetCommand, { Key: { pk: `KEY#${hashApiKey(KEY)}`, sk: 'KEY' } }).resolves(keyItem);
    let writes = 0;
    dynamo.on(TransactWriteCommand).callsFake(() => {
      writes++;
      if (writes === 1) return {};
      throw throughput();
    });
    sqs.on(SendMessageCommand).rejects(new Error('ServiceUnavailable'));
    sqs.on(SendMessageBatchCommand).rejects(new Error('ServiceUnavailable'));
    const c = app();
    const first = await submit(c, 'k3');
    expect(first.statusCode).toBe(503);
    expect(first.json.error.message).toContain('retry with the same Idempotency-Key');

    // The retry finds the recorded job (not yet planned) and queues it now.
    const stored = dynamo.commandCalls(TransactWriteCommand)[0]!.args[0].input.TransactItems![1]!.Put!
      .Item as Record<string, unknown>;
    expect(stored.id).toBe(first.json.error.details?.jobId);
    dynamo.on(TransactWriteCommand).rejects(
      new TransactionCanceledException({
        message: 'cancelled',
        $metadata: {},
        CancellationReasons: [{ Code: 'ConditionalCheckFailed' }, { Code: 'None' }],
      }),
    );
    dynamo.on(GetCommand).callsFake((input: { Key: { pk: string } }) => {
      if (input.Key.pk.startsWith('KEY#')) return keyItem;
      if (input.Key.pk.startsWith('IDEM#'))
        return { Item: { jobId: stored.id, requestHash: stored.requestHash } };
      return { Item: stored };
    });
    sqs.reset();
    sqs.on(SendMessageCommand).resolves({ MessageId: 'm' });
    sqs
      .on(SendMessageBatchCommand)
      .resolves({ Successful: [{ Id: '0', MessageId: 'm', MD5OfMessageBody: '' }] });
    const retry = (await createJob(c)(
      event(request, { 'idempotency-key': 'k3' }),
      lambdaContext('t'),
    )) as APIGatewayProxyStructuredResultV2;
    expect(retry.statusCode).toBe(202);
    expect(JSON.parse(retry.body!).id).toBe(stored.id);
    expect(planSent().map((b) => JSON.parse(b))).toEqual([{ v: 1, jobId: stored.id, tenant: 'acme' }]);
  });
});

describe('a queue that refuses part of a batch', () => {
  it('sends the refused entries again until every message is accepted', async () => {
    let call = 0;
    sqs.on(SendMessageBatchCommand).callsFake((input: { Entries: { Id: string }[] }) => {
      call++;
      if (call === 1) {
        return {
          Successful: input.Entries.slice(0, 7).map((e) => ({
            Id: e.Id,
            MessageId: e.Id,
            MD5OfMessageBody: '',
          })),
          Failed: input.Entries.slice(7).map((e) => ({
            Id: e.Id,
            SenderFault: false,
            Code: 'InternalError',
          })),
        };
      }
      return { Successful: input.Entries.map((e) => ({ Id: e.Id, MessageId: e.Id, MD5OfMessageBody: '' })) };
    });
    const c = app();
    await c.planQueue.sendAll(Array.from({ length: 10 }, (_, i) => `m${i}`));
    const calls = sqs.commandCalls(SendMessageBatchCommand);
    expect(calls).toHaveLength(2);
    expect(calls[1]!.args[0].input.Entries!.map((e) => e.MessageBody)).toEqual(['m7', 'm8', 'm9']);
  });

  it('gives up with an error when the sender is at fault, so the caller does not lose the message silently', async () => {
    sqs
      .on(SendMessageBatchCommand)
      .resolves({ Failed: [{ Id: '0', SenderFault: true, Code: 'InvalidMessageContents' }] });
    await expect(app().planQueue.sendAll(['x'])).rejects.toThrow(/InvalidMessageContents/);
  });
});

describe('an event queue that refuses the job.canceled event', () => {
  const cancelJob = (c: Container) =>
    route({ scope: 'jobs:write', keys: () => c.apiKeys }, async (req) => ({
      status: 200,
      body: await c.jobs.cancel(req.caller.tenant, req.path.id ?? ''),
    }));
  const jobId = 'job_01JD0000000000000000000000';
  const cancel = (c: Container) =>
    cancelJob(c)(
      { ...event(), routeKey: 'POST /v1/jobs/{id}/cancel', pathParameters: { id: jobId } },
      lambdaContext('t'),
    ) as Promise<APIGatewayProxyStructuredResultV2>;
  const job = {
    pk: `JOB#${jobId}`,
    sk: 'JOB',
    ...jobRecord({ id: jobId, tenant: 'acme', status: 'queued', frames: { start: 1, end: 10 } }),
  };

  it('answers 503, and the retried cancel queues the event the first one recorded', async () => {
    const writeKey = { ...keyItem, Item: { ...keyItem.Item, scopes: ['jobs:write'] } };
    dynamo
      .on(GetCommand)
      .callsFake((input: { Key: { pk: string } }) =>
        input.Key.pk.startsWith('KEY#') ? writeKey : { Item: job },
      );
    dynamo.on(TransactWriteCommand).resolves({});
    sqs.on(SendMessageBatchCommand).rejects(new QueueThrottled());
    const c = app();
    const first = await cancel(c);
    expect(first.statusCode).toBe(503);
    expect(first.headers?.['retry-after']).toMatch(/^\d+$/);
    const recorded = dynamo
      .commandCalls(TransactWriteCommand)[0]!
      .args[0].input.TransactItems!.find((i) => i.Put)!.Put!.Item as Record<string, unknown>;
    expect(recorded.type).toBe('job.canceled');

    // The retry: the job is canceled already, and its recorded event is queued now.
    dynamo
      .on(GetCommand)
      .callsFake((input: { Key: { pk: string } }) =>
        input.Key.pk.startsWith('KEY#') ? writeKey : { Item: { ...job, status: 'canceled', canceled: 10 } },
      );
    dynamo.on(QueryCommand).resolves({ Items: [recorded] });
    sqs.on(SendMessageBatchCommand).callsFake((input: { Entries: { Id: string }[] }) => ({
      Successful: input.Entries.map((e) => ({ Id: e.Id, MessageId: e.Id, MD5OfMessageBody: '' })),
    }));
    const retry = await cancel(c);
    expect(retry.statusCode).toBe(200);
    expect(dynamo.commandCalls(TransactWriteCommand)).toHaveLength(1);
    const sends = sqs.commandCalls(SendMessageBatchCommand);
    expect(sends).toHaveLength(2);
    const sent = sends[1]!.args[0].input.Entries!;
    expect(sent.map((e) => JSON.parse(e.MessageBody!).eventId)).toEqual([recorded.id]);
  });
});
