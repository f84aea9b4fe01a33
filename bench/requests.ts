import type { AwsRequest } from '../functions/adapters/clients.ts';
import { PRICES } from './prices.ts';

/**
 * Counts the AWS requests of the local system (the clients' `onRequest` observer) by service and
 * operation, and prices them (./prices.ts).
 */
export class RequestCounter {
  private counts = new Map<string, number>();
  private requests: AwsRequest[] = [];

  readonly observe = (request: AwsRequest): void => {
    const key = `${request.service}.${request.operation}`;
    this.counts.set(key, (this.counts.get(key) ?? 0) + 1);
    this.requests.push(request);
  };

  /** Starts a new count; returns what was counted so far. */
  reset(): Counted {
    const counted = new Counted(this.counts, this.requests);
    this.counts = new Map();
    this.requests = [];
    return counted;
  }
}

/**
 * The empty receives a run of `seconds` would make on AWS: each consumer long-polls for 20 s (the
 * longest SQS allows), the Lambda event source mappings with five pollers each at low traffic (AWS Lambda
 * developer guide, "Configuring scaling behavior for SQS event source mappings"), the worker with one.
 * A worker also asks a priority band it found empty once per 20 s (functions/worker/polling.ts): working
 * from the normal band, as the bench's shots do, that is the high band above it (the low band is asked
 * only when the normal one runs short of what the worker wants), so one more receive per 20 s.
 * Local mode polls every second instead (its SQS emulator ends a long poll early only when a receive is
 * full), so its empty receives are counted apart and replaced by this figure.
 */
export function awsPolling(
  seconds: number,
  consumers = { lambdaMappings: 2, workers: 1, bandsPerWorker: 2 },
): number {
  const polls = Math.ceil(seconds / 20);
  return polls * (consumers.lambdaMappings * 5 + consumers.workers * consumers.bandsPerWorker);
}

/** Lambda invocations are not SDK requests here (local mode calls the handlers): the bench says how many. */
export interface LambdaUse {
  readonly invocations: number;
  /** Assumed, not measured: local mode does not run the handlers in Lambda. */
  readonly assumedMsEach: number;
  readonly memoryMb: number;
}

const S3_PUT_CLASS = new Set([
  'PutObject',
  'CopyObject',
  'PostObject',
  'ListObjects',
  'ListObjectsV2',
  'CreateMultipartUpload',
  'UploadPart',
  'CompleteMultipartUpload',
]);
const S3_FREE = new Set(['DeleteObject', 'DeleteObjects', 'AbortMultipartUpload']);

const itemsOf = (input: unknown, field: string): number =>
  ((input as Record<string, unknown[] | undefined>)[field] ?? []).length;
const consistent = (input: unknown): boolean =>
  (input as { ConsistentRead?: boolean }).ConsistentRead === true;

/**
 * The request units of one DynamoDB request, approximated from the request alone: the emulator reports
 * no consumed capacity, so every item is taken to fit one unit (1 KB written, 4 KB read). A Query or
 * Scan counts as one 4 KB page, so a long listing is under-counted.
 */
export function dynamoUnits(operation: string, input: unknown): { wru: number; rru: number } {
  switch (operation) {
    case 'PutItem':
    case 'UpdateItem':
    case 'DeleteItem':
      return { wru: 1, rru: 0 };
    case 'BatchWriteItem': {
      const byTable = (input as { RequestItems?: Record<string, unknown[]> }).RequestItems ?? {};
      return { wru: Object.values(byTable).reduce((n, items) => n + items.length, 0), rru: 0 };
    }
    case 'TransactWriteItems':
      return { wru: 2 * itemsOf(input, 'TransactItems'), rru: 0 };
    case 'TransactGetItems':
      return { wru: 0, rru: 2 * itemsOf(input, 'TransactItems') };
    case 'GetItem':
    case 'Query':
    case 'Scan':
      return { wru: 0, rru: consistent(input) ? 1 : 0.5 };
    case 'BatchGetItem': {
      const byTable =
        (input as { RequestItems?: Record<string, { Keys?: unknown[]; ConsistentRead?: boolean }> })
          .RequestItems ?? {};
      return {
        wru: 0,
        rru: Object.values(byTable).reduce(
          (n, t) => n + (t.Keys?.length ?? 0) * (t.ConsistentRead ? 1 : 0.5),
          0,
        ),
      };
    }
    default:
      return { wru: 0, rru: 0 };
  }
}

export class Counted {
  constructor(
    readonly counts: ReadonlyMap<string, number>,
    readonly requests: readonly AwsRequest[],
  ) {}

  get total(): number {
    return this.requests.length;
  }

  /** Receives that brought no message: polling, whose count follows time and long-poll settings. */
  get emptyReceives(): number {
    return this.requests.filter((r) => r.operation === 'ReceiveMessage' && r.received === 0).length;
  }

  /** The same requests without the empty receives. */
  withoutPolling(): Counted {
    const requests = this.requests.filter((r) => !(r.operation === 'ReceiveMessage' && r.received === 0));
    const counts = new Map<string, number>();
    for (const r of requests) {
      const key = `${r.service}.${r.operation}`;
      counts.set(key, (counts.get(key) ?? 0) + 1);
    }
    return new Counted(counts, requests);
  }

  /** Counts by `Service.Operation`, most first. */
  byOperation(): Record<string, number> {
    return Object.fromEntries([...this.counts].sort((a, b) => b[1] - a[1] || a[0].localeCompare(b[0])));
  }

  /** The list-price cost in dollars of these requests, by service, and of the Lambda use given. */
  cost(
    lambda?: LambdaUse,
    /** SQS requests to add: the long polls the same run would make on AWS (estimated by the caller). */
    extraSqs = 0,
  ): Record<'dynamodb' | 's3' | 'sqs' | 'lambda' | 'total', number> {
    let wru = 0;
    let rru = 0;
    let s3Put = 0;
    let s3Get = 0;
    let sqs = extraSqs;
    for (const r of this.requests) {
      if (r.service === 'DynamoDB') {
        const units = dynamoUnits(r.operation, r.input);
        wru += units.wru;
        rru += units.rru;
      } else if (r.service === 'S3') {
        if (S3_PUT_CLASS.has(r.operation)) s3Put++;
        else if (!S3_FREE.has(r.operation)) s3Get++;
      } else if (r.service === 'SQS') {
        // Each 64 KB of payload is one billed request; the messages here are far smaller.
        const body = JSON.stringify(r.input ?? {});
        sqs += Math.max(1, Math.ceil(Buffer.byteLength(body) / 65_536));
      }
    }
    const p = PRICES;
    const dynamodb = wru * p.dynamodb.perWriteRequestUnit + rru * p.dynamodb.perReadRequestUnit;
    const s3 = s3Put * p.s3.perPutRequest + s3Get * p.s3.perGetRequest;
    const sqsCost = sqs * p.sqs.perRequest;
    const lambdaCost = lambda
      ? lambda.invocations * p.lambda.perRequest +
        lambda.invocations * (lambda.assumedMsEach / 1000) * (lambda.memoryMb / 1024) * p.lambda.perGbSecond
      : 0;
    return {
      dynamodb,
      s3,
      sqs: sqsCost,
      lambda: lambdaCost,
      total: dynamodb + s3 + sqsCost + lambdaCost,
    };
  }
}
