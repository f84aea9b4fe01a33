import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { loadConfig } from '../config.ts';
import type { PlanMessage } from '../core/model.ts';
import { logger } from '../logger.ts';
import { container } from '../services/container.ts';
import { fanOut } from './plan.ts';

const { chunkSize } = loadConfig(['chunkSize']);

/** Plan queue consumer: turns each accepted job into frame chunks on the frame queue. */
export const handler = async (event: SQSEvent, context: Context): Promise<SQSBatchResponse> => {
  const app = container();
  const batchItemFailures: SQSBatchResponse['batchItemFailures'] = [];
  for (const record of event.Records) {
    let message: PlanMessage;
    try {
      message = JSON.parse(record.body) as PlanMessage;
      if (message.v !== 1 || typeof message.jobId !== 'string') throw new Error('not a plan message');
    } catch (err) {
      // Never ours to plan: it goes to the DLQ (after its retries) where the DLQ alarm shows it to ops.
      logger.error('malformed plan message', { messageId: record.messageId, error: err as Error });
      batchItemFailures.push({ itemIdentifier: record.messageId });
      continue;
    }
    try {
      const outcome = await fanOut(
        {
          store: app.store,
          frameQueueFor: (model) => app.frameQueueFor(model),
          planQueue: app.planQueue,
          chunkSize,
        },
        message,
        () => context.getRemainingTimeInMillis(),
      );
      logger.info('plan processed', { jobId: message.jobId, outcome });
    } catch (err) {
      logger.error('fan-out failed; the message will be retried', {
        jobId: message.jobId,
        error: err as Error,
      });
      batchItemFailures.push({ itemIdentifier: record.messageId });
    }
  }
  return { batchItemFailures };
};
