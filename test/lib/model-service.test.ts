import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import { ContainerImage } from 'aws-cdk-lib/aws-ecs';
import { LogGroup, RetentionDays } from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { ENV } from '../../functions/shared/env.ts';
import { WORKER_HEARTBEAT_SECONDS } from '../../functions/shared/resources.ts';
import { parseConfig } from '../../lib/config.ts';
import { GpuHosts } from '../../lib/gpu-hosts.ts';
import { MODEL_URL, ModelService, type ModelServiceProps } from '../../lib/model-service.ts';
import { Queues } from '../../lib/queues.ts';
import { Storage } from '../../lib/storage.ts';
import {
  actionsOf,
  cliLikeApp,
  idAt,
  mentions,
  propsOf,
  resourcesOf,
  roleStatements,
  templateOf,
} from './synth.ts';

const logs = { retention: RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.RETAIN };
const SDXL_IMAGE = '123456789012.dkr.ecr.us-east-1.amazonaws.com/cog-sdxl:v3';
const WORKER_IMAGE = 'public.ecr.aws/studio/framecast-worker:1.0.0';
// The models as a production's config makes them: the built-in reference model, and an own one on 2 GPUs.
const [reference, sdxl] = parseConfig('spotty', {
  models: [{ name: 'sdxl', image: SDXL_IMAGE, gpuCount: 2, maxTasks: 3 }],
}).models;
// Settings every process reads: the service passes them to the worker as they are.
const environment = { [ENV.production]: 'spotty', [ENV.maxAttempts]: '3', [ENV.chunkSize]: '4' };

/** Two ModelServices on one set of hosts, with the table, bucket and queues they are bound to. */
function servicesStack() {
  const stack = new Stack(cliLikeApp(), 'Models');
  const hosts = new GpuHosts(stack, 'Hosts', {
    instanceTypes: ['g6.2xlarge'],
    maxInstances: 6,
    volumeSizeGiB: 100,
    logs,
  });
  const storage = new Storage(stack, 'Storage', { retentionDays: 30, removalPolicy: RemovalPolicy.RETAIN });
  const queues = new Queues(stack, 'Queues', { models: ['reference', 'sdxl'] });
  const logGroup = new LogGroup(stack, 'Logs', logs);
  const shared = {
    hosts,
    eventQueue: queues.event.queue,
    table: storage.table,
    bucket: storage.bucket,
    assetBucket: storage.assets,
    environment,
    workerImage: ContainerImage.fromRegistry(WORKER_IMAGE),
    logGroup,
    targetBacklogPerTask: 4,
  } satisfies Partial<ModelServiceProps>;
  new ModelService(stack, 'Reference', {
    ...shared,
    model: reference!,
    frameQueue: queues.frames.get('reference')!.queue,
    modelImage: {
      image: ContainerImage.fromRegistry('framecast/runtime:test'),
      name: 'framecast/runtime:test',
    },
  });
  new ModelService(stack, 'Sdxl', { ...shared, model: sdxl!, frameQueue: queues.frames.get('sdxl')!.queue });
  return { stack, template: templateOf(stack) };
}
const s = servicesStack();

type Container = {
  Name: string;
  Environment?: { Name: string; Value: unknown }[];
  ResourceRequirements?: unknown[];
  StopTimeout?: number;
  HealthCheck?: { Command: string[] };
  Links?: string[];
  DependsOn?: unknown[];
  Image: unknown;
  Command?: string[];
};
const taskContainers = (service: string) =>
  resourcesOf(s.template, 'AWS::ECS::TaskDefinition')[idAt(s.stack, `${service}/Task`)]?.Properties
    ?.ContainerDefinitions as Container[];
const container = (service: string, name: string) => taskContainers(service).find((c) => c.Name === name)!;
const env = (c: Container) => Object.fromEntries((c.Environment ?? []).map((e) => [e.Name, e.Value]));

