import { Duration, Stack } from 'aws-cdk-lib';
import { describe, expect, it } from 'vitest';
import { ENV } from '../../functions/shared/env.ts';
import {
  CONSUMER_TIMEOUT_SECONDS,
  DLQ_RETENTION_SECONDS,
  QUEUES,
  WORKER_HEARTBEAT_SECONDS,
} from '../../functions/shared/resources.ts';
import { CONSUMERS } from '../../functions/shared/routes.ts';
import { FRAME_QUEUE_URLS_ENV, WorkQueue } from '../../lib/queues.ts';
import {
  actionsOf,
  cliLikeApp,
  functionId,
  functionStatements,
  idAt,
  mentions,
  propsOf,
  resourcesOf,
  synthesize,
} from './synth.ts';

const { template, stack } = synthesize('demo', { models: [{ name: 'sdxl', image: 'r8.im/owner/sdxl' }] });
const queues = resourcesOf(template, 'AWS::SQS::Queue');
const queueId = (path: string) => idAt(stack, `Queues/${path}/Queue`);
const dlqId = (path: string) => idAt(stack, `Queues/${path}/DeadLetters`);
const work = [
  { path: 'Plan', definition: QUEUES.plan },
  { path: 'Event', definition: QUEUES.event },
  { path: 'Frames-reference', definition: QUEUES.frame },
  { path: 'Frames-sdxl', definition: QUEUES.frame },
  // Each model's high and low priority bands beside its frame queue (core/fair-share.ts).
  { path: 'Frames-reference-high', definition: QUEUES['frame-high'] },
  { path: 'Frames-reference-low', definition: QUEUES['frame-low'] },
  { path: 'Frames-sdxl-high', definition: QUEUES['frame-high'] },
  { path: 'Frames-sdxl-low', definition: QUEUES['frame-low'] },
];
const fanOut = functionId(template, 'Framecast fan-out: plan messages to frame chunks');

