import { createHash } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { GetObjectCommand } from '@aws-sdk/client-s3';
import { SendMessageCommand } from '@aws-sdk/client-sqs';
import { PutCommand, TransactWriteCommand } from '@aws-sdk/lib-dynamodb';
import { getSignedUrl } from '@aws-sdk/s3-request-presigner';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type AwsRequest, createClients } from '../../../functions/adapters/clients.ts';

// A stand-in endpoint: every request is answered, so the clients run their whole middleware stack.
// A test sets failNext to have the next request answered with a 500, which the client retries.
let server: Server;
let failNext = false;
let queueUrl = '';
beforeAll(async () => {
  server = createServer((req, res) => {
    let text = '';
    req.on('data', (chunk: Buffer) => {
      text += chunk.toString();
    });
    req.on('end', () => {
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
