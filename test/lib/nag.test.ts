import { Validations } from 'aws-cdk-lib';
import { AwsSolutionsChecks } from 'cdk-nag';
import type { IConstruct } from 'constructs';
import { describe, expect, it } from 'vitest';
import { synthesize } from './synth.ts';

const defaults = synthesize('demo');
const everything = synthesize('everything', {
  removalPolicy: 'destroy',
  gpu: { spot: true, maxInstances: 8 },
  network: { natGateways: 2 },
  models: [
    {
      name: 'sdxl',
      image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/cog-sdxl@sha256:' + 'a'.repeat(64),
      gpuCount: 1,
    },
    {
      name: 'flux',
      image: 'registry.example.com/studio/flux:1.2',
      registryCredentialsSecretArn: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:registry-AbCdEf',
      healthCheckCommand: ['curl', '-fs', 'http://localhost:5000/health-check'],
    },
  ],
  alarmEmail: 'ops@studio.example',
  workerImage: 'public.ecr.aws/studio/framecast-worker:1.0.0',
  webhookAllowedHosts: ['.vendor.example'],
});

const warmPool = synthesize('warm', {
  gpu: { instanceTypes: ['g6.xlarge'], maxInstances: 4, warmPool: { size: 2 } },
  models: [{ name: 'sdxl', image: '123456789012.dkr.ecr.us-east-1.amazonaws.com/cog-sdxl:v3' }],
});

/** Every acknowledgement recorded under a construct: rule id and reason. */
function acknowledgements(root: IConstruct): { id: string; reason: unknown; path: string }[] {
  return root.node.findAll().flatMap((c) =>
    c.node.metadata
      .filter((m) => m.type === Validations.ACKNOWLEDGED_RULES_METADATA_KEY)
      .flatMap((m) =>
        Object.entries(m.data as Record<string, unknown>).map(([id, reason]) => ({
          id: id.replace(/^annotation::/i, ''),
          reason,
          path: c.node.path,
        })),
      ),
  );
}

describe('cdk-nag AwsSolutions', () => {
  it('finds nothing unacknowledged, error or warning, in a production with the defaults', () => {
    const report = new AwsSolutionsChecks().validateScope(defaults.stack);
    expect(
      report.violations.map(
        (v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
      ),
    ).toEqual([]);
  });

  it('finds nothing unacknowledged with every option on: Spot, NAT, own models, private registry, destroy', () => {
    const report = new AwsSolutionsChecks().validateScope(everything.stack);
    expect(
      report.violations.map(
        (v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
      ),
    ).toEqual([]);
  });

  it('finds nothing unacknowledged with a warm pool of GPU hosts', () => {
    const report = new AwsSolutionsChecks().validateScope(warmPool.stack);
    expect(
      report.violations.map(
        (v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`,
      ),
    ).toEqual([]);
  });

  it('gives every acknowledgement a reason', () => {
    const all = [
      ...acknowledgements(defaults.stack),
      ...acknowledgements(everything.stack),
      ...acknowledgements(warmPool.stack),
    ];
    expect(all.length).toBeGreaterThan(0);
    for (const { id, reason, path } of all) {
      expect(typeof reason === 'string' && reason.trim().length > 20, `${id} at ${path}`).toBe(true);
    }
  });

  it('acknowledges only the AwsSolutions rules the design accepts', () => {
    // aws-cdk-lib acknowledges a few CloudFormation-Validate rules of its own constructs; those are not ours.
    const ours = acknowledgements(everything.stack).filter(({ id }) => id.startsWith('AwsSolutions-'));
    const rules = new Set(ours.map(({ id }) => id.replace(/<[A-Za-z0-9]+\.Arn>/, '<arn>')));
    expect([...rules].sort()).toEqual([
      'AwsSolutions-APIG4',
      'AwsSolutions-AS3',
      'AwsSolutions-EC26',
      'AwsSolutions-ECS2',
      'AwsSolutions-IAM5[Action::ecs:Submit*]',
      'AwsSolutions-IAM5[Resource::*]',
      'AwsSolutions-IAM5[Resource::<arn>/*]',
      'AwsSolutions-IAM5[Resource::<arn>/index/*]',
      'AwsSolutions-S1',
      'AwsSolutions-SNS2',
    ]);
  });
});
