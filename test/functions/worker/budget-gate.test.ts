import { describe, expect, it } from 'vitest';
import type { EventRecord } from '../../../functions/core/model.ts';
import type { BudgetStanding } from '../../../functions/services/budgets.ts';
import { BudgetGate } from '../../../functions/worker/budget-gate.ts';
import { jobRecord } from '../../support/jobs.ts';

/** The worker's budget gate over fakes: how often it reads, what it holds, and that it warns once. */

const standing = (level: BudgetStanding['level'], warnedMonth?: string): BudgetStanding => ({
  budget: 'acme',
  name: 'tenant "acme" budget',
  limit: { limitMicros: 1_000_000, warningPercent: 80, stopPercent: 100 },
  month: '2026-11',
  spentMicros: level === 'stopped' ? 1_000_000 : level === 'warning' ? 850_000 : 0,
  level,
  ...(warnedMonth && { warnedMonth }),
});

const job = jobRecord({
  id: 'job_01JD0000000000000000000000',
  tenant: 'acme',
  prefix: 'acme/SH010/job/',
});

function gate(levels: BudgetStanding[][], checkMs: number, warnOnce = async () => true) {
  const calls = { reads: 0, holds: [] as string[], releases: 0, warned: 0, published: [] as EventRecord[] };
  const g = new BudgetGate(
    {
      standings: async () => levels[Math.min(calls.reads++, levels.length - 1)] ?? [],
      store: {
        warnOnce: async () => {
          calls.warned++;
          return warnOnce();
        },
        hold: async (jobId, reason) => {
          calls.holds.push(`${jobId}:${reason}`);
        },
        release: async () => {
          calls.releases++;
        },
      },
    },
    async (events) => {
      calls.published.push(...events);
    },
    checkMs,
  );
  return { g, calls };
}

describe('BudgetGate', () => {
  it('reads a tenant once per interval, however many chunks ask', async () => {
    const { g, calls } = gate([[standing('ok')]], 3_600_000);
    for (let i = 0; i < 20; i++) expect(await g.holdReason('acme')).toBeUndefined();
    expect(calls.reads).toBe(1);
  });

  it('holds while a budget is stopped, naming it, and marks a job once per reason', async () => {
    const { g, calls } = gate([[standing('stopped')], [standing('ok')]], 0);
    const reason = await g.holdReason('acme');
    expect(reason).toContain('tenant "acme" budget is at its stop threshold for 2026-11');
    await g.hold(job.id, reason!);
    await g.hold(job.id, reason!);
    expect(calls.holds).toHaveLength(1);
    // Raised: the next look lets the work through, and a held job is released.
    expect(await g.holdReason('acme')).toBeUndefined();
    await g.release({ ...job, held: { reason: reason!, since: job.createdAt } });
    await g.release(job);
    expect(calls.releases).toBe(1);
  });

  it('sends a budget.warning once a month with the budget in its data, and none for a month already warned', async () => {
    const { g, calls } = gate([[standing('warning')]], 0);
    await g.afterSpend(job);
    await g.afterSpend(job);
    expect(calls.warned).toBe(1);
    expect(calls.published.map((e) => e.type)).toEqual(['budget.warning']);
    expect(calls.published[0]!.data).toMatchObject({
      id: job.id,
      budget: { tenant: 'acme', level: 'warning' },
    });
    const done = gate([[standing('warning', '2026-11')]], 0);
    await done.g.afterSpend(job);
    expect(done.calls.warned).toBe(0);
  });

  it('publishes nothing when another worker sent the warning first', async () => {
    const { g, calls } = gate([[standing('warning')]], 0, async () => false);
    await g.afterSpend(job);
    expect(calls.warned).toBe(1);
    expect(calls.published).toEqual([]);
  });

  it('holds nothing when the budgets cannot be read', async () => {
    const g = new BudgetGate(
      {
        standings: async () => {
          throw new Error('table unreachable');
        },
        store: { warnOnce: async () => true, hold: async () => undefined, release: async () => undefined },
      },
      async () => undefined,
      0,
    );
    expect(await g.holdReason('acme')).toBeUndefined();
  });
});
