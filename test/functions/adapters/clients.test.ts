import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand, HeadObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, afterEach, beforeAll, describe, expect, it, vi } from 'vitest';
import {
  type AwsRequest,
  createClients,
  isTransientAwsError,
  RETRY,
} from '../../../functions/adapters/clients.ts';

// A stand-in endpoint: every request is answered, so the clients run their whole middleware stack.
// A test sets failNext to have the next request answered with a 500, which the client retries.
let server: Server;
let failNext = false;
/** Answers to give, in order, before the ordinary one: a test scripts a throttled or unavailable service. */
let script: { status: number; type: string; body: string; headers?: Record<string, string> }[] = [];
let attempts = 0;
let queueUrl = '';
beforeAll(async () => {
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    req.on('end', () => {
      attempts++;
      const scripted = script.shift();
      if (scripted) {
        res
          .writeHead(scripted.status, { 'content-type': scripted.type, ...scripted.headers })
          .end(scripted.body);
        return;
      }
      if (failNext) {
        failNext = false;
        res.writeHead(500, { 'content-type': 'application/x-amz-json-1.0' }).end('{}');
        return;
      }
      const target = String(req.headers['x-amz-target'] ?? '');
      const body = target.startsWith('AmazonSQS.')
        ? {
            MessageId: 'm-1',
            MD5OfMessageBody: createHash('md5')
              .update((JSON.parse(text) as { MessageBody: string }).MessageBody)
              .digest('hex'),
          }
        : {};
      res.writeHead(200, { 'content-type': 'application/x-amz-json-1.0' }).end(JSON.stringify(body));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const url = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  queueUrl = `${url}/000000000000/q`;
  vi.stubEnv('AWS_REGION', 'us-east-1');
  vi.stubEnv('AWS_ACCESS_KEY_ID', 'test');
  vi.stubEnv('AWS_SECRET_ACCESS_KEY', 'test');
  vi.stubEnv('AWS_ENDPOINT_URL_DYNAMODB', url);
  vi.stubEnv('AWS_ENDPOINT_URL_SQS', url);
  vi.stubEnv('AWS_ENDPOINT_URL_S3', url);
});
afterAll(async () => {
  vi.unstubAllEnvs();
  await new Promise((resolve) => server.close(resolve));
});

describe('counting the requests the clients make', () => {
  it('names each request by service and operation, DynamoDB through the document client', async () => {
    const seen: AwsRequest[] = [];
    const aws = createClients({ onRequest: (r) => seen.push(r) });
    await aws.dynamo.send(new PutCommand({ TableName: 't', Item: { pk: 'a', sk: 'b' } }));
    await aws.dynamo.send(
      new TransactWriteCommand({
        TransactItems: [
          { Put: { TableName: 't', Item: { pk: 'a', sk: 'c' } } },
          { Put: { TableName: 't', Item: { pk: 'a', sk: 'd' } } },
        ],
      }),
    );
    await aws.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'x' }));
    expect(seen.map((r) => `${r.service}.${r.operation}`)).toEqual([
      'DynamoDB.PutItem',
      'DynamoDB.TransactWriteItems',
      'SQS.SendMessage',
    ]);
    // The input as sent: enough to tell a transaction's items or a message's queue.
    expect((seen[1]!.input as { TransactItems: unknown[] }).TransactItems).toHaveLength(2);
    expect((seen[2]!.input as { QueueUrl: string }).QueueUrl).toBe(queueUrl);
  });

  it('counts every attempt, as AWS bills a retried request again', async () => {
    const seen: AwsRequest[] = [];
    const aws = createClients({ onRequest: (r) => seen.push(r) });
    failNext = true;
    await aws.dynamo.send(new PutCommand({ TableName: 't', Item: { pk: 'a', sk: 'b' } }));
    expect(seen.map((r) => r.operation)).toEqual(['PutItem', 'PutItem']);
  });

  it('does not count a presigned URL, which makes no request', async () => {
    const seen: AwsRequest[] = [];
    const aws = createClients({ onRequest: (r) => seen.push(r) });
    const url = await getSignedUrl(aws.s3, new GetObjectCommand({ Bucket: 'b', Key: 'k' }));
    expect(url).toContain('X-Amz-Signature');
    expect(seen).toEqual([]);
  });

  it('leaves clients made without an observer as they were', async () => {
    const aws = createClients();
    await aws.dynamo.send(new PutCommand({ TableName: 't', Item: { pk: 'a', sk: 'b' } }));
    expect(aws.dynamo.middlewareStack.identify().join()).not.toContain('framecastRequestObserver');
  });
});

