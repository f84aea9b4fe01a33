import { Duration, Stack, Validations } from 'aws-cdk-lib';
import {
  AdjustmentType,
  CfnScalingPolicy,
  MetricAggregationType,
  ScalableTarget,
  ServiceNamespace,
  StepScalingAction,
} from 'aws-cdk-lib/aws-applicationautoscaling';
import {
  Alarm,
  ComparisonOperator,
  MathExpression,
  Metric,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { ApplicationScalingAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { Repository } from 'aws-cdk-lib/aws-ecr';
import {
  type ContainerDefinition,
  ContainerDependencyCondition,
  ContainerImage,
  Ec2Service,
  Ec2TaskDefinition,
  type ICluster,
  LogDrivers,
  NetworkMode,
  PlacementStrategy,
  PropagatedTagSource,
} from 'aws-cdk-lib/aws-ecs';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import type { ILogGroup } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';
import { ENV } from '../functions/shared/env.ts';
import { bindAssetBucket, bindBucket, bindQueue, bindQueues, bindTable } from './bindings.ts';
import { BUILTIN_IMAGE, type ModelConfig } from './config.ts';
import type { GpuHosts } from './gpu-hosts.ts';

/** ECS gives a container at most this long between SIGTERM and SIGKILL. */
export const WORKER_STOP_TIMEOUT = Duration.seconds(120);

/** Where the model container listens; the worker reaches it through a bridge-network link named `model`. */
export const MODEL_PORT = 5000;
export const MODEL_URL = `http://model:${MODEL_PORT}`;

/**
 * The worker's own memory, besides the model's: it reserves little, but an 8K frame passes through it as a
 * data URL, a decoded PNG and an upload buffer at once, so its hard limit leaves room for that.
 */
const WORKER_MEMORY_RESERVATION_MIB = 512;
const WORKER_MEMORY_LIMIT_MIB = 4096;

/** A container image, and the name of it the worker records in each frame's provenance. */
export interface NamedImage {
  readonly image: ContainerImage;
  readonly name: string;
}

export interface ModelServiceProps {
  readonly model: ModelConfig;
  /** The hosts the tasks run on: their cluster, and the capacity provider that launches hosts for tasks. */
  readonly hosts: Pick<GpuHosts, 'cluster' | 'capacityProvider'>;
  /** The model's own frame queue: the worker consumes it, and the service scales on its backlog. */
  readonly frameQueue: IQueue;
  /**
   * The frame queue's DLQ: the worker puts frames that failed every attempt there, for a redrive once the
   * fault is fixed (docs/reliability.md, "Poison and redrive").
   * @default none: such frames are only recorded failed
   */
  readonly frameDeadLetterQueue?: IQueue;
  /**
   * The model's high and low priority bands beside it (core/fair-share.ts): consumed and scaled on alike.
   * @default none: the frame queue alone
   */
  readonly bandQueues?: ReadonlyMap<string, IQueue>;
  /**
   * The plan queue: a worker asks the fan-out to release more of a job there (fair share).
   * @default none: the worker asks nothing, so the fan-out must release every chunk at once
   */
  readonly planQueue?: IQueue;
  readonly eventQueue: IQueue;
  readonly table: ITable;
  readonly bucket: IBucket;
  /** Asset content: the worker signs GET URLs of a job's inputs for the model. */
  readonly assetBucket: IBucket;
  /** Settings every process reads (production, limits); the bindings add the resources the worker names. */
  readonly environment: Readonly<Record<string, string>>;
  readonly workerImage: ContainerImage;
  /**
   * The model container's image. Required for a model whose image is `builtin`.
   * @default `model.image` from its registry: an ECR URI of this account gets pull rights, any other
   * registry is public or private with `model.registryCredentialsSecretArn`
   */
  readonly modelImage?: NamedImage;
  /** Where both containers log, under the stream prefixes `<model>/model` and `<model>/worker`. */
  readonly logGroup: ILogGroup;
  /** Frame chunks waiting or in progress per running task that scaling aims for. */
  readonly targetBacklogPerTask: number;
}

/**
 * One model's ECS service: tasks of two containers on one GPU host, the model (a Cog server) and the worker
 * that feeds it frames from the model's frame queue, scaled between 0 and the model's maxTasks on the
 * backlog of that queue. The worker is bound to exactly what it touches: its own frame queue (consume),
 * the event queue (send), frames in the bucket (write) and the table.
 */
export class ModelService extends Construct {
  readonly model: ModelConfig;
  readonly service: Ec2Service;
  readonly taskDefinition: Ec2TaskDefinition;
  readonly worker: ContainerDefinition;
  readonly frameQueue: IQueue;
  /** The frame queue and its priority bands: the backlog the service scales on. */
  readonly backlogQueues: readonly IQueue[];

  constructor(scope: Construct, id: string, props: ModelServiceProps) {
    super(scope, id);
    const { model, hosts, frameQueue } = props;
    this.model = model;
    this.frameQueue = frameQueue;
    this.backlogQueues = [frameQueue, ...(props.bandQueues?.values() ?? [])];

    const builtin = model.image === BUILTIN_IMAGE;
    if (builtin && !props.modelImage) {
      throw new Error(`model ${model.name} runs the built-in image: pass it as modelImage`);
    }
    const modelImage = props.modelImage ?? {
      image: registryImage(this, 'ModelImage', model.image, model.registryCredentialsSecretArn),
      name: model.image,
    };

    const taskRole = new Role(this, 'TaskRole', {
      assumedBy: new ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: `Framecast worker for model ${model.name}`,
    });
    this.taskDefinition = new Ec2TaskDefinition(this, 'Task', {
      networkMode: NetworkMode.BRIDGE,
      taskRole,
    });

    const modelContainer = this.taskDefinition.addContainer('model', {
      image: modelImage.image,
      ...(builtin && { command: ['node', 'model.mjs'] }),
      essential: true,
      gpuCount: model.gpuCount > 0 ? model.gpuCount : undefined,
      memoryReservationMiB: model.memoryMiB,
      // The reference server reads Cog's variable names.
      environment: builtin
        ? { HOST: '0.0.0.0', PORT: String(MODEL_PORT), COG_MAX_CONCURRENCY: String(model.concurrency) }
        : {},
      logging: LogDrivers.awsLogs({ logGroup: props.logGroup, streamPrefix: `${model.name}/model` }),
      healthCheck: {
        command: ['CMD', ...(model.healthCheckCommand ?? (builtin ? NODE_PROBE : PYTHON_PROBE))],
        interval: Duration.seconds(30),
        timeout: Duration.seconds(5),
        retries: 3,
        // Cog answers STARTING while setup() loads the weights; only a failed setup counts as unhealthy.
        startPeriod: Duration.seconds(300),
      },
    });

    this.worker = this.taskDefinition.addContainer('worker', {
      image: props.workerImage,
      essential: true,
      memoryReservationMiB: WORKER_MEMORY_RESERVATION_MIB,
      memoryLimitMiB: WORKER_MEMORY_LIMIT_MIB,
      // SIGTERM (scale-in, Spot interruption, deployment): the worker stops polling, hands unstarted chunks
      // back at once and finishes or releases the frames in hand before ECS kills it.
      stopTimeout: WORKER_STOP_TIMEOUT,
      environment: props.environment,
      logging: LogDrivers.awsLogs({ logGroup: props.logGroup, streamPrefix: `${model.name}/worker` }),
    });
    bindTable(this.worker, props.table, 'readWrite');
    // Read too: a chained window's context frames and parallel windows' staged versions are read back.
    bindBucket(this.worker, props.bucket, 'readWrite');
    bindAssetBucket(this.worker, props.assetBucket, 'read');
    // Send too: a chained window sends the next window of its job to the same queue.
    bindQueue(this.worker, frameQueue, 'consumeAndSend', ENV.frameQueueUrl);
    if (props.bandQueues) bindQueues(this.worker, props.bandQueues, 'consume', ENV.frameQueueBands);
    if (props.planQueue) bindQueue(this.worker, props.planQueue, 'send', ENV.planQueueUrl);
    bindQueue(this.worker, props.eventQueue, 'send', ENV.eventQueueUrl);
    if (props.frameDeadLetterQueue)
      bindQueue(this.worker, props.frameDeadLetterQueue, 'send', ENV.frameDlqUrl);
    // After the bindings: the variables keep the order of deployed task definitions, so this adds no revision.
    const modelSettings = {
      [ENV.modelUrl]: MODEL_URL,
      [ENV.modelName]: model.name,
      [ENV.modelImage]: modelImage.name,
      [ENV.workerConcurrency]: String(model.concurrency),
      // The SDK reads the region from the environment; IMDS is out of the container's reach on purpose.
      AWS_REGION: Stack.of(this).region,
    };
    for (const [name, value] of Object.entries(modelSettings)) this.worker.addEnvironment(name, value);
    this.worker.addLink(modelContainer, 'model');
    this.worker.addContainerDependencies({
      container: modelContainer,
      condition: ContainerDependencyCondition.HEALTHY,
    });

    this.service = new Ec2Service(this, 'Service', {
      cluster: hosts.cluster,
      taskDefinition: this.taskDefinition,
      // Created at zero; CloudFormation leaves the count to the scaling policies afterwards.
      desiredCount: 0,
      // A deployment replaces tasks in place (stopped tasks hand their chunks back) rather than asking for
      // spare GPU hosts to run old and new side by side.
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      capacityProviderStrategies: [
        { capacityProvider: hosts.capacityProvider.capacityProviderName, weight: 1 },
      ],
      placementStrategies: [PlacementStrategy.packedByMemory()],
      circuitBreaker: { rollback: true },
      propagateTags: PropagatedTagSource.SERVICE,
      enableECSManagedTags: true,
    });
    // A strategy may name only a capacity provider already associated with the cluster.
    this.service.node.addDependency(hosts.cluster);
    this.addScaling(hosts.cluster, props.targetBacklogPerTask);

    Validations.of(this.taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds resource names, URLs and limits, never a secret.',
    });
    Validations.of(this.taskDefinition.obtainExecutionRole()).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecr:GetAuthorizationToken, needed to pull any ECR image, has no resource-level permissions.',
    });
  }

  /**
   * Task count = the frame queue's backlog (visible plus in-flight chunks) per running task, kept near the
   * configured target. In-flight counts: a task busy with its chunks is work, and scaling on visible
   * messages alone would scale in (and stop) tasks in the middle of their frames.
   */
  private addScaling(cluster: ICluster, targetBacklogPerTask: number): void {
    const { model, service, backlogQueues } = this;
    const taskCount = new ScalableTarget(this, 'TaskCount', {
      serviceNamespace: ServiceNamespace.ECS,
      resourceId: `service/${cluster.clusterName}/${service.serviceName}`,
      scalableDimension: 'ecs:service:DesiredCount',
      minCapacity: 0,
      maxCapacity: model.maxTasks,
      // The service-linked role Application Auto Scaling creates for ECS: no role of our own to maintain.
      role: Role.fromRoleArn(
        this,
        'ScalingRole',
        Stack.of(this).formatArn({
          service: 'iam',
          region: '',
          resource: 'role/aws-service-role/ecs.application-autoscaling.amazonaws.com',
          resourceName: 'AWSServiceRoleForApplicationAutoScaling_ECSService',
        }),
      ),
    });
    const serviceDims = [
      { name: 'ClusterName', value: cluster.clusterName },
      { name: 'ServiceName', value: service.serviceName },
    ];
    const sqsMetric = (id: string, metricName: string, queue: IQueue) => ({
      id,
      returnData: false,
      metricStat: {
        metric: {
          namespace: 'AWS/SQS',
          metricName,
          dimensions: [{ name: 'QueueName', value: queue.queueName }],
        },
        stat: 'Maximum',
      },
    });
    // The backlog of every priority band: chunks wait or run in any of them.
    const ids = backlogQueues.map((_, i) => (i === 0 ? '' : String(i)));
    const backlog = ids.map((i) => `FILL(visible${i}, 0) + FILL(inflight${i}, 0)`).join(' + ');

    // With no running task the division has no divisor: the expression then divides by 1, so the metric is
    // the whole backlog and never "no data" (target tracking does nothing on missing data).
    new CfnScalingPolicy(this, 'BacklogPerTask', {
      policyName: 'backlog-per-task',
      policyType: 'TargetTrackingScaling',
      scalingTargetId: taskCount.scalableTargetId,
      targetTrackingScalingPolicyConfiguration: {
        targetValue: targetBacklogPerTask,
        scaleInCooldown: 300,
        scaleOutCooldown: 120,
        customizedMetricSpecification: {
          metrics: [
            ...backlogQueues.flatMap((queue, n) => [
              sqsMetric(`visible${ids[n]}`, 'ApproximateNumberOfMessagesVisible', queue),
              sqsMetric(`inflight${ids[n]}`, 'ApproximateNumberOfMessagesNotVisible', queue),
            ]),
            {
              id: 'running',
              returnData: false,
              metricStat: {
                metric: {
                  namespace: 'ECS/ContainerInsights',
                  metricName: 'RunningTaskCount',
                  dimensions: serviceDims,
                },
                stat: 'Average',
              },
            },
            {
              id: 'backlogpertask',
              label: 'Frame chunks waiting or in progress per running task',
              returnData: true,
              expression: `(${backlog}) / IF(FILL(running, 0) > 0, FILL(running, 0), 1)`,
            },
          ],
        },
      },
    });

    // Target tracking multiplies the current count, and zero times anything is zero: with no task at all,
    // a step policy adds the first one as soon as a chunk waits. It fires only while the desired count is
    // 0, so it never contends with the target tracking policy.
    const fromZero = new StepScalingAction(this, 'ScaleFromZero', {
      scalingTarget: taskCount,
      adjustmentType: AdjustmentType.CHANGE_IN_CAPACITY,
      metricAggregationType: MetricAggregationType.MAXIMUM,
      cooldown: Duration.minutes(5),
    });
    fromZero.addAdjustment({ adjustment: 1, lowerBound: 0 });
    const minute = Duration.minutes(1);
    new Alarm(this, 'BacklogWithoutTasks', {
      alarmDescription: `Framecast ${model.name}: frame chunks wait and no task is wanted; adds the first task`,
      metric: new MathExpression({
        label: 'Chunks waiting with no task',
        expression: `IF(FILL(desired, 0) < 1 AND (${backlog}) > 0, 1, 0)`,
        period: minute,
        usingMetrics: {
          ...Object.fromEntries(
            backlogQueues.flatMap((queue, n) => [
              [
                `visible${ids[n]}`,
                queue.metricApproximateNumberOfMessagesVisible({ statistic: 'Maximum', period: minute }),
              ],
              [
                `inflight${ids[n]}`,
                queue.metricApproximateNumberOfMessagesNotVisible({ statistic: 'Maximum', period: minute }),
              ],
            ]),
          ),
          desired: new Metric({
            namespace: 'ECS/ContainerInsights',
            metricName: 'DesiredTaskCount',
            dimensionsMap: { ClusterName: cluster.clusterName, ServiceName: service.serviceName },
            statistic: 'Maximum',
            period: minute,
          }),
        },
      }),
      threshold: 1,
      comparisonOperator: ComparisonOperator.GREATER_THAN_OR_EQUAL_TO_THRESHOLD,
      evaluationPeriods: 1,
      treatMissingData: TreatMissingData.NOT_BREACHING,
    }).addAlarmAction(new ApplicationScalingAction(fromZero));
  }
}

