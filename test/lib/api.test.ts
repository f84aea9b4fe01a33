import { describe, expect, it } from 'vitest';
import { ENV } from '../../functions/shared/env.ts';
import { PAGE_ROUTES, ROUTES } from '../../functions/shared/routes.ts';
import { ASSET_ACCESS, BUCKET_ACCESS } from '../../lib/bindings.ts';
import {
  actionsOf,
  functionId,
  functionStatements,
  idAt,
  mentions,
  propsOf,
  resourcesOf,
  type Statement,
  synthesize,
} from './synth.ts';

const { template, stack } = synthesize('demo', {
  api: { rateLimit: 20, burstLimit: 40, corsOrigins: ['https://review.studio.example'] },
  logRetentionDays: 90,
});
const functions = resourcesOf(template, 'AWS::Lambda::Function');
const routeFunction = (route: (typeof ROUTES)[number]) =>
  functionId(template, `Framecast API: ${route.method} ${route.path}`);
const table = idAt(stack, 'Storage/Table');
const bucket = idAt(stack, 'Storage/Frames');
const assetBucket = idAt(stack, 'Storage/Assets');
const queue = {
  plan: idAt(stack, 'Queues/Plan/Queue'),
  event: idAt(stack, 'Queues/Event/Queue'),
  frame: idAt(stack, 'Queues/Frames-reference/Queue'),
};
const WRITES = ['dynamodb:PutItem', 'dynamodb:UpdateItem', 'dynamodb:DeleteItem', 'dynamodb:BatchWriteItem'];
const on = (statements: Statement[], id: string) => actionsOf(statements.filter((s) => mentions(s, id)));

