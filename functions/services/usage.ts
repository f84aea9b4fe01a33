import { isDayTotal, type UsageRecord, type UsageStore } from '../adapters/store/usage.ts';
import type { Caller } from '../core/api-keys.ts';
import { dayOf, microsToUsd } from '../core/cost.ts';
import { FramecastError, invalid } from '../core/errors.ts';
import type { UsageQuery, UsageReport } from '../core/schemas.ts';

/** The longest period one report covers: a year of days, so a report is a few queries at most. */
const MAX_DAYS = 366;
const DAY_MS = 86_400_000;

/** Whether a caller may see or set another tenant's money: a key with the `admin` scope. */
export const isAdmin = (caller: Caller): boolean => caller.scopes.includes('admin');

/** The tenant a caller names: its own, or, for an admin key, any; another tenant without admin is a 403. */
export function tenantFor(caller: Caller, tenant: string | undefined, field: string): string {
  if (tenant === undefined || tenant === caller.tenant) return caller.tenant;
  if (!isAdmin(caller)) {
    throw new FramecastError(
      'forbidden',
      `${field}: another tenant's money needs an API key with the admin scope`,
    );
  }
  return tenant;
}

/**
 * GET /v1/usage: spend from the usage items the worker counts with each chunk's frames (one query of the
 * tenant's days, or for an admin's `groupBy=tenant` one query of every tenant's day totals).
 */
export class UsageService {
  constructor(private readonly usage: Pick<UsageStore, 'days' | 'allTenants'>) {}

  async report(caller: Caller, query: UsageQuery, now = new Date()): Promise<UsageReport> {
    const to = query.to ?? dayOf(now);
    const from = query.from ?? `${to.slice(0, 7)}-01`;
    if (from > to) throw invalid('query.from', `must not be after to (${to})`);
    const days = (Date.parse(to) - Date.parse(from)) / DAY_MS + 1;
    if (days > MAX_DAYS) throw invalid('query.from', `at most ${MAX_DAYS} days from..to; this is ${days}`);
    const everyTenant = query.groupBy === 'tenant' && query.tenant === undefined && isAdmin(caller);
    const tenant = everyTenant ? undefined : tenantFor(caller, query.tenant, 'query.tenant');
    const items = tenant ? await this.usage.days(tenant, from, to) : await this.usage.allTenants(from, to);
    const keyOf = KEYS[query.groupBy];
    const groups = new Map<string, { frames: number; gpuMs: number; costMicros: number }>();
    const total = { frames: 0, gpuMs: 0, costMicros: 0 };
    for (const item of items) {
      const key = keyOf(item);
      if (key === undefined) continue;
      const g = groups.get(key) ?? { frames: 0, gpuMs: 0, costMicros: 0 };
      for (const sum of [g, total]) {
        sum.frames += item.frames;
        sum.gpuMs += item.gpuMs;
        sum.costMicros += item.costMicros;
      }
      groups.set(key, g);
    }
    const view = (s: typeof total) => ({
      frames: s.frames,
      gpuSeconds: s.gpuMs / 1000,
      usd: microsToUsd(s.costMicros),
    });
    return {
      from,
      to,
      groupBy: query.groupBy,
      ...(tenant !== undefined && { tenant }),
      total: view(total),
      groups: [...groups]
        .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0))
        .map(([key, s]) => ({ key, ...view(s) })),
    };
  }
}

/** Which usage items a grouping reads, and their group: day totals for days and tenants, the splits by kind. */
const KEYS: Record<UsageQuery['groupBy'], (item: UsageRecord) => string | undefined> = {
  day: (i) => (isDayTotal(i) ? i.day : undefined),
  tenant: (i) => (isDayTotal(i) ? i.tenant : undefined),
  model: (i) => i.model,
  shot: (i) => i.shot,
};
