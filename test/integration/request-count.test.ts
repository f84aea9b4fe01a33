import { GetItemCommand } from '@aws-sdk/client-dynamodb';
import { ReceiveMessageCommand, SendMessageCommand } from '@aws-sdk/client-sqs';
import { PutCommand } from '@aws-sdk/lib-dynamodb';
import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { type AwsRequest, createClients } from '../../functions/adapters/clients.ts';
import { type Emulators, startEmulators } from '../../local/emulators.ts';

// The request observer on the emulators local mode runs: what the benchmark counts.
let emulators: Emulators;
beforeAll(async () => {
  emulators = await startEmulators({ prefix: 'framecast-count' });
  for (const [name, value] of Object.entries(emulators.env)) vi.stubEnv(name, value);
});
afterAll(async () => {
  vi.unstubAllEnvs();
  await emulators?.stop();
});

describe('counting requests on the emulators', () => {
  it('counts a DynamoDB write and read and an SQS send by service and operation', async () => {
    const seen: AwsRequest[] = [];
    const aws = createClients({ onRequest: (r) => seen.push(r) });
    const { table, queues } = emulators.resources;
    await aws.dynamo.send(new PutCommand({ TableName: table, Item: { pk: 'COUNT', sk: 'COUNT' } }));
    const got = await aws.dynamo.send(
      new GetItemCommand({ TableName: table, Key: { pk: { S: 'COUNT' }, sk: { S: 'COUNT' } } }),
    );
    expect(got.Item).toBeDefined();
    await aws.sqs.send(new SendMessageCommand({ QueueUrl: queues.plan.url, MessageBody: '{}' }));
    expect(seen.map((r) => `${r.service}.${r.operation}`)).toEqual([
      'DynamoDB.PutItem',
      'DynamoDB.GetItem',
      'SQS.SendMessage',
    ]);
    expect((seen[2]!.input as { QueueUrl: string }).QueueUrl).toBe(queues.plan.url);
  });
});

describe('receives, counted', () => {
  it('know how many messages they brought once answered: an empty one is polling', async () => {
    const seen: AwsRequest[] = [];
    const aws = createClients({ onRequest: (r) => seen.push(r) });
    const { queues } = emulators.resources;
    await aws.sqs.send(new ReceiveMessageCommand({ QueueUrl: queues.event.url, WaitTimeSeconds: 0 }));
    await aws.sqs.send(new SendMessageCommand({ QueueUrl: queues.event.url, MessageBody: '{}' }));
    await aws.sqs.send(
      new ReceiveMessageCommand({ QueueUrl: queues.event.url, WaitTimeSeconds: 0, MaxNumberOfMessages: 10 }),
    );
    const receives = seen.filter((r) => r.operation === 'ReceiveMessage');
    expect(receives.map((r) => r.received)).toEqual([0, 1]);
  });
});