/** Exec-form probes of GET /health-check: unhealthy only when unreachable or when setup failed for good. */
const PYTHON_PROBE = [
  'python3',
  '-c',
  "import sys,urllib.request as u;b=u.urlopen('http://localhost:5000/health-check',timeout=4).read().decode();sys.exit(('SETUP_FAILED' in b) or ('DEFUNCT' in b))",
];
const NODE_PROBE = [
  'node',
  '-e',
  "fetch('http://127.0.0.1:5000/health-check',{signal:AbortSignal.timeout(4000)}).then(r=>r.text()).then(b=>process.exit(/SETUP_FAILED|DEFUNCT/.test(b)?1:0),()=>process.exit(1))",
];

export const ECR_URI =
  /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/([a-z0-9._/-]+?)(?::([\w.-]+))?(?:@(sha256:[a-f0-9]{64}))?$/;

/**
 * An image from a registry. An ECR URI becomes a repository reference, so the execution role is granted
 * the pull; any other registry is public, or private with a Secrets Manager credential.
 */
export function registryImage(
  scope: Construct,
  id: string,
  image: string,
  credentialsSecretArn?: string,
): ContainerImage {
  const ecr = ECR_URI.exec(image);
  if (ecr) {
    const [, account, region, name, tag, digest] = ecr;
    const repository = Repository.fromRepositoryAttributes(scope, id, {
      repositoryName: name!,
      repositoryArn: Stack.of(scope).formatArn({
        service: 'ecr',
        account,
        region,
        resource: 'repository',
        resourceName: name,
      }),
    });
    return ContainerImage.fromEcrRepository(repository, digest ?? tag ?? 'latest');
  }
  if (credentialsSecretArn) {
    return ContainerImage.fromRegistry(image, {
      credentials: Secret.fromSecretCompleteArn(scope, `${id}Credentials`, credentialsSecretArn),
    });
  }
  return ContainerImage.fromRegistry(image);
}
