import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { DockerImageAsset, Platform } from 'aws-cdk-lib/aws-ecr-assets';
import { ContainerImage } from 'aws-cdk-lib/aws-ecs';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { BUILTIN_IMAGE, type ModelConfig, type ProductionConfig } from './config.ts';
import { GpuHosts } from './gpu-hosts.ts';
import { type LogSettings, PROJECT_ROOT } from './lambda.ts';
import { ModelService, type NamedImage, registryImage } from './model-service.ts';
import type { WorkQueue } from './queues.ts';

export interface RenderFleetProps {
  readonly gpu: ProductionConfig['gpu'];
  readonly natGateways: number;
  readonly models: readonly ModelConfig[];
  readonly frameQueues: ReadonlyMap<string, WorkQueue>;
  /**
   * Each model's high and low priority bands, by model then band.
   * @default none: each model's frame queue alone
   */
  readonly bands?: ReadonlyMap<string, ReadonlyMap<string, WorkQueue>>;
  /**
   * The plan queue the workers ask the fan-out on for more of a job (fair share).
   * @default none
   */
  readonly planQueue?: WorkQueue;
  readonly eventQueue: WorkQueue;
  readonly table: ITable;
  readonly bucket: IBucket;
  readonly assetBucket: IBucket;
  /** Settings every process reads (production, limits); the workers' bindings add the resources. */
  readonly environment: Readonly<Record<string, string>>;
  readonly logs: LogSettings;
  /**
   * A prebuilt worker image (registry URI).
   * @default the Dockerfile at the project root, built at deploy time
   */
  readonly workerImage?: string;
}

/**
 * The GPU side, composed: the GPU hosts, and one ModelService per configured model placed on them, with
 * the container log group and the project image (worker and reference model) they share.
 */
export class RenderFleet extends Construct {
  readonly hosts: GpuHosts;
  readonly logGroup: LogGroup;
  readonly services: ReadonlyMap<string, ModelService>;

  constructor(scope: Construct, id: string, props: RenderFleetProps) {
    super(scope, id);
    const { gpu } = props;

    // `Default` leaves no trace in logical IDs: the hosts keep the IDs they had when they were built right
    // here, so deployed productions keep their VPC, cluster and hosts rather than replacing them.
    this.hosts = new GpuHosts(this, 'Default', {
      instanceTypes: gpu.instanceTypes,
      maxInstances: gpu.maxInstances,
      volumeSizeGiB: gpu.volumeSizeGiB,
      spot: gpu.spot,
      natGateways: props.natGateways,
      logs: props.logs,
      ...(gpu.warmPool && { warmPool: { size: gpu.warmPool.size, state: gpu.warmPool.state } }),
    });

    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logs.retention,
      removalPolicy: props.logs.removalPolicy,
    });

    // The project image (Dockerfile) serves the worker and the reference model; it is staged, and built
    // at deploy time, only when one of them uses it.
    let asset: DockerImageAsset | undefined;
    const projectImage = (): NamedImage => {
      asset ??= new DockerImageAsset(this, 'RuntimeImage', {
        directory: PROJECT_ROOT,
        file: 'Dockerfile',
        // GPU hosts are x86_64 whatever machine runs the deploy.
        platform: Platform.LINUX_AMD64,
      });
      // A host warming up in the pool pulls it too (nothing without a warm pool).
      this.hosts.prePull(asset.imageUri, asset.repository);
      return { image: ContainerImage.fromDockerImageAsset(asset), name: asset.imageUri };
    };
    const workerImage = props.workerImage
      ? registryImage(this, 'WorkerImage', props.workerImage)
      : projectImage().image;
    if (props.workerImage) this.hosts.prePull(props.workerImage);

    const services = new Map<string, ModelService>();
    for (const model of props.models) {
      // A private registry's credentials are the task's, not the host's: such an image is pulled at task start.
      if (model.image !== BUILTIN_IMAGE && !model.registryCredentialsSecretArn)
        this.hosts.prePull(model.image);
      const frameQueue = props.frameQueues.get(model.name);
      if (!frameQueue) throw new Error(`no frame queue for model ${model.name}`);
      const service = new ModelService(this, `Model-${model.name}`, {
        model,
        hosts: this.hosts,
        frameQueue: frameQueue.queue,
        frameDeadLetterQueue: frameQueue.deadLetterQueue,
        ...(props.bands?.has(model.name) && {
          bandQueues: new Map([...props.bands.get(model.name)!].map(([band, work]) => [band, work.queue])),
        }),
        ...(props.planQueue && { planQueue: props.planQueue.queue }),
        eventQueue: props.eventQueue.queue,
        table: props.table,
        bucket: props.bucket,
        assetBucket: props.assetBucket,
        environment: props.environment,
        workerImage,
        ...(model.image === BUILTIN_IMAGE && { modelImage: projectImage() }),
        logGroup: this.logGroup,
        targetBacklogPerTask: gpu.targetBacklogPerTask,
      });
      services.set(model.name, service);
    }
    this.services = services;
  }
}
