import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { Queue } from '../functions/adapters/queues.ts';
import { lambdaContext } from './gateway.ts';

type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse | undefined>;

/**
 * Local mode's Lambda event source mapping: long-polls a queue, calls the handler with a batch in the
 * SQS event shape, and deletes the messages the handler did not report as failed (partial batch
 * responses). Failed messages come back after their visibility timeout, as in AWS. Like Lambda, it
 * runs several batches at once (`concurrency` pollers), so one slow batch does not hold up the queue.
 */
export function pollQueue(
  queue: Queue,
  handler: SqsHandler,
  options: {
    name: string;
    timeoutMs: number;
    waitSeconds?: number;
    concurrency?: number;
    /** How long a received batch stays hidden; omitted, the queue's visibility timeout (as in AWS). */
    visibilitySeconds?: number;
  },
) {
  const stop = new AbortController();
  const poller = async () => {
    while (!stop.signal.aborted) {
      let messages: Awaited<ReturnType<Queue['receive']>>;
      try {
        messages = await queue.receive({
          max: 10,
          waitSeconds: options.waitSeconds ?? 5,
          ...(options.visibilitySeconds !== undefined && { visibilitySeconds: options.visibilitySeconds }),
          signal: stop.signal,
        });
      } catch {
        if (stop.signal.aborted) break;
        await new Promise((r) => setTimeout(r, 500));
        continue;
      }
      if (messages.length === 0) continue;
      const event: SQSEvent = {
        Records: messages.map((m) => ({
          messageId: m.id,
          receiptHandle: m.receiptHandle,
          body: m.body,
          attributes: {
            ApproximateReceiveCount: String(m.receiveCount),
            SentTimestamp: String(Date.now()),
            SenderId: 'local',
            ApproximateFirstReceiveTimestamp: String(Date.now()),
          },
          messageAttributes: {},
          md5OfBody: '',
          eventSource: 'aws:sqs',
          eventSourceARN: `arn:aws:sqs:local:000000000000:${options.name}`,
          awsRegion: process.env.AWS_REGION ?? 'us-east-1',
        })),
      };
      let failed = new Set<string>();
      try {
        const out = await handler(event, lambdaContext(options.name, options.timeoutMs));
        failed = new Set((out?.batchItemFailures ?? []).map((f) => f.itemIdentifier));
      } catch (err) {
        // A thrown handler fails the whole batch, as in AWS.
        console.error(`${options.name} failed`, err);
        continue;
      }
      // A delete SQS refuses (an outage) leaves the message to come back after its visibility timeout, to
      // a handler that takes it for the duplicate it is; it must not end the poller.
      await Promise.all(
        messages
          .filter((m) => !failed.has(m.id))
          .map((m) =>
            queue
              .delete(m.receiptHandle)
              .catch((err: unknown) => console.error(`${options.name}: delete failed`, err)),
          ),
      );
    }
  };
  const running = Promise.all(Array.from({ length: options.concurrency ?? 1 }, poller));
  return {
    async close() {
      stop.abort();
      await running;
    },
  };
}
