import type { SQSEvent, SQSRecord } from 'aws-lambda';

/** An SQS record as Lambda hands it over, with `id` as its messageId. */
export function sqsRecord(id: string, body: string, receiveCount = 1): SQSRecord {
  return {
    messageId: id,
    receiptHandle: `receipt-${id}`,
    body,
    attributes: {
      ApproximateReceiveCount: String(receiveCount),
      SentTimestamp: '0',
      SenderId: 'test',
      ApproximateFirstReceiveTimestamp: '0',
    },
    messageAttributes: {},
    md5OfBody: '',
    eventSource: 'aws:sqs',
    eventSourceARN: 'arn:aws:sqs:us-east-1:000000000000:test',
    awsRegion: 'us-east-1',
  };
}

/** A batch of bodies, numbered m1, m2, … in order. */
export const sqsEvent = (bodies: readonly string[]): SQSEvent => ({
  Records: bodies.map((body, i) => sqsRecord(`m${i + 1}`, body)),
});

/** The message ids a partial batch response reports as failed. */
export const failedIds = (response: { batchItemFailures: { itemIdentifier: string }[] }): string[] =>
  response.batchItemFailures.map((f) => f.itemIdentifier);
