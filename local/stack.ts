import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { type AwsRequest, createClients } from '../functions/adapters/clients.ts';
import { clearKeyCache } from '../functions/api/http.ts';
import { loadConfig } from '../functions/config.ts';
import { frameCount } from '../functions/core/frames.ts';
import { encodePlan } from '../functions/core/messages.ts';
import type { Scope } from '../functions/core/model.ts';
import { startReferenceModel } from '../functions/model/reference/server.ts';
import { createApiKey } from '../functions/services/api-keys.ts';
import { Container, useContainer } from '../functions/services/container.ts';
import { ENV } from '../functions/shared/env.ts';
import { CONSUMER_TIMEOUT_SECONDS } from '../functions/shared/resources.ts';
import { CONSUMERS } from '../functions/shared/routes.ts';
import { createWorker } from '../functions/worker/create.ts';
import type { Worker, WorkerSettings } from '../functions/worker/worker.ts';
import { writeReviewPage } from '../review/build.ts';
import { type EmulatedResources, type Emulators, startEmulators } from './emulators.ts';
import { pollQueue } from './event-source.ts';
import { startGateway } from './gateway.ts';

/** The models local mode runs when FRAMECAST_MODELS does not say: the reference model, per frame and in windows. */
export const LOCAL_MODELS = ['reference', 'reference-window'] as const;

type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

/** What a running local stack writes to its connection file (`.framecast/local.json` under `npm run dev`). */
export interface LocalConnectionFile {
  readonly apiUrl: string;
  readonly dynamodb: { readonly endpoint: string; readonly region: string; readonly table: string };
  /** The SQS emulator and the queues with their DLQs (`framecast redrive`). */
  readonly sqs?: { readonly endpoint: string; readonly queues: EmulatedResources['queues'] };
  readonly pid: number;
}

export interface LocalStackOptions {
  /** Keep data here between runs; omitted, everything lives in memory and a temp dir. */
  readonly dataDir?: string;
  /** s3rver and the SQS emulator in a process of their own (the benchmark; see EmulatorOptions). */
  readonly emulatorsInOwnProcess?: boolean;
  /** API port; 0 picks a free one. */
  readonly port?: number;
  /** Use this dev API key instead of a new random one (FRAMECAST_DEV_API_KEY). */
  readonly devApiKey?: string;
  /** A model server that is already running (FRAMECAST_MODEL_URL); omitted, the reference model starts. */
  readonly modelUrl?: string;
  /** Options of the reference model when it is started here (fault injection and timings for tests). */
  readonly referenceModel?: Parameters<typeof startReferenceModel>[0];
  /** Worker settings to override (tests shorten back-offs). */
  readonly worker?: Partial<WorkerSettings>;
  /** Run no worker: tests that drive the worker themselves. */
  readonly withoutWorker?: boolean;
  /** Deliver no webhooks: tests that drive delivery themselves (with an injected clock). */
  readonly withoutWebhooks?: boolean;
  /** Run no fan-out: tests that run it themselves (as a process of its own, to kill it). */
  readonly withoutFanout?: boolean;
  /** Extra FRAMECAST_* settings, by variable name. */
  readonly env?: Record<string, string>;
  /** Told of every AWS request the stack's clients make (API, fan-out, worker): the benchmark counts them. */
  readonly onAwsRequest?: (request: AwsRequest) => void;
  /**
   * Write where the stack runs here while it does (API URL, DynamoDB Local's endpoint and the table), for
   * `framecast keys` to find it; removed on stop. `npm run dev` writes `.framecast/local.json`.
   */
  readonly connectionFile?: string;
}

export interface LocalStack {
  readonly url: string;
  readonly apiKey: string;
  readonly modelUrl: string;
  readonly app: Container;
  /** The queues and their DLQs on the emulator (tests look into the DLQs). */
  readonly queues: EmulatedResources['queues'];
  readonly worker?: Worker;
  readonly env: Record<string, string>;
  createApiKey(tenant: string, scopes?: readonly Scope[]): Promise<string>;
  /** Takes DynamoDB Local or the SQS emulator down for `downMs` and back on its port (the fault tests). */
  restartEmulator: Emulators['restart'];
  stop(): Promise<void>;
}

