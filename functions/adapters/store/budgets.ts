import { type DynamoDBDocumentClient, GetCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import type { Budget } from '../../core/cost.ts';
import type { EventRecord, JobHold } from '../../core/model.ts';
import { putEvent } from './events.ts';
import { budgetKey, isConditionFailure, jobKey, nowIso, strip, transact } from './table.ts';

/**
 * Budgets (keys: ./table.ts): a tenant's monthly limit and thresholds, set by an admin key, and for each
 * budget (a tenant's, or the production's under the reserved name `*`) the month its warning was last
 * sent, so a threshold crossing announces itself once. Jobs held by a budget carry `held` (./jobs.ts reads it).
 */

/** The name the production's own budget is filed under: no tenant can be called that. */
export const PRODUCTION_BUDGET = '*';

export interface BudgetRecord extends Budget {
  readonly tenant: string;
  readonly updatedAt?: string;
  /** The month (yyyy-mm) whose warning was sent. */
  readonly warnedMonth?: string;
}

export class BudgetStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async get(tenant: string): Promise<BudgetRecord | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({ TableName: this.table, Key: budgetKey(tenant), ConsistentRead: true }),
    );
    return Item ? strip<BudgetRecord>(Item) : undefined;
  }

  /** Sets a tenant's budget; the month already warned stays, so raising a limit does not warn again. */
  async put(tenant: string, budget: Budget, now = new Date()): Promise<BudgetRecord> {
    const record = { tenant, ...budget, updatedAt: nowIso(now) };
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: budgetKey(tenant),
        UpdateExpression:
          'SET tenant = :t, limitMicros = :l, warningPercent = :w, stopPercent = :s, updatedAt = :u',
        ExpressionAttributeValues: {
          ':t': tenant,
          ':l': budget.limitMicros,
          ':w': budget.warningPercent,
          ':s': budget.stopPercent,
          ':u': record.updatedAt,
        },
      }),
    );
    return record;
  }

  /**
   * Records that `budget`'s warning of `month` was sent, with its event, once: the first worker to see the
   * crossing writes both; any other finds the month taken and sends nothing. True when this call did.
   */
  async warnOnce(budget: string, month: string, event: EventRecord): Promise<boolean> {
    const written = await transact(this.db, {
      budget: {
        Update: {
          TableName: this.table,
          Key: budgetKey(budget),
          UpdateExpression: 'SET warnedMonth = :m, tenant = if_not_exists(tenant, :t)',
          ConditionExpression: 'attribute_not_exists(warnedMonth) OR warnedMonth <> :m',
          ExpressionAttributeValues: { ':m': month, ':t': budget },
        },
      },
      event: putEvent(this.table, event),
    });
    if (written.ok) return true;
    if (written.failed === 'budget' || written.conflict) return false;
    throw written.error;
  }

  /** Marks a live job's unstarted frames held, with the reason; one write per change of reason. */
  async hold(jobId: string, reason: string, now = new Date()): Promise<void> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: jobKey(jobId),
          UpdateExpression: 'SET held = :h',
          ConditionExpression: 'attribute_exists(pk) AND (attribute_not_exists(held) OR held.reason <> :r)',
          ExpressionAttributeValues: { ':h': { reason, since: nowIso(now) } satisfies JobHold, ':r': reason },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  /** The job's frames go on: its hold is lifted (a no-op when it has none). */
  async release(jobId: string): Promise<void> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: jobKey(jobId),
          UpdateExpression: 'REMOVE held',
          ConditionExpression: 'attribute_exists(held)',
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }
}
