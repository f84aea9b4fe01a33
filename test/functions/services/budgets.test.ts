import { describe, expect, it } from 'vitest';
import type { BudgetRecord } from '../../../functions/adapters/store/budgets.ts';
import type { UsageRecord } from '../../../functions/adapters/store/usage.ts';
import type { Caller } from '../../../functions/core/api-keys.ts';
import { FramecastError } from '../../../functions/core/errors.ts';
import { BudgetService } from '../../../functions/services/budgets.ts';

/** Budgets over in-memory records: the rules of the standings and of the 402s (docs/operations.md, "Budgets"). */

const now = new Date('2026-11-30T12:00:00Z');

function service(options: {
  budgets?: Record<string, BudgetRecord>;
  months?: Record<string, number>;
  days?: UsageRecord[];
  production?: { limitUsd: number; warningPercent: number; stopPercent: number };
}) {
  const budgets = new Map(Object.entries(options.budgets ?? {}));
  const reads: string[] = [];
  const svc = new BudgetService({
    budgets: {
      get: async (tenant) => {
        reads.push(`budget:${tenant}`);
        return budgets.get(tenant);
      },
      put: async (tenant, budget) => {
        const record = { tenant, ...budget, updatedAt: now.toISOString() };
        budgets.set(tenant, record);
        return record;
      },
    },
    usage: {
      month: async (tenant) => {
        reads.push(`month:${tenant}`);
        return { gpuMs: 0, costMicros: options.months?.[tenant] ?? 0 };
      },
      allTenants: async () => options.days ?? [],
    },
    ...(options.production && { production: options.production }),
  });
  return { svc, reads };
}

const budget = (tenant: string, limitUsd: number): BudgetRecord => ({
  tenant,
  limitMicros: limitUsd * 1e6,
  warningPercent: 80,
  stopPercent: 100,
});
const day = (tenant: string, costMicros: number): UsageRecord => ({
  tenant,
  day: '2026-11-02',
  gpuMs: 0,
  costMicros,
  frames: 1,
});

const refusal = async (p: Promise<unknown>) => {
  const err = await p.then(
    () => undefined,
    (e: unknown) => e,
  );
  expect(err).toBeInstanceOf(FramecastError);
  return err as FramecastError;
};

describe('BudgetService', () => {
  it('reads only the budget of a tenant that has none, and lets its jobs through', async () => {
    const { svc, reads } = service({});
    await svc.checkCreate('acme', { costMicros: 10 ** 12 }, now);
    expect(reads).toEqual(['budget:acme']);
  });

  it("refuses with 402 naming the tenant's budget at its stop threshold", async () => {
    const { svc } = service({ budgets: { acme: budget('acme', 10) }, months: { acme: 10e6 } });
    const err = await refusal(svc.checkCreate('acme', { costMicros: 1 }, now));
    expect(err.status).toBe(402);
    expect(err.code).toBe('budget_exceeded');
    expect(err.message).toContain('tenant "acme" budget');
    expect(err.details).toMatchObject({ budget: 'acme', month: '2026-11' });
  });

  it('refuses a job whose estimate alone is more than is left, and takes one that fits', async () => {
    const { svc } = service({ budgets: { acme: budget('acme', 10) }, months: { acme: 9e6 } });
    const err = await refusal(svc.checkCreate('acme', { costMicros: 1_000_001 }, now));
    expect(err.message).toContain('estimate');
    await svc.checkCreate('acme', { costMicros: 1_000_000 }, now);
  });

  it("holds every tenant to the production's budget, summed over every tenant's days", async () => {
    const { svc } = service({
      production: { limitUsd: 5, warningPercent: 50, stopPercent: 100 },
      days: [day('acme', 2e6), day('other', 3e6)],
    });
    const standings = await svc.standings('acme', now);
    expect(standings).toEqual([
      expect.objectContaining({ budget: '*', name: 'production budget', spentMicros: 5e6, level: 'stopped' }),
    ]);
    const err = await refusal(svc.checkCreate('acme', undefined, now));
    expect(err.message).toContain('production budget');
  });

  it('is set by admin keys only, and checks what it is given', async () => {
    const { svc } = service({});
    const tenantKey: Caller = { tenant: 'acme', scopes: ['jobs:read', 'jobs:write'] };
    const admin: Caller = { tenant: 'ops', scopes: ['admin'] };
    expect((await refusal(svc.put(tenantKey, 'acme', { limitUsd: 1 }, now))).status).toBe(403);
    expect((await refusal(svc.put(admin, 'ACME', { limitUsd: 1 }, now))).details).toEqual({
      field: 'path.tenant',
    });
    expect((await refusal(svc.put(admin, 'acme', { limitUsd: 1, extra: 1 }, now))).status).toBe(400);
    expect(await svc.put(admin, 'acme', { limitUsd: 12.5 }, now)).toMatchObject({
      tenant: 'acme',
      limitUsd: 12.5,
      warningPercent: 80,
      stopPercent: 100,
      month: '2026-11',
      spentUsd: 0,
      level: 'ok',
    });
  });
});
