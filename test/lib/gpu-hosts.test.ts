import { spawnSync } from 'node:child_process';
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Match } from 'aws-cdk-lib/assertions';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { GpuHosts, type GpuHostsProps, WARM_UP_HOOK } from '../../lib/gpu-hosts.ts';
import { actionsOf, cliLikeApp, idAt, propsOf, resourcesOf, roleStatements, templateOf } from './synth.ts';

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
// A warm pool of two stopped hosts that pull a model image of this account's ECR and a public one.
const warm = (() => {
  const stack = new Stack(cliLikeApp(), 'Warm');
  const hosts = new GpuHosts(stack, 'Hosts', {
    instanceTypes: ['g6.xlarge'],
    maxInstances: 4,
    volumeSizeGiB: 200,
    logs,
    warmPool: { size: 2 },
  });
  hosts.prePull('123456789012.dkr.ecr.us-east-1.amazonaws.com/cog-sdxl@sha256:' + 'a'.repeat(64));
  hosts.prePull('r8.im/studio/flux:1.2');
  hosts.prePull('r8.im/studio/flux:1.2');
  return { stack, template: templateOf(stack) };
})();
const running = hostsStack('Running', {
  instanceTypes: ['g5.xlarge'],
  maxInstances: 2,
  volumeSizeGiB: 100,
  logs,
  warmPool: { size: 1, state: 'Running' },
});

/** The user data of the one launch template, with CloudFormation's functions shown as JSON. */
function userDataOf(template: ReturnType<typeof templateOf>): string {
  const [lt] = Object.values(resourcesOf(template, 'AWS::EC2::LaunchTemplate'));
  const data = (propsOf(lt).LaunchTemplateData as { UserData: { 'Fn::Base64': unknown } }).UserData[
    'Fn::Base64'
  ];
  const join = (data as { 'Fn::Join'?: [string, unknown[]] })['Fn::Join'];
  return join ? join[1].map((p) => (typeof p === 'string' ? p : JSON.stringify(p))).join('') : String(data);
}

/**
 * Runs the hosts' boot script (the heredoc in the user data) with stand-ins for IMDS (`curl`), the AWS
 * CLI, docker and systemctl, for a host whose target lifecycle state is `state`; `sleep` moves the target
 * state on to InService, as Auto Scaling does when the group takes a host. Returns the commands run.
 */
