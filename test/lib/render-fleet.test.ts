import { describe, expect, it } from 'vitest';
import { ENV } from '../../functions/shared/env.ts';
import { MODEL_URL } from '../../lib/model-service.ts';
import { idAt, propsOf, resourcesOf, synthesize } from './synth.ts';

// The GPU hosts and each ModelService have tests of their own (gpu-hosts.test.ts, model-service.test.ts);
// these check how the production's stack composes them.
const spot = synthesize('spotty', {
  gpu: { spot: true, maxInstances: 6, instanceTypes: ['g6.2xlarge', 'g5.2xlarge'] },
  network: { natGateways: 1 },
  colour: { plates: 'ARRI LogC3 (EI800)', exrCompression: 'piz' },
  models: [
    {
      name: 'sdxl',
      image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/cog-sdxl:v3',
      gpuCount: 2,
      maxTasks: 3,
    },
  ],
});

type Container = { Name: string; Environment?: { Name: string; Value: unknown }[]; Image: unknown };
const container = (model: string, name: string) => {
  const task = resourcesOf(spot.template, 'AWS::ECS::TaskDefinition')[
    idAt(spot.stack, `RenderFleet/Model-${model}/Task`)
  ];
  return (propsOf(task).ContainerDefinitions as Container[]).find((c) => c.Name === name)!;
};
const env = (c: Container) => Object.fromEntries((c.Environment ?? []).map((e) => [e.Name, e.Value]));

describe('RenderFleet', () => {
  it('places one service per configured model on the fleet hosts', () => {
    const services = Object.values(resourcesOf(spot.template, 'AWS::ECS::Service'));
    expect(services).toHaveLength(2);
    for (const service of services) {
      expect(service.Properties?.CapacityProviderStrategy).toEqual([
        { CapacityProvider: { Ref: idAt(spot.stack, 'RenderFleet/Default/GpuCapacity') }, Weight: 1 },
      ]);
    }
    spot.template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', { MinSize: '0', MaxSize: '6' });
  });

  it('tells the worker its table, bucket, queues, model and limits', () => {
    const worker = env(container('sdxl', 'worker'));
    expect(worker).toMatchObject({
      [ENV.table]: { Ref: idAt(spot.stack, 'Storage/Table') },
      [ENV.bucket]: { Ref: idAt(spot.stack, 'Storage/Frames') },
      [ENV.frameQueueUrl]: { Ref: idAt(spot.stack, 'Queues/Frames-sdxl/Queue') },
      [ENV.eventQueueUrl]: { Ref: idAt(spot.stack, 'Queues/Event/Queue') },
      [ENV.modelUrl]: MODEL_URL,
      [ENV.modelName]: 'sdxl',
      [ENV.modelImage]: '123456789012.dkr.ecr.us-east-1.amazonaws.com/cog-sdxl:v3',
      [ENV.maxAttempts]: '3',
      [ENV.chunkSize]: '8',
      [ENV.workerConcurrency]: '1',
      [ENV.production]: 'spotty',
      AWS_REGION: { Ref: 'AWS::Region' },
    });
  });

  it("has each worker consume its model's priority bands, ask the fan-out for more on the plan queue, and scale on every band", () => {
    const worker = env(container('sdxl', 'worker'));
    expect(worker[ENV.planQueueUrl]).toEqual({ Ref: idAt(spot.stack, 'Queues/Plan/Queue') });
    const bands = JSON.stringify(spot.stack.resolve(worker[ENV.frameQueueBands]));
    for (const band of ['high', 'low']) {
      expect(bands).toContain(`\\"${band}\\"`);
      expect(bands).toContain(idAt(spot.stack, `Queues/Frames-sdxl-${band}/Queue`));
    }
    const scaling = JSON.stringify(
      Object.values(resourcesOf(spot.template, 'AWS::ApplicationAutoScaling::ScalingPolicy')).find(
        (p) =>
          p.Properties?.PolicyType === 'TargetTrackingScaling' &&
          JSON.stringify(p).includes(idAt(spot.stack, 'Queues/Frames-sdxl-high/Queue')),
      ),
    );
    for (const band of ['', '-high', '-low'])
      expect(scaling).toContain(idAt(spot.stack, `Queues/Frames-sdxl${band}/Queue`));
    expect(scaling).toContain('FILL(visible2, 0) + FILL(inflight2, 0)');
  });

  it("tells the worker the production's colour pipeline: OCIO config, plate and model colour spaces, EXR compression", () => {
    expect(env(container('sdxl', 'worker'))).toMatchObject({
      [ENV.ocioConfig]: 'colour/framecast.ocio',
      [ENV.plateColourSpace]: 'ARRI LogC3 (EI800)',
      [ENV.modelColourSpace]: 'sRGB - Texture',
      [ENV.exrCompression]: 'piz',
    });
  });

  it('runs the reference model from the project image the workers run, and names that image to the worker', () => {
    const worker = container('reference', 'worker');
    expect(container('reference', 'model').Image).toEqual(worker.Image);
    expect(container('sdxl', 'worker').Image).toEqual(worker.Image);
    expect(env(worker)[ENV.modelImage]).toEqual(worker.Image);
  });

  it('keeps the logical IDs the hosts and services had before they were constructs of their own', () => {
    // A changed logical ID would make CloudFormation replace a deployed production's VPC, cluster or hosts.
    expect(idAt(spot.stack, 'RenderFleet/Default/Network')).toBe('RenderFleetNetworkBF877622');
    expect(idAt(spot.stack, 'RenderFleet/Default/Cluster')).toBe('RenderFleetCluster6265ED3D');
    expect(idAt(spot.stack, 'RenderFleet/Default/GpuHosts')).toBe('RenderFleetGpuHostsASG2F3BAB5E');
    expect(idAt(spot.stack, 'RenderFleet/Model-sdxl/Service')).toBe('RenderFleetModelsdxlService212B0ECF');
  });
});

describe('RenderFleet with a warm pool', () => {
  const warm = synthesize('warm', {
    gpu: { instanceTypes: ['g6.xlarge'], maxInstances: 3, warmPool: { size: 1 } },
    models: [
      { name: 'sdxl', image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/cog-sdxl:v3' },
      { name: 'flux', image: 'r8.im/studio/flux:1.2' },
      {
        name: 'private',
        image: 'registry.example.com/studio/private:1',
        registryCredentialsSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:registry-AbCdEf',
      },
    ],
  });
  const [launchTemplate] = Object.values(resourcesOf(warm.template, 'AWS::EC2::LaunchTemplate'));
  const userData = JSON.stringify(propsOf(launchTemplate).LaunchTemplateData);

  it('puts the configured pool beside the hosts', () => {
    warm.template.hasResourceProperties('AWS::AutoScaling::WarmPool', {
      AutoScalingGroupName: { Ref: idAt(warm.stack, 'RenderFleet/Default/GpuHosts') },
      MinSize: 1,
      MaxGroupPreparedCapacity: 1,
      PoolState: 'Stopped',
    });
  });

  it('has a warming host pull every image its tasks run, except those behind a private registry login', () => {
    expect(userData).toContain("'123456789012.dkr.ecr.us-east-1.amazonaws.com/cog-sdxl:v3'");
    expect(userData).toContain("'r8.im/studio/flux:1.2'");
    // The project image (worker and reference model), from the CDK assets repository.
    expect(userData).toContain('cdk-hnb659fds-container-assets-');
    expect(userData).not.toContain('registry.example.com');
  });
});
