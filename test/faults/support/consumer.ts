/**
 * One queue consumer of local mode as a process of its own, so a fault test can SIGKILL it mid-batch as
 * Lambda's sandbox dies with the handler inside: `node --import tsx test/faults/support/consumer.ts
 * fanout|webhooks`, with the stack's environment (test/faults/support/processes.ts). It polls the queue
 * as local mode's event source does and calls the deployed handler module.
 *
 * CONSUMER_VISIBILITY_SECONDS: how long a received batch stays hidden (the queue's 6 minutes otherwise).
 * CONSUMER_SEND_DELAY_MS: a pause before each SQS send, so a plan's fan-out lasts long enough to be
 * killed halfway; every request still goes to the emulator.
 */
import type { Context, SQSBatchResponse, SQSEvent } from 'aws-lambda';
import { createClients } from '../../../functions/adapters/clients.ts';
import { Container, useContainer } from '../../../functions/services/container.ts';
import { CONSUMER_TIMEOUT_SECONDS } from '../../../functions/shared/resources.ts';
import { CONSUMERS } from '../../../functions/shared/routes.ts';
import { pollQueue } from '../../../local/event-source.ts';

type SqsHandler = (event: SQSEvent, context: Context) => Promise<SQSBatchResponse>;

const which = process.argv[2];
if (which !== 'fanout' && which !== 'webhooks') throw new Error('usage: consumer.ts fanout|webhooks');

const aws = createClients();
const sendDelayMs = Number(process.env.CONSUMER_SEND_DELAY_MS ?? 0);
if (sendDelayMs > 0) {
  aws.sqs.middlewareStack.add(
    (next, context) => async (args) => {
      if (context.commandName?.startsWith('SendMessage'))
        await new Promise((r) => setTimeout(r, sendDelayMs));
      return next(args);
    },
    { step: 'initialize', name: 'faultSendDelay' },
  );
}
const app = new Container(process.env, () => aws);
useContainer(app);

const consumer = CONSUMERS[which];
const { handler } = (await import(new URL(`../../../${consumer.entry}`, import.meta.url).href)) as {
  handler: SqsHandler;
};
pollQueue(which === 'fanout' ? app.planQueue : app.eventQueue, handler, {
  name: consumer.entry,
  timeoutMs: CONSUMER_TIMEOUT_SECONDS[consumer.queue] * 1000,
  waitSeconds: 1,
  // As local mode runs webhook delivery: several batches at once.
  concurrency: which === 'webhooks' ? 4 : 1,
  visibilitySeconds: Number(process.env.CONSUMER_VISIBILITY_SECONDS ?? 3),
});
