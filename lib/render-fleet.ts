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
  AutoScalingGroup,
  BlockDeviceVolume,
  EbsDeviceVolumeType,
  GroupMetrics,
  OnDemandAllocationStrategy,
  SpotAllocationStrategy,
} from 'aws-cdk-lib/aws-autoscaling';
import {
  Alarm,
  ComparisonOperator,
  MathExpression,
  Metric,
  TreatMissingData,
} from 'aws-cdk-lib/aws-cloudwatch';
import { ApplicationScalingAction } from 'aws-cdk-lib/aws-cloudwatch-actions';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import {
  FlowLogDestination,
  FlowLogTrafficType,
  GatewayVpcEndpointAwsService,
  InstanceType,
  LaunchTemplate,
  SecurityGroup,
  SubnetType,
  UserData,
  Vpc,
} from 'aws-cdk-lib/aws-ec2';
import { Repository } from 'aws-cdk-lib/aws-ecr';
import { DockerImageAsset, Platform } from 'aws-cdk-lib/aws-ecr-assets';
import {
  AmiHardwareType,
  AsgCapacityProvider,
  Cluster,
  ContainerDependencyCondition,
  ContainerImage,
  ContainerInsights,
  Ec2Service,
  Ec2TaskDefinition,
  EcsOptimizedImage,
  LogDrivers,
  NetworkMode,
  PlacementStrategy,
  PropagatedTagSource,
} from 'aws-cdk-lib/aws-ecs';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Secret } from 'aws-cdk-lib/aws-secretsmanager';
import { Construct } from 'constructs';
import { ENV } from '../functions/shared/env.ts';
import { bindBucket, bindQueue, bindTable } from './bindings.ts';
import { BUILTIN_IMAGE, type ModelConfig, type ProductionConfig } from './config.ts';
import { type LogSettings, PROJECT_ROOT } from './lambda.ts';
import type { WorkQueue } from './queues.ts';

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

export interface RenderFleetProps {
  readonly gpu: ProductionConfig['gpu'];
  readonly natGateways: number;
  readonly models: readonly ModelConfig[];
  readonly frameQueues: ReadonlyMap<string, WorkQueue>;
  readonly eventQueue: WorkQueue;
  readonly table: ITable;
  readonly bucket: IBucket;
  /** Settings every process reads (production, limits); the workers' bindings add the resources. */
  readonly environment: Readonly<Record<string, string>>;
  readonly logs: LogSettings;
  /** A prebuilt worker image; default: the Dockerfile at the project root, built at deploy time. */
  readonly workerImage?: string;
}

/** One model's ECS service: tasks of the worker and the model container, scaled on the model's frame queue. */
export interface ModelService {
  readonly model: ModelConfig;
  readonly service: Ec2Service;
  readonly taskDefinition: Ec2TaskDefinition;
  readonly frameQueue: WorkQueue;
}

/**
 * The GPU side: an ECS cluster on an Auto Scaling group of GPU hosts (ECS-optimized AL2023 GPU AMI) as a
 * capacity provider with managed scaling and termination protection, and one service per model that
 * scales between 0 and the model's maxTasks on the backlog of its frame queue.
 *
 * Networking: tasks use the bridge network mode. awsvpc tasks on EC2 get no public IP, so they would need
 * NAT gateways or interface endpoints (both bill by the hour while the fleet sits at zero); bridge tasks
 * use the host's address. By default the hosts live in public subnets with no inbound rule at all, and
 * IMDSv2 with a hop limit of 1 keeps containers away from the host role's credentials. With
 * `network.natGateways` > 0 the hosts move to private subnets behind NAT.
 */
export class RenderFleet extends Construct {
  readonly vpc: Vpc;
  readonly cluster: Cluster;
  readonly autoScalingGroup: AutoScalingGroup;
  readonly capacityProvider: AsgCapacityProvider;
  readonly logGroup: LogGroup;
  readonly services: ReadonlyMap<string, ModelService>;

