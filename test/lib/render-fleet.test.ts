import { describe, expect, it } from 'vitest';
import { ENV } from '../../functions/shared/env.ts';
import { WORKER_HEARTBEAT_SECONDS } from '../../functions/shared/resources.ts';
import { MODEL_URL } from '../../lib/render-fleet.ts';
import { actionsOf, idAt, mentions, propsOf, resourcesOf, roleStatements, synthesize } from './synth.ts';

const onDemand = synthesize('demo');
const spot = synthesize('spotty', {
  gpu: { spot: true, maxInstances: 6, instanceTypes: ['g6.2xlarge', 'g5.2xlarge'] },
  network: { natGateways: 1 },
  models: [
    {
      name: 'sdxl',
      image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/cog-sdxl:v3',
      gpuCount: 2,
      maxTasks: 3,
    },
  ],
});

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
const taskContainers = (s: typeof onDemand, model: string) =>
  resourcesOf(s.template, 'AWS::ECS::TaskDefinition')[idAt(s.stack, `RenderFleet/Model-${model}/Task`)]
    ?.Properties?.ContainerDefinitions as Container[];
const container = (s: typeof onDemand, model: string, name: string) =>
  taskContainers(s, model).find((c) => c.Name === name)!;
const env = (c: Container) => Object.fromEntries((c.Environment ?? []).map((e) => [e.Name, e.Value]));

