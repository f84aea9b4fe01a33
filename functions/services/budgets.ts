import { type BudgetRecord, type BudgetStore, PRODUCTION_BUDGET } from '../adapters/store/budgets.ts';
import type { UsageStore } from '../adapters/store/usage.ts';
import type { Caller } from '../core/api-keys.ts';
import {
  type Budget,
  type BudgetLevel,
  budgetLeftMicros,
  budgetLevel,
  dayOf,
  type Estimate,
  microsToUsd,
  monthOf,
  usdToMicros,
} from '../core/cost.ts';
import { FramecastError, invalid } from '../core/errors.ts';
import { isTenant } from '../core/ids.ts';
import { BudgetRequest, type BudgetView } from '../core/schemas.ts';
import { parse } from '../core/validation.ts';
import type { CostSettings } from '../shared/cost.ts';

/** Where one budget stands this month. */
export interface BudgetStanding {
  /** The tenant, or `*` for the production's own budget. */
  readonly budget: string;
  /** How a message names it: `tenant "acme" budget` or `production budget`. */
  readonly name: string;
  readonly limit: Budget;
  readonly month: string;
  readonly spentMicros: number;
  readonly level: BudgetLevel;
  readonly warnedMonth?: string;
}

export interface BudgetServiceDeps {
  readonly budgets: Pick<BudgetStore, 'get' | 'put'>;
  readonly usage: Pick<UsageStore, 'month' | 'allTenants'>;
  /** The production's own budget, from its config (FRAMECAST_COST); none when absent. */
  readonly production?: CostSettings['budget'];
}

const toBudget = (b: { limitUsd: number; warningPercent: number; stopPercent: number }): Budget => ({
  limitMicros: usdToMicros(b.limitUsd),
  warningPercent: b.warningPercent,
  stopPercent: b.stopPercent,
});

/**
 * Budgets with graduated actions (docs/operations.md, "Budgets"), per tenant (set by an admin key) and
 * per production (its config), each a calendar month (UTC): at the warning threshold a `budget.warning`
 * event and the alarm (the worker sends them, ./../worker/budget-gate.ts); at the stop threshold new jobs
 * are refused with 402 and unstarted frames are held until the budget is raised.
 */
export class BudgetService {
  constructor(private readonly deps: BudgetServiceDeps) {}

  /** The budgets a tenant's work is held against, as they stand now: its own, and the production's. */
  async standings(tenant: string, now = new Date()): Promise<BudgetStanding[]> {
    const month = monthOf(now);
    // A tenant without a budget of its own costs one read: its month's spend is read only when it has one.
    const ownStanding = async () => {
      const own = await this.deps.budgets.get(tenant);
      if (!own) return undefined;
      const spent = await this.deps.usage.month(tenant, month);
      return standing(own, `tenant "${tenant}" budget`, month, spent.costMicros);
    };
    const [own, production] = await Promise.all([ownStanding(), this.productionStanding(now)]);
    const out: BudgetStanding[] = [];
    if (own) out.push(own);
    if (production) out.push(production);
    return out;
  }

  private async productionStanding(now: Date): Promise<BudgetStanding | undefined> {
    if (!this.deps.production) return undefined;
    const month = monthOf(now);
    // Every tenant's day totals of the month: one query of the index, at most 31 items per tenant.
    const [days, record] = await Promise.all([
      this.deps.usage.allTenants(`${month}-01`, dayOf(now)),
      this.deps.budgets.get(PRODUCTION_BUDGET),
    ]);
    const spent = days.reduce((n, d) => n + d.costMicros, 0);
    return standing(
      {
        tenant: PRODUCTION_BUDGET,
        ...toBudget(this.deps.production),
        ...(record?.warnedMonth && { warnedMonth: record.warnedMonth }),
      },
      'production budget',
      month,
      spent,
    );
  }

  /**
   * Refuses a new job with 402 `budget_exceeded` when a budget it counts against is at its stop threshold,
   * or when its estimate alone is more than the budget has left; the message names the budget.
   */
  async checkCreate(tenant: string, estimate: Pick<Estimate, 'costMicros'> | undefined, now = new Date()) {
    for (const s of await this.standings(tenant, now)) {
      if (s.level === 'stopped') {
        throw new FramecastError(
          'budget_exceeded',
          `the ${s.name} is at its stop threshold for ${s.month} ($${microsToUsd(s.spentMicros)} spent of ` +
            `$${microsToUsd(s.limit.limitMicros)} at ${s.limit.stopPercent}%); new jobs are refused until it is raised`,
          { budget: s.budget, month: s.month },
        );
      }
      const left = budgetLeftMicros(s.spentMicros, s.limit);
      if (estimate && estimate.costMicros > left) {
        throw new FramecastError(
          'budget_exceeded',
          `the job's estimate ($${microsToUsd(estimate.costMicros)}) is more than the ${s.name} has left ` +
            `for ${s.month} ($${microsToUsd(left)})`,
          { budget: s.budget, month: s.month, estimateUsd: microsToUsd(estimate.costMicros) },
        );
      }
    }
  }

  /** PUT /v1/budgets/{tenant}: an admin sets a tenant's monthly budget; frames held by it resume if raised. */
  async put(caller: Caller, tenant: string, body: unknown, now = new Date()): Promise<BudgetView> {
    if (!caller.scopes.includes('admin')) {
      throw new FramecastError('forbidden', 'budgets are set with an API key with the admin scope');
    }
    if (!isTenant(tenant))
      throw invalid('path.tenant', 'must be a tenant: 1 to 63 lowercase letters, digits or "-"');
    if (body === undefined) throw invalid('body', 'a JSON budget is required');
    const request = parse(BudgetRequest, body);
    const record = await this.deps.budgets.put(tenant, toBudget(request), now);
    const spent = await this.deps.usage.month(tenant, monthOf(now));
    return budgetView(standing(record, '', monthOf(now), spent.costMicros), record.updatedAt);
  }
}

function standing(record: BudgetRecord, name: string, month: string, spentMicros: number): BudgetStanding {
  const limit: Budget = {
    limitMicros: record.limitMicros,
    warningPercent: record.warningPercent,
    stopPercent: record.stopPercent,
  };
  return {
    budget: record.tenant,
    name,
    limit,
    month,
    spentMicros,
    level: budgetLevel(spentMicros, limit),
    ...(record.warnedMonth !== undefined && { warnedMonth: record.warnedMonth }),
  };
}

export function budgetView(s: BudgetStanding, updatedAt?: string): BudgetView {
  return {
    tenant: s.budget,
    limitUsd: microsToUsd(s.limit.limitMicros),
    warningPercent: s.limit.warningPercent,
    stopPercent: s.limit.stopPercent,
    month: s.month,
    spentUsd: microsToUsd(s.spentMicros),
    level: s.level,
    ...(updatedAt !== undefined && { updatedAt }),
  };
}
