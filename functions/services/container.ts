import { AssetFiles } from '../adapters/asset-files.ts';
import { type AwsClients, clients } from '../adapters/clients.ts';
import { FrameStore } from '../adapters/frame-store.ts';
import { Queue } from '../adapters/queues.ts';
import { ApiKeyStore } from '../adapters/store/api-keys.ts';
import { AssetStore } from '../adapters/store/assets.ts';
import { AuditStore } from '../adapters/store/audit.ts';
import { BudgetStore } from '../adapters/store/budgets.ts';
import { EventStore } from '../adapters/store/events.ts';
import { JobStore } from '../adapters/store/jobs.ts';
import { UsageStore } from '../adapters/store/usage.ts';
import { VersionStore } from '../adapters/store/versions.ts';
import { credentialsOf, secretsManager } from '../adapters/trackers.ts';
import { WebhookStore } from '../adapters/webhook-store.ts';
import { loadConfig } from '../config.ts';
import type { Band } from '../core/fair-share.ts';
import { encodeEvent, encodePlan } from '../core/messages.ts';
import type { EventRecord } from '../core/model.ts';
import { policyFromSettings } from '../core/webhooks/ssrf.ts';
import { AssetService } from './assets.ts';
import { AuditService } from './audit.ts';
import { BudgetService } from './budgets.ts';
import { Estimator } from './estimates.ts';
import { JobService } from './jobs.ts';
import { publishers } from './publishing.ts';
import { UsageService } from './usage.ts';
import { VersionService } from './versions.ts';
import { WebhookService } from './webhooks.ts';

/**
 * The process's services, each built at first use from the environment. A Lambda thus reads only the
 * variables of what it uses, and fails fast naming a missing one.
 */
export class Container {
  private readonly memo = new Map<string, unknown>();

  constructor(
    private readonly env: Record<string, string | undefined> = process.env,
    private readonly aws: () => AwsClients = clients,
  ) {}

  private once<T>(name: string, make: () => T): T {
    if (!this.memo.has(name)) this.memo.set(name, make());
    return this.memo.get(name) as T;
  }

  private get table(): string {
    return loadConfig(['table'], this.env).table;
  }

  private get auditRetentionDays(): number {
    return loadConfig(['auditRetentionDays'], this.env).auditRetentionDays;
  }

  /** Jobs, their frames and idempotency keys. */
  get store(): JobStore {
    return this.once('store', () => new JobStore(this.aws().dynamo, this.table, this.auditRetentionDays));
  }

  /** The audit trail: records written once, listed by time (docs/operations.md, "Audit trail"). */
  get auditStore(): AuditStore {
    return this.once(
      'auditStore',
      () => new AuditStore(this.aws().dynamo, this.table, this.auditRetentionDays),
    );
  }

  get audit(): AuditService {
    return this.once('audit', () => new AuditService({ store: this.auditStore }));
  }

  /** Spend by tenant, day and month, and each model's record for estimates (docs/operations.md). */
  get usageStore(): UsageStore {
    return this.once('usageStore', () => new UsageStore(this.aws().dynamo, this.table));
  }

  get budgetStore(): BudgetStore {
    return this.once('budgetStore', () => new BudgetStore(this.aws().dynamo, this.table));
  }

  get budgets(): BudgetService {
    return this.once(
      'budgets',
      () =>
        new BudgetService({
          budgets: this.budgetStore,
          usage: this.usageStore,
          production: loadConfig(['cost'], this.env).cost.budget,
        }),
    );
  }

  get usage(): UsageService {
    return this.once('usage', () => new UsageService(this.usageStore));
  }

  /** Frame versions and re-rolls. */
  get versionStore(): VersionStore {
    return this.once(
      'versionStore',
      () => new VersionStore(this.aws().dynamo, this.table, this.auditRetentionDays),
    );
  }

  get versions(): VersionService {
    return this.once(
      'versions',
      () =>
        new VersionService({
          jobs: this.store,
          versions: this.versionStore,
          files: this.frameStore,
          sendFrameMessage: (model, body) => this.frameQueueFor(model).send(body),
          audit: this.auditStore,
          naming: loadConfig(['namingTemplate'], this.env).namingTemplate,
        }),
    );
  }

  get apiKeys(): ApiKeyStore {
    return this.once('apiKeys', () => new ApiKeyStore(this.aws().dynamo, this.table));
  }