function runBootScript(template: ReturnType<typeof templateOf>, state: string): string[] {
  const userData = userDataOf(template);
  const opening = "<<'FRAMECAST_LIFECYCLE'\n";
  const script = userData.slice(
    userData.indexOf(opening) + opening.length,
    userData.indexOf('\nFRAMECAST_LIFECYCLE\n'),
  );
  const dir = mkdtempSync(join(tmpdir(), 'framecast-boot-'));
  try {
    const stub = (name: string, body: string) => {
      writeFileSync(join(dir, name), `#!/bin/bash\n${body}\n`);
      chmodSync(join(dir, name), 0o755);
    };
    writeFileSync(join(dir, 'state'), state);
    const log = `echo "$(basename "$0") $*" >> "${dir}/calls"`;
    stub(
      'curl',
      'for a in "$@"; do case "$a" in http*) url=$a ;; esac; done\n' +
        `case "$url" in\n  */api/token) echo token ;;\n  */autoscaling/target-lifecycle-state) cat "${dir}/state" ;;\n` +
        '  */placement/region) echo us-east-1 ;;\n  */instance-id) echo i-0123456789abcdef0 ;;\n  *) exit 22 ;;\nesac',
    );
    stub(
      'aws',
      `${log}\ncase "$2" in describe-auto-scaling-instances) echo the-group ;; get-login-password) echo secret ;; esac`,
    );
    stub('docker', `${log}\ncat > /dev/null`);
    stub('systemctl', log);
    stub('sleep', `echo InService > "${dir}/state"`);
    const file = join(dir, 'boot.sh');
    writeFileSync(file, script.replace('/var/log/framecast-lifecycle.log', join(dir, 'log')));
    const run = spawnSync('bash', [file], {
      env: { ...process.env, PATH: `${dir}:${process.env.PATH}` },
      encoding: 'utf8',
      timeout: 20_000,
    });
    expect(run.status, readFileSync(join(dir, 'log'), 'utf8')).toBe(0);
    return readFileSync(join(dir, 'calls'), 'utf8').trim().split('\n');
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

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

  it('adds no warm pool, lifecycle hook or warm-pool agent setting unless asked', () => {
    for (const { template } of [onDemand, spot]) {
      template.resourceCountIs('AWS::AutoScaling::WarmPool', 0);
      template.resourceCountIs('AWS::AutoScaling::LifecycleHook', 0);
      expect(userDataOf(template)).not.toContain('ECS_WARM_POOLS_CHECK');
    }
    // prePull without a pool changes nothing: a fresh host's tasks pull their own images.
    const stack = new Stack(cliLikeApp(), 'NoPool');
    const hosts = new GpuHosts(stack, 'Hosts', {
      instanceTypes: ['g6.xlarge'],
      maxInstances: 1,
      volumeSizeGiB: 100,
      logs,
    });
    hosts.prePull('123456789012.dkr.ecr.us-east-1.amazonaws.com/cog-sdxl:1');
    expect(JSON.stringify(templateOf(stack).toJSON())).not.toContain('cog-sdxl');
  });

  it('keeps a warm pool of a fixed size, stopped by default, with no reuse on scale-in (ECS refuses it)', () => {
    warm.template.hasResourceProperties('AWS::AutoScaling::WarmPool', {
      AutoScalingGroupName: { Ref: idAt(warm.stack, 'Hosts/GpuHosts') },
      MinSize: 2,
      MaxGroupPreparedCapacity: 2,
      PoolState: 'Stopped',
      InstanceReusePolicy: Match.absent(),
    });
    running.template.hasResourceProperties('AWS::AutoScaling::WarmPool', {
      MinSize: 1,
      MaxGroupPreparedCapacity: 1,
      PoolState: 'Running',
    });
  });

  it('launches a warm pool group from its template alone, one on-demand type, still from 0 hosts and protected', () => {
    warm.template.hasResourceProperties('AWS::AutoScaling::AutoScalingGroup', {
      MinSize: '0',
      MaxSize: '4',
      NewInstancesProtectedFromScaleIn: true,
      CapacityRebalance: false,
      MixedInstancesPolicy: Match.absent(),
      LaunchTemplate: { LaunchTemplateId: { Ref: idAt(warm.stack, 'Hosts/HostTemplate') } },
    });
    warm.template.hasResourceProperties('AWS::EC2::LaunchTemplate', {
      LaunchTemplateData: {
        InstanceType: 'g6.xlarge',
        BlockDeviceMappings: [{ Ebs: { VolumeSize: 200, VolumeType: 'gp3', Encrypted: true } }],
      },
    });
    warm.template.hasResourceProperties('AWS::ECS::CapacityProvider', {
      AutoScalingGroupProvider: {
        ManagedScaling: { Status: 'ENABLED', TargetCapacity: 100 },
        ManagedTerminationProtection: 'ENABLED',
      },
    });
  });

  it('holds a host launching into the pool until its boot script says CONTINUE, and never for ever', () => {
    warm.template.hasResourceProperties('AWS::AutoScaling::LifecycleHook', {
      AutoScalingGroupName: { Ref: idAt(warm.stack, 'Hosts/GpuHosts') },
      LifecycleHookName: WARM_UP_HOOK,
      LifecycleTransition: 'autoscaling:EC2_INSTANCE_LAUNCHING',
      DefaultResult: 'CONTINUE',
      HeartbeatTimeout: 1800,
    });
    // The pool launches its first hosts when it is created: the hook and the host's grant come first.
    const [pool] = Object.values(resourcesOf(warm.template, 'AWS::AutoScaling::WarmPool'));
    expect(pool?.DependsOn).toEqual(
      expect.arrayContaining([
        idAt(warm.stack, 'Hosts/GpuHosts/LifecycleHookWarmUp'),
        idAt(warm.stack, 'Hosts/HostLifecyclePolicy'),
      ]),
    );
  });

  it('keeps the agent of a host in the pool unregistered and pulls the model images while the host warms up', () => {
    const userData = userDataOf(warm.template);
    expect(userData).toContain('echo ECS_WARM_POOLS_CHECK=true >> /etc/ecs/ecs.config');
    // Every boot runs the script (cloud-init per-boot): warming up in the pool, and later leaving it.
    expect(userData).toContain('cat > /var/lib/cloud/scripts/per-boot/framecast-lifecycle.sh');
    expect(userData).toContain('imds autoscaling/target-lifecycle-state');
    expect(userData).toMatch(/case "\$state" in\n {2}Warmed:\*\)\n {4}systemctl start docker/);
    // Each image once, in the order given.
    expect(userData).toContain(
      `    set -- '123456789012.dkr.ecr.us-east-1.amazonaws.com/cog-sdxl@sha256:${'a'.repeat(64)}' 'r8.im/studio/flux:1.2'\n`,
    );
    expect(userData).toContain('docker pull "$image"');
    expect(userData).toContain('docker login --username AWS --password-stdin "$registry"');
    expect(userData).toContain(
      `complete-lifecycle-action --region "$region" --auto-scaling-group-name "$group" --lifecycle-hook-name ${WARM_UP_HOOK}`,
    );
    expect(userDataOf(running.template)).toContain(
      'until [ "$(imds autoscaling/target-lifecycle-state)" = InService ]',
    );
  });

  it.each([
    ['warming up in a stopped pool', warm, 'Warmed:Stopped', true],
    ['leaving the pool, or launched straight into service', warm, 'InService', false],
  ])(
    'runs a boot script that, %s, pulls only when warming and then lets the host go on',
    (_, hosts, state, pulls) => {
      const calls = runBootScript(hosts.template, state);
      const pullsAndLogins = calls.filter((c) => c.startsWith('docker'));
      const ecrImage = `123456789012.dkr.ecr.us-east-1.amazonaws.com/cog-sdxl@sha256:${'a'.repeat(64)}`;
      expect(pullsAndLogins).toEqual(
        pulls
          ? [
              'docker login --username AWS --password-stdin 123456789012.dkr.ecr.us-east-1.amazonaws.com',
              `docker pull ${ecrImage}`,
              'docker pull r8.im/studio/flux:1.2',
            ]
          : [],
      );
      const completions = calls.filter((c) => c.includes('complete-lifecycle-action'));
      expect(completions).toEqual([
        'aws autoscaling complete-lifecycle-action --region us-east-1 --auto-scaling-group-name the-group ' +
          `--lifecycle-hook-name ${WARM_UP_HOOK} --instance-id i-0123456789abcdef0 --lifecycle-action-result CONTINUE`,
      ]);
      // Pulls first: completing the action is what lets Auto Scaling stop the host.
      expect(calls.indexOf(completions[0]!)).toBeGreaterThan(calls.lastIndexOf(pullsAndLogins.at(-1) ?? ''));
    },
  );

  it('runs a boot script that, in a running pool, completes the action again when the host goes into service', () => {
    const calls = runBootScript(running.template, 'Warmed:Running');
    expect(calls.filter((c) => c.includes('complete-lifecycle-action'))).toHaveLength(2);
    expect(calls.filter((c) => c.startsWith('docker pull'))).toEqual([]);
  });

  it('lets the hosts pull the ECR images they pre-pull and complete the lifecycle action of their own group only', () => {
    const hostRole = idAt(warm.stack, 'Hosts/HostRole');
    const statements = roleStatements(warm.template, hostRole);
    const pull = statements.find((s) => actionsOf([s]).includes('ecr:BatchGetImage'));
    expect(actionsOf(pull ? [pull] : [])).toEqual(
      expect.arrayContaining(['ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer']),
    );
    expect(JSON.stringify(pull?.Resource)).toContain(':ecr:us-east-1:123456789012:repository/cog-sdxl');
    const complete = statements.find((s) => actionsOf([s]).includes('autoscaling:CompleteLifecycleAction'));
    expect(complete?.Resource).toEqual({
      'Fn::Join': [
        '',
        expect.arrayContaining([
          ':autoScalingGroup:*:autoScalingGroupName/',
          { Ref: idAt(warm.stack, 'Hosts/GpuHosts') },
        ]),
      ],
    });
  });

  it('refuses a warm pool on Spot or several instance types, which AWS refuses', () => {
    const make = (props: Partial<GpuHostsProps>) => () =>
      new GpuHosts(new Stack(cliLikeApp(), 'Bad'), 'Hosts', {
        instanceTypes: ['g6.xlarge'],
        maxInstances: 2,
        volumeSizeGiB: 100,
        logs,
        warmPool: { size: 1 },
        ...props,
      });
    expect(make({ spot: true })).toThrow(/on-demand hosts of exactly one instance type/);
    expect(make({ instanceTypes: ['g6.xlarge', 'g5.xlarge'] })).toThrow(/mixed instances policy/);
  });

  it('carries its own cdk-nag acknowledgements: nothing unacknowledged on a stack of its own', () => {
    for (const { stack } of [onDemand, spot, warm, running]) {
      const report = new AwsSolutionsChecks().validateScope(stack);
      expect(
        report.violations.map(
          (v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
        ),
      ).toEqual([]);
    }
  });
});