describe('Api', () => {
  it('answers CORS for the configured origins, with the Bearer and Idempotency-Key headers and no credentials', () => {
    const [api] = Object.values(resourcesOf(template, 'AWS::ApiGatewayV2::Api'));
    expect(api?.Properties?.CorsConfiguration).toEqual({
      AllowOrigins: ['https://review.studio.example'],
      AllowHeaders: ['authorization', 'content-type', 'idempotency-key'],
      AllowMethods: ['GET', 'POST', 'DELETE', 'OPTIONS'],
      ExposeHeaders: ['idempotent-replayed', 'location', 'retry-after', 'next-cursor'],
      MaxAge: 3600,
      AllowCredentials: false,
    });
  });

  it('routes exactly the routes of functions/shared/routes.ts, each to its own Lambda', () => {
    const routes = Object.values(resourcesOf(template, 'AWS::ApiGatewayV2::Route'));
    expect(routes.map((r) => r.Properties?.RouteKey).sort()).toEqual(
      [...ROUTES, ...PAGE_ROUTES].map((r) => `${r.method} ${r.path}`).sort(),
    );
    expect(new Set(ROUTES.map(routeFunction)).size).toBe(ROUTES.length);
  });

  it('leaves authentication to the handlers: no Lambda authorizer in front of them', () => {
    template.resourceCountIs('AWS::ApiGatewayV2::Authorizer', 0);
    for (const route of Object.values(resourcesOf(template, 'AWS::ApiGatewayV2::Route'))) {
      expect(route.Properties?.AuthorizationType ?? 'NONE').toBe('NONE');
    }
  });

  it('serves a $default stage that deploys itself, logs every request as JSON and throttles', () => {
    const stages = Object.values(resourcesOf(template, 'AWS::ApiGatewayV2::Stage'));
    expect(stages).toHaveLength(1);
    const stage = stages[0]?.Properties as Record<string, unknown> & {
      AccessLogSettings: { DestinationArn: unknown; Format: string };
    };
    expect(stage).toMatchObject({
      StageName: '$default',
      AutoDeploy: true,
      DefaultRouteSettings: { ThrottlingRateLimit: 20, ThrottlingBurstLimit: 40 },
    });
    expect(stage.AccessLogSettings.DestinationArn).toEqual({
      'Fn::GetAtt': [idAt(stack, 'Api/AccessLogs'), 'Arn'],
    });
    expect(JSON.parse(stage.AccessLogSettings.Format)).toMatchObject({
      requestId: '$context.requestId',
      status: '$context.status',
    });
    expect(
      resourcesOf(template, 'AWS::Logs::LogGroup')[idAt(stack, 'Api/AccessLogs')]?.Properties,
    ).toMatchObject({ RetentionInDays: 90 });
  });

  it('runs every Framecast Lambda on the newest Node runtime, ARM64, with JSON logs kept as configured', () => {
    const ours = Object.entries(functions).filter(([, f]) =>
      String(f.Properties?.Description).startsWith('Framecast'),
    );
    // The routes', the fan-out, webhook delivery and the review page.
    expect(ours).toHaveLength(ROUTES.length + 3);
    const logGroups = resourcesOf(template, 'AWS::Logs::LogGroup');
    for (const [, fn] of ours) {
      expect(fn.Properties).toMatchObject({
        Runtime: 'nodejs24.x',
        Architectures: ['arm64'],
        Handler: 'index.handler',
        LoggingConfig: { LogFormat: 'JSON', ApplicationLogLevel: 'INFO', SystemLogLevel: 'WARN' },
        Environment: { Variables: { NODE_OPTIONS: '--enable-source-maps', [ENV.production]: 'demo' } },
      });
      const logGroup = (propsOf(fn).LoggingConfig as { LogGroup: { Ref: string } }).LogGroup.Ref;
      expect(logGroups[logGroup]?.Properties).toMatchObject({ RetentionInDays: 90 });
    }
  });

  it.each(ROUTES)('grants $method $path exactly the access its route declares', (route) => {
    const statements = functionStatements(template, routeFunction(route));
    const tableActions = on(statements, table);
    if (!route.access.table) expect(tableActions).toEqual([]);
    else expect(tableActions).toContain('dynamodb:Query');
    if (route.access.table !== 'readWrite')
      expect(tableActions).not.toEqual(expect.arrayContaining([expect.toBeOneOf(WRITES)]));
    else expect(tableActions).toEqual(expect.arrayContaining(WRITES));

    const s3 = actionsOf(statements.filter((s) => mentions(s, bucket))).filter((a) => a.startsWith('s3:'));
    expect(s3.sort()).toEqual([...BUCKET_ACCESS[route.access.bucket ?? 'nameOnly']].sort());
    if (route.access.bucket)
      expect(statements.find((s) => mentions(s, bucket))?.Resource).toMatchObject({
        'Fn::Join': ['', [expect.anything(), '/*']],
      });

    // Asset content: only the asset routes touch it, each with the actions of its level and no more.
    const onAssets = statements.filter((s) => mentions(s, assetBucket));
    const level = route.access.assets ? ASSET_ACCESS[route.access.assets] : undefined;
    expect(actionsOf(onAssets).sort()).toEqual(level ? [...level.objects, ...level.bucket].sort() : []);
    for (const statement of onAssets) {
      const onBucket = actionsOf([statement]).every((a) => a === 's3:ListBucket');
      expect(statement.Resource).toEqual(
        onBucket
          ? { 'Fn::GetAtt': [assetBucket, 'Arn'] }
          : { 'Fn::Join': ['', [{ 'Fn::GetAtt': [assetBucket, 'Arn'] }, '/*']] },
      );
    }
    expect(actionsOf(statements).filter((a) => a.startsWith('s3:')).length).toBe(
      s3.length + actionsOf(onAssets).length,
    );

    for (const [name, id] of Object.entries(queue)) {
      const granted = route.access.queues?.includes(name as keyof typeof queue) ?? false;
      // `frameDepth` (estimates) reads a frame queue's attributes and nothing else.
      const depth = name === 'frame' && (route.access.queues?.includes('frameDepth') ?? false);
      expect(on(statements, id)).toEqual(
        granted ? expect.arrayContaining(['sqs:SendMessage']) : depth ? ['sqs:GetQueueAttributes'] : [],
      );
      expect(on(statements, id)).not.toContain('sqs:ReceiveMessage');
    }
    expect(actionsOf(statements).filter((a) => !/^(dynamodb|s3|sqs|logs):/.test(a))).toEqual([]);
  });

  it('gives each function the time and memory its route asks for, within what API Gateway waits', () => {
    for (const route of ROUTES) {
      const props = propsOf(functions[routeFunction(route)]);
      expect(props.Timeout, route.path).toBe(route.timeoutSeconds ?? 15);
      expect(props.Timeout).toBeLessThan(30);
      expect(props.MemorySize, route.path).toBe(route.memoryMiB ?? 512);
    }
  });

  it('gives get-job read access to the table and nothing in S3', () => {
    const statements = functionStatements(
      template,
      routeFunction(ROUTES.find((r) => r.entry.endsWith('get-job.ts'))!),
    );
    const actions = actionsOf(statements);
    expect(actions).toContain('dynamodb:GetItem');
    for (const write of WRITES) expect(actions).not.toContain(write);
    expect(actions.some((a) => a.startsWith('s3:'))).toBe(false);
  });

  it("lets create-job send to the plan queue and to no other queue, and read the frame queues' depth", () => {
    const statements = functionStatements(
      template,
      routeFunction(ROUTES.find((r) => r.entry.endsWith('create-job.ts'))!),
    );
    const sqs = statements.filter((s) => actionsOf([s]).some((a) => a.startsWith('sqs:')));
    expect(sqs.length).toBeGreaterThan(0);
    const sends = sqs.filter((s) => actionsOf([s]).some((a) => a !== 'sqs:GetQueueAttributes'));
    for (const statement of sends) expect(statement.Resource).toEqual({ 'Fn::GetAtt': [queue.plan, 'Arn'] });
    // The estimate's backlog (docs/operations.md, "Estimates").
    expect(on(statements, queue.frame)).toEqual(['sqs:GetQueueAttributes']);
  });

  it('names in each function only the resources it is granted', () => {
    for (const route of ROUTES) {
      const env = (
        propsOf(functions[routeFunction(route)]).Environment as { Variables: Record<string, unknown> }
      ).Variables;
      expect(ENV.table in env).toBe(Boolean(route.access.table));
      expect(ENV.planQueueUrl in env).toBe(route.access.queues?.includes('plan') ?? false);
      expect(ENV.eventQueueUrl in env).toBe(route.access.queues?.includes('event') ?? false);
      if (route.access.table) expect(env[ENV.bucket]).toEqual({ Ref: bucket });
      expect(env[ENV.assetBucket]).toEqual(route.access.assets ? { Ref: assetBucket } : undefined);
    }
  });
});
