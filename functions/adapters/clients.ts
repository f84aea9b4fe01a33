import { DynamoDBClient } from '@aws-sdk/client-dynamodb';
import { S3Client } from '@aws-sdk/client-s3';
import { SQSClient } from '@aws-sdk/client-sqs';
import { DynamoDBDocumentClient } from '@aws-sdk/lib-dynamodb';

/**
 * SDK clients, made once per process and handed to the adapters, so a test can pass in a client on an
 * emulator or a mocked one. Endpoints and credentials come from the environment alone
 * (AWS_ENDPOINT_URL_* in local mode), so the same code runs in AWS and on the emulators.
 */
export interface AwsClients {
  readonly dynamo: DynamoDBDocumentClient;
  readonly s3: S3Client;
  readonly sqs: SQSClient;
}

/** One request a client sends: its service, its operation and the command's input. */
export interface AwsRequest {
  /** The SDK's client name: `DynamoDBClient`, `S3Client`, `SQSClient`. */
  readonly service: string;
  /** The command's name without `Command`: `TransactWriteItems`, `PutObject`, `ReceiveMessage`. */
  readonly operation: string;
  /** The command's input as sent (marshalled, for DynamoDB). */
  readonly input: unknown;
  /**
   * For a ReceiveMessage, the messages it brought, set once it is answered: an empty receive is polling,
   * whose count depends on time and long-poll settings rather than on the work done.
   */
  received?: number;
}

export interface ClientOptions {
  /**
   * Called for each HTTP request a client signs and sends: once per attempt, as AWS bills them, and never
   * for a presigned URL (presigning stops before signing).
   */
  readonly onRequest?: (request: AwsRequest) => void;
}

type Middlewared = Pick<DynamoDBClient | S3Client | SQSClient, 'middlewareStack'>;

/** Adds the `onRequest` observer to a client's middleware stack, right after the request is signed. */
export function observeRequests(client: Middlewared, onRequest: (request: AwsRequest) => void): void {
  const stack = client.middlewareStack as DynamoDBClient['middlewareStack'];
  type Args = { readonly input: unknown };
  type Context = { readonly clientName?: string; readonly commandName?: string; attempts?: AwsRequest[] };
  const observer = (next: (args: Args) => Promise<unknown>, context: Context) => async (args: Args) => {
    const request: AwsRequest = {
      service: String(context.clientName ?? 'unknown').replace(/Client$/, ''),
      operation: String(context.commandName ?? 'unknown').replace(/Command$/, ''),
      input: args.input,
    };
    context.attempts ??= [];
    context.attempts.push(request);
    onRequest(request);
    return next(args);
  };
  stack.addRelativeTo(observer as unknown as Parameters<typeof stack.addRelativeTo>[0], {
    relation: 'after',
    toMiddleware: 'awsAuthMiddleware',
    name: 'framecastRequestObserver',
    override: true,
  });
  // Once the command is answered, a receive's last attempt learns how many messages it brought.
  const received =
    (next: (args: Args) => Promise<{ output?: { Messages?: unknown[] } }>, context: Context) =>
    async (args: Args) => {
      const out = await next(args);
      const last = context.attempts?.at(-1);
      if (last?.operation === 'ReceiveMessage') last.received = out.output?.Messages?.length ?? 0;
      return out;
    };
  (stack.add as (m: unknown, o: { step: string; name: string; override: boolean }) => void)(received, {
    step: 'initialize',
    name: 'framecastReceiveObserver',
    override: true,
  });
}

/**
 * How every client retries: the SDK's standard mode (exponential backoff with full jitter, a longer base
 * delay for throttling errors, a retry quota that stops retry storms) over five attempts. Not adaptive
 * mode: its client-side rate limiter is per process, and a Lambda's process lives for a few requests.
 */
export const RETRY = { retryMode: 'standard', maxAttempts: 5 } as const;

/** Errors that say "not now" rather than "wrong": the SDK retries them and so may the caller, later. */
const TRANSIENT = new Set([
  'ProvisionedThroughputExceededException',
  'RequestLimitExceeded',
  'ThrottlingException',
  'Throttling',
  'ThrottledException',
  'TooManyRequestsException',
  'RequestThrottled',
  'RequestThrottledException',
  'AWS.SimpleQueueService.RequestThrottled',
  'KmsThrottled',
  'SlowDown',
  'ServiceUnavailable',
  'InternalServerError',
  'InternalError',
  'InternalFailure',
  'TransactionInProgressException',
  'TimeoutError',
  'RequestTimeout',
  'RequestTimeoutException',
]);
const NETWORK = new Set(['ECONNREFUSED', 'ECONNRESET', 'ETIMEDOUT', 'EPIPE', 'EAI_AGAIN', 'ENOTFOUND']);

/**
 * True for an AWS error that retrying later may cure: throttling, a service's 5xx, a timeout or a
 * connection that failed. The API answers these with 503 and Retry-After once the SDK's own retries
 * ran out; anything else stays a 500.
 */
export function isTransientAwsError(err: unknown): boolean {
  if (!(err instanceof Error)) return false;
  const e = err as Error & {
    code?: string;
    $fault?: string;
    $metadata?: { httpStatusCode?: number };
    $retryable?: unknown;
  };
  if (TRANSIENT.has(e.name) || (e.code !== undefined && TRANSIENT.has(e.code))) return true;
  if (e.code !== undefined && NETWORK.has(e.code)) return true;
  if (e.$retryable !== undefined) return true;
  const status = e.$metadata?.httpStatusCode;
  return e.$fault === 'server' && (status === undefined || status >= 500);
}

export function createClients(options: ClientOptions = {}): AwsClients {
  const base = new DynamoDBClient({ ...RETRY });
  // WHEN_REQUIRED: a presigned URL must not carry the checksum of an empty body, or real S3 refuses
  // uploads to it; and a streamed PutObject must not use aws-chunked framing that emulators store raw.
  const s3 = new S3Client({
    ...RETRY,
    requestChecksumCalculation: 'WHEN_REQUIRED',
    responseChecksumValidation: 'WHEN_REQUIRED',
  });
  const sqs = new SQSClient({ ...RETRY });
  if (options.onRequest) {
    // On the base DynamoDB client: the document client sends through it, marshalled.
    for (const client of [base, s3, sqs]) observeRequests(client, options.onRequest);
  }
  const dynamo = DynamoDBDocumentClient.from(base, {
    marshallOptions: { removeUndefinedValues: true },
  });
  return { dynamo, s3, sqs };
}

let shared: AwsClients | undefined;

/** The process's clients, created at first use (cold start) and reused by every invocation. */
export const clients = (): AwsClients => {
  shared ??= createClients();
  return shared;
};
