import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import { keyIdOf } from '../../core/api-keys.ts';
import type { ApiKeyRecord } from '../../core/model.ts';
import { TABLE } from '../../shared/resources.ts';
import { apiKeyKey, nowIso, strip } from './table.ts';

const [BY_TENANT] = TABLE.indexes;
/**
 * Every key is also filed under one index partition by its short id, so ops can list keys and revoke one
 * by the id `keys list` shows, without scanning a table full of frames. Keys are few: one partition holds them.
 */
const KEYS_PK = 'APIKEYS';

/** A key as ops see it: its short id and record, never the key. */
export interface ApiKeyView extends ApiKeyRecord {
  readonly id: string;
}

/** API keys, by the SHA-256 of the key: the key itself is never stored. */
export class ApiKeyStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
  ) {}

  async putApiKey(key: ApiKeyRecord): Promise<void> {
    const index = BY_TENANT!;
    await this.db.send(
      new PutCommand({
        TableName: this.table,
        Item: {
          ...apiKeyKey(key.hash),
          [index.partitionKey]: KEYS_PK,
          [index.sortKey]: keyIdOf(key.hash),
          ...key,
        },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async getApiKey(hash: string): Promise<ApiKeyRecord | undefined> {
    const { Item } = await this.db.send(new GetCommand({ TableName: this.table, Key: apiKeyKey(hash) }));
    return Item ? strip<ApiKeyRecord>(Item) : undefined;
  }

  /** Every key filed by id (all made since ids exist), of one tenant when given, in id order. */
  async listApiKeys(tenant?: string): Promise<ApiKeyView[]> {
    const index = BY_TENANT!;
    const keys: ApiKeyView[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          IndexName: index.name,
          KeyConditionExpression: '#pk = :pk',
          ...(tenant !== undefined && { FilterExpression: '#tenant = :tenant' }),
          ExpressionAttributeNames: {
            '#pk': index.partitionKey,
            ...(tenant !== undefined && { '#tenant': 'tenant' }),
          },
          ExpressionAttributeValues: { ':pk': KEYS_PK, ...(tenant !== undefined && { ':tenant': tenant }) },
          ExclusiveStartKey: startKey,
        }),
      );
      for (const item of out.Items ?? []) {
        const record = strip<ApiKeyRecord>(item);
        keys.push({ id: keyIdOf(record.hash), ...record });
      }
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return keys;
  }

  /** The key of a short id, or undefined. Ids are 48 bits of the hash: two keys sharing one are refused. */
  async findApiKey(id: string): Promise<ApiKeyView | undefined> {
    const index = BY_TENANT!;
    const out = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        IndexName: index.name,
        KeyConditionExpression: '#pk = :pk AND #sk = :id',
        ExpressionAttributeNames: { '#pk': index.partitionKey, '#sk': index.sortKey },
        ExpressionAttributeValues: { ':pk': KEYS_PK, ':id': id },
      }),
    );
    const items = out.Items ?? [];
    if (items.length > 1) throw new Error(`${items.length} keys have the id ${id}: revoke by the key itself`);
    const record = items[0] && strip<ApiKeyRecord>(items[0]);
    return record && { id, ...record };
  }

  /** Marks the key revoked (the first revocation's time stays); the key's record is kept for the audit. */
  async revokeApiKey(hash: string, now = new Date()): Promise<ApiKeyRecord> {
    const out = await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: apiKeyKey(hash),
        UpdateExpression: 'SET revokedAt = if_not_exists(revokedAt, :now)',
        ConditionExpression: 'attribute_exists(pk)',
        ExpressionAttributeValues: { ':now': nowIso(now) },
        ReturnValues: 'ALL_NEW',
      }),
    );
    return strip<ApiKeyRecord>(out.Attributes ?? {});
  }
}
