import { RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { describe, expect, it } from 'vitest';
import { ENV } from '../../functions/shared/env.ts';
import { CONSUMER_TIMEOUT_SECONDS, QUEUES } from '../../functions/shared/resources.ts';
import { Queues } from '../../lib/queues.ts';
import { Storage } from '../../lib/storage.ts';
import { Webhooks } from '../../lib/webhooks.ts';
import {
  actionsOf,
  cliLikeApp,
  functionId,
  functionStatements,
  mentions,
  propsOf,
  resourcesOf,
} from './synth.ts';

const stack = new Stack(cliLikeApp(), 'WebhooksOnly');
const storage = new Storage(stack, 'Storage', { retentionDays: 30, removalPolicy: RemovalPolicy.RETAIN });
const queues = new Queues(stack, 'Queues', { models: ['reference'] });
new Webhooks(stack, 'Webhooks', {
  eventQueue: queues.event,
  table: storage.table,
  environment: { [ENV.webhookAllowedHosts]: 'hooks.vendor.example' },
  logs: { retention: RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.RETAIN },
});
const template = Template.fromStack(stack);
const delivery = functionId(template, 'Framecast webhook delivery');
const id = (construct: { node: { defaultChild?: unknown } }) =>
  stack.resolve((construct.node.defaultChild as { logicalId: string }).logicalId);

describe('Webhooks', () => {
  it('feeds the event queue to the delivery Lambda with partial batch responses', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [id(queues.event.queue), 'Arn'] },
      FunctionName: { Ref: delivery },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
  });

  it('fits the delivery timeout six times into the event queue visibility timeout', () => {
    const timeout = resourcesOf(template, 'AWS::Lambda::Function')[delivery]?.Properties?.Timeout as number;
    expect(timeout).toBe(CONSUMER_TIMEOUT_SECONDS.event);
    expect(QUEUES.event.visibilityTimeoutSeconds).toBeGreaterThanOrEqual(6 * timeout);
  });

  it('may consume and re-send events, put given-up deliveries on the DLQ and use the table, nothing else', () => {
    const statements = functionStatements(template, delivery);
    expect(actionsOf(statements.filter((s) => mentions(s, id(queues.event.queue))))).toEqual(
      expect.arrayContaining([
        'sqs:ReceiveMessage',
        'sqs:DeleteMessage',
        'sqs:ChangeMessageVisibility',
        'sqs:SendMessage',
      ]),
    );
    expect(actionsOf(statements.filter((s) => mentions(s, id(queues.event.deadLetterQueue))))).toEqual(
      expect.arrayContaining(['sqs:SendMessage']),
    );
    expect(actionsOf(statements.filter((s) => mentions(s, id(queues.event.deadLetterQueue))))).not.toContain(
      'sqs:ReceiveMessage',
    );
    expect(actionsOf(statements.filter((s) => mentions(s, id(queues.plan.queue))))).toEqual([]);
    expect(actionsOf(statements).filter((a) => !/^(dynamodb|sqs|logs):/.test(a))).toEqual([]);
  });

  it('tells the delivery Lambda its table, its queue and DLQ, and the allowed webhook hosts', () => {
    const env = (
      propsOf(resourcesOf(template, 'AWS::Lambda::Function')[delivery]).Environment as {
        Variables: object;
      }
    ).Variables;
    expect(env).toMatchObject({
      [ENV.table]: { Ref: id(storage.table) },
      [ENV.eventQueueUrl]: { Ref: id(queues.event.queue) },
      [ENV.eventDlqUrl]: { Ref: id(queues.event.deadLetterQueue) },
      [ENV.webhookAllowedHosts]: 'hooks.vendor.example',
    });
  });
});

describe('Webhooks of a production that publishes to trackers', () => {
  const arn = 'arn:aws:secretsmanager:us-east-1:123456789012:secret:framecast/shotgrid-AbCdEf';
  const publishing = new Stack(cliLikeApp(), 'Publishing');
  const s = new Storage(publishing, 'Storage', { retentionDays: 30, removalPolicy: RemovalPolicy.RETAIN });
  const q = new Queues(publishing, 'Queues', { models: ['reference'] });
  new Webhooks(publishing, 'Webhooks', {
    eventQueue: q.event,
    table: s.table,
    environment: {},
    logs: { retention: RetentionDays.ONE_MONTH, removalPolicy: RemovalPolicy.RETAIN },
    publishSecrets: [arn],
  });
  const t = Template.fromStack(publishing);

  it("may read the trackers' secrets, exactly those", () => {
    const statements = functionStatements(t, functionId(t, 'Framecast webhook delivery'));
    const secretReads = statements.filter((st) => actionsOf([st]).includes('secretsmanager:GetSecretValue'));
    expect(secretReads.map((st) => st.Resource)).toEqual([arn]);
  });
});