describe('RenderFleet', () => {
  it('scales GPU hosts through an ECS capacity provider with managed scaling and termination protection', () => {
    onDemand.template.hasResourceProperties('AWS::ECS::CapacityProvider', {
      AutoScalingGroupProvider: {
        ManagedScaling: { Status: 'ENABLED', TargetCapacity: 100 },
        ManagedTerminationProtection: 'ENABLED',
        ManagedDraining: 'ENABLED',
      },
    });
    onDemand.template.hasResourceProperties('AWS::ECS::ClusterCapacityProviderAssociations', {
      DefaultCapacityProviderStrategy: [
        { CapacityProvider: { Ref: idAt(onDemand.stack, 'RenderFleet/GpuCapacity') }, Weight: 1 },
      ],
    });
    onDemand.template.hasResourceProperties('AWS::ECS::Cluster', {
      ClusterSettings: [{ Name: 'containerInsights', Value: 'enabled' }],
    });
  });

  it('keeps between 0 hosts and the configured maximum, protected from scale-in while busy', () => {
    onDemand.template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      MinSize: '0',
      MaxSize: '2',
      NewInstancesProtectedFromScaleIn: true,
    });
    spot.template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', { MinSize: '0', MaxSize: '6' });
  });

  it('boots hosts from the ECS-optimized AL2023 GPU AMI with IMDSv2 out of the containers reach and an encrypted disk', () => {
    const [template] = Object.values(resourcesOf(onDemand.template, 'AWS::EC2::LaunchTemplate'));
    const data = template?.Properties?.LaunchTemplateData as { ImageId: { Ref: string } };
    expect(data).toMatchObject({
      MetadataOptions: { HttpTokens: 'required', HttpPutResponseHopLimit: 1 },
      BlockDeviceMappings: [
        { DeviceName: '/dev/xvda', Ebs: { Encrypted: true, VolumeType: 'gp3', VolumeSize: 100 } },
      ],
    });
    const parameters = (onDemand.template.toJSON() as { Parameters: Record<string, { Default: string }> })
      .Parameters;
    expect(parameters[data.ImageId.Ref]?.Default).toBe(
      '/aws/service/ecs/optimized-ami/amazon-linux-2023/gpu/recommended/image_id',
    );
  });

  it('runs on-demand hosts in preference order, without Spot draining or capacity rebalance', () => {
    onDemand.template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      CapacityRebalance: false,
      MixedInstancesPolicy: {
        InstancesDistribution: {
          OnDemandPercentageAboveBaseCapacity: 100,
          OnDemandAllocationStrategy: 'prioritized',
        },
        LaunchTemplate: { Overrides: [{ InstanceType: 'g6.xlarge' }, { InstanceType: 'g5.xlarge' }] },
      },
    });
    expect(JSON.stringify(resourcesOf(onDemand.template, 'AWS::EC2::LaunchTemplate'))).not.toContain(
      'SPOT_INSTANCE_DRAINING',
    );
  });

  it('runs Spot hosts with capacity rebalance and Spot draining when the config asks for Spot', () => {
    spot.template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      CapacityRebalance: true,
      MixedInstancesPolicy: {
        InstancesDistribution: {
          OnDemandPercentageAboveBaseCapacity: 0,
          SpotAllocationStrategy: 'price-capacity-optimized',
        },
      },
    });
    expect(JSON.stringify(resourcesOf(spot.template, 'AWS::EC2::LaunchTemplate'))).toContain(
      'ECS_ENABLE_SPOT_INSTANCE_DRAINING=true',
    );
  });

  it('puts hosts in public subnets with no NAT gateway by default, and behind NAT when configured', () => {
    onDemand.template.resourceCountIs('AWS::EC2::NatGateway', 0);
    const subnets = Object.values(resourcesOf(onDemand.template, 'AWS::EC2::Subnet'));
    expect(subnets.every((s) => s.Properties?.MapPublicIpOnLaunch === true)).toBe(true);
    // Public addresses, but nothing may connect in: no ingress rule on any security group.
    onDemand.template.resourceCountIs('AWS::EC2::SecurityGroupIngress', 0);
    for (const group of Object.values(resourcesOf(onDemand.template, 'AWS::EC2::SecurityGroup'))) {
      expect(group.Properties?.SecurityGroupIngress).toBeUndefined();
    }

    spot.template.resourceCountIs('AWS::EC2::NatGateway', 1);
    const [asg] = Object.values(resourcesOf(spot.template, 'AWS::AutoScaling::AutoScalingGroup'));
    const hostSubnets = (propsOf(asg).VPCZoneIdentifier as { Ref: string }[]).map(
      (r) => resourcesOf(spot.template, 'AWS::EC2::Subnet')[r.Ref],
    );
    expect(hostSubnets.every((s) => s?.Properties?.MapPublicIpOnLaunch === false)).toBe(true);
  });

  it('runs one service per model, created at zero tasks on the GPU capacity provider', () => {
    const services = Object.values(resourcesOf(spot.template, 'AWS::ECS::Service'));
    expect(services).toHaveLength(2);
    for (const service of services) {
      expect(service.Properties).toMatchObject({
        DesiredCount: 0,
        CapacityProviderStrategy: [
          { CapacityProvider: { Ref: idAt(spot.stack, 'RenderFleet/GpuCapacity') } },
        ],
        PropagateTags: 'SERVICE',
      });
      expect(service.DependsOn).toContain(idAt(spot.stack, 'RenderFleet/Cluster'));
    }
  });

  it('puts the worker and the model in one bridge-network task, the worker linked to the model', () => {
    onDemand.template.hasResourceProperties('AWS::ECS::TaskDefinition', {
      NetworkMode: 'bridge',
      RequiresCompatibilities: ['EC2'],
    });
    const worker = container(onDemand, 'reference', 'worker');
    expect(worker.Links).toEqual(['model:model']);
    expect(worker.DependsOn).toEqual([{ ContainerName: 'model', Condition: 'HEALTHY' }]);
    expect(env(worker)[ENV.modelUrl]).toBe(MODEL_URL);
  });

  it('gives the model container the GPUs of its config and a health check on /health-check', () => {
    const sdxl = container(spot, 'sdxl', 'model');
    expect(sdxl.ResourceRequirements).toEqual([{ Type: 'GPU', Value: '2' }]);
    expect(sdxl.HealthCheck?.Command[0]).toBe('CMD');
    expect(sdxl.HealthCheck?.Command.join(' ')).toContain('/health-check');
    const reference = container(onDemand, 'reference', 'model');
    expect(reference.ResourceRequirements).toBeUndefined();
    expect(reference.Command).toEqual(['node', 'model.mjs']);
    expect(reference.HealthCheck?.Command.join(' ')).toContain('/health-check');
  });

  it('gives the worker the longest stop timeout ECS allows, to hand its chunks back', () => {
    for (const s of [onDemand, spot]) {
      for (const c of taskContainers(s, 'reference').filter((c) => c.Name === 'worker'))
        expect(c.StopTimeout).toBe(120);
    }
    expect(container(spot, 'sdxl', 'worker').StopTimeout).toBeGreaterThan(WORKER_HEARTBEAT_SECONDS);
  });

  it('tells the worker its table, bucket, queues, model and limits', () => {
    const worker = env(container(spot, 'sdxl', 'worker'));
    expect(worker).toMatchObject({
      [ENV.table]: { Ref: idAt(spot.stack, 'Storage/Table') },
      [ENV.bucket]: { Ref: idAt(spot.stack, 'Storage/Frames') },
      [ENV.frameQueueUrl]: { Ref: idAt(spot.stack, 'Queues/Frames-sdxl/Queue') },
      [ENV.eventQueueUrl]: { Ref: idAt(spot.stack, 'Queues/Event/Queue') },
      [ENV.modelUrl]: MODEL_URL,
      [ENV.modelName]: 'sdxl',
      [ENV.modelImage]: '123456789012.dkr.ecr.us-east-1.amazonaws.com/cog-sdxl:v3',
      [ENV.maxAttempts]: '3',
      [ENV.chunkSize]: '4',
      [ENV.workerConcurrency]: '1',
      [ENV.production]: 'spotty',
      AWS_REGION: { Ref: 'AWS::Region' },
    });
  });

  it('lets a worker consume its own frame queue only, publish events, write frames and use the table', () => {
    const taskRole = idAt(spot.stack, 'RenderFleet/Model-sdxl/TaskRole');
    const statements = roleStatements(spot.template, taskRole);
    const on = (path: string) => actionsOf(statements.filter((s) => mentions(s, idAt(spot.stack, path))));
    expect(on('Queues/Frames-sdxl/Queue')).toEqual(
      expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage']),
    );
    expect(on('Queues/Frames-reference/Queue')).toEqual([]);
    expect(on('Queues/Plan/Queue')).toEqual([]);
    expect(on('Queues/Event/Queue')).toEqual(expect.arrayContaining(['sqs:SendMessage']));
    expect(on('Queues/Event/Queue')).not.toContain('sqs:ReceiveMessage');
    expect(
      actionsOf(statements)
        .filter((a) => a.startsWith('s3:'))
        .sort(),
    ).toEqual(['s3:AbortMultipartUpload', 's3:DeleteObject', 's3:PutObject']);
    // Transactions need the rights of the writes they contain: there is no TransactWriteItems action.
    expect(on('Storage/Table')).toEqual(
      expect.arrayContaining(['dynamodb:UpdateItem', 'dynamodb:PutItem', 'dynamodb:ConditionCheckItem']),
    );
  });

  it('lets the execution role pull a model image from ECR in this account', () => {
    const execution = idAt(spot.stack, 'RenderFleet/Model-sdxl/Task/ExecutionRole');
    const pulls = roleStatements(spot.template, execution).filter((s) =>
      actionsOf([s]).includes('ecr:BatchGetImage'),
    );
    expect(JSON.stringify(pulls)).toContain(':repository/cog-sdxl');
  });

  it('scales each model between 0 and its maxTasks on the backlog per task, visible plus in flight', () => {
    spot.template.hasResourceProperties('AWS::ApplicationAutoScaling::ScalableTarget', {
      MinCapacity: 0,
      MaxCapacity: 3,
      ScalableDimension: 'ecs:service:DesiredCount',
    });
    const policies = Object.values(
      resourcesOf(onDemand.template, 'AWS::ApplicationAutoScaling::ScalingPolicy'),
    );
    const tracking = policies.find((p) => p.Properties?.PolicyType === 'TargetTrackingScaling')?.Properties;
    expect(tracking?.ScalingTargetId).toEqual({
      Ref: idAt(onDemand.stack, 'RenderFleet/Model-reference/TaskCount'),
    });
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
    const policies = resourcesOf(onDemand.template, 'AWS::ApplicationAutoScaling::ScalingPolicy');
    const [stepId, step] = Object.entries(policies).find(
      ([, p]) => p.Properties?.PolicyType === 'StepScaling',
    )!;
    expect(step.Properties?.StepScalingPolicyConfiguration).toMatchObject({
      AdjustmentType: 'ChangeInCapacity',
      StepAdjustments: [{ MetricIntervalLowerBound: 0, ScalingAdjustment: 1 }],
    });
    const alarm = Object.values(resourcesOf(onDemand.template, 'AWS::CloudWatch::Alarm')).find((a) =>
      JSON.stringify(a.Properties?.AlarmActions).includes(stepId),
    );
    const expression = (propsOf(alarm).Metrics as { Expression?: string }[]).find(
      (m) => m.Expression,
    )?.Expression;
    expect(expression).toBe('IF(FILL(desired, 0) < 1 AND (FILL(visible, 0) + FILL(inflight, 0)) > 0, 1, 0)');
  });
});
