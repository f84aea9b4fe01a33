import { createHash, randomBytes } from 'node:crypto';
import { mkdtemp, rm, symlink } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Readable } from 'node:stream';
import {
  ConditionalCheckFailedException,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  GetItemCommand,
  ListTablesCommand,
  PutItemCommand,
  TransactionCanceledException,
  TransactWriteItemsCommand,
} from '@aws-sdk/client-dynamodb';
import { GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import {
  ChangeMessageVisibilityCommand,
  DeleteMessageCommand,
  type Message,
  ReceiveMessageCommand,
  SendMessageCommand,
  SQSClient,
} from '@aws-sdk/client-sqs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { QUEUES, TABLE } from '../../functions/shared/resources.ts';
import { type Emulators, startEmulators } from '../../local/emulators.ts';

interface Clients {
  readonly dynamo: DynamoDBClient;
  readonly s3: S3Client;
  readonly sqs: SQSClient;
  destroy(): void;
}

/** SDK v3 clients configured from nothing but the variables the emulators hand out. */
function clientsFor(env: Readonly<Record<string, string>>): Clients {
  const value = (name: string) => {
    const v = env[name];
    if (v === undefined) throw new Error(`emulators.env has no ${name}`);
    return v;
  };
  const checksum = (name: string) => {
    const v = value(name);
    if (v !== 'WHEN_REQUIRED' && v !== 'WHEN_SUPPORTED') throw new Error(`${name} is ${v}`);
    return v;
  };
  const common = {
    region: value('AWS_REGION'),
    credentials: { accessKeyId: value('AWS_ACCESS_KEY_ID'), secretAccessKey: value('AWS_SECRET_ACCESS_KEY') },
  };
  const dynamo = new DynamoDBClient({ ...common, endpoint: value('AWS_ENDPOINT_URL_DYNAMODB') });
  const s3 = new S3Client({
    ...common,
    endpoint: value('AWS_ENDPOINT_URL_S3'),
    requestChecksumCalculation: checksum('AWS_REQUEST_CHECKSUM_CALCULATION'),
    responseChecksumValidation: checksum('AWS_RESPONSE_CHECKSUM_VALIDATION'),
  });
  const sqs = new SQSClient({ ...common, endpoint: value('AWS_ENDPOINT_URL_SQS') });
  return {
    dynamo,
    s3,
    sqs,
    destroy: () => {
      dynamo.destroy();
      s3.destroy();
      sqs.destroy();
    },
  };
}

const onlyMessage = (messages: Message[] | undefined): Message => {
  expect(messages).toHaveLength(1);
  return messages![0]!;
};

describe('the local AWS emulators', () => {
  let emulators: Emulators;
  let aws: Clients;
  // A second set on a data directory, for the restart test; started alongside to save a JVM start-up, with
  // S3 and SQS in a process of their own (the benchmark's way) and started again without.
  let dataDir: string;
  let kept: Emulators;
  const keptPrefix = 'framecast-kept';

  beforeAll(async () => {
    dataDir = await mkdtemp(join(tmpdir(), 'framecast-emulators-test-'));
    [emulators, kept] = await Promise.all([
      startEmulators(),
      startEmulators({ dataDir, prefix: keptPrefix, ownProcess: true }),
    ]);
    aws = clientsFor(emulators.env);
  });

  afterAll(async () => {
    aws?.destroy();
    await Promise.all([emulators?.stop(), kept?.stop()]);
    if (dataDir) await rm(dataDir, { recursive: true, force: true });
  });

  it('hand out every variable an SDK client and Framecast need', () => {
    const { env, resources } = emulators;
    expect(env).toMatchObject({
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_ENDPOINT_URL_DYNAMODB: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      AWS_ENDPOINT_URL_S3: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      AWS_ENDPOINT_URL_SQS: expect.stringMatching(/^http:\/\/127\.0\.0\.1:\d+$/),
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
      FRAMECAST_TABLE: resources.table,
      FRAMECAST_BUCKET: resources.bucket,
      FRAMECAST_ASSET_BUCKET: resources.assetBucket,
      FRAMECAST_PLAN_QUEUE_URL: resources.queues.plan.url,
      FRAMECAST_FRAME_QUEUE_URL: resources.queues.frame.url,
      FRAMECAST_EVENT_QUEUE_URL: resources.queues.event.url,
    });
  });

  describe('DynamoDB', () => {
    it('creates the table with the keys, indexes and TTL attribute of functions/shared/resources.ts', async () => {
      const { Table } = await aws.dynamo.send(
        new DescribeTableCommand({ TableName: emulators.resources.table }),
      );
      expect(Table?.KeySchema).toEqual([
        { AttributeName: TABLE.partitionKey, KeyType: 'HASH' },
        { AttributeName: TABLE.sortKey, KeyType: 'RANGE' },
      ]);
      const indexes = (Table?.GlobalSecondaryIndexes ?? []).map((i) => ({
        name: i.IndexName,
        keys: i.KeySchema?.map((k) => k.AttributeName),
        projection: i.Projection?.ProjectionType,
      }));
      expect(indexes).toEqual(
        expect.arrayContaining(
          TABLE.indexes.map((i) => ({ name: i.name, keys: [i.partitionKey, i.sortKey], projection: 'ALL' })),
        ),
      );
      expect(indexes).toHaveLength(TABLE.indexes.length);
      const { TimeToLiveDescription } = await aws.dynamo.send(
        new DescribeTimeToLiveCommand({ TableName: emulators.resources.table }),
      );
      expect(TimeToLiveDescription).toMatchObject({
        TimeToLiveStatus: 'ENABLED',
        AttributeName: TABLE.ttlAttribute,
      });
    });

    it('refuses a conditional write whose condition fails', async () => {
      const put = () =>
        aws.dynamo.send(
          new PutItemCommand({
            TableName: emulators.resources.table,
            Item: { pk: { S: 'IDEMPOTENCY#k1' }, sk: { S: 'KEY' }, job: { S: 'job_1' } },
            ConditionExpression: 'attribute_not_exists(pk)',
          }),
        );
      await put();
      await expect(put()).rejects.toBeInstanceOf(ConditionalCheckFailedException);
    });

    it('cancels a transaction with a failing condition and returns the item that failed it', async () => {
      const table = emulators.resources.table;
      await aws.dynamo.send(
        new PutItemCommand({
          TableName: table,
          Item: { pk: { S: 'JOB#j2' }, sk: { S: 'JOB' }, status: { S: 'running' } },
        }),
      );
      const error = await aws.dynamo
        .send(
          new TransactWriteItemsCommand({
            TransactItems: [
              {
                Update: {
                  TableName: table,
                  Key: { pk: { S: 'JOB#j2' }, sk: { S: 'JOB' } },
                  UpdateExpression: 'SET #s = :started',
                  ConditionExpression: '#s = :queued',
                  ExpressionAttributeNames: { '#s': 'status' },
                  ExpressionAttributeValues: { ':started': { S: 'running' }, ':queued': { S: 'queued' } },
                  ReturnValuesOnConditionCheckFailure: 'ALL_OLD',
                },
              },
              { Put: { TableName: table, Item: { pk: { S: 'JOB#j2' }, sk: { S: 'FRAME#1001' } } } },
            ],
          }),
        )
        .catch((e: unknown) => e);
      expect(error).toBeInstanceOf(TransactionCanceledException);
      const reasons = (error as TransactionCanceledException).CancellationReasons;
      expect(reasons?.map((r) => r.Code)).toEqual(['ConditionalCheckFailed', 'None']);
      expect(reasons?.[0]?.Item?.status).toEqual({ S: 'running' });
      const { Item } = await aws.dynamo.send(
        new GetItemCommand({ TableName: table, Key: { pk: { S: 'JOB#j2' }, sk: { S: 'FRAME#1001' } } }),
      );
      expect(Item).toBeUndefined();
    });
  });

  describe('S3', () => {
    it('stores a streamed PutObject byte for byte and hands it back on GetObject', async () => {
      const frame = Buffer.concat([Buffer.from('89504e470d0a1a0a', 'hex'), randomBytes(4096)]);
      const Key = 'tenant/EP101_SH040/job_1/EP101_SH040.1001.png';
      await aws.s3.send(
        new PutObjectCommand({
          Bucket: emulators.resources.bucket,
          Key,
          Body: Readable.from([frame]),
          ContentLength: frame.byteLength,
          ContentType: 'image/png',
        }),
      );
      const got = await aws.s3.send(new GetObjectCommand({ Bucket: emulators.resources.bucket, Key }));
      expect(got.ContentType).toBe('image/png');
      expect(Buffer.from(await got.Body!.transformToByteArray())).toEqual(frame);
    });

    // s3rver 3.7 predates S3's checksums; patches/s3rver+3.7.1.patch adds them (docs/upstream-defects.md).
    const sha256 = (bytes: Uint8Array) => createHash('sha256').update(bytes).digest('base64');
    const putWithChecksum = (Key: string, body: Buffer, checksum: string) =>
      fetch(`${emulators.env.AWS_ENDPOINT_URL_S3}/${emulators.resources.assetBucket}/${Key}`, {
        method: 'PUT',
        headers: { 'x-amz-checksum-sha256': checksum, 'content-length': String(body.byteLength) },
        body,
      });

    // s3rver 3.7 answered a PUT before the object was written (docs/upstream-defects.md): a GET right after
    // could read part of it. S3 reads after a write what was written, whole.
    it('has the whole object once a PUT is answered, with or without a checksum', async () => {
      for (let round = 0; round < 6; round++) {
        const Key = `tenant/read-after-write/${round}`;
        const body = randomBytes(8 * 1024 * 1024);
        const put =
          round % 2 === 0
            ? putWithChecksum(Key, body, sha256(body)).then((res) => expect(res.status).toBe(200))
            : aws.s3.send(new PutObjectCommand({ Bucket: emulators.resources.assetBucket, Key, Body: body }));
        await put;
        const got = await aws.s3.send(new GetObjectCommand({ Bucket: emulators.resources.assetBucket, Key }));
        expect(sha256(await got.Body!.transformToByteArray())).toBe(sha256(body));
      }
    });

    it('refuses a PUT whose x-amz-checksum-sha256 does not match the body, and keeps the object it had', async () => {
      const Key = 'tenant/sha256/checksum-refused';
      const good = randomBytes(2048);
      expect((await putWithChecksum(Key, good, sha256(good))).status).toBe(200);
      const corrupt = Buffer.from(good);
      corrupt[100] = (corrupt[100]! + 1) % 256;
      const refused = await putWithChecksum(Key, corrupt, sha256(good));
      expect(refused.status).toBe(400);
      expect(await refused.text()).toContain('<Code>BadDigest</Code>');
      const malformed = await putWithChecksum(Key, corrupt, 'not-a-checksum');
      expect(malformed.status).toBe(400);
      expect(await malformed.text()).toContain('<Code>InvalidRequest</Code>');
      const kept = await aws.s3.send(new GetObjectCommand({ Bucket: emulators.resources.assetBucket, Key }));
      expect(Buffer.from(await kept.Body!.transformToByteArray())).toEqual(good);
    });

    it('keeps the checksum of an upload and gives it back only when asked, as S3 does', async () => {
      const Key = 'tenant/sha256/checksum-kept';
      const body = randomBytes(1024);
      await putWithChecksum(Key, body, sha256(body));
      const Bucket = emulators.resources.assetBucket;
      const asked = await aws.s3.send(new HeadObjectCommand({ Bucket, Key, ChecksumMode: 'ENABLED' }));
      expect(asked.ChecksumSHA256).toBe(sha256(body));
      expect((await aws.s3.send(new HeadObjectCommand({ Bucket, Key }))).ChecksumSHA256).toBeUndefined();
      const ranged = await aws.s3.send(
        new GetObjectCommand({ Bucket, Key, Range: 'bytes=0-15', ChecksumMode: 'ENABLED' }),
      );
      expect(ranged.ChecksumSHA256).toBeUndefined();
      expect(await ranged.Body!.transformToByteArray()).toHaveLength(16);
    });
  });

  describe('SQS', () => {
    const receive = (
      QueueUrl: string,
      extra: { WaitTimeSeconds?: number; VisibilityTimeout?: number } = {},
    ) => aws.sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1, ...extra }));

    it.each(Object.values(QUEUES))(
      'moves a message of the $name queue to its DLQ after $maxReceiveCount receives',
      async ({ name, maxReceiveCount }) => {
        const { url, dlqUrl } = emulators.resources.queues[name];
        const { MessageId } = await aws.sqs.send(
          new SendMessageCommand({ QueueUrl: url, MessageBody: name }),
        );
        for (let n = 1; n <= maxReceiveCount; n++) {
          // Visibility 0: the message is back at once, as if its consumer had failed.
          const message = onlyMessage((await receive(url, { VisibilityTimeout: 0 })).Messages);
          expect(message.MessageId).toBe(MessageId);
        }
        const dead = onlyMessage((await receive(dlqUrl)).Messages);
        expect(dead.Body).toBe(name);
        expect((await receive(url, { WaitTimeSeconds: 0 })).Messages).toBeUndefined();
        await aws.sqs.send(new DeleteMessageCommand({ QueueUrl: dlqUrl, ReceiptHandle: dead.ReceiptHandle }));
      },
    );

    it('returns a long poll as soon as one message arrives, without waiting for MaxNumberOfMessages', async () => {
      const QueueUrl = emulators.resources.queues.plan.url;
      const WaitTimeSeconds = 5;
      const started = performance.now();
      const polling = aws.sqs.send(
        new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds, MaxNumberOfMessages: 10 }),
      );
      setTimeout(() => void aws.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'late' })), 300);
      const { Messages } = await polling;
      const elapsed = performance.now() - started;
      expect(onlyMessage(Messages).Body).toBe('late');
      expect(elapsed).toBeLessThan(WaitTimeSeconds * 1000 - 1000);
      await aws.sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: Messages![0]!.ReceiptHandle }));
    });

    it('counts receives, not visibility heartbeats, in ApproximateReceiveCount', async () => {
      const QueueUrl = emulators.resources.queues.frame.url;
      await aws.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'chunk' }));
      const first = onlyMessage(
        (await aws.sqs.send(new ReceiveMessageCommand({ QueueUrl, MessageSystemAttributeNames: ['All'] })))
          .Messages,
      );
      expect(first.Attributes?.ApproximateReceiveCount).toBe('1');
      // Two heartbeats, then the hand-back a worker does on SIGTERM: three ChangeMessageVisibility calls.
      for (const VisibilityTimeout of [60, 60, 0]) {
        await aws.sqs.send(
          new ChangeMessageVisibilityCommand({
            QueueUrl,
            ReceiptHandle: first.ReceiptHandle,
            VisibilityTimeout,
          }),
        );
      }
      const second = onlyMessage(
        (
          await aws.sqs.send(
            new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1, MessageSystemAttributeNames: ['All'] }),
          )
        ).Messages,
      );
      expect(second.MessageId).toBe(first.MessageId);
      expect(second.Attributes?.ApproximateReceiveCount).toBe('2');
      await aws.sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: second.ReceiptHandle }));
    });

    it('returns the system attributes asked for with MessageSystemAttributeNames', async () => {
      const QueueUrl = emulators.resources.queues.event.url;
      const before = Date.now();
      await aws.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'event' }));
      const message = onlyMessage(
        (
          await aws.sqs.send(
            new ReceiveMessageCommand({
              QueueUrl,
              WaitTimeSeconds: 1,
              MessageSystemAttributeNames: ['ApproximateReceiveCount', 'SentTimestamp'],
            }),
          )
        ).Messages,
      );
      expect(Object.keys(message.Attributes ?? {}).sort()).toEqual([
        'ApproximateReceiveCount',
        'SentTimestamp',
      ]);
      expect(message.Attributes?.ApproximateReceiveCount).toBe('1');
      const sent = Number(message.Attributes?.SentTimestamp);
      expect(sent).toBeGreaterThanOrEqual(before);
      expect(sent).toBeLessThanOrEqual(Date.now());
      await aws.sqs.send(new DeleteMessageCommand({ QueueUrl, ReceiptHandle: message.ReceiptHandle }));
    });
  });

  it('find the items and objects of the previous run in a data directory, and start again over them', async () => {
    const Key = { pk: { S: 'JOB#kept' }, sk: { S: 'JOB' } };
    const before = clientsFor(kept.env);
    try {
      await before.dynamo.send(new PutItemCommand({ TableName: kept.resources.table, Item: Key }));
      await before.s3.send(
        new PutObjectCommand({
          Bucket: kept.resources.bucket,
          Key: 'kept/manifest.json',
          Body: '{"kept":true}',
        }),
      );
      // The SQS emulator in its own process pauses and listens again with its messages, as here.
      const QueueUrl = kept.resources.queues.plan.url;
      await before.sqs.send(new SendMessageCommand({ QueueUrl, MessageBody: 'through the outage' }));
      await kept.restart('sqs', 50);
      const kept1 = onlyMessage(
        (await before.sqs.send(new ReceiveMessageCommand({ QueueUrl, WaitTimeSeconds: 1 }))).Messages,
      );
      expect(kept1.Body).toBe('through the outage');
    } finally {
      before.destroy();
      await kept.stop();
      await kept.stop(); // Harmless the second time.
    }
    const stopped = clientsFor(kept.env);
    await expect(stopped.dynamo.send(new ListTablesCommand({}), { requestTimeout: 2000 })).rejects.toThrow();
    // The emulators' own process is gone with them.
    await expect(
      stopped.s3.send(new HeadObjectCommand({ Bucket: kept.resources.bucket, Key: 'kept/manifest.json' }), {
        requestTimeout: 2000,
      }),
    ).rejects.toThrow();
    stopped.destroy();

    const second = await startEmulators({ dataDir, prefix: keptPrefix });
    const after = clientsFor(second.env);
    try {
      const { Item } = await after.dynamo.send(
        new GetItemCommand({ TableName: second.resources.table, Key }),
      );
      expect(Item).toEqual(Key);
      const object = await after.s3.send(
        new GetObjectCommand({ Bucket: second.resources.bucket, Key: 'kept/manifest.json' }),
      );
      expect(await object.Body!.transformToString()).toBe('{"kept":true}');
      const { Table } = await after.dynamo.send(
        new DescribeTableCommand({ TableName: second.resources.table }),
      );
      expect(Table?.GlobalSecondaryIndexes).toHaveLength(TABLE.indexes.length);
    } finally {
      after.destroy();
      await second.stop();
    }
  });
});

describe('starting the emulators without Java', () => {
  it('says how to install it', async () => {
    // A PATH with sh on it and no java.
    const bin = await mkdtemp(join(tmpdir(), 'framecast-no-java-'));
    await symlink('/bin/sh', join(bin, 'sh'));
    const path = process.env.PATH;
    process.env.PATH = bin;
    try {
      await expect(startEmulators({ prefix: 'framecast-no-java', sharedDynamoDb: false })).rejects.toThrow(
        /apt-get install -y openjdk-17-jre-headless/,
      );
    } finally {
      process.env.PATH = path;
      await rm(bin, { recursive: true, force: true });
    }
  });
});
