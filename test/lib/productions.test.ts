import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { CfnResource, TagManager } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { CURRENTLY_RECOMMENDED_FLAGS } from 'aws-cdk-lib/cx-api';
import { describe, expect, it } from 'vitest';
import { COST_CENTER_TAG, PRODUCTION_TAG } from '../../lib/framecast-stack.ts';
import { PROJECT_ROOT } from '../../lib/lambda.ts';
import { addProduction, type CfnTemplate, cliLikeApp } from './synth.ts';

const app = cliLikeApp();
const production = (name: string, configFile: unknown) => {
  const { stack } = addProduction(app, name, configFile);
  return { stack, template: () => Template.fromStack(stack) };
};
// Both stacks exist before the first synthesis: an app synthesizes once.
const demo = production('demo', {});
const trailer = production('trailer', {
  costCenter: 'TR-2207',
  monthlyBudgetUsd: 0,
  models: [{ name: 'sdxl', image: 'r8.im/o/sdxl' }],
});

/** The properties that give a resource a physical name, which must be unique in an account or region. */
const PHYSICAL_NAMES: Record<string, string> = {
  'AWS::DynamoDB::Table': 'TableName',
  'AWS::S3::Bucket': 'BucketName',
  'AWS::SQS::Queue': 'QueueName',
  'AWS::Lambda::Function': 'FunctionName',
  'AWS::IAM::Role': 'RoleName',
  'AWS::IAM::InstanceProfile': 'InstanceProfileName',
  'AWS::Logs::LogGroup': 'LogGroupName',
  'AWS::ECS::Cluster': 'ClusterName',
  'AWS::ECS::Service': 'ServiceName',
  'AWS::ECS::CapacityProvider': 'Name',
  'AWS::ECS::TaskDefinition': 'Family',
  'AWS::EC2::LaunchTemplate': 'LaunchTemplateName',
  'AWS::AutoScaling::AutoScalingGroup': 'AutoScalingGroupName',
  'AWS::CloudWatch::Dashboard': 'DashboardName',
  'AWS::CloudWatch::Alarm': 'AlarmName',
  'AWS::SNS::Topic': 'TopicName',
  'AWS::ApiGatewayV2::Api': 'Name',
};

const physicalNames = (template: CfnTemplate) =>
  Object.values(template.Resources).flatMap((r) => {
    const key = PHYSICAL_NAMES[r.Type];
    const value = key ? r.Properties?.[key] : undefined;
    return value === undefined ? [] : [{ type: r.Type, value: JSON.stringify(value) }];
  });

describe('productions side by side', () => {
  it('synthesizes two productions in one app, as two stacks', () => {
    expect(app.node.children.map((c) => c.node.id).sort()).toEqual(['Framecast-demo', 'Framecast-trailer']);
  });

  it('leaves physical names to CloudFormation, or puts the production in them, so two productions never collide', () => {
    const demoNames = physicalNames(demo.template().toJSON() as CfnTemplate);
    const trailerNames = physicalNames(trailer.template().toJSON() as CfnTemplate);
    for (const { type, value } of demoNames) expect(value, type).toMatch(/demo/i);
    for (const { type, value } of trailerNames) expect(value, type).toMatch(/trailer/i);
    const shared = demoNames.filter((d) =>
      trailerNames.some((t) => t.type === d.type && t.value === d.value),
    );
    expect(shared).toEqual([]);
    // Nothing that must be unique in the account is named at all.
    const named = demoNames.filter(
      ({ type }) =>
        !['AWS::ECS::TaskDefinition', 'AWS::EC2::LaunchTemplate', 'AWS::ApiGatewayV2::Api'].includes(type),
    );
    expect(named).toEqual([]);
  });

  it('tags every taggable resource with its production and cost center', () => {
    for (const [{ stack }, production, costCenter] of [
      [demo, 'demo', 'unassigned'],
      [trailer, 'trailer', 'TR-2207'],
    ] as const) {
      const resources = stack.node.findAll().filter((c): c is CfnResource => CfnResource.isCfnResource(c));
      const taggable = resources.filter((r) => TagManager.isTaggable(r));
      expect(taggable.length).toBeGreaterThan(50);
      for (const resource of taggable) {
        expect(resource.tags.tagValues(), resource.node.path).toMatchObject({
          [PRODUCTION_TAG]: production,
          [COST_CENTER_TAG]: costCenter,
        });
      }
      expect(stack.tags.tagValues()).toMatchObject({
        [PRODUCTION_TAG]: production,
        [COST_CENTER_TAG]: costCenter,
      });
    }
  });

  it('creates a budget only for a production that sets one', () => {
    demo.template().resourceCountIs('AWS::Budgets::Budget', 1);
    trailer.template().resourceCountIs('AWS::Budgets::Budget', 0);
  });
});

describe('cdk.json', () => {
  const cdkJson = JSON.parse(readFileSync(join(PROJECT_ROOT, 'cdk.json'), 'utf8')) as {
    app: string;
    context: object;
  };

  it('runs bin/framecast.ts with tsx', () => {
    expect(cdkJson.app).toBe('node --import tsx bin/framecast.ts');
  });

  it('sets the feature flags the installed aws-cdk-lib recommends', () => {
    expect(cdkJson.context).toEqual(CURRENTLY_RECOMMENDED_FLAGS);
  });
});
