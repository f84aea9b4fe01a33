import { Validations } from 'aws-cdk-lib';
import {
  AutoScalingGroup,
  BlockDeviceVolume,
  EbsDeviceVolumeType,
  GroupMetrics,
  OnDemandAllocationStrategy,
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
import {
  AmiHardwareType,
  AsgCapacityProvider,
  Cluster,
  ContainerInsights,
  EcsOptimizedImage,
} from 'aws-cdk-lib/aws-ecs';
import { Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import { Construct } from 'constructs';
import type { LogSettings } from './lambda.ts';

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

  constructor(scope: Construct, id: string, props: GpuHostsProps) {
    super(scope, id);
    const spot = props.spot ?? false;
    const natGateways = props.natGateways ?? 0;
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
    const userData = UserData.forLinux();
    if (spot) {
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
      mixedInstancesPolicy: {
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
      },
      // Replaces a Spot host at risk before its interruption notice, while its tasks can still drain.
      capacityRebalance: spot,
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
}
