import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dayOf, monthOf, spendMicros, usdToMicros } from '../../functions/core/cost.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, isFinished } from '../support/api.ts';

/**
 * Spend on the local stack (docs/operations.md, "Prices, spend and budgets"): every frame records its
 * GPU time and spend, and the job and the tenant's day and month count the same frames in the same
 * transactions, so the sums agree to the micro-dollar.
 */

const PRICE_USD = 3.6; // one micro-dollar per GPU millisecond: easy sums

let stack: LocalStack;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  stack = await startLocalStack({
    worker: { retryBaseMs: 5 },
    env: {
      FRAMECAST_COST: JSON.stringify({
        models: { reference: { gpuHourUsd: PRICE_USD, slots: 2 } },
      }),
    },
  });
  api = client(stack.url, stack.apiKey);
});
afterAll(() => stack?.stop());

const shot = (name: string, extra: Record<string, unknown> = {}) => ({
  shot: name,
  prompt: 'a lighthouse, priced',
  frames: { start: 1, end: 10 },
  seed: 3,
  width: 64,
  height: 64,
  ...extra,
});

describe('spend', () => {
  it('adds up from frames to job to tenant', async () => {
    const tenant = `spend${Date.now() % 1_000_000}`;
    const key = await stack.createApiKey(tenant);
    const studio = client(stack.url, key);
    const before = await stack.app.usageStore.month(tenant, monthOf(new Date()));
    expect(before).toEqual({ gpuMs: 0, costMicros: 0 });

    const ids: string[] = [];
    for (const name of ['SPEND_A', 'SPEND_B']) {
      const created = await studio.createJob(shot(name));
      expect(created.status).toBe(202);
      ids.push(created.body.id);
    }
    let jobMicros = 0;
    let jobMs = 0;
    for (const id of ids) {
      const job = await studio.waitForJob(id, isFinished);
      expect(job.status).toBe('succeeded');
      const frames = await studio.allFrames(id);
      expect(frames).toHaveLength(10);
      let frameMicros = 0;
      let frameMs = 0;
      for (const f of frames) {
        expect(f.cost?.gpuSeconds).toBeGreaterThan(0);
        frameMs += Math.round(f.cost!.gpuSeconds * 1000);
        frameMicros += usdToMicros(f.cost!.usd);
        // Each frame is priced at the configured GPU-hour price.
        expect(usdToMicros(f.cost!.usd)).toBe(
          spendMicros(Math.round(f.cost!.gpuSeconds * 1000), usdToMicros(PRICE_USD)),
        );
      }
      expect(Math.round(job.cost.gpuSeconds * 1000)).toBe(frameMs);
      expect(usdToMicros(job.cost.usd)).toBe(frameMicros);
      jobMs += frameMs;
      jobMicros += frameMicros;
    }
    const month = await stack.app.usageStore.month(tenant, monthOf(new Date()));
    expect(month).toEqual({ gpuMs: jobMs, costMicros: jobMicros });
    const days = await stack.app.usageStore.days(tenant, dayOf(new Date()), dayOf(new Date()));
    const total = days.filter((d) => !d.model && !d.shot);
    expect(total.reduce((n, d) => n + d.costMicros, 0)).toBe(jobMicros);
    expect(days.filter((d) => d.shot).reduce((n, d) => n + d.costMicros, 0)).toBe(jobMicros);
    expect(days.filter((d) => d.model).reduce((n, d) => n + d.frames, 0)).toBe(20);
    // Another tenant's spend is its own.
    expect(await stack.app.usageStore.month('dev', monthOf(new Date()))).toEqual({ gpuMs: 0, costMicros: 0 });
    void api;
  });
});
