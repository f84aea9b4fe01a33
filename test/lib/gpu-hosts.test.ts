import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { GpuHosts, type GpuHostsProps } from '../../lib/gpu-hosts.ts';
import { cliLikeApp, idAt, propsOf, resourcesOf, templateOf } from './synth.ts';

const logs = { retention: RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.RETAIN };

/** GpuHosts alone on a bare stack, as a production would configure it. */
function hostsStack(id: string, props: GpuHostsProps) {
  const stack = new Stack(cliLikeApp(), id);
  new GpuHosts(stack, 'Hosts', props);
  return { stack, template: templateOf(stack) };
}

// Spot and NAT left out: the construct's own defaults (on demand, public subnets, no NAT) apply.
const onDemand = hostsStack('OnDemand', {
  instanceTypes: ['g6.xlarge', 'g5.xlarge'],
  maxInstances: 2,
  volumeSizeGiB: 100,
  logs,
});
const spot = hostsStack('Spot', {
  instanceTypes: ['g6.2xlarge', 'g5.2xlarge'],
  maxInstances: 6,
  volumeSizeGiB: 100,
  spot: true,
  natGateways: 1,
  logs,
});

describe('GpuHosts', () => {
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
        { CapacityProvider: { Ref: idAt(onDemand.stack, 'Hosts/GpuCapacity') }, Weight: 1 },
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

  it('runs nothing by itself: services and tasks come from the models placed on it', () => {
    onDemand.template.resourceCountIs('AWS::ECS::Service', 0);
    onDemand.template.resourceCountIs('AWS::ECS::TaskDefinition', 0);
  });

  it('carries its own cdk-nag acknowledgements: nothing unacknowledged on a stack of its own', () => {
    for (const { stack } of [onDemand, spot]) {
      const report = new AwsSolutionsChecks().validateScope(stack);
      expect(
        report.violations.map(
          (v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
        ),
      ).toEqual([]);
    }
  });
});
