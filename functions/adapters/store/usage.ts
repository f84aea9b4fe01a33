import { type DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { dayOf, type ModelHistory, type Spend } from '../../core/cost.ts';
import type { JobRecord } from '../../core/model.ts';
import { TABLE } from '../../shared/resources.ts';
import { modelStatsKey, strip, type TransactItem, usageKey } from './table.ts';

/**
 * Spend by tenant and day (and, within a day, by model and shot), and each model's record of GPU time per
 * pixel (keys: ./table.ts). The usage items are counted in the same transaction that records the frames
 * (JobStore.finishFrames), so they add up to the frames exactly, with no request of their own; a model's
 * record is added when a job ends (JobStore.finalizeIfDone), once.
 *
 * Two items a chunk, each a write unit doubled by the transaction, so every item here is paid per chunk
 * (docs/performance.md, "Cost"): the day's total, which a month's spend is summed from (at most 31 small
 * items under `DAY#`, one or two read units), and the day's split by model and shot together, under a
 * prefix of its own (`SPLIT#`) so that the month's read never pays for it. Reports by model or by shot
 * sum the splits. Items of the earlier layout (a `MONTH#` item, and `DAY#<day>#MODEL#`/`DAY#<day>#SHOT#`
 * items under the day) are still read right: the month skips them, the reports count them.
 */

const [BY_TENANT] = TABLE.indexes;

/** How the spend of recorded frames is counted: an ADD of gpuMs, costMicros and frames on each item. */
export const USAGE_ITEMS = 2;

const DAY = 'DAY#';
const SPLIT = 'SPLIT#';

/** The usage items a chunk's spend is added to, named so they never clash with a transaction's others. */
export function usageItems(
  table: string,
  job: Pick<JobRecord, 'tenant' | 'model' | 'shot'>,
  spend: Spend & { frames: number },
  now: Date,
): Record<string, TransactItem> {
  const day = dayOf(now);
  const add = (
    sk: string,
    attrs: Record<string, string>,
    index?: { gsi1pk: string; gsi1sk: string },
  ): TransactItem => {
    const all = { ...attrs, ...index };
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = {
      ':ms': spend.gpuMs,
      ':micros': spend.costMicros,
      ':frames': spend.frames,
    };
    const sets = Object.entries(all).map(([k, v], i) => {
      names[`#u${i}`] = k;
      values[`:u${i}`] = v;
      return `#u${i} = :u${i}`;
    });
    return {
      Update: {
        TableName: table,
        Key: usageKey(job.tenant, sk),
        UpdateExpression: `SET ${sets.join(', ')} ADD gpuMs :ms, costMicros :micros, frames :frames`,
        ExpressionAttributeNames: names,
        ExpressionAttributeValues: values,
      },
    };
  };
  return {
    u_day: add(
      `${DAY}${day}`,
      { tenant: job.tenant, day },
      { gsi1pk: 'USAGE', gsi1sk: `${day}#${job.tenant}` },
    ),
    u_split: add(`${SPLIT}${day}#MODEL#${job.model}#SHOT#${job.shot}`, {
      tenant: job.tenant,
      day,
      model: job.model,
      shot: job.shot,
    }),
  };
}

/** A finished job's GPU time and pixels, added to its model's record (the basis of estimates). */
export function modelStatsItem(table: string, job: JobRecord): TransactItem | undefined {
  const frames = job.succeeded + job.failed;
  if (!job.gpuMs || frames === 0) return undefined;
  return {
    Update: {
      TableName: table,
      Key: modelStatsKey(job.model),
      UpdateExpression: 'SET model = :m ADD gpuMs :ms, pixels :px, jobs :one',
      ExpressionAttributeValues: {
        ':m': job.model,
        ':ms': job.gpuMs,
        ':px': job.width * job.height * frames,
        ':one': 1,
      },
    },
  };
}

/** One usage item as read. */
export interface UsageRecord extends Spend {
  readonly tenant: string;
  readonly frames: number;
  readonly day?: string;
  readonly month?: string;
  readonly model?: string;
  readonly shot?: string;
}

/** A day's total, as against a split of it (by model and shot, or, before 2026-12-01, by one of them). */
export const isDayTotal = (item: UsageRecord): boolean => item.model === undefined && item.shot === undefined;

const toUsage = (item: Record<string, unknown>): UsageRecord => {
  const r = strip<UsageRecord>(item);
  return { ...r, gpuMs: r.gpuMs ?? 0, costMicros: r.costMicros ?? 0, frames: r.frames ?? 0 };
};

export class UsageStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  /** A tenant's spend in a month (yyyy-mm): what its budget is held against, summed from its day totals. */
  async month(tenant: string, month: string): Promise<Spend> {
    const days = await this.range(tenant, DAY, `${month}-01`, `${month}-31`, true);
    return days
      .filter(isDayTotal)
      .reduce((n, d) => ({ gpuMs: n.gpuMs + d.gpuMs, costMicros: n.costMicros + d.costMicros }), {
        gpuMs: 0,
        costMicros: 0,
      });
  }

  /**
   * A tenant's usage items of the days `from` to `to` (yyyy-mm-dd, inclusive): the day totals, and the
   * splits by model and shot (`isDayTotal` tells them apart).
   */
  async days(tenant: string, from: string, to: string): Promise<UsageRecord[]> {
    const [totals, splits] = await Promise.all([
      this.range(tenant, DAY, from, to),
      this.range(tenant, SPLIT, from, to),
    ]);
    return [...totals, ...splits];
  }

  /** The items of one kind whose day is `from` to `to`. */
  private range(tenant: string, prefix: string, from: string, to: string, consistent = false) {
    return this.query({
      TableName: this.table,
      KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
      ExpressionAttributeValues: {
        ':pk': usageKey(tenant, '').pk,
        ':from': `${prefix}${from}`,
        ':to': `${prefix}${to}~`,
      },
      ...(consistent && { ConsistentRead: true }),
    });
  }

  /** Every tenant's day totals of the days `from` to `to`: one query of the index, not a scan. */
  async allTenants(from: string, to: string): Promise<UsageRecord[]> {
    return this.query({
      TableName: this.table,
      IndexName: BY_TENANT!.name,
      KeyConditionExpression: '#pk = :pk AND #sk BETWEEN :from AND :to',
      ExpressionAttributeNames: { '#pk': BY_TENANT!.partitionKey, '#sk': BY_TENANT!.sortKey },
      ExpressionAttributeValues: { ':pk': 'USAGE', ':from': from, ':to': `${to}~` },
    });
  }

  /** A model's record of finished jobs, for estimates; undefined before its first. */
  async modelHistory(model: string): Promise<ModelHistory | undefined> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.table, Key: modelStatsKey(model) }));
    if (!Item) return undefined;
    return { gpuMs: Number(Item.gpuMs ?? 0), pixels: Number(Item.pixels ?? 0) };
  }

  private async query(input: ConstructorParameters<typeof QueryCommand>[0]): Promise<UsageRecord[]> {
    const out: UsageRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.db.send(new QueryCommand({ ...input, ExclusiveStartKey: startKey }));
      out.push(...(page.Items ?? []).map(toUsage));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return out;
  }
}