/**
 * The whole system on one machine: emulators, the API, the fan-out, the worker with a model, and
 * webhook delivery. `npm run dev` and the integration tests both start this.
 */
export async function startLocalStack(options: LocalStackOptions = {}): Promise<LocalStack> {
  const cleanup: (() => Promise<void>)[] = [];
  const stop = async () => {
    for (const step of cleanup.reverse())
      await step().catch((err: unknown) => console.error('stop failed', err));
    cleanup.length = 0;
  };
  try {
    const [emulators, model] = await Promise.all([
      startEmulators({
        ...(options.dataDir && { dataDir: options.dataDir }),
        ...(options.emulatorsInOwnProcess && { ownProcess: true }),
      }),
      // One render slot per worker slot, as a GPU model container would be sized for its worker.
      options.modelUrl
        ? undefined
        : startReferenceModel({
            port: 0,
            concurrency: options.worker?.concurrency ?? loadConfig(['workerConcurrency']).workerConcurrency,
            ...options.referenceModel,
          }),
    ]);
    cleanup.push(() => emulators.stop());
    if (model) cleanup.push(() => model.close());
    const modelUrl = options.modelUrl ?? model!.url;

    // The review page, built from its sources now, as the stack builds it at synth (review/build.ts).
    const pageDir = await mkdtemp(join(tmpdir(), 'framecast-review-'));
    cleanup.push(() => rm(pageDir, { recursive: true, force: true }));
    writeReviewPage(pageDir);

    // Local mode serves the reference model both ways, frame by frame and in windows (a video model), from
    // its one server; a setting of FRAMECAST_MODELS says otherwise.
    const models = options.env?.[ENV.models] ?? process.env[ENV.models] ?? LOCAL_MODELS.join(',');
    // The handlers read their configuration from the environment, as in Lambda.
    const env: Record<string, string> = {
      [ENV.models]: models,
      ...emulators.env,
      [ENV.modelUrl]: modelUrl,
      // Provenance names the image that made a frame; here that is whatever serves the URL.
      ...(options.modelUrl &&
        !process.env[ENV.modelImage] && { [ENV.modelImage]: `Cog server at ${options.modelUrl}` }),
      [ENV.webhookAllowLoopback]: process.env[ENV.webhookAllowLoopback] ?? '1',
      [ENV.production]: 'local',
      // No CloudWatch here: the embedded-metric lines would only clutter the console.
      POWERTOOLS_METRICS_DISABLED: process.env.POWERTOOLS_METRICS_DISABLED ?? 'true',
      [ENV.eventDlqUrl]: emulators.resources.queues.event.dlqUrl,
      [ENV.reviewPageDir]: pageDir,
      // The page may be opened as localhost or 127.0.0.1, and frames come from s3rver on another port.
      [ENV.reviewSources]: 'http://127.0.0.1:* http://localhost:* https:',
      // One model server in local mode: every configured model's frames go to the one frame queue, and
      // to its two other priority bands.
      [ENV.frameQueueUrls]: JSON.stringify(
        Object.fromEntries(
          loadConfig(['models'], { [ENV.models]: models }).models.map((m) => [
            m,
            emulators.resources.queues.frame.url,
          ]),
        ),
      ),
      [ENV.frameQueueBandUrls]: JSON.stringify(
        Object.fromEntries(
          loadConfig(['models'], { [ENV.models]: models }).models.flatMap((m) => [
            [`${m}:high`, emulators.resources.queues['frame-high'].url],
            [`${m}:low`, emulators.resources.queues['frame-low'].url],
          ]),
        ),
      ),
      ...options.env,
    };
    // The handlers read their settings from the environment, as on Lambda. A stopped stack leaves it as
    // it found it: a test file's next stack, in the same process, starts from the same settings.
    const previous = Object.fromEntries(Object.keys(env).map((key) => [key, process.env[key]]));
    cleanup.push(async () => {
      for (const [key, value] of Object.entries(previous)) {
        if (value === undefined) delete process.env[key];
        else process.env[key] = value;
      }
    });
    Object.assign(process.env, env);
    clearKeyCache();
    // Clients made now, on this run's endpoints, and shared with the handlers the gateway loads.
    const aws = createClients(options.onAwsRequest ? { onRequest: options.onAwsRequest } : {});
    const app = new Container(process.env, () => aws);
    useContainer(app);

    const gateway = await startGateway({
      port: options.port ?? 0,
      page: true,
      corsOrigins: loadConfig(['corsOrigins'], process.env).corsOrigins,
    });
    cleanup.push(() => gateway.close());

    if (!options.withoutFanout) {
      const fanout = (await import('../functions/fanout/handler.ts')) as { handler: SqsHandler };
      const planPoller = pollQueue(app.planQueue, fanout.handler, {
        name: CONSUMERS.fanout.entry,
        timeoutMs: CONSUMER_TIMEOUT_SECONDS.plan * 1000,
        waitSeconds: 1,
      });
      cleanup.push(() => planPoller.close());
    }

    if (!options.withoutWebhooks) {
      const webhooks = (await import('../functions/webhooks/handler.ts')) as { handler: SqsHandler };
      const eventPoller = pollQueue(app.eventQueue, webhooks.handler, {
        name: CONSUMERS.webhooks.entry,
        timeoutMs: CONSUMER_TIMEOUT_SECONDS.event * 1000,
        waitSeconds: 1,
        // A receiver that hangs holds its batch for up to the 15 s timeout; other batches go on.
        concurrency: 4,
      });
      cleanup.push(() => eventPoller.close());
    }

    let worker: Worker | undefined;
    if (!options.withoutWorker) {
      worker = createWorker(app, process.env, { waitSeconds: 1, ...options.worker });
      const running = worker.run().catch((err: unknown) => console.error('worker failed', err));
      cleanup.push(async () => {
        worker?.stop();
        await running;
      });
    }

    const apiKey = await ensureKey(app, options.devApiKey);
    if (options.dataDir) await resumeUnfinishedJobs(app);
    if (options.connectionFile) {
      const file = options.connectionFile;
      const connection: LocalConnectionFile = {
        apiUrl: gateway.url,
        dynamodb: {
          endpoint: emulators.env.AWS_ENDPOINT_URL_DYNAMODB!,
          region: emulators.env.AWS_REGION!,
          table: emulators.resources.table,
        },
        sqs: { endpoint: emulators.env.AWS_ENDPOINT_URL_SQS!, queues: emulators.resources.queues },
        pid: process.pid,
      };
      await mkdir(dirname(file), { recursive: true });
      await writeFile(file, `${JSON.stringify(connection, null, 2)}\n`);
      cleanup.push(() => rm(file, { force: true }));
    }
    return {
      url: gateway.url,
      apiKey,
      modelUrl,
      app,
      queues: emulators.resources.queues,
      ...(worker && { worker }),
      env,
      createApiKey: (tenant, scopes) => createApiKey(app.apiKeys, { tenant, ...(scopes && { scopes }) }),
      restartEmulator: (service, downMs) => emulators.restart(service, downMs),
      stop,
    };
  } catch (err) {
    await stop();
    throw err;
  }
}

/** The dev key: the given one (kept across runs with the data) or a new one, with every scope. */
async function ensureKey(app: Container, key?: string): Promise<string> {
  try {
    return await createApiKey(app.apiKeys, { tenant: 'dev', name: 'local dev key', ...(key && { key }) });
  } catch (err) {
    if (key && (err as Error).name === 'ConditionalCheckFailedException') return key;
    throw err;
  }
}

/**
 * The SQS emulator keeps no messages across runs, so jobs left queued or running by the last run are
 * planned again: finished frames are skipped, interrupted ones tried again. In AWS, SQS keeps them.
 */
async function resumeUnfinishedJobs(app: Container): Promise<void> {
  for (const job of await app.store.unfinishedJobs()) {
    await app.store.resetPlan(job.id);
    await app.planQueue.send(encodePlan({ jobId: job.id, tenant: job.tenant }));
    console.log(
      `resuming ${job.id} (${job.shot}, ${job.succeeded + job.failed} of ${frameCount(job.frames)} frames done)`,
    );
  }
}
