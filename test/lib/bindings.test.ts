import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { ContainerImage, Ec2TaskDefinition, NetworkMode } from 'aws-cdk-lib/aws-ecs';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { AwsSolutionsChecks } from 'cdk-nag';
import { describe, expect, it } from 'vitest';
import { ENV } from '../../functions/shared/env.ts';
import { ROUTES } from '../../functions/shared/routes.ts';
import { BUCKET_ACCESS, bindBucket, bindQueue, bindQueues, bindTable } from '../../lib/bindings.ts';
import { FramecastFunction } from '../../lib/lambda.ts';
import { Queues } from '../../lib/queues.ts';
import { Storage } from '../../lib/storage.ts';
import {
  actionsOf,
  cliLikeApp,
  functionId,
  functionStatements,
  idAt,
  mentions,
  propsOf,
  resourcesOf,
  roleStatements,
  type Statement,
  templateOf,
} from './synth.ts';

const stack = new Stack(cliLikeApp(), 'Bindings');
const storage = new Storage(stack, 'Storage', { retentionDays: 30, removalPolicy: RemovalPolicy.RETAIN });
const queues = new Queues(stack, 'Queues', { models: ['reference', 'sdxl'] });
const lambda = (id: string) =>
  new FramecastFunction(stack, id, {
    entry: ROUTES[0]!.entry,
    description: `binding test: ${id}`,
    timeout: Duration.seconds(15),
    environment: { [ENV.production]: 'demo' },
    logs: { retention: RetentionDays.ONE_DAY, removalPolicy: RemovalPolicy.DESTROY },
  });

// A reader, a writer, one bound to nothing, and a container: every binding kind on both kinds of target.
const reader = lambda('Reader');
bindTable(reader, storage.table, 'read');
bindBucket(reader, storage.bucket, 'read');
bindQueue(reader, queues.plan.queue, 'send', ENV.planQueueUrl);

const writer = lambda('Writer');
bindTable(writer, storage.table, 'readWrite');
bindBucket(writer, storage.bucket, 'nameOnly');
bindQueue(writer, queues.event.queue, 'consumeAndSend', ENV.eventQueueUrl);
bindQueues(writer, queues.frameQueues, 'send', ENV.frameQueueUrls);

lambda('Unbound');

const task = new Ec2TaskDefinition(stack, 'Task', { networkMode: NetworkMode.BRIDGE });
const worker = task.addContainer('worker', {
  image: ContainerImage.fromRegistry('public.ecr.aws/studio/framecast-worker:1.0.0'),
  memoryReservationMiB: 512,
  environment: { [ENV.production]: 'demo' },
});
bindTable(worker, storage.table, 'readWrite');
bindBucket(worker, storage.bucket, 'write');
bindQueue(worker, queues.frames.get('sdxl')!.queue, 'consume', ENV.frameQueueUrl);

const template = templateOf(stack);
const table = idAt(stack, 'Storage/Table');
const bucket = idAt(stack, 'Storage/Frames');
const queue = (path: string) => idAt(stack, `Queues/${path}/Queue`);

const fnId = (id: string) => functionId(template, `binding test: ${id}`);
const lambdaEnv = (id: string) =>
  (
    propsOf(resourcesOf(template, 'AWS::Lambda::Function')[fnId(id)]).Environment as {
      Variables: Record<string, unknown>;
    }
  ).Variables;
const lambdaStatements = (id: string) => functionStatements(template, fnId(id));
const workerEnv = () => {
  const [definition] = propsOf(resourcesOf(template, 'AWS::ECS::TaskDefinition')[idAt(stack, 'Task')])
    .ContainerDefinitions as { Environment: { Name: string; Value: unknown }[] }[];
  return Object.fromEntries(definition!.Environment.map((e) => [e.Name, e.Value]));
};
const workerStatements = () => roleStatements(template, idAt(stack, 'Task/TaskRole'));
const on = (statements: Statement[], id: string) => actionsOf(statements.filter((s) => mentions(s, id)));
const WRITES = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'];

