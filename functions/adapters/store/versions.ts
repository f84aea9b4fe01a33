import { type DynamoDBDocumentClient, GetCommand, QueryCommand, UpdateCommand } from '@aws-sdk/lib-dynamodb';
import { DEFAULT_AUDIT_RETENTION_DAYS } from '../../core/audit.ts';
import { FramecastError } from '../../core/errors.ts';
import type { EventRecord, FrameRecord, JobRecord, VersionRecord } from '../../core/model.ts';
import type { Unit } from '../../core/review.ts';
import type { AuditRecord } from '../../core/schemas.ts';
import { versionStatusesBefore } from '../../core/state.ts';
import { auditPut } from './audit.ts';
import { putEvent } from './events.ts';
import {
  backOff,
  CONFLICT_ROUNDS,
  frameKey,
  idempotencyKey,
  isConditionFailure,
  jobKey,
  statusIn,
  strip,
  type TransactItem,
  transact,
} from './table.ts';
import { usageItems } from './usage.ts';

/**
 * Frame versions and re-rolls (docs/architecture.md, "Versions and review"), in the one table:
 *
 *   version  pk JOB#<id>  sk VERSION#<10-digit unit start>#<4-digit version>
 *   unit     pk JOB#<id>  sk UNIT#<10-digit unit start>     latest, busy (a re-roll unfinished), selected
 *
 * A unit is one frame, or the frames a window owns. Accepting a re-roll, and finishing one, are each one
 * transaction with the unit's head, so a unit has one unfinished re-roll at most.
 */

const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
const pad = (n: number, width: number) => String(n).padStart(width, '0');
const versionsPrefix = (start: number) => `VERSION#${pad(start, 10)}#`;
const versionKey = (jobId: string, start: number, version: number) => ({
  pk: `JOB#${jobId}`,
  sk: `${versionsPrefix(start)}${pad(version, 4)}`,
});
const unitKey = (jobId: string, start: number) => ({ pk: `JOB#${jobId}`, sk: `UNIT#${pad(start, 10)}` });

export interface UnitHead {
  readonly latest: number;
  /** The version a re-roll is making now. */
  readonly busy?: number;
  readonly selected?: number;
}

export type AcceptResult =
  | { readonly outcome: 'accepted'; readonly version: VersionRecord }
  | { readonly outcome: 'replayed'; readonly version: VersionRecord }
  | { readonly outcome: 'busy' }
  | { readonly outcome: 'raced' };

export interface Acceptance {
  readonly job: JobRecord;
  readonly unit: Unit;
  /** The head as read, if the unit was re-rolled before. */
  readonly head?: UnitHead;
  readonly version: VersionRecord;
  /** Version 1, from the frame records, written with the unit's first re-roll. */
  readonly first?: VersionRecord;
  readonly idempotency?: { readonly keyHash: string; readonly requestHash: string };
}

