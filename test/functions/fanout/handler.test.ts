import { beforeEach, describe, expect, it, vi } from 'vitest';
import { newJobId } from '../../../functions/core/ids.ts';
import { encodePlan } from '../../../functions/core/messages.ts';
import { handler } from '../../../functions/fanout/handler.ts';
import { fanOut } from '../../../functions/fanout/plan.ts';
import { Container, useContainer } from '../../../functions/services/container.ts';
import { lambdaContext } from '../../../local/gateway.ts';
import { failedIds, sqsEvent } from '../../support/sqs.ts';

// The planning itself is tested on the emulators (test/integration/fanout.test.ts); here, the batch.
vi.mock('../../../functions/fanout/plan.ts', () => ({ fanOut: vi.fn(async () => 'planned') }));

beforeEach(() => {
  vi.mocked(fanOut).mockClear();
  useContainer(
    new Container({
      FRAMECAST_TABLE: 'table',
      FRAMECAST_PLAN_QUEUE_URL: 'https://sqs.us-east-1.amazonaws.com/000000000000/plan',
    }),
  );
});

describe('the plan queue consumer', () => {
  it('sends a malformed plan to the DLQ without stopping the batch, and plans the others in order', async () => {
    const [a, b] = [newJobId(), newJobId()];
    const out = await handler(
      sqsEvent([
        encodePlan({ jobId: a, tenant: 'acme' }),
        JSON.stringify({ v: 2, jobId: a, tenant: 'acme' }),
        encodePlan({ jobId: b, tenant: 'acme' }),
      ]),
      lambdaContext('fanout'),
    );
    expect(failedIds(out)).toEqual(['m2']);
    expect(vi.mocked(fanOut).mock.calls.map(([, message]) => message)).toEqual([
      { v: 1, jobId: a, tenant: 'acme' },
      { v: 1, jobId: b, tenant: 'acme' },
    ]);
  });

  it('reports a plan whose fan-out fails, for SQS to retry', async () => {
    vi.mocked(fanOut).mockRejectedValueOnce(new Error('the table is down'));
    const out = await handler(
      sqsEvent([
        encodePlan({ jobId: newJobId(), tenant: 'acme' }),
        encodePlan({ jobId: newJobId(), tenant: 'acme' }),
      ]),
      lambdaContext('fanout'),
    );
    expect(failedIds(out)).toEqual(['m1']);
    expect(fanOut).toHaveBeenCalledTimes(2);
  });
});