describe('Queues', () => {
  it('makes a plan queue, an event queue and three frame queues (priority bands) per model, each with its dead-letter queue', () => {
    expect(Object.keys(queues)).toHaveLength(work.length * 2);
  });

  it.each(work)(
    'redrives the $path queue to its DLQ after the definition maxReceiveCount',
    ({ path, definition }) => {
      expect(queues[queueId(path)]?.Properties).toMatchObject({
        VisibilityTimeout: definition.visibilityTimeoutSeconds,
        MessageRetentionPeriod: definition.retentionSeconds,
        RedrivePolicy: {
          deadLetterTargetArn: { 'Fn::GetAtt': [dlqId(path), 'Arn'] },
          maxReceiveCount: definition.maxReceiveCount,
        },
      });
    },
  );

  it.each(work)('keeps dead letters of the $path queue for 14 days, the SQS maximum', ({ path }) => {
    expect(queues[dlqId(path)]?.Properties).toMatchObject({ MessageRetentionPeriod: DLQ_RETENTION_SECONDS });
  });

  it('encrypts every queue and refuses requests without TLS', () => {
    for (const queue of Object.values(queues))
      expect(queue.Properties).toMatchObject({ SqsManagedSseEnabled: true });
    const policies = Object.values(resourcesOf(template, 'AWS::SQS::QueuePolicy'));
    expect(policies).toHaveLength(Object.keys(queues).length);
    for (const policy of policies) {
      expect(JSON.stringify(policy.Properties?.PolicyDocument)).toContain('"aws:SecureTransport":"false"');
    }
  });

  it('keeps a message hidden for at least six times the timeout of the Lambda consuming it', () => {
    const functions = resourcesOf(template, 'AWS::Lambda::Function');
    const mappings = Object.values(resourcesOf(template, 'AWS::Lambda::EventSourceMapping'));
    expect(mappings).toHaveLength(2);
    for (const mapping of mappings) {
      const queue = queues[(propsOf(mapping).EventSourceArn as { 'Fn::GetAtt': [string] })['Fn::GetAtt'][0]];
      const fn = functions[(propsOf(mapping).FunctionName as { Ref: string }).Ref];
      expect(queue?.Properties?.VisibilityTimeout as number).toBeGreaterThanOrEqual(
        6 * (fn?.Properties?.Timeout as number),
      );
    }
  });

  it('keeps a frame chunk hidden longer than the worker heartbeat', () => {
    for (const path of ['Frames-reference', 'Frames-sdxl']) {
      expect(queues[queueId(path)]?.Properties?.VisibilityTimeout as number).toBeGreaterThan(
        WORKER_HEARTBEAT_SECONDS,
      );
    }
  });

  it('refuses a visibility timeout under six times its consumer timeout', () => {
    const scope = new Stack(cliLikeApp(), 'Short');
    const definition = { ...QUEUES.plan, visibilityTimeoutSeconds: 5 * CONSUMER_TIMEOUT_SECONDS.plan };
    expect(
      () =>
        new WorkQueue(scope, 'Plan', {
          definition,
          consumerTimeout: Duration.seconds(CONSUMER_TIMEOUT_SECONDS.plan),
        }),
    ).toThrow(/under 6x its consumer's timeout/);
  });
});

describe('FanOut', () => {
  it('consumes the plan queue with partial batch responses', () => {
    template.hasResourceProperties('AWS::Lambda::EventSourceMapping', {
      EventSourceArn: { 'Fn::GetAtt': [queueId('Plan'), 'Arn'] },
      FunctionName: { Ref: fanOut },
      FunctionResponseTypes: ['ReportBatchItemFailures'],
    });
    expect(resourcesOf(template, 'AWS::Lambda::Function')[fanOut]?.Properties?.Timeout).toBe(
      CONSUMER_TIMEOUT_SECONDS.plan,
    );
  });

  it('knows the frame queue of every model, as JSON', () => {
    const env = (
      propsOf(resourcesOf(template, 'AWS::Lambda::Function')[fanOut]).Environment as {
        Variables: Record<string, unknown>;
      }
    ).Variables;
    // A JSON string with tokens in it: CloudFormation joins literal parts and queue URLs ({Ref}) at deploy.
    const urls = stack.resolve(env[FRAME_QUEUE_URLS_ENV]) as {
      'Fn::Join': [string, (string | { Ref: string })[]];
    };
    const json = urls['Fn::Join'][1]
      .map((part) => (typeof part === 'string' ? part : `url-of:${part.Ref}`))
      .join('');
    expect(JSON.parse(json)).toEqual({
      reference: `url-of:${queueId('Frames-reference')}`,
      sdxl: `url-of:${queueId('Frames-sdxl')}`,
    });
    expect(env).toMatchObject({ [ENV.planQueueUrl]: { Ref: queueId('Plan') }, [ENV.chunkSize]: '8' });
    expect(env).not.toHaveProperty(ENV.frameQueueUrl);
  });

  it('knows the high and low priority bands of every model, as JSON', () => {
    const env = (
      propsOf(resourcesOf(template, 'AWS::Lambda::Function')[fanOut]).Environment as {
        Variables: Record<string, unknown>;
      }
    ).Variables;
    const urls = stack.resolve(env[ENV.frameQueueBandUrls]) as {
      'Fn::Join': [string, (string | { Ref: string })[]];
    };
    const json = urls['Fn::Join'][1]
      .map((part) => (typeof part === 'string' ? part : `url-of:${part.Ref}`))
      .join('');
    expect(JSON.parse(json)).toEqual({
      'reference:high': `url-of:${queueId('Frames-reference-high')}`,
      'reference:low': `url-of:${queueId('Frames-reference-low')}`,
      'sdxl:high': `url-of:${queueId('Frames-sdxl-high')}`,
      'sdxl:low': `url-of:${queueId('Frames-sdxl-low')}`,
    });
    const statements = functionStatements(template, fanOut);
    for (const path of ['Frames-sdxl-high', 'Frames-sdxl-low']) {
      const actions = actionsOf(statements.filter((st) => mentions(st, queueId(path))));
      expect(actions).toContain('sqs:SendMessage');
      expect(actions).not.toContain('sqs:ReceiveMessage');
    }
  });

  it('may send to the frame queues and the plan queue, and consume only the plan queue', () => {
    const statements = functionStatements(template, fanOut);
    const on = (id: string) => actionsOf(statements.filter((s) => mentions(s, id)));
    for (const path of ['Frames-reference', 'Frames-sdxl']) {
      expect(on(queueId(path))).toContain('sqs:SendMessage');
      expect(on(queueId(path))).not.toContain('sqs:ReceiveMessage');
    }
    expect(on(queueId('Plan'))).toEqual(
      expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:DeleteMessage', 'sqs:SendMessage']),
    );
    expect(on(queueId('Event'))).toEqual([]);
    expect(actionsOf(statements).filter((a) => a.startsWith('s3:'))).toEqual([]);
  });

  it('runs the fan-out handler the routes module names', () => {
    expect(CONSUMERS.fanout.queue).toBe('plan');
  });
});