  /** Recorded events, read back for webhook delivery and the events listing. */
  get events(): EventStore {
    return this.once('events', () => new EventStore(this.aws().dynamo, this.table));
  }

  get frameStore(): FrameStore {
    return this.once('frameStore', () => {
      const { bucket, urlExpirySeconds } = loadConfig(['bucket', 'urlExpirySeconds'], this.env);
      return new FrameStore(this.aws().s3, bucket, urlExpirySeconds);
    });
  }

  get planQueue(): Queue {
    return this.once(
      'planQueue',
      () => new Queue(this.aws().sqs, loadConfig(['planQueueUrl'], this.env).planQueueUrl),
    );
  }

  get frameQueue(): Queue {
    return this.once(
      'frameQueue',
      () => new Queue(this.aws().sqs, loadConfig(['frameQueueUrl'], this.env).frameQueueUrl),
    );
  }

  /**
   * The fan-out's view: the frame queue of each configured model (FRAMECAST_FRAME_QUEUE_URLS), or of one
   * of its priority bands (FRAMECAST_FRAME_QUEUE_BAND_URLS; a model without bands has one queue for all).
   */
  frameQueueFor(model: string, band: Band = 'normal'): Queue {
    const urls = this.once('frameQueueUrls', () => loadConfig(['frameQueueUrls'], this.env).frameQueueUrls);
    const bands = this.once(
      'frameQueueBandUrls',
      () => loadConfig(['frameQueueBandUrls'], this.env).frameQueueBandUrls,
    );
    const url = (band === 'normal' ? undefined : bands[`${model}:${band}`]) ?? urls[model];
    if (!url)
      throw new Error(`no frame queue is configured for model "${model}" (FRAMECAST_FRAME_QUEUE_URLS)`);
    return this.once(`frameQueue:${url}`, () => new Queue(this.aws().sqs, url));
  }

  /** The worker's view: its model's frame queue and the priority bands beside it (FRAMECAST_FRAME_QUEUE_BANDS). */
  get frameBands(): Readonly<Partial<Record<Band, Queue>>> & { readonly normal: Queue } {
    return this.once('frameBands', () => {
      const { high, low } = loadConfig(['frameQueueBands'], this.env).frameQueueBands;
      return {
        normal: this.frameQueue,
        ...(high && { high: new Queue(this.aws().sqs, high) }),
        ...(low && { low: new Queue(this.aws().sqs, low) }),
      };
    });
  }

  /** The worker's frame DLQ (FRAMECAST_FRAME_DLQ_URL), for frames that failed every attempt; absent when unset. */
  get frameDeadLetters(): Queue | undefined {
    return this.once('frameDeadLetters', () => {
      const url = loadConfig(['frameDlqUrl'], this.env).frameDlqUrl;
      return url === undefined ? undefined : new Queue(this.aws().sqs, url);
    });
  }

  get eventQueue(): Queue {
    return this.once(
      'eventQueue',
      () => new Queue(this.aws().sqs, loadConfig(['eventQueueUrl'], this.env).eventQueueUrl),
    );
  }

  get eventDlq(): Queue {
    return this.once(
      'eventDlq',
      () => new Queue(this.aws().sqs, loadConfig(['eventDlqUrl'], this.env).eventDlqUrl),
    );
  }

  get hooksStore(): WebhookStore {
    return this.once('hooksStore', () => {
      const { webhookClaimStaleSeconds } = loadConfig(['webhookClaimStaleSeconds'], this.env);
      return new WebhookStore(this.aws().dynamo, this.table, webhookClaimStaleSeconds * 1000);
    });
  }

  get webhooks(): WebhookService {
    return this.once('webhooks', () => {
      const self = this;
      return new WebhookService({
        jobs: this.store,
        events: this.events,
        hooks: this.hooksStore,
        policy: policyFromSettings(loadConfig(['webhookAllowLoopback', 'webhookAllowedHosts'], this.env)),
        // Resolved at first use: only the delivery Lambda and redelivery need the queues.
        eventQueue: { send: (body, delay) => self.eventQueue.send(body, delay) },
        eventDlq: { send: (body, delay) => self.eventDlq.send(body, delay) },
        publishers: this.publishers(),
      });
    });
  }

