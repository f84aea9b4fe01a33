import { CfnOutput, RemovalPolicy, Stack, type StackProps, Tags } from 'aws-cdk-lib';
import type { RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { Construct } from 'constructs';
import { type CostSettings, hostHourUsd } from '../functions/shared/cost.ts';
import { ENV } from '../functions/shared/env.ts';
import { APP_METRICS } from '../functions/shared/metrics.ts';
import type { ModelSpec } from '../functions/shared/models.ts';
import { ROUTES } from '../functions/shared/routes.ts';
import { Api } from './api.ts';
import type { ModelConfig, ProductionConfig } from './config.ts';
import type { LogSettings } from './lambda.ts';
import { Observability } from './observability.ts';
import { FanOut, Queues } from './queues.ts';
import { RenderFleet } from './render-fleet.ts';
import { ReviewPage } from './review-page.ts';
import { Storage } from './storage.ts';
import { Webhooks } from './webhooks.ts';

/** Tag keys on every resource: what Cost Explorer and the production's budget group costs by. */
export const PRODUCTION_TAG = 'framecast:production';
export const COST_CENTER_TAG = 'cost-center';

export interface FramecastStackProps extends StackProps {
  readonly config: ProductionConfig;
}

/** `demo` → `Framecast-demo`: one stack per production, side by side in one account. */
export const stackName = (production: string) => `Framecast-${production}`;

/** One production's Framecast: the constructs of lib/, wired together and nothing else. */
export class FramecastStack extends Stack {
  constructor(scope: Construct, id: string, props: FramecastStackProps) {
    const { config } = props;
    const tags = { [PRODUCTION_TAG]: config.production, [COST_CENTER_TAG]: config.costCenter };
    super(scope, id, {
      description: `Framecast generative-frame API for production ${config.production}`,
      ...props,
      // Stack tags reach what CloudFormation creates on its own; Tags.of reaches every taggable construct.
      tags: { ...props.tags, ...tags },
    });
    for (const [key, value] of Object.entries(tags)) Tags.of(this).add(key, value);

    const removalPolicy = config.removalPolicy === 'destroy' ? RemovalPolicy.DESTROY : RemovalPolicy.RETAIN;
    const logs: LogSettings = { retention: config.logRetentionDays as RetentionDays, removalPolicy };
    const models = config.models.map((m) => m.name);

    // What every process may read; each construct's bindings add the resources it grants.
    const environment: Record<string, string> = {
      [ENV.production]: config.production,
      [ENV.frameLimit]: String(config.frameLimit),
      [ENV.assetMaxFileBytes]: String(config.assetMaxFileBytes),
      [ENV.models]: models.join(','),
      // Only what a production declared; built-in models' declarations live in the runtime.
      [ENV.modelSpecs]: JSON.stringify(modelSpecs(config.models)),
      [ENV.urlExpirySeconds]: String(config.presignedUrlExpirySeconds),
      [ENV.chunkSize]: String(config.chunkSize),
      [ENV.fairShareChunks]: String(config.fairShareChunks),
      [ENV.maxAttempts]: String(config.maxAttempts),
      [ENV.webhookAllowedHosts]: config.webhookAllowedHosts.join(','),
      [ENV.ocioConfig]: config.colour.ocioConfig,
      [ENV.plateColourSpace]: config.colour.plates,
      [ENV.modelColourSpace]: config.colour.model,
      [ENV.exrCompression]: config.colour.exrCompression,
      [ENV.namingTemplate]: config.naming.template,
      [ENV.namingPass]: config.naming.pass,
      [ENV.frameRate]: String(config.frameRate),
      [ENV.publishers]: JSON.stringify(config.publish),
      [ENV.auditRetentionDays]: String(config.auditRetentionDays),
      [ENV.cost]: JSON.stringify(costSettings(config)),
      POWERTOOLS_METRICS_NAMESPACE: APP_METRICS.namespace,
    };

    const storage = new Storage(this, 'Storage', { retentionDays: config.retentionDays, removalPolicy });
    const queues = new Queues(this, 'Queues', { models });
    const api = new Api(this, 'Api', {
      routes: ROUTES,
      table: storage.table,
      bucket: storage.bucket,
      assetBucket: storage.assets,
      queues,
      environment,
      throttle: { rateLimit: config.api.rateLimit, burstLimit: config.api.burstLimit },
      corsOrigins: config.api.corsOrigins,
      logs,
    });
    const reviewPage = new ReviewPage(this, 'ReviewPage', { httpApi: api.httpApi, environment, logs });
    const fanOut = new FanOut(this, 'FanOut', { queues, table: storage.table, environment, logs });
    const webhooks = new Webhooks(this, 'Webhooks', {
      eventQueue: queues.event,
      table: storage.table,
      environment,
      logs,
      publishSecrets: config.publish.map((p) => p.secret),
    });
    const fleet = new RenderFleet(this, 'RenderFleet', {
      gpu: config.gpu,
      natGateways: config.network.natGateways,
      models: config.models,
      frameQueues: queues.frames,
      bands: queues.bands,
      planQueue: queues.plan,
      eventQueue: queues.event,
      table: storage.table,
      bucket: storage.bucket,
      assetBucket: storage.assets,
      environment,
      logs,
      workerImage: config.workerImage,
    });
    const observability = new Observability(this, 'Observability', {
      production: config.production,
      httpApi: api.httpApi,
      functions: [
        ...[...api.functions].map(([label, fn]) => ({ label, function: fn })),
        { label: 'fan-out', function: fanOut.function },
        { label: 'webhook delivery', function: webhooks.function },
        { label: 'review page', function: reviewPage.function },
      ],
      queues: [
        { label: 'plan', kind: 'plan', queue: queues.plan },
        ...[...queues.frames].map(([model, queue]) => ({
          label: `frame ${model}`,
          kind: 'frame' as const,
          queue,
        })),
        ...[...queues.bands].flatMap(([model, bands]) =>
          [...bands].map(([band, queue]) => ({
            label: `frame ${model} ${band}`,
            kind: 'frame' as const,
            queue,
          })),
        ),
        { label: 'event', kind: 'event', queue: queues.event },
      ],
      cluster: fleet.hosts.cluster,
      services: [...fleet.services.values()],
      hosts: fleet.hosts.autoScalingGroup,
      alarmEmail: config.alarmEmail,
      monthlyBudgetUsd: config.monthlyBudgetUsd,
    });

    const output = (id: string, value: string, description: string) =>
      new CfnOutput(this, id, { value, description });
    output('ApiUrl', api.url, 'Base URL of the HTTP API');
    output('ReviewPageUrl', api.url, 'The review page (paste an API key into it)');
    output(
      'TableName',
      storage.table.tableName,
      'DynamoDB table: framecast keys --table (or FRAMECAST_TABLE) makes API keys in it',
    );
    output('BucketName', storage.bucket.bucketName, 'S3 bucket of the frames and manifests');
    output(
      'AssetBucketName',
      storage.assets.bucketName,
      'S3 bucket of the assets (plates, masks, references)',
    );
    output('PlanQueueUrl', queues.plan.queue.queueUrl, 'Plan queue');
    output('EventQueueUrl', queues.event.queue.queueUrl, 'Event (webhook) queue');
    output('FrameQueueUrls', queues.frameQueueUrlsJson(), 'Frame queue of each model, as JSON');
    output('ClusterName', fleet.hosts.cluster.clusterName, 'ECS cluster of the GPU workers');
    output('DashboardUrl', observability.dashboardUrl, 'CloudWatch dashboard');
    output('AlarmTopicArn', observability.topic.topicArn, 'SNS topic of the alarms and budget notifications');
  }
}

/**
 * FRAMECAST_COST (functions/shared/cost.ts): each model's frames priced at the production's first instance
 * type, its fleet's slots at full size (tasks × the model's slots), the estimate prior and the budget.
 */
export function costSettings(config: ProductionConfig): CostSettings {
  const price = hostHourUsd(config.gpu.instanceTypes[0]!, config.cost.gpuHourUsd);
  return {
    models: Object.fromEntries(
      config.models.map((m) => [m.name, { gpuHourUsd: price, slots: m.maxTasks * m.concurrency }]),
    ),
    priorSecondsPerMegapixel: config.cost.priorSecondsPerMegapixel,
    ...(config.cost.budget && { budget: config.cost.budget }),
  };
}

/** The models' declarations the runtime reads (FRAMECAST_MODEL_SPECS), for those the config declares. */
export function modelSpecs(models: readonly ModelConfig[]): Record<string, ModelSpec> {
  return Object.fromEntries(
    models
      .filter((m) => m.inputs !== undefined || m.frames !== undefined)
      .map((m) => [m.name, { inputs: m.inputs ?? {}, ...(m.frames && { frames: m.frames }) }]),
  );
}