describe('ModelService', () => {
  it('runs one service per model, created at zero tasks on the GPU capacity provider', () => {
    const services = Object.values(resourcesOf(s.template, 'AWS::ECS::Service'));
    expect(services).toHaveLength(2);
    for (const service of services) {
      expect(service.Properties).toMatchObject({
        DesiredCount: 0,
        CapacityProviderStrategy: [{ CapacityProvider: { Ref: idAt(s.stack, 'Hosts/GpuCapacity') } }],
        PropagateTags: 'SERVICE',
      });
      expect(service.DependsOn).toContain(idAt(s.stack, 'Hosts/Cluster'));
    }
  });

  it('puts the worker and the model in one bridge-network task, the worker linked to the model', () => {
    s.template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      NetworkMode: 'bridge',
      RequiresCompatibilities: ['EC2'],
    });
    const worker = container('Reference', 'worker');
    expect(worker.Links).toEqual(['model:model']);
    expect(worker.DependsOn).toEqual([{ ContainerName: 'model', Condition: 'HEALTHY' }]);
    expect(env(worker)[ENV.modelUrl]).toBe(MODEL_URL);
  });

  it('gives the model container the GPUs of its config and a health check on /health-check', () => {
    const own = container('Sdxl', 'model');
    expect(own.ResourceRequirements).toEqual([{ Type: 'GPU', Value: '2' }]);
    expect(own.HealthCheck?.Command[0]).toBe('CMD');
    expect(own.HealthCheck?.Command.join(' ')).toContain('/health-check');
    const builtin = container('Reference', 'model');
    expect(builtin.ResourceRequirements).toBeUndefined();
    expect(builtin.Command).toEqual(['node', 'model.mjs']);
    expect(builtin.HealthCheck?.Command.join(' ')).toContain('/health-check');
  });

  it('gives the worker the longest stop timeout ECS allows, to hand its chunks back', () => {
    for (const service of ['Reference', 'Sdxl']) {
      expect(container(service, 'worker').StopTimeout).toBe(120);
      expect(container(service, 'worker').StopTimeout).toBeGreaterThan(WORKER_HEARTBEAT_SECONDS);
    }
  });

  it('tells the worker its table, bucket, queues, model and limits', () => {
    expect(env(container('Sdxl', 'worker'))).toMatchObject({
      [ENV.table]: { Ref: idAt(s.stack, 'Storage/Table') },
      [ENV.bucket]: { Ref: idAt(s.stack, 'Storage/Frames') },
      [ENV.frameQueueUrl]: { Ref: idAt(s.stack, 'Queues/Frames-sdxl/Queue') },
      [ENV.eventQueueUrl]: { Ref: idAt(s.stack, 'Queues/Event/Queue') },
      [ENV.modelUrl]: MODEL_URL,
      [ENV.modelName]: 'sdxl',
      [ENV.modelImage]: SDXL_IMAGE,
      [ENV.maxAttempts]: '3',
      [ENV.chunkSize]: '4',
      [ENV.workerConcurrency]: '1',
      [ENV.production]: 'spotty',
      AWS_REGION: { Ref: 'AWS::Region' },
    });
    // The built-in model names the image it was given, which the worker records in each frame's provenance.
    expect(env(container('Reference', 'worker'))[ENV.modelImage]).toBe('framecast/runtime:test');
  });

  it('lets a worker consume (and send windows to) its own frame queue only, publish events, read and write frames and use the table', () => {
    const statements = roleStatements(s.template, idAt(s.stack, 'Sdxl/TaskRole'));
    const on = (path: string) => actionsOf(statements.filter((st) => mentions(st, idAt(s.stack, path))));
    expect(on('Queues/Frames-sdxl/Queue')).toEqual(
      expect.arrayContaining([
        'sqs:ReceiveMessage',
        'sqs:ChangeMessageVisibility',
        'sqs:DeleteMessage',
        'sqs:SendMessage',
      ]),
    );
    expect(on('Queues/Frames-reference/Queue')).toEqual([]);
    expect(on('Queues/Plan/Queue')).toEqual([]);
    expect(on('Queues/Event/Queue')).toEqual(expect.arrayContaining(['sqs:SendMessage']));
    expect(on('Queues/Event/Queue')).not.toContain('sqs:ReceiveMessage');
    expect(
      actionsOf(statements.filter((st) => mentions(st, idAt(s.stack, 'Storage/Frames'))))
        .filter((a) => a.startsWith('s3:'))
        .sort(),
    ).toEqual(['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:GetObject', 's3:PutObject']);
    // Asset content: read only, for the presigned URLs of a job's inputs.
    expect(on('Storage/Assets')).toEqual(['s3:GetObject']);
    // Transactions need the rights of the writes they contain: there is no TransactWriteItems action.
    expect(on('Storage/Table')).toEqual(
      expect.arrayContaining(['dynamodb:UpdateItem', 'dynamodb:PutItem', 'dynamodb:ConditionCheckItem']),
    );
  });

  it('lets the execution role pull a model image from ECR in this account', () => {
    const execution = idAt(s.stack, 'Sdxl/Task/ExecutionRole');
    const pulls = roleStatements(s.template, execution).filter((st) =>
      actionsOf([st]).includes('ecr:BatchGetImage'),
    );
    expect(JSON.stringify(pulls)).toContain(':repository/cog-sdxl');
  });

  it('scales each model between 0 and its maxTasks on the backlog per task, visible plus in flight', () => {
    s.template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', {
      MinCapacity: 0,
      MaxCapacity: 3,
      ScalableDimension: 'ecs:service:DesiredCount',
    });
    const policies = Object.values(resourcesOf(s.template, 'AWS::ApplicationAutoScaling::ScalingPolicy'));
    const referenceTarget = { Ref: idAt(s.stack, 'Reference/TaskCount') };
    const tracking = policies.find(
      (p) =>
        p.Properties?.PolicyType === 'TargetTrackingScaling' &&
        JSON.stringify(p.Properties.ScalingTargetId) === JSON.stringify(referenceTarget),
    )?.Properties;
    expect(tracking?.ScalingTargetId).toEqual(referenceTarget);
    const config = tracking?.TargetTrackingScalingPolicyConfiguration as {
      TargetValue: number;
      CustomizedMetricSpecification: {
        Metrics: {
          Id: string;
          Expression?: string;
          ReturnData: boolean;
          MetricStat?: { Metric: { MetricName: string } };
        }[];
      };
    };
    expect(config.TargetValue).toBe(4);
    const metrics = Object.fromEntries(config.CustomizedMetricSpecification.Metrics.map((m) => [m.Id, m]));
    expect(metrics.visible?.MetricStat?.Metric.MetricName).toBe('ApproximateNumberOfMessagesVisible');
    expect(metrics.inflight?.MetricStat?.Metric.MetricName).toBe('ApproximateNumberOfMessagesNotVisible');
    expect(metrics.running?.MetricStat?.Metric.MetricName).toBe('RunningTaskCount');
    const returned = config.CustomizedMetricSpecification.Metrics.filter((m) => m.ReturnData);
    expect(returned).toHaveLength(1);
    expect(returned[0]?.Expression).toMatch(
      /\(FILL\(visible, 0\) \+ FILL\(inflight, 0\)\) \/ IF\(FILL\(running, 0\) > 0/,
    );
  });

  it('adds the first task from zero with a step policy while chunks wait and no task is wanted', () => {
    const policies = resourcesOf(s.template, 'AWS::ApplicationAutoScaling::ScalingPolicy');
    const steps = Object.entries(policies).filter(([, p]) => p.Properties?.PolicyType === 'StepScaling');
    expect(steps).toHaveLength(2);
    for (const [stepId, step] of steps) {
      expect(step.Properties?.StepScalingPolicyConfiguration).toMatchObject({
        AdjustmentType: 'ChangeInCapacity',
        StepAdjustments: [{ MetricIntervalLowerBound: 0, ScalingAdjustment: 1 }],
      });
      const alarm = Object.values(resourcesOf(s.template, 'AWS::CloudWatch::Alarm')).find((a) =>
        JSON.stringify(a.Properties?.AlarmActions).includes(stepId),
      );
      const expression = (propsOf(alarm).Metrics as { Expression?: string }[]).find(
        (m) => m.Expression,
      )?.Expression;
      expect(expression).toBe(
        'IF(FILL(desired, 0) < 1 AND (FILL(visible, 0) + FILL(inflight, 0)) > 0, 1, 0)',
      );
    }
  });

  it('refuses a built-in model without the image to run it', () => {
    const stack = new Stack(cliLikeApp(), 'NoImage');
    const hosts = new GpuHosts(stack, 'Hosts', {
      instanceTypes: ['g6.xlarge'],
      maxInstances: 1,
      volumeSizeGiB: 100,
      logs,
    });
    const queues = new Queues(stack, 'Queues', { models: ['reference'] });
    const storage = new Storage(stack, 'Storage', { retentionDays: 30, removalPolicy: RemovalPolicy.RETAIN });
    expect(
      () =>
        new ModelService(stack, 'Reference', {
          model: reference!,
          hosts,
          frameQueue: queues.frames.get('reference')!.queue,
          eventQueue: queues.event.queue,
          table: storage.table,
          bucket: storage.bucket,
          assetBucket: storage.assets,
          environment,
          workerImage: ContainerImage.fromRegistry(WORKER_IMAGE),
          logGroup: new LogGroup(stack, 'Logs', logs),
          targetBacklogPerTask: 4,
        }),
    ).toThrow(/built-in image/);
  });

  it('carries its own cdk-nag acknowledgements: nothing unacknowledged on a stack of its own', () => {
    const report = new AwsSolutionsChecks().validateScope(s.stack);
    expect(
      report.violations.map(
        (v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
      ),
    ).toEqual([]);
  });
});
