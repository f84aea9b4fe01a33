import type { SQSBatchResponse, SQSEvent } from 'aws-lambda';
import type { EventMessage } from '../core/model.ts';
import { logger } from '../logger.ts';
import { container } from '../services/container.ts';

/**
 * Event queue consumer: delivers each message's webhook(s). Messages are handled concurrently, so one
 * slow receiver (up to the 15 s timeout) does not hold back the others in the batch; only messages
 * whose handling threw are reported back for SQS to retry.
 */
export const handler = async (event: SQSEvent): Promise<SQSBatchResponse> => {
  const webhooks = container().webhooks;
  const results = await Promise.all(
    event.Records.map(async (record) => {
      let message: EventMessage;
      try {
        message = JSON.parse(record.body) as EventMessage;
        if (message.v !== 1 || typeof message.eventId !== 'string') throw new Error('not an event message');
      } catch (err) {
        logger.error('malformed event message', { messageId: record.messageId, error: err as Error });
        return record.messageId;
      }
      try {
        await webhooks.deliver(message);
        return undefined;
      } catch (err) {
        logger.error('webhook delivery errored; SQS will retry', {
          eventId: message.eventId,
          error: err as Error,
        });
        return record.messageId;
      }
    }),
  );
  return {
    batchItemFailures: results
      .filter((id): id is string => id !== undefined)
      .map((itemIdentifier) => ({ itemIdentifier })),
  };
};
