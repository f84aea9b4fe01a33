import { ArnFormat, type CfnResource, Duration, Lazy, Stack, Validations } from 'aws-cdk-lib';
import {
  AutoScalingGroup,
  BlockDeviceVolume,
  DefaultResult,
  EbsDeviceVolumeType,
  GroupMetrics,
  LifecycleTransition,
  OnDemandAllocationStrategy,
  PoolState,
  SpotAllocationStrategy,
} from 'aws-cdk-lib/aws-autoscaling';
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
import type { IRepository } from 'aws-cdk-lib/aws-ecr';
import {
  AmiHardwareType,
  AsgCapacityProvider,
  Cluster,
  ContainerInsights,
  EcsOptimizedImage,
} from 'aws-cdk-lib/aws-ecs';
import { Policy, PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { LogSettings } from './lambda.ts';
import { ECR_URI } from './model-service.ts';

/** A warm pool of GPU hosts: booted once, the model images pulled, then kept stopped (or running). */
export interface WarmPoolSettings {
  /** Hosts kept in the pool; the group takes from it on scale-out and the pool refills to this size. */
  readonly size: number;
  /**
   * `Stopped`: a host in the pool pays its EBS volume only; `Running`: the instance hour as well.
   * @default 'Stopped'
   */
  readonly state?: 'Stopped' | 'Running';
}

/** The lifecycle hook that holds a host until its warm-up (or its return to service) is done. */
export const WARM_UP_HOOK = 'framecast-warm-up';

/** Where the host's boot script lives: cloud-init runs per-boot scripts at every start, not only the first. */
const LIFECYCLE_SCRIPT = '/var/lib/cloud/scripts/per-boot/framecast-lifecycle.sh';

export interface GpuHostsProps {
  /** x86_64 NVIDIA GPU instance types: on demand tries them in this order, Spot picks by price and capacity. */
  readonly instanceTypes: readonly string[];
  /** Most hosts at once; the group's minimum is always 0. */
  readonly maxInstances: number;
  /** Root volume of a host (gp3, encrypted): Cog images with weights are tens of GB. */
  readonly volumeSizeGiB: number;
  /**
   * Spot hosts, with capacity rebalance and ECS Spot draining.
   * @default false: on-demand hosts
   */
  readonly spot?: boolean;
  /**
   * 0: hosts in public subnets with no inbound rule and no NAT cost; 1 or 2: hosts in private subnets behind
   * that many NAT gateways.
   * @default 0
   */
  readonly natGateways?: number;
  /** Retention and removal of the VPC flow log group. */
  readonly logs: LogSettings;
  /**
   * A warm pool beside the group. It needs on-demand hosts of one instance type: AWS refuses a warm pool on
   * a group with a mixed instances policy or Spot Instances, so the group then launches that one type from
   * its launch template.
   * @default no warm pool: a scale-out boots fresh hosts
   */
  readonly warmPool?: WarmPoolSettings;
}

/**
 * Where the GPU work runs: a VPC, an ECS cluster and an Auto Scaling group of GPU hosts (ECS-optimized
 * AL2023 GPU AMI) as the cluster's capacity provider, with managed scaling and termination protection.
 * It runs nothing by itself: each model's ModelService places its tasks here, and the hosts follow them.
 *
 * Networking: tasks use the bridge network mode. awsvpc tasks on EC2 get no public IP, so they would need
 * NAT gateways or interface endpoints (both bill by the hour while the fleet sits at zero); bridge tasks
 * use the host's address. By default the hosts live in public subnets with no inbound rule at all, and
 * IMDSv2 with a hop limit of 1 keeps containers away from the host role's credentials. With
 * `natGateways` > 0 the hosts move to private subnets behind NAT.
 */
export class GpuHosts extends Construct {
  readonly vpc: Vpc;
  readonly cluster: Cluster;
  readonly autoScalingGroup: AutoScalingGroup;
  readonly capacityProvider: AsgCapacityProvider;
  /** Images a host pulls while it warms up in the pool, in the order given. */
  private readonly prePulled = new Set<string>();
  private readonly hostRole: Role;
  private readonly warmPool: boolean;

  constructor(scope: Construct, id: string, props: GpuHostsProps) {
    super(scope, id);
    const spot = props.spot ?? false;
    const natGateways = props.natGateways ?? 0;
    const pool = props.warmPool;
    this.warmPool = pool !== undefined;
    if (pool && (spot || props.instanceTypes.length !== 1)) {
      throw new Error(
        'GpuHosts: a warm pool needs on-demand hosts of exactly one instance type (AWS refuses a warm pool on a ' +
          'group with a mixed instances policy or Spot Instances)',
      );
    }
    const privateHosts = natGateways > 0;

    this.vpc = new Vpc(this, 'Network', {
      // An environment-agnostic stack knows two availability zones; the instance types spread the capacity.
      maxAzs: 2,
      natGateways,
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
    this.hostRole = hostRole;
    const userData = UserData.forLinux();
    if (spot) {
      // The agent drains a host on its Spot interruption notice: tasks get SIGTERM and the stop timeout.
      userData.addCommands('echo ECS_ENABLE_SPOT_INSTANCE_DRAINING=true >> /etc/ecs/ecs.config');
    }
    if (pool) {
      // The agent of a host in the pool stays unregistered until the host's target state is InService, so a
      // host warming up or waiting stopped never counts as ECS capacity (ECS agent 1.59.0 or later).
      userData.addCommands('echo ECS_WARM_POOLS_CHECK=true >> /etc/ecs/ecs.config');
      userData.addCommands(...this.lifecycleScript());
    }
    const launchTemplate = new LaunchTemplate(this, 'HostTemplate', {
      machineImage: EcsOptimizedImage.amazonLinux2023(AmiHardwareType.GPU),
      // A warm pool's group launches from the template alone (no mixed instances policy): the type goes here.
      ...(pool && { instanceType: new InstanceType(props.instanceTypes[0]!) }),
      userData,
      role: hostRole,
      securityGroup: hostSecurityGroup,
      requireImdsv2: true,
      // Bridge-mode containers are one hop further than the host: with a limit of 1 they get no IMDS token.
      httpPutResponseHopLimit: 1,
      blockDevices: [
        {
          deviceName: '/dev/xvda',
          volume: BlockDeviceVolume.ebs(props.volumeSizeGiB, {
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
      maxCapacity: props.maxInstances,
      ...(pool
        ? { launchTemplate }
        : { mixedInstancesPolicy: this.mixedInstances(launchTemplate, props, spot) }),
      // Replaces a Spot host at risk before its interruption notice, while its tasks can still drain.
      capacityRebalance: spot,
      // Free at one-minute granularity; the dashboard shows in-service hosts.
      groupMetrics: [GroupMetrics.all()],
    });
    if (pool) this.addWarmPool(pool);

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
          'launch template and fails to evaluate (tested in test/lib/gpu-hosts.test.ts).',
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
  }

  /**
   * An image each host pulls while it warms up in the pool, so that a task leaving the pool finds its layers
   * on disk. Without a warm pool, nothing: a fresh host's tasks pull their own images. The host role is
   * granted the pull from `repository`, or from the ECR repository an ECR URI names; any other registry must
   * be public (a private registry's credentials belong to the task, not the host).
   */
  prePull(image: string, repository?: IRepository): void {
    if (!this.warmPool || this.prePulled.has(image)) return;
    this.prePulled.add(image);
    if (repository) {
      repository.grantPull(this.hostRole);
      return;
    }
    const ecr = ECR_URI.exec(image);
    if (ecr) {
      const [, account, region, name] = ecr;
      this.hostRole.addToPrincipalPolicy(
        new PolicyStatement({
          actions: ['ecr:BatchCheckLayerAvailability', 'ecr:BatchGetImage', 'ecr:GetDownloadUrlForLayer'],
          resources: [
            Stack.of(this).formatArn({
              service: 'ecr',
              account,
              region,
              resource: 'repository',
              resourceName: name,
            }),
          ],
        }),
      );
    }
  }

  private mixedInstances(launchTemplate: LaunchTemplate, props: GpuHostsProps, spot: boolean) {
    return {
      launchTemplate,
      launchTemplateOverrides: props.instanceTypes.map((t) => ({ instanceType: new InstanceType(t) })),
      instancesDistribution: spot
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
    };
  }

  /**
   * The pool, and what a host in it needs. Auto Scaling stops a host as soon as it has launched into the
   * pool, whatever its user data is doing, so a launch lifecycle hook holds it (Warmed:Pending:Wait) until
   * the boot script has pulled the images and says CONTINUE. The hook also holds every host on its way into
   * service (a host leaving the pool, or launched straight into the group when the pool is empty): the
   * script releases those at once. `minSize` and `maxGroupPreparedCapacity` both at `size` give the pool a
   * fixed size, refilled as the group takes hosts, whatever the group's desired capacity.
   */
  private addWarmPool(pool: WarmPoolSettings): void {
    const group = this.autoScalingGroup;
    const hook = group.addLifecycleHook('WarmUp', {
      lifecycleHookName: WARM_UP_HOOK,
      lifecycleTransition: LifecycleTransition.INSTANCE_LAUNCHING,
      // A 10-20 GB image takes minutes at the volume's 125 MiB/s; a script that never answers must not
      // hold the host for ever, and the host is still useful without its images (tasks pull them).
      heartbeatTimeout: Duration.minutes(30),
      defaultResult: DefaultResult.CONTINUE,
    });
    const warmPool = group.addWarmPool({
      minSize: pool.size,
      maxGroupPreparedCapacity: pool.size,
      poolState: pool.state === 'Running' ? PoolState.RUNNING : PoolState.STOPPED,
      // No instance reuse policy at all: ECS refuses ReuseOnScaleIn on a capacity provider's group, so hosts
      // scaled in are terminated and the pool launches fresh ones to keep its size.
    });
    // The group's ARN carries an id known only once it exists; its name scopes the grant to this group.
    // A policy of its own: on the host role's default policy the reference would make a dependency cycle.
    const lifecycle = new Policy(this, 'HostLifecyclePolicy', {
      roles: [this.hostRole],
      statements: [
        new PolicyStatement({
          actions: ['autoscaling:CompleteLifecycleAction'],
          resources: [
            Stack.of(this).formatArn({
              service: 'autoscaling',
              resource: 'autoScalingGroup',
              resourceName: `*:autoScalingGroupName/${group.autoScalingGroupName}`,
              arnFormat: ArnFormat.COLON_RESOURCE_NAME,
            }),
          ],
        }),
        // The host learns its group's name from this call: user data cannot name the group it launches.
        new PolicyStatement({ actions: ['autoscaling:DescribeAutoScalingInstances'], resources: ['*'] }),
      ],
    });
    // The first hosts launch into the pool as soon as it exists: the hook and the grant must be there first.
    warmPool.node.addDependency(hook, lifecycle);
    const groupId = Stack.of(this).resolve((group.node.defaultChild as CfnResource).logicalId) as string;
    Validations.of(lifecycle).acknowledge(
      {
        id: `AwsSolutions-IAM5[Resource::arn:<AWS::Partition>:autoscaling:<AWS::Region>:<AWS::AccountId>:autoScalingGroup:*:autoScalingGroupName/<${groupId}>]`,
        reason:
          "A group's ARN holds an id Auto Scaling generates at creation; the group's name limits the grant to this group.",
      },
      {
        id: 'AwsSolutions-IAM5[Resource::*]',
        reason:
          'autoscaling:DescribeAutoScalingInstances has no resource-level permissions; it only reads which group a host is in.',
      },
    );
  }

  /**
   * User data that installs the boot script and runs it once; cloud-init runs it at every later boot. On the
   * first boot in the pool (target state Warmed:*) it pulls the images, then completes the launch action so
   * that the host stops. On a boot into service it completes the action at once; in a `Running` pool, where
   * no reboot comes, it waits for the InService target state and completes it then. AL2023's minimal AMI,
   * on which the ECS GPU AMI is built, has no AWS CLI: the script installs it on first use.
   */
  private lifecycleScript(): string[] {
    return [
      `mkdir -p ${LIFECYCLE_SCRIPT.slice(0, LIFECYCLE_SCRIPT.lastIndexOf('/'))}`,
      `cat > ${LIFECYCLE_SCRIPT} <<'FRAMECAST_LIFECYCLE'`,
      '#!/bin/bash',
      '# Framecast GPU host in a warm pool (lib/gpu-hosts.ts): pull the model images while warming up, then',
      '# complete the launch lifecycle action, so the host stops or goes into service.',
      'exec >> /var/log/framecast-lifecycle.log 2>&1',
      'imds() {',
      "  local token; token=$(curl -sf -X PUT http://169.254.169.254/latest/api/token -H 'X-aws-ec2-metadata-token-ttl-seconds: 300') &&",
      '    curl -sf -H "X-aws-ec2-metadata-token: $token" "http://169.254.169.254/latest/meta-data/$1"',
      '}',
      'state=""',
      'for _ in $(seq 120); do state=$(imds autoscaling/target-lifecycle-state) && [ -n "$state" ] && break; sleep 5; done',
      'region=$(imds placement/region); instance=$(imds instance-id)',
      'echo "$(date -u +%FT%TZ) boot, target lifecycle state: $state"',
      'command -v aws > /dev/null || dnf install -y -q awscli-2 || dnf install -y -q awscli',
      'complete_launch() {',
      '  local group',
      `  group=$(aws autoscaling describe-auto-scaling-instances --region "$region" --instance-ids "$instance" --query 'AutoScalingInstances[0].AutoScalingGroupName' --output text)`,
      `  aws autoscaling complete-lifecycle-action --region "$region" --auto-scaling-group-name "$group" --lifecycle-hook-name ${WARM_UP_HOOK} --instance-id "$instance" --lifecycle-action-result CONTINUE`,
      '  echo "$(date -u +%FT%TZ) launch action completed ($state)"',
      '}',
      'case "$state" in',
      '  Warmed:*)',
      '    systemctl start docker',
      Lazy.string({ produce: () => `    set -- ${[...this.prePulled].map((i) => `'${i}'`).join(' ')}` }),
      '    for image in "$@"; do',
      '      registry=$(cut -d/ -f1 <<< "$image")',
      '      if [[ "$registry" == *.dkr.ecr.*.amazonaws.com* ]]; then',
      '        aws ecr get-login-password --region "$(cut -d. -f4 <<< "$registry")" | docker login --username AWS --password-stdin "$registry"',
      '      fi',
      '      # A failed pull costs the first task the pull it would have made anyway; the host stays useful.',
      '      docker pull "$image" || echo "pre-pull failed: $image"',
      '    done',
      '    complete_launch',
      '    if [ "$state" = Warmed:Running ]; then',
      '      # A running host leaves the pool without a reboot: hold on until its target state is InService.',
      '      state=""',
      '      until [ "$(imds autoscaling/target-lifecycle-state)" = InService ]; do sleep 5; done',
      '      state=InService complete_launch',
      '    fi',
      '    ;;',
      '  *) complete_launch ;;',
      'esac',
      'FRAMECAST_LIFECYCLE',
      `chmod 700 ${LIFECYCLE_SCRIPT}`,
      // In the background: in a Running pool the script waits for service, and cloud-init must finish.
      `setsid ${LIFECYCLE_SCRIPT} < /dev/null > /dev/null 2>&1 &`,
    ];
  }
}
