/**
 * AWS list prices the benchmark turns counted requests into, us-east-1, on-demand, no free tier.
 * As published on the AWS pricing pages, checked 2026-11-30 (DynamoDB's on-demand figures are those
 * after the November 2024 price cut). A price change is a change here, with its date.
 */
export const PRICES = {
  region: 'us-east-1',
  checked: '2026-11-30',
  dynamodb: {
    /** On-demand, Standard table class: per write request unit (1 KB written; a transactional write is 2). */
    perWriteRequestUnit: 0.625 / 1e6,
    /** Per read request unit (4 KB read strongly consistent; eventually consistent 0.5; transactional 2). */
    perReadRequestUnit: 0.125 / 1e6,
  },
  sqs: {
    /** Standard queue, per request; each 64 KB of a request's payload is billed as one request. */
    perRequest: 0.4 / 1e6,
  },
  s3: {
    /** S3 Standard: PUT, COPY, POST, LIST requests. */
    perPutRequest: 0.005 / 1000,
    /** GET, SELECT and all other requests (HEAD included). DELETE is free. */
    perGetRequest: 0.0004 / 1000,
  },
  lambda: {
    /** Per invocation. */
    perRequest: 0.2 / 1e6,
    /** x86, per GB-second (first pricing tier). */
    perGbSecond: 0.0000166667,
  },
} as const;
