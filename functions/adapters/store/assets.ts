import { randomUUID } from 'node:crypto';
import {
  BatchGetCommand,
  type BatchGetCommandOutput,
  BatchWriteCommand,
  type BatchWriteCommandInput,
  type BatchWriteCommandOutput,
  DeleteCommand,
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import type { AssetFileRecord, AssetRecord, AssetStatus, ImageInfo } from '../../core/assets.ts';
import { mapLimit, slices } from '../../core/concurrency.ts';
import { FramecastError } from '../../core/errors.ts';
import { TABLE } from '../../shared/resources.ts';
import {
  assetFileKey,
  assetKey,
  contentRecordKey as contentKey,
  isConditionFailure,
  strip,
  type TransactItem,
  transact,
} from './table.ts';

/**
 * Assets, their files, and which assets hold each stored content (keys: ./table.ts).
 *
 * Content is shared: each content has a record (`CONTENT#<t>#<sha256>`) whose `holders` set names the
 * assets that hold it. An asset is added to it in the same transaction that records its files, so no
 * file is ever recorded without its content held. Content is removed only under a claim that is taken
 * when no asset holds it, and that every new holder checks is absent; docs/architecture.md ("Assets")
 * tells why that makes removal safe against a concurrent upload.
 */

const [BY_TENANT] = TABLE.indexes;
type WriteRequests = NonNullable<BatchWriteCommandInput['RequestItems']>[string];
const tenantAssetsPk = (tenant: string) => `TENANT#${tenant}#ASSETS`;

/**
 * A claim older than this belongs to a deleter that died: an API handler lives 29 s at most, and a claim
 * is ended within its lifetime.
 */
export const CLAIM_STALE_MS = 60 * 1000;
/** DynamoDB takes 100 items per transaction; one is the asset's own. */
const TRANSACTION_ITEMS = 99;
/** Requests on distinct items that run side by side. */
const PARALLEL = 16;

const toFile = (item: Record<string, unknown>): AssetFileRecord => ({
  ...(typeof item.frame === 'number' && { frame: item.frame }),
  sha256: String(item.sha256),
  size: Number(item.size),
});

export type AddFilesResult =
  | { readonly ok: true }
  /** The asset is gone, or no longer uploading. */
  | { readonly ok: false; readonly reason: 'asset' }
  /** A concurrent request recorded one of these frames first: read them again and retry. */
  | { readonly ok: false; readonly reason: 'race' };

export interface ListAssetsQuery {
  readonly status?: AssetStatus;
  readonly limit: number;
  /** The last asset id of the previous page. */
  readonly after?: string;
}

export interface AssetStoreOptions {
  /** Waits between tries of a transaction that met a claim or a concurrent transaction. */
  readonly sleep?: (ms: number) => Promise<void>;
  readonly clock?: () => number;
}

export class AssetStore {
  private readonly sleep: (ms: number) => Promise<void>;
  private readonly clock: () => number;

  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    options: AssetStoreOptions = {},
  ) {
    this.sleep = options.sleep ?? ((ms) => new Promise((resolve) => setTimeout(resolve, ms)));
    this.clock = options.clock ?? Date.now;
  }

  // ---- assets -----------------------------------------------------------------------------------------

  async createAsset(asset: AssetRecord): Promise<void> {
    await this.db.send(
      new PutCommand({
        TableName: this.table,
        Item: { ...assetKey(asset.id), gsi1pk: tenantAssetsPk(asset.tenant), gsi1sk: asset.id, ...asset },
        ConditionExpression: 'attribute_not_exists(pk)',
      }),
    );
  }

  async getAsset(id: string): Promise<AssetRecord | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({ TableName: this.table, Key: assetKey(id), ConsistentRead: true }),
    );
    return Item ? strip<AssetRecord>(Item) : undefined;
  }

  /** A tenant's assets, newest first (ids are ULIDs), without those being deleted. */
  async listAssets(tenant: string, q: ListAssetsQuery): Promise<{ assets: AssetRecord[]; last?: string }> {
    const index = BY_TENANT!;
    const pk = tenantAssetsPk(tenant);
    const assets: AssetRecord[] = [];
    let startKey: Record<string, unknown> | undefined = q.after
      ? { ...assetKey(q.after), [index.partitionKey]: pk, [index.sortKey]: q.after }
      : undefined;
    for (let page = 0; page < 10 && assets.length < q.limit; page++) {
      const input: QueryCommandInput = {
        TableName: this.table,
        IndexName: index.name,
        KeyConditionExpression: '#pk = :pk',
        FilterExpression: q.status ? '#status = :status' : '#status <> :deleting',
        ExpressionAttributeNames: { '#pk': index.partitionKey, '#status': 'status' },
        ExpressionAttributeValues: {
          ':pk': pk,
          ...(q.status ? { ':status': q.status } : { ':deleting': 'deleting' }),
        },
        ScanIndexForward: false,
        Limit: q.limit - assets.length,
        ExclusiveStartKey: startKey,
      };
      const out = await this.db.send(new QueryCommand(input));
      assets.push(...(out.Items ?? []).map((i) => strip<AssetRecord>(i)));
      startKey = out.LastEvaluatedKey;
      if (!startKey) break;
    }
    const last = startKey ? String(startKey[index.sortKey]) : undefined;
    return last ? { assets, last } : { assets };
  }

  /** Moves an uploading asset to `ready` or `failed`; undefined when it was not uploading any more. */
  async finishAsset(
    id: string,
    outcome:
      | { status: 'ready'; width: number; height: number; completedAt: string }
      | { status: 'failed'; error: string },
  ): Promise<AssetRecord | undefined> {
    const fields = Object.entries(outcome);
    try {
      const { Attributes } = await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: assetKey(id),
          UpdateExpression: `SET ${fields.map((_, i) => `#f${i} = :v${i}`).join(', ')}`,
          ConditionExpression: '#status = :uploading',
          ExpressionAttributeNames: {
            '#status': 'status',
            ...Object.fromEntries(fields.map(([k], i) => [`#f${i}`, k])),
          },
          ExpressionAttributeValues: {
            ':uploading': 'uploading',
            ...Object.fromEntries(fields.map(([, v], i) => [`:v${i}`, v])),
          },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return Attributes ? strip<AssetRecord>(Attributes) : undefined;
    } catch (err) {
      if (isConditionFailure(err)) return undefined;
      throw err;
    }
  }

  /**
   * Marks the asset `deleting` (from any status): no file can be added to it from now on. Answers the
   * delete's claim token, the same for every attempt at deleting this asset, so a delete that is cut
   * short and repeated takes up its own claims; undefined when the asset does not exist.
   */
  async markDeleting(id: string): Promise<string | undefined> {
    try {
      const { Attributes } = await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: assetKey(id),
          UpdateExpression: 'SET #status = :deleting, deleteToken = if_not_exists(deleteToken, :token)',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':deleting': 'deleting', ':token': randomUUID() },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return String(Attributes?.deleteToken);
    } catch (err) {
      if (isConditionFailure(err)) return undefined;
      throw err;
    }
  }

  /** Deletes the asset's file records, then the asset record: the last step of a delete. */
  async deleteAsset(id: string, files: readonly AssetFileRecord[]): Promise<void> {
    await this.batchDelete(files.map((f) => assetFileKey(id, f.frame)));
    await this.db.send(new DeleteCommand({ TableName: this.table, Key: assetKey(id) }));
  }

  // ---- files ------------------------------------------------------------------------------------------

  /** Every file recorded for the asset, in frame order (the still alone for a still). */
  async listFiles(id: string): Promise<AssetFileRecord[]> {
    const files: AssetFileRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND begins_with(sk, :file)',
          ExpressionAttributeValues: { ':pk': assetKey(id).pk, ':file': 'FILE#' },
          ConsistentRead: true,
          ExclusiveStartKey: startKey,
        }),
      );
      files.push(...(out.Items ?? []).map(toFile));
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return files;
  }

  /** The recorded files of these frames (undefined: the still), by frame; absent ones are left out. */
  async getFiles(
    id: string,
    frames: readonly (number | undefined)[],
  ): Promise<Map<number | undefined, AssetFileRecord>> {
    const items = await this.batchGet(frames.map((f) => assetFileKey(id, f)));
    return new Map(items.map((item) => [toFile(item).frame, toFile(item)]));
  }

  /**
   * Records new files of an uploading asset in transactions of up to 100 items: the asset (still
   * uploading; its file count), the files, and for each of their contents the asset added to its holders,
   * on condition that no live removal claim is on it. Each transaction holds the contents of the files it
   * records, so no file is ever recorded without its content held. Transactions run one after another,
   * since each one updates the asset.
   */
  async addFiles(
    asset: Pick<AssetRecord, 'id' | 'tenant'>,
    files: readonly AssetFileRecord[],
    /** Called with each transaction's files once they are recorded, so work on them can start. */
    recorded: (files: readonly AssetFileRecord[]) => void = () => {},
  ): Promise<AddFilesResult> {
    for (const chunk of transactionsOf(files)) {
      const result = await this.addChunk(asset, chunk);
      if (!result.ok) return result;
      recorded(chunk);
    }
    return { ok: true };
  }

  private async addChunk(
    asset: Pick<AssetRecord, 'id' | 'tenant'>,
    chunk: readonly AssetFileRecord[],
  ): Promise<AddFilesResult> {
    for (let round = 0; ; round++) {
      const items: Record<string, TransactItem> = {
        asset: {
          Update: {
            TableName: this.table,
            Key: assetKey(asset.id),
            UpdateExpression: 'ADD files :n',
            ConditionExpression: '#status = :uploading',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: { ':n': chunk.length, ':uploading': 'uploading' },
          },
        },
      };
      for (const sha256 of new Set(chunk.map((f) => f.sha256))) {
        items[`content:${sha256}`] = {
          Update: {
            TableName: this.table,
            Key: contentKey(asset.tenant, sha256),
            // A stale claim (its deleter died) is cleared: whether the object survived, a HEAD tells.
            UpdateExpression: 'ADD holders :asset SET sha256 = :sha REMOVE claimedAt, #token',
            ConditionExpression: 'attribute_not_exists(claimedAt) OR claimedAt < :stale',
            ExpressionAttributeNames: { '#token': 'token' },
            ExpressionAttributeValues: {
              ':asset': new Set([asset.id]),
              ':sha': sha256,
              ':stale': this.clock() - CLAIM_STALE_MS,
            },
          },
        };
      }
      for (const file of chunk) {
        items[`file:${file.frame ?? 'still'}`] = {
          Put: {
            TableName: this.table,
            Item: { ...assetFileKey(asset.id, file.frame), ...file },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        };
      }
      const written = await transact(this.db, items);
      if (written.ok) return { ok: true };
      if (written.failed === 'asset') return { ok: false, reason: 'asset' };
      if (written.failed?.startsWith('file:')) return { ok: false, reason: 'race' };
      // A content being removed right now (a claim lives for a few requests' time), or a concurrent
      // transaction on the asset: the same write succeeds a moment later.
      if (round >= 20)
        throw new FramecastError('unavailable', 'the asset is being changed by other requests; retry');
      await this.sleep(Math.min(500, 25 * (round + 1)) + Math.random() * 25);
    }
  }

  // ---- holding and removing content ---------------------------------------------------------------------

  /**
   * Takes the asset out of the holders of these contents, and claims for removal, in the same update,
   * each content it was the last holder of (or that nobody holds, when a delete cut short is repeated).
   * The claim is taken only while no other asset holds the content, and a new holder is added only while
   * no live claim is on it, so the two exclude each other. Answers the contents claimed.
   */
  async releaseContents(
    tenant: string,
    assetId: string,
    sha256s: readonly string[],
    /** The delete's token (`markDeleting`): a claim of an earlier attempt with it is taken up again. */
    token: string,
  ): Promise<string[]> {
    const asset = new Set([assetId]);
    const claimed: string[] = [];
    await mapLimit(sha256s, PARALLEL, async (sha256) => {
      const now = this.clock();
      try {
        await this.db.send(
          new UpdateCommand({
            TableName: this.table,
            Key: contentKey(tenant, sha256),
            UpdateExpression: 'DELETE holders :asset SET claimedAt = :now, #token = :token',
            ConditionExpression:
              'attribute_exists(pk) AND (attribute_not_exists(holders) OR holders = :asset) AND ' +
              '(attribute_not_exists(claimedAt) OR claimedAt < :stale OR #token = :token)',
            ExpressionAttributeNames: { '#token': 'token' },
            ExpressionAttributeValues: {
              ':asset': asset,
              ':now': now,
              ':token': token,
              ':stale': now - CLAIM_STALE_MS,
            },
          }),
        );
        claimed.push(sha256);
        return;
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
      }
      // Others hold it (or another delete is removing it): only leave its holders.
      try {
        await this.db.send(
          new UpdateCommand({
            TableName: this.table,
            Key: contentKey(tenant, sha256),
            UpdateExpression: 'DELETE holders :asset',
            ConditionExpression: 'attribute_exists(pk)',
            ExpressionAttributeValues: { ':asset': asset },
          }),
        );
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
      }
    });
    return claimed;
  }

  /**
   * Deletes the records of claimed contents, once their objects are gone. Unconditional batch deletes
   * are safe here: nobody else can change a record under a live claim, and the claim is this handler's
   * until it is stale, longer than a handler lives.
   */
  async dropClaimed(tenant: string, sha256s: readonly string[]): Promise<void> {
    await this.batchDelete(sha256s.map((sha) => contentKey(tenant, sha)));
  }

  /** Lifts claims whose removal did not happen (S3 refused it), so a repeated delete can claim again. */
  async releaseClaims(tenant: string, sha256s: readonly string[], token: string): Promise<void> {
    await mapLimit(sha256s, PARALLEL, async (sha256) => {
      try {
        await this.db.send(
          new UpdateCommand({
            TableName: this.table,
            Key: contentKey(tenant, sha256),
            UpdateExpression: 'REMOVE claimedAt, #token',
            ConditionExpression: '#token = :token',
            ExpressionAttributeNames: { '#token': 'token' },
            ExpressionAttributeValues: { ':token': token },
          }),
        );
      } catch (err) {
        if (!isConditionFailure(err)) throw err;
      }
    });
  }

  /** What earlier checks read from the headers of these contents, by hash. */
  async imagesOf(tenant: string, sha256s: readonly string[]): Promise<Map<string, ImageInfo>> {
    const items = await this.batchGet(sha256s.map((sha) => contentKey(tenant, sha)));
    const images = new Map<string, ImageInfo>();
    for (const item of items) {
      const { format, width, height } = item as Partial<ImageInfo>;
      if (format && typeof width === 'number' && typeof height === 'number')
        images.set(String(item.sha256), { format, width, height });
    }
    return images;
  }

  /** Records what contents' headers say (a content's bytes never change), in transactions side by side. */
  async recordImages(tenant: string, images: readonly { sha256: string; image: ImageInfo }[]): Promise<void> {
    await mapLimit(slices(images, TRANSACTION_ITEMS), PARALLEL, async (batch) => {
      const items = Object.fromEntries(
        batch.map(({ sha256, image }): [string, TransactItem] => [
          sha256,
          {
            Update: {
              TableName: this.table,
              Key: contentKey(tenant, sha256),
              UpdateExpression: 'SET #format = :format, width = :width, height = :height',
              // Held by the asset being completed, so it exists; never create a record here.
              ConditionExpression: 'attribute_exists(pk)',
              ExpressionAttributeNames: { '#format': 'format' },
              ExpressionAttributeValues: {
                ':format': image.format,
                ':width': image.width,
                ':height': image.height,
              },
            },
          },
        ]),
      );
      // A reading not kept is read again next time: nothing to do when this fails.
      await transact(this.db, items).catch(() => undefined);
    });
  }

  private async batchGet(keys: readonly Record<string, unknown>[]): Promise<Record<string, unknown>[]> {
    const pages = await mapLimit(slices(keys, 100), PARALLEL, async (page) => {
      const found: Record<string, unknown>[] = [];
      let batch: Record<string, unknown>[] | undefined = page;
      for (let round = 0; batch && batch.length > 0; round++) {
        if (round > 0) await this.sleep(Math.min(1000, 50 * 2 ** round));
        const out: BatchGetCommandOutput = await this.db.send(
          new BatchGetCommand({ RequestItems: { [this.table]: { Keys: batch, ConsistentRead: true } } }),
        );
        found.push(...(out.Responses?.[this.table] ?? []));
        batch = out.UnprocessedKeys?.[this.table]?.Keys;
      }
      return found;
    });
    return pages.flat();
  }

  private async batchDelete(keys: readonly Record<string, unknown>[]): Promise<void> {
    await mapLimit(slices(keys, 25), PARALLEL, async (page) => {
      let requests: WriteRequests | undefined = page.map((Key) => ({ DeleteRequest: { Key } }));
      for (let round = 0; requests && requests.length > 0; round++) {
        if (round > 0) await this.sleep(Math.min(1000, 50 * 2 ** round));
        const out: BatchWriteCommandOutput = await this.db.send(
          new BatchWriteCommand({ RequestItems: { [this.table]: requests } }),
        );
        requests = out.UnprocessedItems?.[this.table];
      }
    });
  }
}

/**
 * Packs files into transactions of at most TRANSACTION_ITEMS items: one per file, and one per content of
 * those files. Files of a content with more than TRANSACTION_ITEMS - 1 frames (a held black frame, say)
 * are split over several transactions, each holding the content again. No transaction names an item
 * twice: a content's full unit leaves no room for another unit of it.
 */
export function transactionsOf(files: readonly AssetFileRecord[]): AssetFileRecord[][] {
  const byContent = new Map<string, AssetFileRecord[]>();
  for (const file of files) {
    const group = byContent.get(file.sha256);
    if (group) group.push(file);
    else byContent.set(file.sha256, [file]);
  }
  const transactions: AssetFileRecord[][] = [];
  let current: AssetFileRecord[] = [];
  let items = 0;
  for (const group of byContent.values()) {
    for (let i = 0; i < group.length; i += TRANSACTION_ITEMS - 1) {
      const unit = group.slice(i, i + TRANSACTION_ITEMS - 1);
      if (items + unit.length + 1 > TRANSACTION_ITEMS) {
        transactions.push(current);
        current = [];
        items = 0;
      }
      current.push(...unit);
      items += unit.length + 1;
    }
  }
  if (current.length > 0) transactions.push(current);
  return transactions;
}
