import { Duration } from 'aws-cdk-lib';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { ENV } from '../functions/shared/env.ts';
import { CONSUMER_TIMEOUT_SECONDS } from '../functions/shared/resources.ts';
import { CONSUMERS } from '../functions/shared/routes.ts';
import { bindQueue, bindTable } from './bindings.ts';
import { consumeQueue, FramecastFunction, type LogSettings } from './lambda.ts';
import type { WorkQueue } from './queues.ts';

export interface WebhooksProps {
  readonly eventQueue: WorkQueue;
  readonly table: ITable;
  /** Settings every process reads, with the allowed webhook hosts; the bindings add the resources it names. */
  readonly environment: Readonly<Record<string, string>>;
  readonly logs: LogSettings;
  /** Secrets Manager secrets (complete ARNs) of the trackers jobs are published to; read by the delivery. */
  readonly publishSecrets?: readonly string[];
}

/**
 * Webhook delivery: the event queue feeds a Lambda that signs and sends each event, logs the attempt
 * with the event, and reports the messages it must retry (partial batch response) so one slow vendor
 * does not hold back the rest of the batch. Events past the queue's maxReceiveCount land in its DLQ.
 */
export class Webhooks extends Construct {
  readonly function: FramecastFunction;

  constructor(scope: Construct, id: string, props: WebhooksProps) {
    super(scope, id);
    const { eventQueue, table } = props;
    this.function = new FramecastFunction(this, 'Delivery', {
      entry: CONSUMERS.webhooks.entry,
      description: 'Framecast webhook delivery',
      timeout: Duration.seconds(CONSUMER_TIMEOUT_SECONDS.event),
      environment: props.environment,
      logs: props.logs,
    });
    // Read the event and the tenant's endpoint and secret; write the delivery attempt and, on 410, the endpoint.
    bindTable(this.function, table, 'readWrite');
    // Retries are messages of their own, sent with a delay; a delivery that used up its attempts is put
    // on the DLQ by the handler itself, where the DLQ alarm shows it to ops.
    bindQueue(this.function, eventQueue.queue, 'consumeAndSend', ENV.eventQueueUrl);
    bindQueue(this.function, eventQueue.deadLetterQueue, 'send', ENV.eventDlqUrl);
    // The handler delivers a batch's messages concurrently, each attempt bounded by 15 s: ten fit the timeout.
    consumeQueue(this.function, eventQueue.queue, { batchSize: 10 });
    // Publishing to trackers signs in with credentials from these secrets, and from nothing else.
    (props.publishSecrets ?? []).forEach((arn, i) => {
      Secret.fromSecretCompleteArn(this, `PublishSecret${i}`, arn).grantRead(this.function.role);
    });
  }
}
