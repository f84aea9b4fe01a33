import { Duration } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { type IQueue, Queue, QueueEncryption } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ENV } from '../functions/shared/env.ts';
import {
  bandQueue,
  CONSUMER_TIMEOUT_SECONDS,
  DLQ_RETENTION_SECONDS,
  QUEUES,
  type QueueDefinition,
  WORKER_HEARTBEAT_SECONDS,
} from '../functions/shared/resources.ts';
import { CONSUMERS } from '../functions/shared/routes.ts';
import { bindQueue, bindQueues, bindTable, queueUrlsJson } from './bindings.ts';
import { consumeQueue, FramecastFunction, type LogSettings } from './lambda.ts';

/**
 * `{"<model>": "<frame queue URL>"}`: each model has a frame queue of its own, because SQS cannot hand a
 * worker only the messages of its model. The fan-out routes a job's chunks by `job.model` with this map.
 */
export const FRAME_QUEUE_URLS_ENV = ENV.frameQueueUrls;

export interface WorkQueueProps {
  readonly definition: QueueDefinition;
  /** The timeout of the Lambda consuming the queue, if a Lambda does. */
  readonly consumerTimeout?: Duration;
}

/** A queue with its dead-letter queue: encrypted, TLS only, redrive after the definition's receive count. */
export class WorkQueue extends Construct {
  readonly queue: Queue;
  readonly deadLetterQueue: Queue;
  readonly definition: QueueDefinition;

  constructor(scope: Construct, id: string, props: WorkQueueProps) {
    super(scope, id);
    const { definition } = props;
    const visibility = definition.visibilityTimeoutSeconds;
    // AWS's advice for SQS event sources: a message must stay hidden through the function's retries of a
    // throttled or timed-out batch, or it is delivered twice while the first delivery still runs.
    if (props.consumerTimeout && visibility < 6 * props.consumerTimeout.toSeconds()) {
      throw new Error(
        `${definition.name} queue: visibility timeout ${visibility} s is under 6x its consumer's timeout (${props.consumerTimeout.toSeconds()} s)`,
      );
    }
    this.definition = definition;
    const retentionPeriod = Duration.seconds(definition.retentionSeconds);
    this.deadLetterQueue = new Queue(this, 'DeadLetters', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod: Duration.seconds(DLQ_RETENTION_SECONDS),
    });
    this.queue = new Queue(this, 'Queue', {
      encryption: QueueEncryption.SQS_MANAGED,
      enforceSSL: true,
      retentionPeriod,
      visibilityTimeout: Duration.seconds(visibility),
      deadLetterQueue: { queue: this.deadLetterQueue, maxReceiveCount: definition.maxReceiveCount },
    });
  }
}

export interface QueuesProps {
  /** The configured model names: one frame queue each. */
  readonly models: readonly string[];
}

/** The priority bands a model has beside its frame queue, which is its normal band (core/fair-share.ts). */
export const EXTRA_BANDS = ['high', 'low'] as const;
export type ExtraBand = (typeof EXTRA_BANDS)[number];

/** The plan, frame (three priority bands per model) and event queues of functions/shared/resources.ts. */
export class Queues extends Construct {
  readonly plan: WorkQueue;
  readonly event: WorkQueue;
  /** Each model's frame queue: its normal band. */
  readonly frames: ReadonlyMap<string, WorkQueue>;
  /** Each model's frame queue, by model: what the fan-out and the API send chunks to. */
  readonly frameQueues: ReadonlyMap<string, IQueue>;
  /** Each model's high and low bands, by model then band. */
  readonly bands: ReadonlyMap<string, ReadonlyMap<ExtraBand, WorkQueue>>;
  /** The high and low bands of every model, by `<model>:<band>`: what the fan-out sends to. */
  readonly bandQueues: ReadonlyMap<string, IQueue>;

  constructor(scope: Construct, id: string, props: QueuesProps) {
    super(scope, id);
    this.plan = new WorkQueue(this, 'Plan', {
      definition: QUEUES.plan,
      consumerTimeout: Duration.seconds(CONSUMER_TIMEOUT_SECONDS.plan),
    });
    this.event = new WorkQueue(this, 'Event', {
      definition: QUEUES.event,
      consumerTimeout: Duration.seconds(CONSUMER_TIMEOUT_SECONDS.event),
    });
    // The worker renews visibility every heartbeat; a timeout at or under it would hand a chunk in
    // progress to a second worker between two heartbeats.
    if (QUEUES.frame.visibilityTimeoutSeconds <= WORKER_HEARTBEAT_SECONDS) {
      throw new Error(
        `frame queue: visibility timeout must exceed the worker heartbeat (${WORKER_HEARTBEAT_SECONDS} s)`,
      );
    }
    this.frames = new Map(
      props.models.map((model) => [
        model,
        new WorkQueue(this, `Frames-${model}`, { definition: QUEUES.frame }),
      ]),
    );
    this.frameQueues = new Map([...this.frames].map(([model, frames]) => [model, frames.queue]));
    this.bands = new Map(
      props.models.map((model) => [
        model,
        new Map(
          EXTRA_BANDS.map((band) => [
            band,
            new WorkQueue(this, `Frames-${model}-${band}`, { definition: bandQueue(band) }),
          ]),
        ),
      ]),
    );
    this.bandQueues = new Map(
      [...this.bands].flatMap(([model, bands]) =>
        [...bands].map(([band, work]) => [`${model}:${band}`, work.queue] as const),
      ),
    );
  }

  /** Grants sending chunks to every model's bands, and names them in the process's environment. */
  bindSenders(fn: FramecastFunction): void {
    bindQueues(fn, this.frameQueues, 'send', FRAME_QUEUE_URLS_ENV);
    bindQueues(fn, this.bandQueues, 'send', ENV.frameQueueBandUrls);
  }

  /** The `{model: url}` map, as the JSON string the fan-out reads. */
  frameQueueUrlsJson(): string {
    return queueUrlsJson(this, this.frameQueues);
  }
}

export interface FanOutProps {
  readonly queues: Queues;
  readonly table: ITable;
  /** Settings every process reads (production, limits); the bindings add the resources it names. */
  readonly environment: Readonly<Record<string, string>>;
  readonly logs: LogSettings;
}

/** The plan queue's consumer: turns an accepted job into chunk messages on its model's frame queue. */
export class FanOut extends Construct {
  readonly function: FramecastFunction;

  constructor(scope: Construct, id: string, props: FanOutProps) {
    super(scope, id);
    const { queues, table } = props;
    this.function = new FramecastFunction(this, 'Handler', {
      entry: CONSUMERS.fanout.entry,
      description: 'Framecast fan-out: plan messages to frame chunks',
      timeout: Duration.seconds(CONSUMER_TIMEOUT_SECONDS.plan),
      environment: props.environment,
      logs: props.logs,
    });
    bindTable(this.function, table, 'readWrite');
    // A big job is planned in steps: the fan-out hands the rest of it back to the plan queue.
    bindQueue(this.function, queues.plan.queue, 'consumeAndSend', ENV.planQueueUrl);
    queues.bindSenders(this.function);
    consumeQueue(this.function, queues.plan.queue, { batchSize: 5 });
  }
}