  constructor(scope: Construct, id: string, props: RenderFleetProps) {
    super(scope, id);
    const { gpu } = props;
    const privateHosts = props.natGateways > 0;

    this.vpc = new Vpc(this, 'Network', {
      // An environment-agnostic stack knows two availability zones; the instance types spread the capacity.
      maxAzs: 2,
      natGateways: props.natGateways,
      subnetConfiguration: privateHosts
        ? [
            { name: 'Public', subnetType: SubnetType.PUBLIC, cidrMask: 24 },
            { name: 'Hosts', subnetType: SubnetType.PRIVATE_WITH_EGRESS, cidrMask: 20 },
          ]
        : [{ name: 'Hosts', subnetType: SubnetType.PUBLIC, cidrMask: 20 }],
      // Free, and frames then go to S3 (and state to DynamoDB) without NAT data-processing charges.
      gatewayEndpoints: {
        S3: { service: GatewayVpcEndpointAwsService.S3 },
        DynamoDB: { service: GatewayVpcEndpointAwsService.DYNAMODB },
      },
    });
    const flowLogs = new LogGroup(this, 'FlowLogs', {
      retention: props.logs.retention,
      removalPolicy: props.logs.removalPolicy,
    });
    // Rejected traffic only: that is what an investigation needs, and accepted traffic would bill per GB.
    this.vpc.addFlowLog('RejectedTraffic', {
      destination: FlowLogDestination.toCloudWatchLogs(flowLogs),
      trafficType: FlowLogTrafficType.REJECT,
    });

    this.cluster = new Cluster(this, 'Cluster', {
      vpc: this.vpc,
      // Container Insights publishes RunningTaskCount and DesiredTaskCount, which the scaling policies divide by.
      containerInsightsV2: ContainerInsights.ENABLED,
    });

    const hostSecurityGroup = new SecurityGroup(this, 'HostSecurityGroup', {
      vpc: this.vpc,
      description: 'GPU hosts: no inbound traffic; outbound to AWS APIs and model registries',
      allowAllOutbound: true,
    });
    const hostRole = new Role(this, 'HostRole', { assumedBy: new ServicePrincipal('ec2.amazonaws.com') });
    const userData = UserData.forLinux();
    if (gpu.spot) {
      // The agent drains a host on its Spot interruption notice: tasks get SIGTERM and the stop timeout.
      userData.addCommands('echo ECS_ENABLE_SPOT_INSTANCE_DRAINING=true >> /etc/ecs/ecs.config');
    }
    const launchTemplate = new LaunchTemplate(this, 'HostTemplate', {
      machineImage: EcsOptimizedImage.amazonLinux2023(AmiHardwareType.GPU),
      userData,
      role: hostRole,
      securityGroup: hostSecurityGroup,
      requireImdsv2: true,
      // Bridge-mode containers are one hop further than the host: with a limit of 1 they get no IMDS token.
      httpPutResponseHopLimit: 1,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: BlockDeviceVolume.ebs(gpu.volumeSizeGiB, {
            volumeType: EbsDeviceVolumeType.GP3,
            encrypted: true,
            deleteOnTermination: true,
          }),
        },
      ],
    });

    this.autoScalingGroup = new AutoScalingGroup(this, 'GpuHosts', {
      vpc: this.vpc,
      vpcSubnets: { subnetType: privateHosts ? SubnetType.PRIVATE_WITH_EGRESS : SubnetType.PUBLIC },
      minCapacity: 0,
      maxCapacity: gpu.maxInstances,
      mixedInstancesPolicy: {
        launchTemplate,
        launchTemplateOverrides: gpu.instanceTypes.map((t) => ({ instanceType: new InstanceType(t) })),
        instancesDistribution: gpu.spot
          ? {
              onDemandBaseCapacity: 0,
              onDemandPercentageAboveBaseCapacity: 0,
              spotAllocationStrategy: SpotAllocationStrategy.PRICE_CAPACITY_OPTIMIZED,
            }
          : {
              onDemandBaseCapacity: 0,
              onDemandPercentageAboveBaseCapacity: 100,
              // The config lists instance types in order of preference.
              onDemandAllocationStrategy: OnDemandAllocationStrategy.PRIORITIZED,
            },
      },
      // Replaces a Spot host at risk before its interruption notice, while its tasks can still drain.
      capacityRebalance: gpu.spot,
      // Free at one-minute granularity; the dashboard shows in-service hosts.
      groupMetrics: [GroupMetrics.all()],
    });

    this.capacityProvider = new AsgCapacityProvider(this, 'GpuCapacity', {
      autoScalingGroup: this.autoScalingGroup,
      enableManagedScaling: true,
      // ECS scales in only hosts without tasks; scaling in a busy host would kill frames in progress.
      enableManagedTerminationProtection: true,
      enableManagedDraining: true,
      targetCapacityPercent: 100,
      // GPU hosts take minutes to boot and pull a model image: do not count them before then.
      instanceWarmupPeriod: 300,
    });
    this.cluster.addAsgCapacityProvider(this.capacityProvider);
    Validations.of(hostRole).acknowledge(
      {
        id: 'AwsSolutions-IAM5[Action::ecs:Submit*]',
        reason:
          'The ECS agent reports container and task state with the ecs:Submit* actions, on this cluster only.',
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'The ECS agent: ecs:DiscoverPollEndpoint and ecr:GetAuthorizationToken have no resource-level permissions; ' +
          'ecs:Poll and ecs:StartTelemetrySession are limited to this cluster by condition.',
      },
    );
    Validations.of(this.autoScalingGroup).acknowledge(
      {
        id: 'AwsSolutions-EC26',
        reason:
          'The launch template encrypts the root volume (gp3, encrypted); the rule cannot follow a mixed-instances ' +
          'launch template and fails to evaluate (tested in test/lib/render-fleet.test.ts).',
      },
      {
        id: 'AwsSolutions-AS3',
        reason:
          'Scaling from and to zero with every job is routine, not news; the dashboard shows hosts in service, and ' +
          'hosts that fail to launch surface as the frame queue oldest-message alarm.',
      },
    );
    this.cluster.addDefaultCapacityProviderStrategy([
      { capacityProvider: this.capacityProvider.capacityProviderName, weight: 1 },
    ]);

    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logs.retention,
      removalPolicy: props.logs.removalPolicy,
    });

    // The project image (Dockerfile) serves the worker and the reference model; it is staged, and built
    // at deploy time, only when one of them uses it.
    let asset: DockerImageAsset | undefined;
    const projectImage = () => {
      asset ??= new DockerImageAsset(this, 'RuntimeImage', {
        directory: PROJECT_ROOT,
        file: 'Dockerfile',
        // GPU hosts are x86_64 whatever machine runs the deploy.
        platform: Platform.LINUX_AMD64,
      });
      return { image: ContainerImage.fromDockerImageAsset(asset), uri: asset.imageUri };
    };
    const workerImage = props.workerImage
      ? registryImage(this, 'WorkerImage', props.workerImage)
      : projectImage().image;

    const services = new Map<string, ModelService>();
    for (const model of props.models) {
      const frameQueue = props.frameQueues.get(model.name);
      if (!frameQueue) throw new Error(`no frame queue for model ${model.name}`);
      const builtin = model.image === BUILTIN_IMAGE ? projectImage() : undefined;
      services.set(
        model.name,
        this.addModel(model, {
          ...props,
          frameQueue,
          workerContainerImage: workerImage,
          modelImage: builtin?.image,
          modelImageName: builtin?.uri ?? model.image,
        }),
      );
    }
    this.services = services;
  }

  private addModel(
    model: ModelConfig,
    props: RenderFleetProps & {
      readonly frameQueue: WorkQueue;
      readonly workerContainerImage: ContainerImage;
      readonly modelImage: ContainerImage | undefined;
      readonly modelImageName: string;
    },
  ): ModelService {
    const scope = new Construct(this, `Model-${model.name}`);
    const { frameQueue } = props;

    const taskRole = new Role(scope, 'TaskRole', {
      assumedBy: new ServicePrincipal('ecs-tasks.amazonaws.com'),
      description: `Framecast worker for model ${model.name}`,
    });
    const taskDefinition = new Ec2TaskDefinition(scope, 'Task', {
      networkMode: NetworkMode.BRIDGE,
      taskRole,
    });

    const builtin = model.image === BUILTIN_IMAGE;
    const modelContainer = taskDefinition.addContainer('model', {
      image:
        props.modelImage ??
        registryImage(scope, 'ModelImage', model.image, model.registryCredentialsSecretArn),
      ...(builtin && { command: ['node', 'model.mjs'] }),
      essential: true,
      gpuCount: model.gpuCount > 0 ? model.gpuCount : undefined,
      memoryReservationMiB: model.memoryMiB,
      // The reference server reads Cog's variable names.
      environment: builtin
        ? { HOST: '0.0.0.0', PORT: String(MODEL_PORT), COG_MAX_CONCURRENCY: String(model.concurrency) }
        : {},
      logging: LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: `${model.name}/model` }),
      healthCheck: {
        command: ['CMD', ...(model.healthCheckCommand ?? (builtin ? NODE_PROBE : PYTHON_PROBE))],
        interval: Duration.seconds(30),
        timeout: Duration.seconds(5),
        retries: 3,
        // Cog answers STARTING while setup() loads the weights; only a failed setup counts as unhealthy.
        startPeriod: Duration.seconds(300),
      },
    });

    const worker = taskDefinition.addContainer('worker', {
      image: props.workerContainerImage,
      essential: true,
      memoryReservationMiB: WORKER_MEMORY_RESERVATION_MIB,
      memoryLimitMiB: WORKER_MEMORY_LIMIT_MIB,
      // SIGTERM (scale-in, Spot interruption, deployment): the worker stops polling, hands unstarted chunks
      // back at once and finishes or releases the frames in hand before ECS kills it.
      stopTimeout: WORKER_STOP_TIMEOUT,
      environment: props.environment,
      logging: LogDrivers.awsLogs({ logGroup: this.logGroup, streamPrefix: `${model.name}/worker` }),
    });
    bindTable(worker, props.table, 'readWrite');
    bindBucket(worker, props.bucket, 'write');
    bindQueue(worker, frameQueue.queue, 'consume', ENV.frameQueueUrl);
    bindQueue(worker, props.eventQueue.queue, 'send', ENV.eventQueueUrl);
    // After the bindings: the variables keep the order of deployed task definitions, so this adds no revision.
    const modelSettings = {
      [ENV.modelUrl]: MODEL_URL,
      [ENV.modelName]: model.name,
      [ENV.modelImage]: props.modelImageName,
      [ENV.workerConcurrency]: String(model.concurrency),
      // The SDK reads the region from the environment; IMDS is out of the container's reach on purpose.
      AWS_REGION: Stack.of(this).region,
    };
    for (const [name, value] of Object.entries(modelSettings)) worker.addEnvironment(name, value);
    worker.addLink(modelContainer, 'model');
    worker.addContainerDependencies({
      container: modelContainer,
      condition: ContainerDependencyCondition.HEALTHY,
    });

    const service = new Ec2Service(scope, 'Service', {
      cluster: this.cluster,
      taskDefinition,
      // Created at zero; CloudFormation leaves the count to the scaling policies afterwards.
      desiredCount: 0,
      // A deployment replaces tasks in place (stopped tasks hand their chunks back) rather than asking for
      // spare GPU hosts to run old and new side by side.
      minHealthyPercent: 0,
      maxHealthyPercent: 100,
      capacityProviderStrategies: [
        { capacityProvider: this.capacityProvider.capacityProviderName, weight: 1 },
      ],
      placementStrategies: [PlacementStrategy.packedByMemory()],
      circuitBreaker: { rollback: true },
      propagateTags: PropagatedTagSource.SERVICE,
      enableECSManagedTags: true,
    });
    // A strategy may name only a capacity provider already associated with the cluster.
    service.node.addDependency(this.cluster);
    this.addScaling(scope, model, service, frameQueue, props.gpu.targetBacklogPerTask);

    Validations.of(taskDefinition).acknowledge({
      id: 'AwsSolutions-ECS2',
      reason: 'The environment holds resource names, URLs and limits, never a secret.',
    });
    Validations.of(taskDefinition.obtainExecutionRole()).acknowledge({
      id: 'AwsSolutions-IAM5[Resource::*]',
      reason: 'ecr:GetAuthorizationToken, needed to pull any ECR image, has no resource-level permissions.',
    });
    return { model, service, taskDefinition, frameQueue };
  }

  /**
   * Task count = the frame queue's backlog (visible plus in-flight chunks) per running task, kept near the
   * configured target. In-flight counts: a task busy with its chunks is work, and scaling on visible
   * messages alone would scale in (and stop) tasks in the middle of their frames.
   */
  private addScaling(
    scope: Construct,
    model: ModelConfig,
    service: Ec2Service,
    frameQueue: WorkQueue,
    targetBacklogPerTask: number,
  ): void {
    const taskCount = new ScalableTarget(scope, 'TaskCount', {
      serviceNamespace: ServiceNamespace.ECS,
      resourceId: `service/${this.cluster.clusterName}/${service.serviceName}`,
      scalableDimension: 'ecs:service:DesiredCount',
      minCapacity: 0,
      maxCapacity: model.maxTasks,
      // The service-linked role Application Auto Scaling creates for ECS: no role of our own to maintain.
      role: Role.fromRoleArn(
        scope,
        'ScalingRole',
        Stack.of(this).formatArn({
          service: 'iam',
          region: '',
          resource: 'role/aws-service-role/ecs.application-autoscaling.amazonaws.com',
          resourceName: 'AWSServiceRoleForApplicationAutoScaling_ECSService',
        }),
      ),
    });
    const queueName = frameQueue.queue.queueName;
    const serviceDims = [
      { name: 'ClusterName', value: this.cluster.clusterName },
      { name: 'ServiceName', value: service.serviceName },
    ];
    const sqsMetric = (id: string, metricName: string) => ({
      id,
      returnData: false,
      metricStat: {
        metric: { namespace: 'AWS/SQS', metricName, dimensions: [{ name: 'QueueName', value: queueName }] },
        stat: 'Maximum',
      },
    });

    // With no running task the division has no divisor: the expression then divides by 1, so the metric is
    // the whole backlog and never "no data" (target tracking does nothing on missing data).
    new CfnScalingPolicy(scope, 'BacklogPerTask', {
      policyName: 'backlog-per-task',
      policyType: 'TargetTrackingScaling',
      scalingTargetId: taskCount.scalableTargetId,
      targetTrackingScalingPolicyConfiguration: {
        targetValue: targetBacklogPerTask,
        scaleInCooldown: 300,
        scaleOutCooldown: 120,
        customizedMetricSpecification: {
          metrics: [
            sqsMetric('visible', 'ApproximateNumberOfMessagesVisible'),
            sqsMetric('inflight', 'ApproximateNumberOfMessagesNotVisible'),
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
              expression:
                '(FILL(visible, 0) + FILL(inflight, 0)) / IF(FILL(running, 0) > 0, FILL(running, 0), 1)',
            },
          ],
        },
      },
    });

    // Target tracking multiplies the current count, and zero times anything is zero: with no task at all,
    // a step policy adds the first one as soon as a chunk waits. It fires only while the desired count is
    // 0, so it never contends with the target tracking policy.
    const fromZero = new StepScalingAction(scope, 'ScaleFromZero', {
      scalingTarget: taskCount,
      adjustmentType: AdjustmentType.CHANGE_IN_CAPACITY,
      metricAggregationType: MetricAggregationType.MAXIMUM,
      cooldown: Duration.minutes(5),
    });
    fromZero.addAdjustment({ adjustment: 1, lowerBound: 0 });
    const minute = Duration.minutes(1);
    new Alarm(scope, 'BacklogWithoutTasks', {
      alarmDescription: `Framecast ${model.name}: frame chunks wait and no task is wanted; adds the first task`,
      metric: new MathExpression({
        label: 'Chunks waiting with no task',
        expression: 'IF(FILL(desired, 0) < 1 AND (FILL(visible, 0) + FILL(inflight, 0)) > 0, 1, 0)',
        period: minute,
        usingMetrics: {
          visible: frameQueue.queue.metricApproximateNumberOfMessagesVisible({
            statistic: 'Maximum',
            period: minute,
          }),
          inflight: frameQueue.queue.metricApproximateNumberOfMessagesNotVisible({
            statistic: 'Maximum',
            period: minute,
          }),
          desired: new Metric({
            namespace: 'ECS/ContainerInsights',
            metricName: 'DesiredTaskCount',
            dimensionsMap: { ClusterName: this.cluster.clusterName, ServiceName: service.serviceName },
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

const ECR_URI =
  /^(\d{12})\.dkr\.ecr\.([a-z0-9-]+)\.amazonaws\.com(?:\.cn)?\/([a-z0-9._/-]+?)(?::([\w.-]+))?(?:@(sha256:[a-f0-9]{64}))?$/;

/**
 * An image from a registry. An ECR URI becomes a repository reference, so the execution role is granted
 * the pull; any other registry is public, or private with a Secrets Manager credential.
 */
function registryImage(
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
