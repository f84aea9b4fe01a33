import { type DynamoDBDocumentClient, GetCommand, QueryCommand } from '@aws-sdk/lib-dynamodb';
import { newEventId } from '../../core/ids.ts';
import type { EventRecord, FrameRecord, JobRecord } from '../../core/model.ts';
import type { EventType } from '../../core/schemas.ts';
import { eventData } from '../../core/views.ts';
import { TABLE } from '../../shared/resources.ts';
import { eventKey, nowIso, strip } from './table.ts';

/**
 * Events, the seam for webhooks. They are written only inside the transaction of the change they
 * announce (see ./jobs.ts), with the item built here; this store reads them back.
 */

const [BY_TENANT] = TABLE.indexes;
const jobEventsPk = (jobId: string) => `JOB#${jobId}#EVENTS`;

/** The event that announces a change of `job` (and of `frame`, for frame events), as of `now`. */
export function newEvent(job: JobRecord, type: EventType, now: Date, frame?: FrameRecord): EventRecord {
  return {
    id: newEventId(now.getTime()),
    tenant: job.tenant,
    jobId: job.id,
    type,
    timestamp: nowIso(now),
    data: eventData(job, frame),
  };
}

/** The transaction item that records `event`, listed under its job. */
export function putEvent(table: string, event: EventRecord) {
  return {
    Put: {
      TableName: table,
      Item: { ...eventKey(event.id), gsi1pk: jobEventsPk(event.jobId), gsi1sk: event.id, ...event },
      ConditionExpression: 'attribute_not_exists(pk)',
    },
  };
}

export class EventStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async getEvent(id: string): Promise<EventRecord | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({ TableName: this.table, Key: eventKey(id), ConsistentRead: true }),
    );
    return Item ? strip<EventRecord>(Item) : undefined;
  }

  /** A job's newest events, newest first (the GSI is eventually consistent: a second behind at most). */
  async latestEvents(jobId: string, limit = 25): Promise<EventRecord[]> {
    const index = BY_TENANT!;
    const out = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: index.name,
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: { '#pk': index.partitionKey },
        ExpressionAttributeValues: { ':pk': jobEventsPk(jobId) },
        ScanIndexForward: false,
        Limit: limit,
      }),
    );
    return (out.Items ?? []).map((i) => strip<EventRecord>(i));
  }

  /** A job's events, oldest first, `limit` at a time after the event id `after`. */
  async listEvents(jobId: string, limit = 1000, after?: string): Promise<EventRecord[]> {
    const index = BY_TENANT!;
    const pk = jobEventsPk(jobId);
    const events: EventRecord[] = [];
    let startKey: Record<string, unknown> | undefined = after
      ? { ...eventKey(after), [index.partitionKey]: pk, [index.sortKey]: after }
      : undefined;
    do {
      const out = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: index.name,
          KeyConditionExpression: '#pk = :pk',
          ExpressionAttributeNames: { '#pk': index.partitionKey },
          ExpressionAttributeValues: { ':pk': pk },
          ExclusiveStartKey: startKey,
          Limit: limit - events.length,
        }),
      );
      events.push(...(out.Items ?? []).map((i) => strip<EventRecord>(i)));
      startKey = out.LastEvaluatedKey;
    } while (startKey && events.length < limit);
    return events;
  }
}
