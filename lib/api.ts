import { Duration, Stack, Validations } from 'aws-cdk-lib';
import { AccessLogFormat } from 'aws-cdk-lib/aws-apigateway';
import {
  CorsHttpMethod,
  HttpApi,
  HttpMethod,
  HttpStage,
  LogGroupLogDestination,
} from 'aws-cdk-lib/aws-apigatewayv2';
import { HttpLambdaIntegration } from 'aws-cdk-lib/aws-apigatewayv2-integrations';
import type { ITable } from 'aws-cdk-lib/aws-dynamodb';
import { LogGroup } from 'aws-cdk-lib/aws-logs';
import type { IBucket } from 'aws-cdk-lib/aws-s3';
import { Construct } from 'constructs';
import { CORS } from '../functions/shared/cors.ts';
import { ENV } from '../functions/shared/env.ts';
import type { RouteDefinition } from '../functions/shared/routes.ts';
import { bindAssetBucket, bindBucket, bindQueue, bindQueues, bindTable } from './bindings.ts';
import { FramecastFunction, handlerId, type LogSettings } from './lambda.ts';
import type { Queues } from './queues.ts';

export interface ApiProps {
  readonly routes: readonly RouteDefinition[];
  readonly table: ITable;
  readonly bucket: IBucket;
  /** Asset content: granted to the asset routes only, as their access rows say. */
  readonly assetBucket: IBucket;
  readonly queues: Queues;
  /** Settings every process reads (production, limits); each route's bindings add the resources it names. */
  readonly environment: Readonly<Record<string, string>>;
  readonly throttle: { readonly rateLimit: number; readonly burstLimit: number };
  /**
   * Origins browsers may call the API from (functions/shared/cors.ts); API Gateway then answers
   * preflights and adds the CORS headers to every response.
   * @default [] (no CORS)
   */
  readonly corsOrigins?: readonly string[];
  readonly logs: LogSettings;
}

/** The fields of one access log line: JSON, so Logs Insights can query it field by field. */
const ACCESS_LOG_FIELDS = {
  requestId: '$context.requestId',
  ip: '$context.identity.sourceIp',
  requestTime: '$context.requestTime',
  routeKey: '$context.routeKey',
  status: '$context.status',
  protocol: '$context.protocol',
  responseLength: '$context.responseLength',
  responseLatency: '$context.responseLatency',
  integrationLatency: '$context.integrationLatency',
  integrationError: '$context.integrationErrorMessage',
  userAgent: '$context.identity.userAgent',
};

/**
 * The HTTP API: one Lambda per route of functions/shared/routes.ts, each granted exactly the access its
 * row declares.
 *
 * Authentication is the handlers' own (a middleware checks `Authorization: Bearer fc_...` against the
 * SHA-256 key hashes in the table, cached in the process for about a minute), not a Lambda authorizer:
 * local mode and AWS then run the same code path, tenant isolation is enforced where the data is read,
 * and a request costs one cold start, not two. API Gateway therefore sees every route as open.
 */
export class Api extends Construct {
  readonly httpApi: HttpApi;
  readonly stage: HttpStage;
  readonly accessLogs: LogGroup;
  /** Each route's function, by `METHOD path`. */
  readonly functions: ReadonlyMap<string, FramecastFunction>;

  constructor(scope: Construct, id: string, props: ApiProps) {
    super(scope, id);

    this.httpApi = new HttpApi(this, 'HttpApi', {
      // Not unique by rule, but the console lists APIs by name: one per production reads best.
      apiName: Stack.of(this).stackName,
      description: 'Framecast HTTP API',
      // The default stage has no access-log setting: an explicit $default stage below has one.
      createDefaultStage: false,
      ...((props.corsOrigins?.length ?? 0) > 0 && {
        corsPreflight: {
          allowOrigins: [...props.corsOrigins!],
          allowHeaders: [...CORS.allowHeaders],
          allowMethods: CORS.allowMethods.map((m) => CorsHttpMethod[m]),
          exposeHeaders: [...CORS.exposeHeaders],
          maxAge: Duration.seconds(CORS.maxAgeSeconds),
          allowCredentials: false,
        },
      }),
    });
    this.accessLogs = new LogGroup(this, 'AccessLogs', {
      retention: props.logs.retention,
      removalPolicy: props.logs.removalPolicy,
    });
    this.stage = new HttpStage(this, 'DefaultStage', {
      httpApi: this.httpApi,
      stageName: '$default',
      autoDeploy: true,
      throttle: props.throttle,
      accessLogSettings: {
        destination: new LogGroupLogDestination(this.accessLogs),
        format: AccessLogFormat.custom(JSON.stringify(ACCESS_LOG_FIELDS)),
      },
    });

    const functions = new Map<string, FramecastFunction>();
    for (const route of props.routes) {
      const handler = new FramecastFunction(this, handlerId(route.entry), {
        entry: route.entry,
        description: `Framecast API: ${route.method} ${route.path}`,
        // API Gateway gives up on an integration after 30 s; a handler must answer, even with an error, before.
        timeout: Duration.seconds(Math.min(route.timeoutSeconds ?? 15, 29)),
        ...(route.memoryMiB !== undefined && { memorySize: route.memoryMiB }),
        environment: props.environment,
        logs: props.logs,
      });
      bindRoute(handler, route.access, props);

      const key = `${route.method} ${route.path}`;
      const [apiRoute] = this.httpApi.addRoutes({
        path: route.path,
        methods: [HttpMethod[route.method]],
        integration: new HttpLambdaIntegration(`${handlerId(route.entry)}Integration`, handler.function),
      });
      if (apiRoute) {
        Validations.of(apiRoute).acknowledge({
          id: 'AwsSolutions-APIG4',
          reason: route.scope
            ? `The handler authenticates the API key (Bearer fc_..., scope ${route.scope}) itself, in local mode and AWS alike; see lib/api.ts and docs/operations.md.`
            : 'A public route by design (the OpenAPI document); it reads no data.',
        });
      }
      functions.set(key, handler);
    }
    this.functions = functions;
  }

  /** The base URL of the API, ending in `/`. */
  get url(): string {
    return this.stage.url;
  }
}

/**
 * A route's access row made into bindings: each resource it declares is granted and named in its
 * environment together, and nothing else is.
 */
function bindRoute(
  handler: FramecastFunction,
  access: RouteDefinition['access'],
  resources: Pick<ApiProps, 'table' | 'bucket' | 'assetBucket' | 'queues'>,
): void {
  const { table, bucket, assetBucket, queues } = resources;
  if (access.table) bindTable(handler, table, access.table);
  // Job responses name their output prefix (s3://bucket/...) even where the handler reads no frame.
  if (access.table || access.bucket) bindBucket(handler, bucket, access.bucket ?? 'nameOnly');
  if (access.assets) bindAssetBucket(handler, assetBucket, access.assets);
  for (const name of access.queues ?? []) {
    if (name === 'plan') bindQueue(handler, queues.plan.queue, 'send', ENV.planQueueUrl);
    if (name === 'event') bindQueue(handler, queues.event.queue, 'send', ENV.eventQueueUrl);
    if (name === 'frame') queues.bindSenders(handler);
    if (name === 'frameDepth') bindQueues(handler, queues.frameQueues, 'depth', ENV.frameQueueUrls);
  }
}
