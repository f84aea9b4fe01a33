import {
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { EventType } from '../core/schemas.ts';
import { WEBHOOK_CLAIM_STALE_SECONDS } from '../shared/resources.ts';
import { isConditionFailure } from './store/table.ts';

/**
 * Webhook endpoints, signing secrets and delivery attempts, in the same table as jobs.
 *
 *   endpoint   pk TENANT#<t>   sk ENDPOINT#<id>
 *   secrets    pk TENANT#<t>   sk WEBHOOK_SECRET
 *   delivery   pk EVENT#<id>   sk DELIVERY#<target>   (target: an endpoint id, or "job" for the job's own URL)
 */

export interface EndpointRecord {
  readonly id: string;
  readonly tenant: string;
  readonly url: string;
  readonly events?: readonly EventType[];
  readonly createdAt: string;
  readonly disabledAt?: string;
  readonly disabledReason?: string;
}

export interface SecretsRecord {
  readonly current: string;
  readonly previous?: string;
  /** The previous secret still signs until then (ISO 8601). */
  readonly previousExpiresAt?: string;
  readonly rotatedAt?: string;
}

export interface AttemptRecord {
  readonly attempt: number;
  readonly at: string;
  readonly status?: number;
  readonly latencyMs: number;
  readonly error?: string;
  readonly manual?: boolean;
}

export type DeliveryStatus = 'pending' | 'retrying' | 'succeeded' | 'failed';

export interface DeliveryRecord {
  readonly eventId: string;
  readonly target: string;
  readonly url: string;
  readonly status: DeliveryStatus;
  readonly attemptCount: number;
  readonly attempts: readonly AttemptRecord[];
  readonly nextAttemptAt?: string;
  readonly claimedAt?: number;
}

/** Longer than the delivery Lambda's timeout: a claim this old was made by a sender that died. */
export const CLAIM_STALE_MS = WEBHOOK_CLAIM_STALE_SECONDS * 1000;

const tenantPk = (tenant: string) => `TENANT#${tenant}`;
const strip = <T>(item: Record<string, unknown>): T => {
  const { pk: _pk, sk: _sk, ...rest } = item;
  return rest as T;
};

export class WebhookStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    /** When a claim counts as its dead sender's (FRAMECAST_WEBHOOK_CLAIM_STALE_SECONDS). */
    private readonly claimStaleMs = CLAIM_STALE_MS,
  ) {}

  async putEndpoint(endpoint: EndpointRecord): Promise<void> {
    await this.db.send(
      new PutCommand({
        TableName: this.table,
        Item: { pk: tenantPk(endpoint.tenant), sk: `ENDPOINT#${endpoint.id}`, ...endpoint },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async getEndpoint(tenant: string, id: string): Promise<EndpointRecord | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: tenantPk(tenant), sk: `ENDPOINT#${id}` },
        ConsistentRead: true,
      }),
    );
    return Item ? strip<EndpointRecord>(Item) : undefined;
  }

  async listEndpoints(tenant: string): Promise<EndpointRecord[]> {
    const out: EndpointRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const page = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
          ExpressionAttributeValues: { ':pk': tenantPk(tenant), ':prefix': 'ENDPOINT#' },
          ExclusiveStartKey: startKey,
          ConsistentRead: true,
        }),
      );
      out.push(...(page.Items ?? []).map((i) => strip<EndpointRecord>(i)));
      startKey = page.LastEvaluatedKey;
    } while (startKey);
    return out;
  }

  /** Deletes an endpoint; false when there was none. */
  async deleteEndpoint(tenant: string, id: string): Promise<boolean> {
    try {
      await this.db.send(
        new DeleteCommand({
          TableName: this.table,
          Key: { pk: tenantPk(tenant), sk: `ENDPOINT#${id}` },
          ConditionExpression: 'attribute_exists(pk)',
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async disableEndpoint(tenant: string, id: string, reason: string, now: Date): Promise<void> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: tenantPk(tenant), sk: `ENDPOINT#${id}` },
          UpdateExpression: 'SET disabledAt = if_not_exists(disabledAt, :now), disabledReason = :reason',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':now': now.toISOString(), ':reason': reason },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  async getSecrets(tenant: string): Promise<SecretsRecord | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: tenantPk(tenant), sk: 'WEBHOOK_SECRET' },
        ConsistentRead: true,
      }),
    );
    return Item ? strip<SecretsRecord>(Item) : undefined;
  }

  /** Creates the tenant's first secret; returns the stored one when another request got there first. */
  async createSecrets(tenant: string, secret: string): Promise<SecretsRecord> {
    try {
      await this.db.send(
        new PutCommand({
          TableName: this.table,
          Item: { pk: tenantPk(tenant), sk: 'WEBHOOK_SECRET', current: secret },
          ConditionExpression: 'attribute_not_exists(pk)',
        }),
      );
      return { current: secret };
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
      return (await this.getSecrets(tenant))!;
    }
  }

  /** The new secret signs from now on; the old one too, until `previousExpiresAt`. */
  async rotateSecrets(
    tenant: string,
    was: string,
    next: string,
    previousExpiresAt: Date,
    now: Date,
  ): Promise<boolean> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: tenantPk(tenant), sk: 'WEBHOOK_SECRET' },
          UpdateExpression:
            'SET #current = :next, previous = :was, previousExpiresAt = :exp, rotatedAt = :now',
          ConditionExpression: '#current = :was',
          ExpressionAttributeNames: { '#current': 'current' },
          ExpressionAttributeValues: {
            ':next': next,
            ':was': was,
            ':exp': previousExpiresAt.toISOString(),
            ':now': now.toISOString(),
          },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async getDelivery(eventId: string, target: string): Promise<DeliveryRecord | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({
        TableName: this.table,
        Key: { pk: `EVENT#${eventId}`, sk: `DELIVERY#${target}` },
        ConsistentRead: true,
      }),
    );
    return Item ? strip<DeliveryRecord>(Item) : undefined;
  }

  async listDeliveries(eventId: string): Promise<DeliveryRecord[]> {
    const page = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': `EVENT#${eventId}`, ':prefix': 'DELIVERY#' },
      }),
    );
    return (page.Items ?? []).map((i) => strip<DeliveryRecord>(i));
  }

  /**
   * Claims attempt `attempt` of a delivery before it is made. Only one claim per attempt number
   * succeeds, so a duplicated queue message never sends twice; a delivered event is not sent again
   * unless a person asks (`manual`). A claim whose attempt was never recorded (the sender died) goes
   * stale after CLAIM_STALE_MS (or the store's setting), so the queue's redelivery of that message can
   * make the attempt. It must go stale before the event queue's visibility timeout brings the message
   * back, or the redelivery finds the claim live, takes itself for a duplicate and is deleted unsent.
   */
  async claimAttempt(
    eventId: string,
    target: string,
    url: string,
    attempt: number,
    manual: boolean,
    now: Date,
  ): Promise<boolean> {
    const fresh = '((attribute_not_exists(attemptCount) AND :prev = :zero) OR attemptCount = :prev)';
    const stale = '(attemptCount = :n AND claimedAt < :staleBefore AND size(attempts) < :n)';
    const notDelivered = manual ? '' : ' AND (attribute_not_exists(#status) OR #status <> :succeeded)';
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: { pk: `EVENT#${eventId}`, sk: `DELIVERY#${target}` },
          UpdateExpression:
            'SET attemptCount = :n, claimedAt = :now, eventId = :event, target = :target, #url = :url, #status = if_not_exists(#status, :pending), attempts = if_not_exists(attempts, :empty)',
          ConditionExpression: `(${fresh} OR ${stale})${notDelivered}`,
          ExpressionAttributeNames: { '#status': 'status', '#url': 'url' },
          ExpressionAttributeValues: {
            ':n': attempt,
            ':prev': attempt - 1,
            ':zero': 0,
            ':now': now.getTime(),
            ':staleBefore': now.getTime() - this.claimStaleMs,
            ':event': eventId,
            ':target': target,
            ':url': url,
            ':pending': 'pending',
            ':empty': [],
            ...(manual ? {} : { ':succeeded': 'succeeded' }),
          },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  async recordAttempt(
    eventId: string,
    target: string,
    attempt: AttemptRecord,
    status: DeliveryStatus,
    nextAttemptAt?: Date,
  ): Promise<void> {
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: { pk: `EVENT#${eventId}`, sk: `DELIVERY#${target}` },
        UpdateExpression: `SET attempts = list_append(if_not_exists(attempts, :empty), :attempt), #status = :status${
          nextAttemptAt ? ', nextAttemptAt = :next' : ' REMOVE nextAttemptAt'
        }`,
        ExpressionAttributeNames: { '#status': 'status' },
        ExpressionAttributeValues: {
          ':attempt': [attempt],
          ':empty': [],
          ':status': status,
          ...(nextAttemptAt && { ':next': nextAttemptAt.toISOString() }),
        },
      }),
    );
  }
}
