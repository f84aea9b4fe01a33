import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  budgetLeftMicros,
  budgetLevel,
  estimateJob,
  GPU_LIST_PRICES_USD,
  gpuHourMicros,
  gpuShareMs,
  spendMicros,
} from '../../../functions/core/cost.ts';

const now = new Date('2026-11-30T12:00:00Z');
const base = {
  width: 1000,
  height: 1000,
  frames: 10,
  priorSecondsPerMegapixel: 2,
  hourMicros: 3_600_000,
  backlogFrames: 0,
  fleetSlots: 1,
  now,
};

describe('prices and spend', () => {
  it("prices a host at the production's own price, else the list price, else the default", () => {
    expect(gpuHourMicros('g6.xlarge')).toBe(Math.round(GPU_LIST_PRICES_USD['g6.xlarge']! * 1e6));
    expect(gpuHourMicros('g6.xlarge', { 'g6.xlarge': 0.35 })).toBe(350_000);
    expect(gpuHourMicros('g9.mega')).toBe(804_800);
  });

  it('spends a micro-dollar per millisecond at $3.60 an hour, and shares a host between its slots', () => {
    expect(spendMicros(1500, 3_600_000)).toBe(1500);
    expect(gpuShareMs(1000, 2)).toBe(500);
    expect(gpuShareMs(-5, 1)).toBe(0);
  });

  it('adds up in integers: the spend of a sum is the sum of spends, to a micro-dollar per frame', () => {
    fc.assert(
      fc.property(fc.array(fc.integer({ min: 0, max: 600_000 }), { maxLength: 200 }), (ms) => {
        const price = 1_006_000;
        const parts = ms.reduce((n, m) => n + spendMicros(m, price), 0);
        const whole = spendMicros(
          ms.reduce((n, m) => n + m, 0),
          price,
        );
        expect(Number.isInteger(parts)).toBe(true);
        expect(Math.abs(parts - whole)).toBeLessThanOrEqual(ms.length);
      }),
    );
  });
});

describe('estimates', () => {
  it('takes the prior for a model with no record, and its record once it has one', () => {
    expect(estimateJob(base)).toMatchObject({ basis: 'prior', gpuSeconds: 20, usd: 20 / 1000 });
    const recorded = estimateJob({ ...base, history: { gpuMs: 5000, pixels: 10_000_000 } });
    expect(recorded).toMatchObject({ basis: 'history', gpuSeconds: 5, secondsPerMegapixel: 0.5 });
  });

  it('starts after the backlog and finishes after the job, both spread over the fleet', () => {
    const e = estimateJob({ ...base, backlogFrames: 40, fleetSlots: 4 });
    // 2 s a frame: 40 frames ahead over 4 slots = 20 s; the job's 20 s over 4 slots = 5 s.
    expect(Date.parse(e.expectedStart) - now.getTime()).toBe(20_000);
    expect(Date.parse(e.expectedFinish) - Date.parse(e.expectedStart)).toBe(5_000);
  });
});

describe('budget levels', () => {
  const budget = { limitMicros: 1_000_000, warningPercent: 80, stopPercent: 100 };
  it('is ok below the warning, warning from it, stopped from the stop threshold', () => {
    expect(budgetLevel(799_999, budget)).toBe('ok');
    expect(budgetLevel(800_000, budget)).toBe('warning');
    expect(budgetLevel(1_000_000, budget)).toBe('stopped');
    expect(budgetLeftMicros(900_000, budget)).toBe(100_000);
    expect(budgetLeftMicros(2_000_000, budget)).toBe(0);
  });
});