  /** The production's trackers (FRAMECAST_PUBLISHERS), each with its credentials' source. */
  private publishers() {
    const config = loadConfig(['publishers', 'publishCredentials', 'namingTemplate'], this.env);
    if (config.publishers.length === 0) return [];
    const region = this.env.AWS_REGION ?? 'us-east-1';
    return publishers(config.publishers, {
      jobs: this.store,
      naming: config.namingTemplate,
      credentials: credentialsOf(config.publishCredentials, secretsManager(region)),
    });
  }

  /** Puts recorded events on the event queue, for webhook delivery. */
  readonly publishEvents = async (events: readonly EventRecord[]): Promise<void> => {
    if (events.length === 0) return;
    const messages = events.map((e) => encodeEvent({ eventId: e.id, jobId: e.jobId, tenant: e.tenant }));
    await this.eventQueue.sendAll(messages);
  };

  get jobs(): JobService {
    return this.once('jobs', () => {
      const { frameLimit, models, modelSpecs } = loadConfig(['frameLimit', 'models', 'modelSpecs'], this.env);
      return new JobService({
        store: this.store,
        bucket: loadConfig(['bucket'], this.env).bucket,
        frameLimit,
        models,
        modelSpecs,
        sendPlan: (m) => this.planQueue.send(encodePlan(m)),
        publishEvents: this.publishEvents,
        latestEvents: (jobId) => this.events.latestEvents(jobId),
        presign: (key) => this.frameStore.presignGet(key),
        checkWebhookUrl: (url) => this.webhooks.checkUrl(url),
        getAsset: (id) => this.assetStore.getAsset(id),
        naming: (({ namingTemplate, namingPass }) => ({ template: namingTemplate, pass: namingPass }))(
          loadConfig(['namingTemplate', 'namingPass'], this.env),
        ),
        estimator: this.estimator,
        checkBudget: (tenant, estimate) => this.budgets.checkCreate(tenant, estimate),
      });
    });
  }

  /** Estimates of jobs before they run: the model's record, its queue's backlog, its fleet. */
  get estimator(): Estimator {
    return this.once('estimator', () => {
      const { chunkSize, cost } = loadConfig(['chunkSize', 'cost'], this.env);
      return new Estimator({
        history: (model) => this.usageStore.modelHistory(model),
        queued: async (model) => {
          const { visible, inFlight } = await this.frameQueueFor(model).depth();
          return visible + inFlight;
        },
        chunkSize,
        cost,
      });
    });
  }

  /** Assets and who holds each stored content. */
  get assetStore(): AssetStore {
    return this.once('assetStore', () => new AssetStore(this.aws().dynamo, this.table));
  }

  /** Asset content in the asset bucket: upload URLs, HEADs, ranged reads, deletes. */
  get assetFiles(): AssetFiles {
    return this.once('assetFiles', () => {
      const { assetBucket, urlExpirySeconds } = loadConfig(['assetBucket', 'urlExpirySeconds'], this.env);
      return new AssetFiles(this.aws().s3, assetBucket, urlExpirySeconds);
    });
  }

  get assets(): AssetService {
    return this.once('assets', () => {
      const { frameLimit, assetMaxFileBytes } = loadConfig(['frameLimit', 'assetMaxFileBytes'], this.env);
      // Resolved at first use: reading an asset needs the table alone, not the bucket.
      const files = () => this.assetFiles;
      return new AssetService({
        store: this.assetStore,
        files: {
          presignPut: (tenant, content, expiresIn) => files().presignPut(tenant, content, expiresIn),
          presignGet: (tenant, sha256, expiresIn) => files().presignGet(tenant, sha256, expiresIn),
          holds: (tenant, content) => files().holds(tenant, content),
          read: (tenant, sha256, offset, length) => files().read(tenant, sha256, offset, length),
          deleteMany: (tenant, sha256s) => files().deleteMany(tenant, sha256s),
        },
        frameLimit,
        maxFileBytes: assetMaxFileBytes,
      });
    });
  }
}

let shared: Container | undefined;
/** The container of this process (one per Lambda execution environment). */
export const container = (): Container => {
  shared ??= new Container();
  return shared;
};

/**
 * Makes `app` the process's container. Local mode runs the handlers in its own process and installs its
 * container (clients on this run's emulator endpoints), so a restart in the same process starts clean.
 */
export const useContainer = (app: Container): void => {
  shared = app;
};
