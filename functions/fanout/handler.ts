import { fromConfig } from '../config.ts';
import { sqsBatch } from '../consumers/batch.ts';
import { planMessageSchema } from '../core/messages.ts';
import { logger } from '../logger.ts';
import { container } from '../services/container.ts';
import { fanOut } from './plan.ts';

const settings = fromConfig(['chunkSize', 'fairShareChunks'], (config) => config);
// A bad setting fails the cold start, not each plan.
settings();

/**
 * Plan queue consumer: turns each accepted job into frame chunks on the frame queue, one plan at a time.
 * A malformed plan is never ours to plan: it goes to the DLQ (after its retries), where the DLQ alarm
 * shows it to ops; a plan whose fan-out fails is retried.
 */
export const handler = sqsBatch(planMessageSchema, async (message, _record, context) => {
  const app = container();
  const { chunkSize, fairShareChunks } = settings();
  const outcome = await fanOut(
    {
      store: app.store,
      frameQueueFor: (model, band) => app.frameQueueFor(model, band),
      planQueue: app.planQueue,
      chunkSize,
      fairShareChunks,
    },
    message,
    () => context.getRemainingTimeInMillis(),
  );
  logger.info('plan processed', { jobId: message.jobId, outcome });
});
