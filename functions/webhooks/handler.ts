import { sqsBatch } from '../consumers/batch.ts';
import { eventMessageSchema } from '../core/messages.ts';
import { container } from '../services/container.ts';

/**
 * Event queue consumer: delivers each message's webhook(s). Messages are handled concurrently, so one
 * slow receiver (up to the 15 s timeout) does not hold back the others in the batch; only messages
 * that are malformed or whose handling threw are reported back, for SQS to retry and then dead-letter.
 */
export const handler = sqsBatch(eventMessageSchema, (message) => container().webhooks.deliver(message), {
  concurrency: Number.POSITIVE_INFINITY,
});
