import { type DynamoDBDocumentClient, PutCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { DEFAULT_AUDIT_RETENTION_DAYS } from '../../core/audit.ts';
import type { AuditRecord } from '../../core/schemas.ts';
import { AUDIT_KEY_PREFIX } from '../../shared/resources.ts';
import { strip, type TransactItem } from './table.ts';

/**
 * Audit records (core/audit.ts), in the one table:
 *
 *   audit  pk AUDIT#<tenant>  sk <ISO time>#<job id>#<kind>[#<unit>#<version> | #<part>]   expiresAt
 *
 * A tenant's trail is one partition sorted by time, so a time range is one Query, with no index. Every
 * record is put with `attribute_not_exists(pk)`: written once, refused if anything tries again, and never
 * updated (no code path updates or deletes an AUDIT# item; only TTL removes one, after the retention).
 */

export const auditKey = (tenant: string, id: string) => ({ pk: `${AUDIT_KEY_PREFIX}${tenant}`, sk: id });

/** The put of a record, to go in the transaction of the change it records. */
export function auditPut(table: string, record: AuditRecord, retentionDays: number): TransactItem {
  return {
    Put: {
      TableName: table,
      Item: {
        ...auditKey(record.tenant, record.id),
        ...record,
        // Seconds since the epoch, counted from the record's own time.
        expiresAt: Math.floor(Date.parse(record.at) / 1000) + retentionDays * 86_400,
      },
      ConditionExpression: 'attribute_not_exists(pk)',
    },
  };
}

export interface AuditRange {
  /** Records at or after this ISO time. */
  readonly from: string;
  /** Records before this ISO time. */
  readonly to: string;
  /** The id of the last record of the previous page. */
  readonly after?: string;
  readonly limit: number;
}

export class AuditStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    readonly retentionDays = DEFAULT_AUDIT_RETENTION_DAYS,
  ) {}

  /** A record written on its own (a select, which has no transaction); throws if its id was written before. */
  async put(record: AuditRecord): Promise<void> {
    const { Put } = auditPut(this.table, record, this.retentionDays);
    await this.db.send(new PutCommand(Put!));
  }

  /**
   * A tenant's records in [from, to), oldest first. Ids start with their ISO time, and an id at `to`
   * sorts after `to` itself, so `BETWEEN from AND to` is the half-open range. Records past their
   * retention that TTL has not yet removed are left out.
   */
  async list(
    tenant: string,
    range: AuditRange,
    now = new Date(),
  ): Promise<{ records: AuditRecord[]; last?: string }> {
    const records: AuditRecord[] = [];
    let startKey: Record<string, unknown> | undefined = range.after
      ? auditKey(tenant, range.after)
      : undefined;
    do {
      const page = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          FilterExpression: 'attribute_not_exists(expiresAt) OR expiresAt > :now',
          ExpressionAttributeValues: {
            ':pk': `${AUDIT_KEY_PREFIX}${tenant}`,
            ':from': range.from,
            ':to': range.to,
            ':now': Math.floor(now.getTime() / 1000),
          },
          ExclusiveStartKey: startKey,
          Limit: range.limit - records.length,
          ConsistentRead: true,
        }),
      );
      for (const item of page.Items ?? []) records.push(strip<AuditRecord>(item));
      startKey = page.LastEvaluatedKey;
    } while (startKey && records.length < range.limit);
    const last = startKey && records.length > 0 ? records.at(-1)!.id : undefined;
    return { records, ...(last !== undefined && { last }) };
  }
}
