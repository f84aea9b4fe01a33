import { basename, dirname, extname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Duration, RemovalPolicy } from 'aws-cdk-lib';
import { PolicyStatement, Role, ServicePrincipal } from 'aws-cdk-lib/aws-iam';
import {
  ApplicationLogLevel,
  Architecture,
  LoggingFormat,
  Runtime,
  SystemLogLevel,
} from 'aws-cdk-lib/aws-lambda';
import { SqsEventSource } from 'aws-cdk-lib/aws-lambda-event-sources';
import { LogLevel, NodejsFunction, OutputFormat, SourceMapMode } from 'aws-cdk-lib/aws-lambda-nodejs';
import { LogGroup, type RetentionDays } from 'aws-cdk-lib/aws-logs';
import type { IQueue } from 'aws-cdk-lib/aws-sqs';
import { Construct } from 'constructs';

/** The repository root: handler entries in functions/shared/routes.ts are relative to it. */
export const PROJECT_ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');

/** How long logs are kept and what stack deletion does to them. */
export interface LogSettings {
  readonly retention: RetentionDays;
  readonly removalPolicy: RemovalPolicy;
}

export interface FramecastFunctionProps {
  /** Handler module relative to the project root; it exports `handler`. */
  readonly entry: string;
  readonly description: string;
  readonly timeout: Duration;
  readonly memorySize?: number;
  readonly environment: Readonly<Record<string, string>>;
  readonly logs: LogSettings;
  /** A folder made at synth (the review page's built files), copied into the bundle as `dir` beside index.mjs. */
  readonly files?: { readonly from: string; readonly dir: string };
}

/** `functions/api/create-job.ts` → `CreateJob`: a construct id that reads like the handler. */
export function handlerId(entry: string): string {
  return basename(entry, extname(entry))
    .split(/[^A-Za-z0-9]+/)
    .filter(Boolean)
    .map((part) => part[0]!.toUpperCase() + part.slice(1))
    .join('');
}

/**
 * A Lambda with the project's defaults: bundled by the local esbuild into one ESM file (never Docker),
 * the newest Node runtime on ARM64, JSON logs in a log group of its own, and a role that may write
 * those logs and nothing else until the caller grants more.
 */
export class FramecastFunction extends Construct {
  readonly function: NodejsFunction;
  readonly logGroup: LogGroup;
  readonly role: Role;

  constructor(scope: Construct, id: string, props: FramecastFunctionProps) {
    super(scope, id);

    this.logGroup = new LogGroup(this, 'Logs', {
      retention: props.logs.retention,
      removalPolicy: props.logs.removalPolicy,
    });
    // An own role instead of the default one: AWSLambdaBasicExecutionRole lets a function write to every
    // log group in the account, this one reaches its own log group only.
    this.role = new Role(this, 'Role', {
      assumedBy: new ServicePrincipal('lambda.amazonaws.com'),
      description: props.description,
    });
    this.role.addToPrincipalPolicy(
      new PolicyStatement({
        actions: ['logs:CreateLogStream', 'logs:PutLogEvents'],
        resources: [this.logGroup.logGroupArn],
      }),
    );

    this.function = new NodejsFunction(this, 'Function', {
      entry: join(PROJECT_ROOT, props.entry),
      projectRoot: PROJECT_ROOT,
      depsLockFilePath: join(PROJECT_ROOT, 'package-lock.json'),
      handler: 'handler',
      description: props.description,
      runtime: Runtime.NODEJS_24_X,
      architecture: Architecture.ARM_64,
      memorySize: props.memorySize ?? 512,
      timeout: props.timeout,
      role: this.role,
      logGroup: this.logGroup,
      loggingFormat: LoggingFormat.JSON,
      applicationLogLevelV2: ApplicationLogLevel.INFO,
      systemLogLevelV2: SystemLogLevel.WARN,
      environment: { ...props.environment, NODE_OPTIONS: '--enable-source-maps' },
      bundling: {
        format: OutputFormat.ESM,
        target: 'node22',
        platform: 'node',
        mainFields: ['module', 'main'],
        minify: true,
        sourceMap: true,
        // Linked, not external: Node's --enable-source-maps finds the map by the sourceMappingURL comment.
        sourceMapMode: SourceMapMode.DEFAULT,
        sourcesContent: false,
        // The SDK is bundled, not taken from the runtime: the version the tests ran is the one deployed.
        externalModules: [],
        // CommonJS dependencies call require(); an ESM bundle has none unless it is made here.
        banner:
          "import { createRequire as __framecastCreateRequire } from 'node:module'; " +
          'const require = __framecastCreateRequire(import.meta.url);',
        forceDockerBundling: false,
        logLevel: LogLevel.WARNING,
        ...(props.files && { commandHooks: copyInto(props.files) }),
      },
    });
  }
}

/** Bundling hooks that copy a folder into the bundle (local bundling runs them with bash, after esbuild). */
function copyInto(files: { from: string; dir: string }) {
  const quote = (s: string) => `'${s.replace(/'/g, `'\\''`)}'`;
  return {
    beforeBundling: () => [],
    beforeInstall: () => [],
    afterBundling: (_input: string, output: string) => [
      `mkdir -p ${quote(join(output, files.dir))} && cp -R ${quote(`${files.from}/.`)} ${quote(join(output, files.dir))}`,
    ],
  };
}

export interface QueueConsumerOptions {
  readonly batchSize: number;
  readonly maxBatchingWindow?: Duration;
}

/**
 * Feeds a queue to a function with partial batch responses: the handler returns the ids of the messages
 * it failed, SQS retries only those, and they reach the DLQ after the queue's maxReceiveCount.
 */
export function consumeQueue(fn: FramecastFunction, queue: IQueue, options: QueueConsumerOptions): void {
  fn.function.addEventSource(
    new SqsEventSource(queue, {
      batchSize: options.batchSize,
      ...(options.maxBatchingWindow && { maxBatchingWindow: options.maxBatchingWindow }),
      reportBatchItemFailures: true,
    }),
  );
}