const json = 'application/x-amz-json-1.0';
const throttled = {
  status: 400,
  type: json,
  body: JSON.stringify({
    __type: 'com.amazonaws.dynamodb.v20120810#ProvisionedThroughputExceededException',
    message: 'Rate of requests exceeds the allowed throughput',
  }),
};
const slowDown = {
  status: 503,
  type: 'application/xml',
  body: '<?xml version="1.0"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>',
};
const sqsDown = {
  status: 500,
  type: json,
  body: JSON.stringify({ __type: 'com.amazonaws.sqs#InternalError', message: 'internal' }),
};

describe('retries against a throttled or unavailable service', () => {
  afterEach(() => {
    script = [];
    vi.restoreAllMocks();
  });

  it('use the standard mode with five attempts on every client', async () => {
    const aws = createClients();
    for (const client of [aws.dynamo, aws.s3, aws.sqs]) {
      expect(await client.config.maxAttempts()).toBe(RETRY.maxAttempts);
      expect(((await client.config.retryStrategy()) as { mode?: string }).mode).toBe('standard');
    }
  });

  it('retry DynamoDB throughput errors, S3 SlowDown and SQS 500s with jittered backoff until one succeeds', async () => {
    // Jitter draws the delay from [0, base * 2^n); a zero draw keeps the test fast and counts the draws.
    const draws = vi.spyOn(Math, 'random').mockReturnValue(0);
    const aws = createClients();
    for (const [fault, send] of [
      [throttled, () => aws.dynamo.send(new PutCommand({ TableName: 't', Item: { pk: 'a', sk: 'b' } }))],
      [slowDown, () => aws.s3.send(new HeadObjectCommand({ Bucket: 'b', Key: 'k' }))],
      [sqsDown, () => aws.sqs.send(new SendMessageCommand({ QueueUrl: queueUrl, MessageBody: 'x' }))],
    ] as const) {
      script = [fault, fault, fault];
      attempts = 0;
      draws.mockClear();
      await (send as () => Promise<unknown>)();
      expect(attempts).toBe(4);
      expect(draws.mock.calls.length).toBeGreaterThanOrEqual(3);
    }
  });

  it('give up after five attempts with an error the API answers as 503', async () => {
    vi.spyOn(Math, 'random').mockReturnValue(0);
    const aws = createClients();
    script = Array.from({ length: 5 }, () => throttled);
    attempts = 0;
    const err = await aws.dynamo
      .send(new PutCommand({ TableName: 't', Item: { pk: 'a', sk: 'b' } }))
      .catch((e: unknown) => e);
    expect(attempts).toBe(5);
    expect((err as Error).name).toBe('ProvisionedThroughputExceededException');
    expect(isTransientAwsError(err)).toBe(true);

    script = Array.from({ length: 5 }, () => slowDown);
    const s3 = await aws.s3.send(new HeadObjectCommand({ Bucket: 'b', Key: 'k' })).catch((e: unknown) => e);
    expect(isTransientAwsError(s3)).toBe(true);
  });

  it('tell a client mistake from an outage: a validation error is not transient', async () => {
    const aws = createClients();
    script = [
      {
        status: 400,
        type: json,
        body: JSON.stringify({
          __type: 'com.amazonaws.dynamodb.v20120810#ValidationException',
          message: 'bad',
        }),
      },
    ];
    attempts = 0;
    const err = await aws.dynamo
      .send(new PutCommand({ TableName: 't', Item: { pk: 'a', sk: 'b' } }))
      .catch((e: unknown) => e);
    expect(attempts).toBe(1);
    expect(isTransientAwsError(err)).toBe(false);
    expect(isTransientAwsError(Object.assign(new Error('connect'), { code: 'ECONNREFUSED' }))).toBe(true);
    expect(isTransientAwsError(new TypeError('x is undefined'))).toBe(false);
  });
});
