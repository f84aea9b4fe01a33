/**
 * The shape of Framecast's stateful resources, as plain data.
 *
 * The CDK constructs (lib/) and local mode (local/) both build the table, the bucket and the queues from
 * these definitions, so the emulators run against the same keys, indexes and redrive settings as AWS.
 * Nothing here imports aws-cdk-lib: local mode must not pay for it at start-up.
 */

export interface IndexDefinition {
  readonly name: string;
  readonly partitionKey: string;
  readonly sortKey: string;
}

export interface TableDefinition {
  readonly partitionKey: string;
  readonly sortKey: string;
  /** Epoch seconds; DynamoDB TTL deletes the item some time after. Readers filter on it too. */
  readonly ttlAttribute: string;
  readonly indexes: readonly IndexDefinition[];
}

/**
 * The partition keys of audit records (`AUDIT#<tenant>`): written once, never updated. The stack denies
 * UpdateItem on them to every role (lib/bindings.ts), beside the stores' `attribute_not_exists` puts.
 */
export const AUDIT_KEY_PREFIX = 'AUDIT#';

/** Where the worker keeps model-space copies of EXR plates in the frames bucket; a lifecycle rule expires them. */
export const CONVERTED_PLATES_PREFIX = '.colour/';

export const TABLE: TableDefinition = {
  partitionKey: 'pk',
  sortKey: 'sk',
  ttlAttribute: 'expiresAt',
  indexes: [
    // A tenant's jobs, newest first (job ids are ULIDs, so they sort by creation time).
    { name: 'byTenant', partitionKey: 'gsi1pk', sortKey: 'gsi1sk' },
    // A tenant's jobs of one shot, newest first.
    { name: 'byShot', partitionKey: 'gsi2pk', sortKey: 'gsi2sk' },
  ],
};

/**
 * Sizes of one asset file, in bytes: the default per-file limit a production may change, and its bound,
 * since an upload URL is one PUT and S3 takes at most 5 GiB in one.
 */
export const ASSET_FILE_BYTES = { default: 512 * 1024 * 1024, max: 5 * 1024 * 1024 * 1024 } as const;

export type QueueName = 'plan' | 'frame' | 'frame-high' | 'frame-low' | 'event';

export interface QueueDefinition {
  readonly name: QueueName;
  /** Seconds a received message stays hidden before SQS hands it out again. */
  readonly visibilityTimeoutSeconds: number;
  /** Receives before SQS moves a message to the queue's dead-letter queue. */
  readonly maxReceiveCount: number;
  /** How long the queue, and its DLQ, keep a message. */
  readonly retentionSeconds: number;
}

const FRAME_QUEUE: QueueDefinition = {
  name: 'frame',
  visibilityTimeoutSeconds: 120,
  maxReceiveCount: 8,
  retentionSeconds: 14 * 24 * 3600,
};

/**
 * Visibility timeouts: the plan and event queues feed Lambdas whose timeout is a sixth of the visibility
 * timeout or less (AWS's advice for SQS event sources). The frame queue feeds the GPU worker, which keeps
 * a message hidden with a heartbeat (see WORKER_HEARTBEAT_SECONDS), so its timeout is only what a crashed
 * worker costs before another takes the chunk over.
 */
export const QUEUES: Readonly<Record<QueueName, QueueDefinition>> = {
  plan: {
    name: 'plan',
    visibilityTimeoutSeconds: 6 * 60,
    maxReceiveCount: 5,
    retentionSeconds: 4 * 24 * 3600,
  },
  frame: FRAME_QUEUE,
  // Priority bands (core/fair-share.ts): a model's high and low frame queues beside its normal one, alike.
  'frame-high': { ...FRAME_QUEUE, name: 'frame-high' },
  'frame-low': { ...FRAME_QUEUE, name: 'frame-low' },
  event: {
    name: 'event',
    visibilityTimeoutSeconds: 6 * 60,
    maxReceiveCount: 30,
    retentionSeconds: 4 * 24 * 3600,
  },
};

/** The queue definition of a priority band: the normal band is the model's frame queue of old. */
export const bandQueue = (band: 'high' | 'normal' | 'low'): QueueDefinition =>
  QUEUES[band === 'high' ? 'frame-high' : band === 'low' ? 'frame-low' : 'frame'];

/**
 * Every dead-letter queue keeps its messages for SQS's maximum. A standard queue's message keeps its
 * first enqueue time when it is dead-lettered, so a DLQ with the source queue's retention could drop a
 * message almost as soon as it arrives: ops get two weeks from the first send to redrive it.
 */
export const DLQ_RETENTION_SECONDS = 14 * 24 * 3600;

/** Timeouts of the Lambdas that consume the plan and event queues (seconds). */
export const CONSUMER_TIMEOUT_SECONDS: Readonly<Record<'plan' | 'event', number>> = {
  plan: 60,
  event: 60,
};

/**
 * Fair share: chunks of one job queued and unfinished at most, by default (core/fair-share.ts). Wide
 * enough that a 300-frame shot of 8-frame chunks goes out whole, and that one worker's chunks in hand
 * are a small part of it.
 */
export const DEFAULT_FAIR_SHARE_CHUNKS = 40;

/**
 * A webhook attempt claimed this long ago and never recorded was claimed by a sender that died: longer
 * than the delivery Lambda's timeout, shorter than the event queue's visibility timeout (the redelivery
 * of the dead sender's message must find the claim stale).
 */
export const WEBHOOK_CLAIM_STALE_SECONDS = 90;

/** The worker extends a message's visibility this often while it works on the message's frames. */
export const WORKER_HEARTBEAT_SECONDS = 30;
