import type { BudgetStore } from '../adapters/store/budgets.ts';
import { newEvent } from '../adapters/store/events.ts';
import { microsToUsd } from '../core/cost.ts';
import type { EventRecord, JobRecord } from '../core/model.ts';
import { logger } from '../logger.ts';
import { countMetric, publishMetrics } from '../metrics.ts';
import type { BudgetStanding } from '../services/budgets.ts';
import { budgetView } from '../services/budgets.ts';
import { APP_METRICS } from '../shared/metrics.ts';

export interface WorkerBudgets {
  /** Where a tenant's budgets stand (BudgetService.standings): a few reads, made here at most every `checkMs`. */
  readonly standings: (tenant: string) => Promise<BudgetStanding[]>;
  readonly store: Pick<BudgetStore, 'warnOnce' | 'hold' | 'release'>;
}

/**
 * The worker's view of budgets (docs/operations.md, "Budgets"): a tenant's standing is read at most every
 * few seconds per worker, never per frame. A budget at its stop threshold holds the tenant's chunks and
 * windows before they start (the worker marks the job held and puts the message back with a delay, so
 * nothing is lost and the frames resume by themselves once the budget is raised); a budget past its
 * warning threshold announces itself once a month with a `budget.warning` event and the alarm's metric.
 */
export class BudgetGate {
  private readonly cache = new Map<string, { at: number; standings: Promise<BudgetStanding[]> }>();
  /** Jobs marked held by this worker, with the reason: one write per change. */
  private readonly marked = new Map<string, string>();
  /** Warnings this worker saw sent (or sent), by budget and month: not tried again. */
  private readonly warned = new Set<string>();

  constructor(
    private readonly budgets: WorkerBudgets,
    private readonly publishEvents: (events: readonly EventRecord[]) => Promise<void>,
    private readonly checkMs = 5000,
  ) {}

  private standings(tenant: string): Promise<BudgetStanding[]> {
    const now = Date.now();
    const cached = this.cache.get(tenant);
    if (cached && now - cached.at < this.checkMs) return cached.standings;
    const standings = this.budgets.standings(tenant).catch((err: unknown) => {
      // A budget that cannot be read holds nothing: the frames' own writes fail too if the table is down.
      logger.warn('budget standing unknown; not holding', { tenant, error: err as Error });
      this.cache.delete(tenant);
      return [];
    });
    this.cache.set(tenant, { at: now, standings });
    return standings;
  }

  /** Why the tenant's work waits now: the first budget at its stop threshold, or undefined. */
  async holdReason(tenant: string): Promise<string | undefined> {
    const stopped = (await this.standings(tenant)).find((s) => s.level === 'stopped');
    if (!stopped) return undefined;
    return (
      `held: the ${stopped.name} is at its stop threshold for ${stopped.month} ($${microsToUsd(stopped.spentMicros)} ` +
      `spent of $${microsToUsd(stopped.limit.limitMicros)} at ${stopped.limit.stopPercent}%); raise it to resume`
    );
  }

  async hold(jobId: string, reason: string): Promise<void> {
    if (this.marked.get(jobId) === reason) return;
    await this.budgets.store.hold(jobId, reason);
    this.marked.set(jobId, reason);
  }

  /** A job read as held whose tenant may spend again: its frames go on. */
  async release(job: JobRecord): Promise<void> {
    if (!job.held) return;
    await this.budgets.store.release(job.id);
    this.marked.delete(job.id);
  }

  /** After frames of `job` were recorded: a budget that has crossed its warning threshold says so, once. */
  async afterSpend(job: JobRecord, now = new Date()): Promise<void> {
    for (const s of await this.standings(job.tenant)) {
      const key = `${s.budget}|${s.month}`;
      if (s.level === 'ok' || s.warnedMonth === s.month || this.warned.has(key)) continue;
      const base = newEvent(job, 'budget.warning', now);
      const event: EventRecord = { ...base, data: { ...base.data, budget: budgetView(s) } };
      const sent = await this.budgets.store.warnOnce(s.budget, s.month, event);
      // Marked only once the write answered: a failure above leaves it to a later chunk.
      this.warned.add(key);
      if (!sent) continue;
      logger.warn('budget warning', { budget: s.budget, month: s.month, level: s.level });
      countMetric(APP_METRICS.budgetWarnings);
      publishMetrics();
      await this.publishEvents([event]);
    }
  }
}