export class VersionStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    /** How long audit records are kept (core/audit.ts). */
    private readonly auditRetentionDays = DEFAULT_AUDIT_RETENTION_DAYS,
  ) {}

  async head(jobId: string, start: number): Promise<UnitHead | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({ TableName: this.table, Key: unitKey(jobId, start), ConsistentRead: true }),
    );
    return Item ? strip<UnitHead>(Item) : undefined;
  }

  /** The versions of the unit starting at `start`, oldest first; none until its first re-roll. */
  async versions(jobId: string, start: number): Promise<VersionRecord[]> {
    const out = await this.db.send(
      new QueryCommand({
        TableName: this.table,
        KeyConditionExpression: 'pk = :pk AND begins_with(sk, :prefix)',
        ExpressionAttributeValues: { ':pk': `JOB#${jobId}`, ':prefix': versionsPrefix(start) },
        ConsistentRead: true,
      }),
    );
    return (out.Items ?? []).map((i) => strip<VersionRecord>(i));
  }

  async version(jobId: string, start: number, version: number): Promise<VersionRecord | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({
        TableName: this.table,
        Key: versionKey(jobId, start, version),
        ConsistentRead: true,
      }),
    );
    return Item ? strip<VersionRecord>(Item) : undefined;
  }

  /**
   * Records a re-roll: the unit's head (on condition that no re-roll of it is unfinished and that its latest
   * version is the one read), the new version `pending`, version 1 at the first re-roll, one more re-roll
   * on the job, and the Idempotency-Key. `replayed` when the key was used with the same request before.
   */
  async accept(a: Acceptance, now = new Date()): Promise<AcceptResult> {
    const { job, unit, version } = a;
    const headCondition = a.head
      ? { ConditionExpression: 'latest = :was AND attribute_not_exists(busy)', was: a.head.latest }
      : { ConditionExpression: 'attribute_not_exists(pk)', was: undefined };
    const idem = a.idempotency && idempotencyKey(job.tenant, a.idempotency.keyHash);
    const nowSeconds = Math.floor(now.getTime() / 1000);
    const items: Record<string, TransactItem> = {
      ...(idem && {
        key: {
          Put: {
            TableName: this.table,
            Item: {
              ...idem,
              jobId: job.id,
              requestHash: a.idempotency!.requestHash,
              reroll: { start: unit.start, version: version.version },
              expiresAt: nowSeconds + IDEMPOTENCY_TTL_SECONDS,
            },
            ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now',
            ExpressionAttributeValues: { ':now': nowSeconds },
          },
        },
      }),
      head: {
        Update: {
          TableName: this.table,
          Key: unitKey(job.id, unit.start),
          UpdateExpression: 'SET latest = :v, busy = :v, jobId = :job',
          ConditionExpression: headCondition.ConditionExpression,
          ExpressionAttributeValues: {
            ':v': version.version,
            ':job': job.id,
            ...(headCondition.was !== undefined && { ':was': headCondition.was }),
          },
        },
      },
      version: {
        Put: {
          TableName: this.table,
          Item: { ...versionKey(job.id, unit.start, version.version), ...version },
          ConditionExpression: 'attribute_not_exists(pk)',
        },
      },
      ...(a.first && {
        first: {
          Put: {
            TableName: this.table,
            Item: { ...versionKey(job.id, unit.start, 1), ...a.first },
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        },
      }),
      job: {
        Update: {
          TableName: this.table,
          Key: jobKey(job.id),
          UpdateExpression: 'ADD rerolls :one',
          ConditionExpression: 'attribute_exists(pk)',
          ExpressionAttributeValues: { ':one': 1 },
        },
      },
    };
    // The key first: when the key and the head both refuse, it is a replay, not a busy unit.
    const written = await transact(this.db, items);
    if (written.ok) return { outcome: 'accepted', version };
    if (written.failed === 'key') return this.replay(a);
    if (written.failed === 'head') {
      const head = await this.head(job.id, unit.start);
      return { outcome: head?.busy !== undefined ? 'busy' : 'raced' };
    }
    if (written.conflict) return { outcome: 'raced' };
    throw written.error;
  }

  /** The re-roll an Idempotency-Key first made, or a 422 when it was used with another request. */
  private async replay(a: Acceptance): Promise<AcceptResult> {
    const key = idempotencyKey(a.job.tenant, a.idempotency!.keyHash);
    const { Item } = await this.db.send(
      new GetCommand({ TableName: this.table, Key: key, ConsistentRead: true }),
    );
    if (!Item) return { outcome: 'raced' };
    const first = Item.reroll as { start: number; version: number } | undefined;
    if (Item.requestHash !== a.idempotency!.requestHash || !first || Item.jobId !== a.job.id) {
      throw new FramecastError(
        'idempotency_mismatch',
        'Idempotency-Key was already used with a different request',
        { field: 'Idempotency-Key' },
      );
    }
    const version = await this.version(a.job.id, first.start, first.version);
    if (!version) return { outcome: 'raced' };
    return { outcome: 'replayed', version };
  }

  /** A worker takes a version: one more attempt, unless it is finished. */
  async start(jobId: string, start: number, version: number): Promise<number | undefined> {
    const from = statusIn(versionStatusesBefore('running'));
    try {
      const out = await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: versionKey(jobId, start, version),
          UpdateExpression: 'SET #status = :to ADD attempts :one',
          ConditionExpression: from.condition,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':to': 'running', ':one': 1, ...from.values },
          ReturnValues: 'ALL_NEW',
        }),
      );
      return Number(out.Attributes?.attempts ?? 1);
    } catch (err) {
      if (isConditionFailure(err)) return undefined;
      throw err;
    }
  }

  /**
   * Records a version made or failed, once: the version finished, the unit's head free again, and the
   * frame.rerolled event, in one transaction, with its audit record when given. False when another
   * delivery recorded it first.
   */
  async finish(
    done: VersionRecord,
    event: EventRecord,
    audit?: AuditRecord,
    /** The job, for a re-roll's spend: counted on the job and the tenant's usage with the version. */
    job?: Pick<JobRecord, 'tenant' | 'model' | 'shot'>,
    now = new Date(),
  ): Promise<boolean> {
    const from = statusIn(versionStatusesBefore(done.status), '#status', 'was');
    const items: Record<string, TransactItem> = audit
      ? { audit: auditPut(this.table, audit, this.auditRetentionDays) }
      : {};
    if (job && done.gpuMs !== undefined && done.costMicros !== undefined) {
      const spend = {
        gpuMs: done.gpuMs,
        costMicros: done.costMicros,
        frames: done.status === 'succeeded' ? Object.keys(done.frames).length : 0,
      };
      // A re-roll's GPU time is spent like a frame's: on the job's cost and the tenant's usage, once,
      // with the move that records the version (docs/operations.md, "Prices, spend and budgets").
      items.job = {
        Update: {
          TableName: this.table,
          Key: jobKey(done.jobId),
          UpdateExpression: 'ADD gpuMs :ms, costMicros :micros',
          ExpressionAttributeValues: { ':ms': spend.gpuMs, ':micros': spend.costMicros },
        },
      };
      Object.assign(items, usageItems(this.table, job, spend, now));
    }
    const all: Record<string, TransactItem> = {
      ...items,
      version: {
        Update: {
          TableName: this.table,
          Key: versionKey(done.jobId, done.start, done.version),
          UpdateExpression:
            'SET #status = :to, finishedAt = :at, frames = :frames, attempts = :attempts' +
            (done.error !== undefined ? ', #error = :error' : '') +
            (done.gpuMs !== undefined ? ', gpuMs = :gpu, costMicros = :cost' : ''),
          ConditionExpression: from.condition,
          ExpressionAttributeNames: {
            '#status': 'status',
            ...(done.error !== undefined && { '#error': 'error' }),
          },
          ExpressionAttributeValues: {
            ':to': done.status,
            ':at': done.finishedAt,
            ':frames': done.frames,
            ':attempts': done.attempts,
            ...(done.error !== undefined && { ':error': done.error }),
            ...(done.gpuMs !== undefined && { ':gpu': done.gpuMs, ':cost': done.costMicros ?? 0 }),
            ...from.values,
          },
        },
      },
      head: {
        Update: {
          TableName: this.table,
          Key: unitKey(done.jobId, done.start),
          UpdateExpression: 'REMOVE busy',
          ConditionExpression: 'busy = :v',
          ExpressionAttributeValues: { ':v': done.version },
        },
      },
      event: putEvent(this.table, event),
    };
    // The job and the tenant's usage items are shared with every chunk of the tenant: a transaction
    // that meets another on them is tried again, with back-off, as finishFrames does.
    for (let round = 0; ; round++) {
      const written = await transact(this.db, all);
      if (written.ok) return true;
      if (written.failed === 'version' || written.failed === 'head') return false;
      if (!written.conflict || round >= CONFLICT_ROUNDS) throw written.error;
      await backOff(round);
    }
  }

  /**
   * Writes on each frame record of the unit what its versions are (for the manifest) and, when given, the
   * version selected: the frame's sha256, size and seed become that version's. Only on frames that
   * succeeded: a finished frame record is never moved by anything else.
   */
  async describeFrames(
    jobId: string,
    versions: readonly VersionRecord[],
    selected?: VersionRecord,
  ): Promise<void> {
    const frames = Object.keys(versions[0]?.frames ?? {}).map(Number);
    await Promise.all(
      frames.map(async (frame) => {
        const summary = versions.map((v) => {
          const f = v.frames[String(frame)];
          return {
            version: v.version,
            status: v.status,
            seed: f?.seed ?? v.seed,
            ...(v.params !== undefined && { params: v.params }),
            ...(f?.sha256 !== undefined && { sha256: f.sha256, size: f.size }),
            ...(f?.key !== undefined && { file: f.key.slice(f.key.lastIndexOf('/') + 1) }),
            createdAt: v.createdAt,
          };
        });
        const chosen = selected?.frames[String(frame)];
        const sets = ['versions = :versions'];
        const values: Record<string, unknown> = { ':versions': summary, ':ok': 'succeeded' };
        if (selected && chosen) {
          sets.push('selected = :selected', 'sha256 = :sha', '#size = :size', 'seed = :seed');
          Object.assign(values, {
            ':selected': selected.version,
            ':sha': chosen.sha256,
            ':size': chosen.size,
            ':seed': chosen.seed,
          });
        }
        try {
          await this.db.send(
            new UpdateCommand({
              TableName: this.table,
              Key: frameKey(jobId, frame),
              UpdateExpression: `SET ${sets.join(', ')}`,
              ConditionExpression: '#status = :ok',
              ExpressionAttributeNames: { '#status': 'status', ...(selected && { '#size': 'size' }) },
              ExpressionAttributeValues: values,
            }),
          );
        } catch (err) {
          if (!isConditionFailure(err)) throw err;
        }
      }),
    );
    if (selected) {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: unitKey(jobId, selected.start),
          UpdateExpression: 'SET selected = :v',
          ExpressionAttributeValues: { ':v': selected.version },
        }),
      );
    }
  }
}