describe('bindings', () => {
  it('gives a Lambda the table grant and FRAMECAST_TABLE together, read or read and write', () => {
    expect(lambdaEnv('Reader')[ENV.table]).toEqual({ Ref: table });
    expect(on(lambdaStatements('Reader'), table)).toContain('dynamodb:Query');
    expect(on(lambdaStatements('Reader'), table)).not.toEqual(
      expect.arrayContaining([expect.toBeOneOf(WRITES)]),
    );
    expect(lambdaEnv('Writer')[ENV.table]).toEqual({ Ref: table });
    expect(on(lambdaStatements('Writer'), table)).toEqual(expect.arrayContaining(WRITES));
  });

  it('gives a container the table grant on its task role and FRAMECAST_TABLE in its environment', () => {
    expect(workerEnv()[ENV.table]).toEqual({ Ref: table });
    expect(on(workerStatements(), table)).toEqual(expect.arrayContaining(['dynamodb:Query', ...WRITES]));
  });

  it('denies every writer UpdateItem on audit records: written once, never updated', () => {
    const denials = (statements: Statement[]) =>
      statements.filter((st) => (st as { Effect?: string }).Effect === 'Deny' && mentions(st, table));
    for (const statements of [lambdaStatements('Writer'), workerStatements()]) {
      const [deny] = denials(statements);
      expect(deny).toMatchObject({
        Action: 'dynamodb:UpdateItem',
        Condition: { 'ForAnyValue:StringLike': { 'dynamodb:LeadingKeys': ['AUDIT#*'] } },
      });
    }
    expect(denials(lambdaStatements('Reader'))).toEqual([]);
  });

  it('grants the table indexes with the table, as the list queries need', () => {
    const index = lambdaStatements('Reader').filter((s) => JSON.stringify(s.Resource).includes('/index/*'));
    expect(index.length).toBeGreaterThan(0);
  });

  it('grants frame objects by access, on objects only, and names the bucket whatever the access', () => {
    const s3 = (statements: Statement[]) =>
      actionsOf(statements)
        .filter((a) => a.startsWith('s3:'))
        .sort();
    expect(s3(lambdaStatements('Reader'))).toEqual([...BUCKET_ACCESS.read].sort());
    expect(s3(workerStatements())).toEqual([...BUCKET_ACCESS.write].sort());
    // The name alone: job responses carry output prefixes, and nothing in the bucket may be touched.
    expect(s3(lambdaStatements('Writer'))).toEqual([]);
    for (const statements of [lambdaStatements('Reader'), workerStatements()]) {
      for (const statement of statements.filter((s) => mentions(s, bucket))) {
        expect(statement.Resource).toMatchObject({ 'Fn::Join': ['', [expect.anything(), '/*']] });
      }
    }
    expect(lambdaEnv('Reader')[ENV.bucket]).toEqual({ Ref: bucket });
    expect(lambdaEnv('Writer')[ENV.bucket]).toEqual({ Ref: bucket });
    expect(workerEnv()[ENV.bucket]).toEqual({ Ref: bucket });
  });

  it('grants a queue to send, consume or both, and sets the variable it is given to the queue URL', () => {
    expect(lambdaEnv('Reader')[ENV.planQueueUrl]).toEqual({ Ref: queue('Plan') });
    expect(on(lambdaStatements('Reader'), queue('Plan'))).toContain('sqs:SendMessage');
    expect(on(lambdaStatements('Reader'), queue('Plan'))).not.toContain('sqs:ReceiveMessage');

    expect(lambdaEnv('Writer')[ENV.eventQueueUrl]).toEqual({ Ref: queue('Event') });
    expect(on(lambdaStatements('Writer'), queue('Event'))).toEqual(
      expect.arrayContaining(['sqs:SendMessage', 'sqs:ReceiveMessage', 'sqs:DeleteMessage']),
    );

    expect(workerEnv()[ENV.frameQueueUrl]).toEqual({ Ref: queue('Frames-sdxl') });
    expect(on(workerStatements(), queue('Frames-sdxl'))).toEqual(
      expect.arrayContaining(['sqs:ReceiveMessage', 'sqs:ChangeMessageVisibility', 'sqs:DeleteMessage']),
    );
    expect(on(workerStatements(), queue('Frames-sdxl'))).not.toContain('sqs:SendMessage');
    expect(on(workerStatements(), queue('Frames-reference'))).toEqual([]);
  });

  it('grants a set of queues alike and names them as JSON {key: url}', () => {
    for (const path of ['Frames-reference', 'Frames-sdxl']) {
      expect(on(lambdaStatements('Writer'), queue(path))).toContain('sqs:SendMessage');
    }
    const urls = stack.resolve(lambdaEnv('Writer')[ENV.frameQueueUrls]) as {
      'Fn::Join': [string, (string | { Ref: string })[]];
    };
    const json = urls['Fn::Join'][1]
      .map((part) => (typeof part === 'string' ? part : `url-of:${part.Ref}`))
      .join('');
    expect(JSON.parse(json)).toEqual({
      reference: `url-of:${queue('Frames-reference')}`,
      sdxl: `url-of:${queue('Frames-sdxl')}`,
    });
  });

  it('names no resource and grants none to a process bound to nothing', () => {
    const resourceVariables = [
      ENV.table,
      ENV.bucket,
      ENV.assetBucket,
      ENV.planQueueUrl,
      ENV.eventQueueUrl,
      ENV.eventDlqUrl,
      ENV.frameQueueUrl,
      ENV.frameQueueUrls,
    ];
    for (const name of resourceVariables) expect(lambdaEnv('Unbound')).not.toHaveProperty(name);
    expect(actionsOf(lambdaStatements('Unbound')).filter((a) => !a.startsWith('logs:'))).toEqual([]);
  });

  it('names in a process exactly the resources it is granted', () => {
    // Each resource variable is present exactly where some statement names its resource, Lambda or container.
    const cases = [
      { env: lambdaEnv('Reader'), statements: lambdaStatements('Reader') },
      { env: lambdaEnv('Writer'), statements: lambdaStatements('Writer') },
      { env: lambdaEnv('Unbound'), statements: lambdaStatements('Unbound') },
      { env: workerEnv(), statements: workerStatements() },
    ];
    const resources = [
      { names: [ENV.table], id: table },
      { names: [ENV.planQueueUrl], id: queue('Plan') },
      { names: [ENV.eventQueueUrl], id: queue('Event') },
      { names: [ENV.frameQueueUrl, ENV.frameQueueUrls], id: queue('Frames-sdxl') },
    ];
    for (const { env, statements } of cases) {
      for (const { names, id } of resources) {
        expect(
          names.some((name) => name in env),
          names.join(' or '),
        ).toBe(on(statements, id).length > 0);
      }
    }
  });

  it('acknowledges the index and object wildcards it grants: no IAM finding left for cdk-nag', () => {
    // The test's own task definition acknowledges nothing (ECS2); the bindings answer for the IAM rules.
    const report = new AwsSolutionsChecks().validateScope(stack);
    expect(
      report.violations
        .filter((v) => v.ruleName.startsWith('AwsSolutions-IAM'))
        .map((v) => `${v.ruleName} at ${v.violatingResources.map((r) => r.constructPath).join(', ')}`),
    ).toEqual([]);
  });
});
