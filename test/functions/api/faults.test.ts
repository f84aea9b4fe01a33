import {
  DynamoDBClient,
  ProvisionedThroughputExceededException,
  TransactionCanceledException,
} from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SendMessageBatchCommand, SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient, GetCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it } from 'vitest';
import { clearKeyCache, route } from '../../../functions/api/http.ts';
import { hashApiKey } from '../../../functions/core/api-keys.ts';
import { Container } from '../../../functions/services/container.ts';
import { lambdaContext } from '../../../local/gateway.ts';

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

const keyItem = { Item: { pk: `KEY#${hashApiKey(KEY)}`, sk: 'KEY', tenant: 'acme', scopes: ['jobs:write'] } };
const request = { shot: 'SH010', prompt: 'p', frames: { start: 1, end: 10 } };

beforeEach(() => {
  dynamo.reset();
  sqs.reset();
  clearKeyCache();
});
afterEach(() => clearKeyCache());

describe('a throttled table', () => {
  it('answers 500 with a request id and nothing internal', async () => {
    dynamo.on(TransactWriteCommand).rejects(
      new ProvisionedThroughputExceededException({
        message: 'Rate of requests exceeds the allowed throughput on table arn:aws:dynamodb:secret',
        $metadata: {},
      }),
    );
    dynamo.on(GetCommand).resolves(keyItem);
    const c = app();
    const res = (await createJob(c)(
      event(request, { 'idempotency-key': 'k1' }),
      lambdaContext('t'),
    )) as APIGatewayProxyStructuredResultV2;
    expect(res.statusCode).toBe(500);
    const body = JSON.parse(res.body!) as { error: { code: string; message: string } };
    expect(body.error.code).toBe('internal');
    expect(body.error.message).not.toMatch(/throughput|arn:|dynamodb/i);
    expect(body.error.message).toMatch(/request id/);
    expect(sqs.commandCalls(SendMessageBatchCommand)).toHaveLength(0);
  });
});

describe('a plan queue that refuses messages', () => {
  it('answers 503 telling the studio to retry with the same key, and the retry queues the job', async () => {
    dynamo.on(GetCommand, { Key: { pk: `KEY#${hashApiKey(KEY)}`, sk: 'KEY' } }).resolves(keyItem);
    dynamo.on(TransactWriteCommand).resolves({});
    sqs.on(SendMessageBatchCommand).rejects(new Error('ServiceUnavailable'));
    const c = app();
    const first = (await createJob(c)(
      event(request, { 'idempotency-key': 'k2' }),
      lambdaContext('t'),
    )) as APIGatewayProxyStructuredResultV2;
    expect(first.statusCode).toBe(503);
    expect(first.body).toContain('retry with the same Idempotency-Key');

    // The retry finds the recorded job (not yet planned) and queues it now.
    const sent = JSON.parse(first.body!) as { error: { details: { jobId: string } } };
    const stored = dynamo.commandCalls(TransactWriteCommand)[0]!.args[0].input.TransactItems![1]!.Put!
      .Item as Record<string, unknown>;
    expect(stored.id).toBe(sent.error.details.jobId);
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
    sqs
      .on(SendMessageBatchCommand)
      .resolves({ Successful: [{ Id: '0', MessageId: 'm', MD5OfMessageBody: '' }] });
    const retry = (await createJob(c)(
      event(request, { 'idempotency-key': 'k2' }),
      lambdaContext('t'),
    )) as APIGatewayProxyStructuredResultV2;
    expect(retry.statusCode).toBe(202);
    expect(JSON.parse(retry.body!).id).toBe(stored.id);
    const plan = sqs.commandCalls(SendMessageBatchCommand).at(-1)!.args[0].input.Entries![0]!.MessageBody!;
    expect(JSON.parse(plan)).toEqual({ v: 1, jobId: stored.id, tenant: 'acme' });
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
