import { describe, expect, it, vi } from 'vitest';
import { newEventId, newJobId } from '../../../functions/core/ids.ts';
import { encodeEvent } from '../../../functions/core/messages.ts';
import { Container, useContainer } from '../../../functions/services/container.ts';
import { handler } from '../../../functions/webhooks/handler.ts';
import { lambdaContext } from '../../../local/gateway.ts';
import { failedIds, sqsEvent } from '../../support/sqs.ts';

// Delivery itself is tested on the emulators (test/integration/webhook*.test.ts); here, the batch.
const app = new Container({ FRAMECAST_TABLE: 'table' });
useContainer(app);

describe('the event queue consumer', () => {
  it('sends a malformed message to the DLQ without stopping the batch, and delivers the others at once', async () => {
    let running = 0;
    let most = 0;
    const deliver = vi.spyOn(app.webhooks, 'deliver').mockImplementation(async () => {
      most = Math.max(most, ++running);
      await new Promise((r) => setTimeout(r, 10));
      running--;
    });
    const jobId = newJobId();
    const [a, b, c] = [newEventId(), newEventId(), newEventId()];
    const out = await handler(
      sqsEvent([
        encodeEvent({ eventId: a, jobId, tenant: 'acme' }),
        encodeEvent({ eventId: b, jobId, tenant: 'acme' }),
        JSON.stringify({ v: 1, eventId: 'evt_1', jobId, tenant: 'acme' }),
        encodeEvent({ eventId: c, jobId, tenant: 'acme', endpoint: 'job', attempt: 2 }),
      ]),
      lambdaContext('webhooks'),
    );
    expect(failedIds(out)).toEqual(['m3']);
    expect(deliver.mock.calls.map(([m]) => m.eventId)).toEqual([a, b, c]);
    expect(deliver).toHaveBeenCalledWith({
      v: 1,
      eventId: c,
      jobId,
      tenant: 'acme',
      endpoint: 'job',
      attempt: 2,
    });
    expect(most).toBe(3);
  });
});