/** Version 1 of a unit: its frames as the first generation made them (their records). */
export function firstVersion(
  job: JobRecord,
  unit: Unit,
  records: readonly FrameRecord[],
  seed: number,
): VersionRecord {
  const frames: Record<string, { seed: number; sha256?: string; size?: number; key?: string }> = {};
  for (const r of records) {
    frames[String(r.frame)] = {
      seed: r.seed,
      ...(r.sha256 !== undefined && { sha256: r.sha256 }),
      ...(r.size !== undefined && { size: r.size }),
      ...(r.key !== undefined && { key: r.key }),
    };
  }
  const finished = records
    .map((r) => r.finishedAt)
    .filter((t): t is string => t !== undefined)
    .sort();
  return {
    jobId: job.id,
    start: unit.start,
    end: unit.end,
    ...(unit.window !== undefined && { window: unit.window }),
    version: 1,
    status: 'succeeded',
    seed,
    ...(job.params !== undefined && { params: job.params }),
    attempts: Math.max(1, ...records.map((r) => r.attempts)),
    createdAt:
      records
        .map((r) => r.startedAt)
        .filter((t): t is string => t !== undefined)
        .sort()[0] ?? job.createdAt,
    ...(finished.length > 0 && { finishedAt: finished[finished.length - 1] }),
    frames,
  };
}
