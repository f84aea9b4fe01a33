import {
  type DynamoDBDocumentClient,
  GetCommand,
  PutCommand,
  QueryCommand,
  type QueryCommandInput,
  ScanCommand,
  UpdateCommand,
} from '@aws-sdk/lib-dynamodb';
import {
  approvedRecord,
  auditId,
  DEFAULT_AUDIT_RETENTION_DAYS,
  type JobEnd,
  jobCreatedRecord,
  jobEndRecords,
  jobFinishedRecords,
  type ModelIdentity,
  reopenedRecord,
} from '../../core/audit.ts';
import { FramecastError } from '../../core/errors.ts';
import { frameCount } from '../../core/frames.ts';
import type { EventRecord, FailedWindow, FrameRecord, JobRecord } from '../../core/model.ts';
import { jobEnd, type ProgressMarks, progressDue, unfinishedFrames } from '../../core/progress.ts';
import type { Actor, AuditRecord, EventType, FrameStatus, JobStatus } from '../../core/schemas.ts';
import {
  canMoveJob,
  frameStatusesBefore,
  generatingJobStatuses,
  jobStartStatuses,
  jobStatusesBefore,
  liveJobStatuses,
  reopenedFrameStatus,
  reopenedJobStatus,
  reopeningJobStatuses,
} from '../../core/state.ts';
import { logger } from '../../logger.ts';
import { TABLE } from '../../shared/resources.ts';
import { auditKey, auditPut } from './audit.ts';
import { newEvent, putEvent } from './events.ts';
import {
  backOff,
  CONFLICT_ROUNDS,
  frameKey,
  frameSk,
  idempotencyKey,
  isConditionFailure,
  jobKey,
  nowIso,
  statusIn,
  strip,
  type TransactItem,
  transact,
} from './table.ts';
import { modelStatsItem, USAGE_ITEMS, usageItems } from './usage.ts';

/**
 * Jobs, their frames and idempotency keys (keys: ./table.ts).
 *
 * Every state change is a conditional write, and the change, its counters and the event it announces
 * are written in one transaction: SQS may deliver a frame twice, but it is counted and announced once.
 * The status conditions come from the state machine (core/state.ts) through `statusIn`.
 */

const IDEMPOTENCY_TTL_SECONDS = 24 * 3600;
const [BY_TENANT, BY_SHOT] = TABLE.indexes;

const notAwaitingReview = (job: JobRecord) =>
  new FramecastError(
    'conflict',
    job.review
      ? `job is ${job.status}, not awaiting_review; only a job waiting for review can be approved or rejected`
      : 'job has no review gate; only a job waiting for review can be approved or rejected',
    { status: job.status },
  );

const toFrame = (item: Record<string, unknown>): FrameRecord => strip<FrameRecord>(item);

function toJob(item: Record<string, unknown>): JobRecord {
  const { unfinished: _unfinished, ...job } = strip<
    JobRecord & { failedFrames?: Set<number> | number[]; unfinished?: number }
  >(item);
  const failed = job.failedFrames instanceof Set ? [...job.failedFrames] : (job.failedFrames ?? []);
  return { ...job, failedFrames: failed.sort((a, b) => a - b) };
}

export type CreateJobResult = { job: JobRecord; created: boolean };
export type StartFrameResult =
  | { started: true; attempts: number }
  | { started: false; reason: 'done' | 'job-ended' };
export type FinishFrameResult = 'recorded' | 'duplicate' | 'job-ended';
export type StartFramesResult =
  | { ok: true; started: number[]; done: number[] }
  | { ok: false; reason: 'job-ended' };

/** A frame a worker made, or gave up on, ready to be recorded. */
export type FinishedFrame =
  | ({ status: 'succeeded' } & Pick<FrameRecord, 'frame' | 'seed' | 'sha256' | 'size' | 'key'> &
      Partial<Pick<FrameRecord, 'predictTime' | 'inputs' | 'gpuMs' | 'costMicros'>>)
  | ({ status: 'failed' } & Pick<FrameRecord, 'frame' | 'seed' | 'error'> &
      Partial<Pick<FrameRecord, 'gpuMs' | 'costMicros'>>);

/** The spend of the frames a write records (core/cost.ts): counted on the job and the tenant's usage. */
function spendOf(frames: readonly Pick<FrameRecord, 'gpuMs' | 'costMicros'>[]) {
  let gpuMs = 0;
  let costMicros = 0;
  for (const f of frames) {
    gpuMs += f.gpuMs ?? 0;
    costMicros += f.costMicros ?? 0;
  }
  return { gpuMs, costMicros, frames: frames.length };
}

export interface FinishFramesResult {
  readonly recorded: FinishedFrame[];
  readonly duplicates: number[];
  /** The frame events written, to be published when anyone listens. */
  readonly events: EventRecord[];
  /** This write may have finished the job: read it (the worker's afterWork). */
  readonly last: boolean;
  /** The job ended (canceled) before the frames were recorded: they count as canceled. */
  readonly jobEnded: boolean;
}

function toFinishedRecord(job: JobRecord, r: FinishedFrame, now: Date): FrameRecord {
  const { status, ...rest } = r;
  const defined = Object.fromEntries(Object.entries(rest).filter(([, v]) => v !== undefined));
  return {
    jobId: job.id,
    status,
    ...defined,
    ...(r.status === 'failed' && { error: r.error?.slice(0, 1000) }),
    finishedAt: nowIso(now),
  } as FrameRecord;
}

export interface ListJobsQuery {
  readonly shot?: string;
  readonly status?: JobStatus;
  readonly limit: number;
  /** The last job id of the previous page. */
  readonly after?: string;
}

/** What the worker adds to a job's end for the audit trail: the frames as listed for the manifest, and the model. */
export interface FinishAudit {
  readonly frames: readonly FrameRecord[];
  readonly model: ModelIdentity;
}

/**
 * End-record parts written in the job's terminal transaction: the first (up to 100 KB of outputs, about 900
 * frames), so the transaction stays far below one partition's 1,000 write units a second (a transactional
 * write costs two per KB). A longer shot's further parts follow it, one conditional put each.
 */
const AUDIT_PARTS_IN_TRANSACTION = 1;

export class JobStore {
  constructor(
    private readonly db: DynamoDBDocumentClient,
    private readonly table: string,
    /** How long audit records are kept (core/audit.ts). */
    private readonly auditRetentionDays = DEFAULT_AUDIT_RETENTION_DAYS,
  ) {}

  private auditItem(record: AuditRecord): TransactItem {
    return auditPut(this.table, record, this.auditRetentionDays);
  }

  /**
   * The audit records of a job a person ends (cancel, reject): the frames made so far, read consistently.
   * Written with the end, whose condition on the job's counts keeps the list true.
   */
  private async endAudit(job: JobRecord, end: JobEnd): Promise<AuditRecord[]> {
    const frames =
      job.succeeded > 0 ? await this.listFrames(job.id, job.frames.start, job.frames.end, true) : [];
    return jobEndRecords(job, frames, end);
  }

  /**
   * A canceled job's frames, after the cancel: records of the same kind and time as the cancel's own, parts
   * 1 to n (the cancel's record is part 0, without outputs). Never throws (see afterTransaction).
   */
  private async listCanceledFrames(job: JobRecord, end: JobEnd): Promise<void> {
    try {
      const frames = await this.listFrames(job.id, job.frames.start, job.frames.end, true);
      const parts = jobEndRecords(job, frames, end);
      const records = parts.map((r, i) => ({
        ...r,
        id: auditId(end.at, job.id, end.kind, String(i + 1).padStart(4, '0')),
        part: { index: i + 1, count: parts.length + 1 },
      }));
      await this.afterTransaction(records, 0);
    } catch (err) {
      logger.error('the frames of a canceled job could not be listed for its audit record', {
        jobId: job.id,
        error: err as Error,
      });
    }
  }

  /** The first parts go in the transaction of the change; the rest of a long shot's, once it is written. */
  private inTransaction(records: readonly AuditRecord[]): TransactItem[] {
    return records.slice(0, AUDIT_PARTS_IN_TRANSACTION).map((r) => this.auditItem(r));
  }

  /**
   * Never throws: the change is written, and its event must still be sent. A part that cannot be written
   * (the SDK's retries spent) is logged by id; its head record says how many parts there are.
   */
  private async afterTransaction(
    records: readonly AuditRecord[],
    from = AUDIT_PARTS_IN_TRANSACTION,
  ): Promise<void> {
    for (const r of records.slice(from)) {
      try {
        await this.db.send(new PutCommand(this.auditItem(r).Put!));
      } catch (err) {
        if (isConditionFailure(err)) continue;
        logger.error('an audit record part could not be written', {
          tenant: r.tenant,
          auditId: r.id,
          error: err as Error,
        });
      }
    }
  }

  // ---- jobs -------------------------------------------------------------------------------------------

  /**
   * Writes a new job, or with an idempotency key returns the job first made with that key.
   * The key and the job are written in one transaction, so two concurrent requests make one job.
   */
  async createJob(job: JobRecord, idempotencyKeyHash?: string, now = new Date()): Promise<CreateJobResult> {
    const jobItem = {
      ...jobKey(job.id),
      gsi1pk: `TENANT#${job.tenant}`,
      gsi1sk: job.id,
      gsi2pk: `TENANT#${job.tenant}#SHOT#${job.shot}`,
      gsi2sk: job.id,
      ...job,
      failedFrames: undefined,
      // Frames not yet finished (succeeded, failed, or canceled by a failed window): the recording of a
      // chunk is conditional on more remaining than it finishes, so only the last one reads the job.
      unfinished: frameCount(job.frames) - job.succeeded - job.failed - job.canceled,
    };
    // The job's audit record is written with it: it exists exactly when the job does.
    const audit = this.auditItem(
      jobCreatedRecord(job, job.createdBy ?? { tenant: job.tenant, keyId: 'unknown' }),
    );
    if (!idempotencyKeyHash) {
      const written = await transact(this.db, {
        job: {
          Put: { TableName: this.table, Item: jobItem, ConditionExpression: 'attribute_not_exists(pk)' },
        },
        audit,
      });
      if (!written.ok) throw written.error;
      return { job, created: true };
    }
    const idemKey = idempotencyKey(job.tenant, idempotencyKeyHash);
    for (let round = 0; round < 5; round++) {
      const written = await transact(this.db, {
        key: {
          Put: {
            TableName: this.table,
            Item: {
              ...idemKey,
              jobId: job.id,
              requestHash: job.requestHash,
              expiresAt: Math.floor(now.getTime() / 1000) + IDEMPOTENCY_TTL_SECONDS,
            },
            // An expired key (TTL has not deleted it yet) no longer binds.
            ConditionExpression: 'attribute_not_exists(pk) OR expiresAt < :now',
            ExpressionAttributeValues: { ':now': Math.floor(now.getTime() / 1000) },
          },
        },
        job: {
          Put: { TableName: this.table, Item: jobItem, ConditionExpression: 'attribute_not_exists(pk)' },
        },
        audit,
      });
      if (written.ok) return { job, created: true };
      // A job id taken already is no idempotent replay: only the key's condition or a conflict is.
      if (written.failed !== 'key' && !written.conflict) throw written.error;
      // Another request holds the key (or is writing it right now): answer with its job.
      const { Item } = await this.db.send(
        new GetCommand({ TableName: this.table, Key: idemKey, ConsistentRead: true }),
      );
      if (!Item) continue;
      if (Item.requestHash !== job.requestHash) {
        throw new FramecastError(
          'idempotency_mismatch',
          'Idempotency-Key was already used with a different request body',
          { field: 'Idempotency-Key' },
        );
      }
      const first = await this.getJob(String(Item.jobId));
      if (first) return { job: first, created: false };
    }
    throw new FramecastError('conflict', 'Idempotency-Key is in use by a request still in progress; retry');
  }

  /**
   * Takes back a job whose plan message could not be sent, with its idempotency key, so no job is ever
   * visible that nothing will plan. Only while it is still queued and unplanned; false when it is not
   * (a concurrent replay queued it after all) or the condition failed.
   */
  async discardUnplannedJob(job: JobRecord, idempotencyKeyHash?: string): Promise<boolean> {
    const deleteJob = {
      Delete: {
        TableName: this.table,
        Key: jobKey(job.id),
        ConditionExpression: '#s = :queued AND attribute_not_exists(plannedUpTo)',
        ExpressionAttributeNames: { '#s': 'status' },
        ExpressionAttributeValues: { ':queued': 'queued' },
      },
    };
    // The job's audit record goes with it: the job was never accepted (the caller is told so), and a
    // record exists exactly when the job does. The only removal of an audit record besides its TTL.
    const audit = {
      Delete: {
        TableName: this.table,
        Key: auditKey(job.tenant, auditId(job.createdAt, job.id, 'job.created')),
      },
    };
    const written = idempotencyKeyHash
      ? await transact(this.db, {
          job: deleteJob,
          audit,
          key: {
            Delete: {
              TableName: this.table,
              Key: idempotencyKey(job.tenant, idempotencyKeyHash),
              ConditionExpression: 'jobId = :id',
              ExpressionAttributeValues: { ':id': job.id },
            },
          },
        })
      : await transact(this.db, { job: deleteJob, audit });
    return written.ok;
  }

  async getJob(id: string): Promise<JobRecord | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({ TableName: this.table, Key: jobKey(id), ConsistentRead: true }),
    );
    return Item ? toJob(Item) : undefined;
  }

  /** A tenant's jobs, newest first. Filters on status are applied page by page, so a page may be short. */
  async listJobs(tenant: string, q: ListJobsQuery): Promise<{ jobs: JobRecord[]; last?: string }> {
    const index = q.shot ? BY_SHOT! : BY_TENANT!;
    const pkValue = q.shot ? `TENANT#${tenant}#SHOT#${q.shot}` : `TENANT#${tenant}`;
    const jobs: JobRecord[] = [];
    let startKey: Record<string, unknown> | undefined = q.after
      ? { ...jobKey(q.after), [index.partitionKey]: pkValue, [index.sortKey]: q.after }
      : undefined;
    // Bounded: a rare status over many jobs answers with a short page and a cursor, not a long scan.
    for (let page = 0; page < 10 && jobs.length < q.limit; page++) {
      const input: QueryCommandInput = {
        TableName: this.table,
        IndexName: index.name,
        KeyConditionExpression: '#pk = :pk',
        ExpressionAttributeNames: { '#pk': index.partitionKey },
        ExpressionAttributeValues: { ':pk': pkValue },
        ScanIndexForward: false,
        Limit: q.limit - jobs.length,
        ExclusiveStartKey: startKey,
      };
      if (q.status) {
        input.FilterExpression = '#status = :status';
        input.ExpressionAttributeNames = { ...input.ExpressionAttributeNames, '#status': 'status' };
        input.ExpressionAttributeValues = { ...input.ExpressionAttributeValues, ':status': q.status };
      }
      const out = await this.db.send(new QueryCommand(input));
      jobs.push(...(out.Items ?? []).map(toJob));
      startKey = out.LastEvaluatedKey;
      if (!startKey) break;
    }
    const last = startKey ? String(startKey[index.sortKey]) : undefined;
    return last ? { jobs, last } : { jobs };
  }

  /**
   * Jobs not yet finished, across tenants. A table scan: for local mode's recovery after a restart
   * (its SQS emulator keeps no messages), never on a request path.
   */
  async unfinishedJobs(): Promise<JobRecord[]> {
    const live = statusIn(liveJobStatuses());
    const jobs: JobRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.db.send(
        new ScanCommand({
          TableName: this.table,
          FilterExpression: `sk = :job AND ${live.condition}`,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':job': 'JOB', ...live.values },
          ExclusiveStartKey: startKey,
        }),
      );
      jobs.push(...(out.Items ?? []).map(toJob));
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return jobs;
  }

  /** Forgets how far the fan-out got, so a new plan message queues every unfinished frame again. */
  async resetPlan(jobId: string): Promise<void> {
    await this.db.send(
      new UpdateCommand({
        TableName: this.table,
        Key: jobKey(jobId),
        UpdateExpression: 'REMOVE plannedUpTo',
      }),
    );
  }

  /**
   * Records that the fan-out queued every frame before `upTo`; only moves forward. `releaseAt`: the frame
   * whose chunk asks for the next release of a job queued in steps (core/fair-share.ts).
   */
  async advancePlan(jobId: string, upTo: number, releaseAt?: number): Promise<void> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: jobKey(jobId),
          UpdateExpression: `SET plannedUpTo = :upTo${releaseAt === undefined ? '' : ', releaseAt = :at'}`,
          ConditionExpression:
            'attribute_exists(pk) AND (attribute_not_exists(plannedUpTo) OR plannedUpTo < :upTo)',
          ExpressionAttributeValues: { ':upTo': upTo, ...(releaseAt !== undefined && { ':at': releaseAt }) },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  /** queued -> running, with its job.started event, once. Returns the event when this call made the move. */
  async markStarted(job: JobRecord, now = new Date()): Promise<EventRecord | undefined> {
    const started = { ...job, status: 'running' as const, startedAt: nowIso(now) };
    const event = newEvent(started, 'job.started', now);
    const from = statusIn(jobStartStatuses());
    const moved = await this.updateJobWithEvent(
      job.id,
      {
        set: 'SET #status = :to, startedAt = :now',
        condition: from.condition,
        values: { ':to': started.status, ':now': started.startedAt, ...from.values },
      },
      event,
    );
    return moved ? event : undefined;
  }

  /**
   * Stops a job: frames not yet finished count as canceled. Optimistic: the write is conditional on the
   * counts read, so a frame finishing at the same moment is either counted before the cancel or not at all.
   */
  async cancelJob(
    jobId: string,
    now = new Date(),
    /** Who canceled, for the job's audit record. */
    by?: Actor,
  ): Promise<{ job: JobRecord; event?: EventRecord }> {
    for (let round = 0; round < 10; round++) {
      const job = await this.getJob(jobId);
      if (!job) throw new FramecastError('not_found', 'job was not found');
      if (job.status === 'canceled') return { job };
      if (!canMoveJob(job.status, 'canceled')) {
        throw new FramecastError(
          'conflict',
          `job has already ${job.status}; only a ${jobStatusesBefore('canceled').join(' or ')} job can be canceled`,
        );
      }
      const canceled = unfinishedFrames(job);
      const done: JobRecord = { ...job, status: 'canceled', canceled, finishedAt: nowIso(now) };
      const event = newEvent(done, 'job.canceled', now);
      // The frames made until now, listed after the counts were read: the write's condition on those
      // counts means the list is what the cancel leaves behind.
      // The cancel's record (who, when) is written with it. The frames it made are listed after: a job
      // still generating finishes frames all the time, and a list taken before the write would keep the
      // cancel from ever matching the counts. Once canceled, no frame counts as made any more.
      const end: JobEnd = {
        kind: 'job.canceled',
        status: 'canceled',
        at: done.finishedAt!,
        model: { name: job.model },
        ...(by && { by }),
      };
      // Conditional on the status and counts just read: the move from that status was checked above.
      const moved = await this.updateJobWithEvent(
        jobId,
        {
          set: 'SET #status = :to, canceled = :n, finishedAt = :now',
          condition: '#status = :was AND succeeded = :s AND failed = :f',
          values: {
            ':to': done.status,
            ':n': canceled,
            ':now': done.finishedAt,
            ':was': job.status,
            ':s': job.succeeded,
            ':f': job.failed,
          },
        },
        event,
        true,
        this.inTransaction(jobEndRecords(job, [], end)),
      );
      if (moved) {
        if (job.succeeded > 0) await this.listCanceledFrames(job, end);
        return { job: done, event };
      }
    }
    throw new FramecastError('conflict', 'job is changing too fast to cancel; retry');
  }

  /**
   * Records the window that failed after every attempt, once per job (the first one), and counts as
   * canceled the `canceled` frames that will never be made because of it (in chained mode, the frames of
   * the windows after it, none of which has a record). Only while the job is live; false when another
   * window's failure or the job's end was recorded first.
   */
  async windowFailed(jobId: string, failed: FailedWindow, canceled: number): Promise<boolean> {
    const live = statusIn(liveJobStatuses());
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: jobKey(jobId),
          UpdateExpression: 'SET failedWindow = :failed, canceled = canceled + :n ADD unfinished :minus',
          ConditionExpression: `attribute_not_exists(failedWindow) AND ${live.condition}`,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':failed': failed,
            ':n': canceled,
            ':minus': -canceled,
            ...live.values,
          },
        }),
      );
      return true;
    } catch (err) {
      if (isConditionFailure(err)) return false;
      throw err;
    }
  }

  /**
   * A chunk taken after the job's `startBy`: its frames that no worker has started are canceled (a
   * record each, so a late duplicate never starts them) and counted, in one transaction. The first such
   * chunk also cancels the frames never released (from `plannedUpTo` to the end: no chunk of them exists)
   * and marks the job's plan done, conditional on `plannedUpTo` as read, so a release at the same moment
   * is counted once: frames at or past `unplannedCanceledFrom` are counted there, not again by their
   * chunk. Frames started before the deadline (they have a record) are left to be made. Returns the
   * frames this call canceled; `job-ended` when the job is no longer live.
   */
  async cancelUnstarted(
    job: JobRecord,
    frames: readonly { frame: number; seed: number }[],
    reason: string,
    now = new Date(),
  ): Promise<{ ok: true; canceled: number[] } | { ok: false; reason: 'job-ended' }> {
    // A transaction holds at most 100 items: the job and 90 frames at a time (a chunk may hold 100).
    const canceled: number[] = [];
    for (let i = 0; i === 0 || i < frames.length; i += 90) {
      const out = await this.cancelGroup(job, frames.slice(i, i + 90), reason, now);
      if (!out.ok) return out;
      canceled.push(...out.canceled);
    }
    return { ok: true, canceled };
  }

  private async cancelGroup(
    job: JobRecord,
    frames: readonly { frame: number; seed: number }[],
    reason: string,
    now: Date,
  ): Promise<{ ok: true; canceled: number[] } | { ok: false; reason: 'job-ended' }> {
    const live = statusIn(liveJobStatuses());
    const to: FrameStatus = 'canceled';
    let read = job;
    let pending = [...frames];
    for (let round = 0; round < 2 * CONFLICT_ROUNDS; round++) {
      const cutOff = read.unplannedCanceledFrom;
      const planned = read.plannedUpTo ?? read.frames.start;
      // The frames never released, counted once, by the first chunk to find the deadline passed.
      const unreleased = cutOff === undefined ? Math.max(0, read.frames.end + 1 - planned) : 0;
      const from = cutOff ?? planned;
      const counted = pending.filter((f) => f.frame < from).length + unreleased;
      const items: Record<string, TransactItem> = {
        job: {
          Update: {
            TableName: this.table,
            Key: jobKey(job.id),
            UpdateExpression: `SET canceledReason = if_not_exists(canceledReason, :reason)${
              cutOff === undefined ? ', unplannedCanceledFrom = :from, plannedUpTo = :end' : ''
            } ADD canceled :n, unfinished :minus`,
            ConditionExpression: `${live.condition} AND ${
              cutOff === undefined
                ? `attribute_not_exists(unplannedCanceledFrom) AND ${
                    read.plannedUpTo === undefined
                      ? 'attribute_not_exists(plannedUpTo)'
                      : 'plannedUpTo = :planned'
                  }`
                : 'attribute_exists(unplannedCanceledFrom)'
            }`,
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: {
              ':reason': reason,
              ':n': counted,
              ':minus': -counted,
              ...(cutOff === undefined && { ':from': from, ':end': read.frames.end + 1 }),
              ...(cutOff === undefined && read.plannedUpTo !== undefined && { ':planned': read.plannedUpTo }),
              ...live.values,
            },
          },
        },
      };
      for (const { frame, seed } of pending) {
        items[`f${frame}`] = {
          Put: {
            TableName: this.table,
            Item: {
              ...frameKey(job.id, frame),
              jobId: job.id,
              frame,
              status: to,
              seed,
              attempts: 0,
              error: reason,
              finishedAt: nowIso(now),
            },
            // A frame with a record was started before the deadline: it is made, not canceled.
            ConditionExpression: 'attribute_not_exists(pk)',
          },
        };
      }
      const written = await transact(this.db, items);
      if (written.ok) return { ok: true, canceled: pending.map((p) => p.frame) };
      const started = new Set(written.failedAll.filter((n) => n !== 'job'));
      if (started.size > 0) pending = pending.filter((p) => !started.has(`f${p.frame}`));
      if (written.failedAll.includes('job') || (!written.conflict && started.size === 0)) {
        // The job moved on (a release, another chunk's deadline, its end): read it again.
        const fresh = await this.getJob(job.id);
        if (!fresh || !liveJobStatuses().includes(fresh.status)) return { ok: false, reason: 'job-ended' };
        read = fresh;
      } else if (written.conflict && started.size === 0) {
        await backOff(round);
      }
      if (pending.length === 0 && read.unplannedCanceledFrom !== undefined) return { ok: true, canceled: [] };
    }
    throw new FramecastError('conflict', 'job is changing too fast to cancel its unstarted frames; retry');
  }

  // ---- frames -----------------------------------------------------------------------------------------

  async getFrame(jobId: string, frame: number): Promise<FrameRecord | undefined> {
    const { Item } = await this.db.send(
      new GetCommand({ TableName: this.table, Key: frameKey(jobId, frame), ConsistentRead: true }),
    );
    return Item ? toFrame(Item) : undefined;
  }

  /** The stored frames numbered `from` to `to`; frames no worker has touched have no record. */
  async listFrames(jobId: string, from: number, to: number, consistent = false): Promise<FrameRecord[]> {
    const frames: FrameRecord[] = [];
    let startKey: Record<string, unknown> | undefined;
    do {
      const out = await this.db.send(
        new QueryCommand({
          TableName: this.table,
          KeyConditionExpression: 'pk = :pk AND sk BETWEEN :from AND :to',
          ExpressionAttributeValues: { ':pk': `JOB#${jobId}`, ':from': frameSk(from), ':to': frameSk(to) },
          ExclusiveStartKey: startKey,
          ConsistentRead: consistent,
        }),
      );
      frames.push(...(out.Items ?? []).map(toFrame));
      startKey = out.LastEvaluatedKey;
    } while (startKey);
    return frames;
  }

  /**
   * A worker takes one frame and reads back its attempt count: what the naive baseline of the bench does
   * for every frame (the worker takes a chunk's frames at once, `startFrames`). Not when the frame is
   * already finished or the job has ended (a canceled job's frames are never generated).
   */
  async startFrame(job: JobRecord, frame: number, seed: number, now = new Date()): Promise<StartFrameResult> {
    const taken = await this.startFrames(job, [{ frame, seed }], now);
    if (!taken.ok) return { started: false, reason: 'job-ended' };
    if (taken.done.length > 0) return { started: false, reason: 'done' };
    const record = await this.getFrame(job.id, frame);
    return { started: true, attempts: record?.attempts ?? 1 };
  }

  /**
   * A worker takes a chunk's frames in one transaction: one more attempt on each, unless the job has
   * ended. Frames already finished (a duplicate delivery) are left out and named in `done`; the rest
   * are taken together. Conflicts with concurrent writers are tried again with back-off.
   */
  async startFrames(
    job: JobRecord,
    frames: readonly { frame: number; seed: number }[],
    now = new Date(),
  ): Promise<StartFramesResult> {
    const to: FrameStatus = 'running';
    const live = statusIn(liveJobStatuses());
    const from = statusIn(frameStatusesBefore(to));
    const done: number[] = [];
    let pending = [...frames];
    for (let round = 0; pending.length > 0; round++) {
      const items: Record<string, TransactItem> = {
        job: {
          ConditionCheck: {
            TableName: this.table,
            Key: jobKey(job.id),
            ConditionExpression: live.condition,
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: live.values,
          },
        },
      };
      for (const { frame, seed } of pending) {
        items[`f${frame}`] = {
          Update: {
            TableName: this.table,
            Key: frameKey(job.id, frame),
            UpdateExpression:
              'SET #status = :to, jobId = :job, #frame = :frame, seed = :seed, startedAt = :now ADD attempts :one',
            // A pending frame has no record yet.
            ConditionExpression: `attribute_not_exists(pk) OR ${from.condition}`,
            ExpressionAttributeNames: { '#status': 'status', '#frame': 'frame' },
            ExpressionAttributeValues: {
              ':to': to,
              ':job': job.id,
              ':frame': frame,
              ':seed': seed,
              ':now': nowIso(now),
              ':one': 1,
              ...from.values,
            },
          },
        };
      }
      const written = await transact(this.db, items);
      if (written.ok) return { ok: true, started: pending.map((p) => p.frame), done };
      if (written.failedAll.includes('job')) return { ok: false, reason: 'job-ended' };
      if (written.failedAll.length > 0) {
        const finished = new Set(written.failedAll);
        done.push(...pending.filter((p) => finished.has(`f${p.frame}`)).map((p) => p.frame));
        pending = pending.filter((p) => !finished.has(`f${p.frame}`));
        continue;
      }
      if (round >= CONFLICT_ROUNDS) throw written.error;
      await backOff(round);
    }
    return { ok: true, started: [], done };
  }

  /** One more attempt on a running frame, when the worker tries it again within one delivery. */
  async countAttempt(jobId: string, frame: number): Promise<void> {
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: frameKey(jobId, frame),
          UpdateExpression: 'ADD attempts :one',
          ConditionExpression: '#status = :running',
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':one': 1, ':running': 'running' satisfies FrameStatus },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  /**
   * Records finished frames (a chunk's, or a window's), each once, with the job's counts and their frame
   * events, in as few transactions as DynamoDB's item limit allows. The events are recorded whether or
   * not anyone listens (the job's event listing shows them; they cost no request of their own here):
   * the worker decides whether to send them.
   *
   * Each transaction also asks that more frames remain unfinished than it finishes. When that holds
   * (every chunk but the job's last), `last` is false and the caller need not read the job; when it
   * does not, the frames are recorded without it and `last` is true: this write may have finished
   * the job. Frames finished already (a duplicate delivery) are left out and named in `duplicates`;
   * if the job ended meanwhile (canceled), the frames count as canceled and `jobEnded` says so.
   *
   * `likelyLast`: the caller expects this to be the job's last write (its frames include the job's last
   * frame), so the last transaction does not ask for more to remain: asked, it would fail and be sent
   * again, a second transaction in the job's last moments. Wrong, it costs the caller one job read
   * (`last` is true), never a count.
   */
  async finishFrames(
    job: JobRecord,
    results: readonly FinishedFrame[],
    now = new Date(),
    options: { readonly likelyLast?: boolean } = {},
  ): Promise<FinishFramesResult> {
    const out: { recorded: FinishedFrame[]; duplicates: number[]; events: EventRecord[] } = {
      recorded: [],
      duplicates: [],
      events: [],
    };
    let last = false;
    // 100 items a transaction: the job, the tenant's usage items, and each frame with its event.
    const perTransaction = Math.floor((100 - 1 - USAGE_ITEMS) / 2);
    for (let i = 0; i < results.length; i += perTransaction) {
      const group = results.slice(i, i + perTransaction);
      const lastGroup = i + perTransaction >= results.length;
      const written = await this.finishGroup(job, group, now, !(options.likelyLast && lastGroup));
      if (written === 'job-ended') {
        await Promise.all(results.slice(i).map((r) => this.markFrameCanceled(job.id, r.frame)));
        return { ...out, last: true, jobEnded: true };
      }
      out.recorded.push(...written.recorded);
      out.duplicates.push(...written.duplicates);
      out.events.push(...written.events);
      last ||= written.last;
    }
    return { ...out, last: last || out.duplicates.length > 0, jobEnded: false };
  }

  private async finishGroup(
    job: JobRecord,
    results: readonly FinishedFrame[],
    now: Date,
    askForMore: boolean,
  ): Promise<
    { recorded: FinishedFrame[]; duplicates: number[]; events: EventRecord[]; last: boolean } | 'job-ended'
  > {
    const live = statusIn(liveJobStatuses());
    const duplicates: number[] = [];
    let pending = [...results];
    let expectMore = askForMore;
    for (let round = 0; ; round++) {
      if (pending.length === 0) return { recorded: [], duplicates, events: [], last: true };
      const items: Record<string, TransactItem> = {};
      const made: EventRecord[] = [];
      for (const r of pending) {
        const { frame, jobId: _jobId, ...record } = toFinishedRecord(job, r, now);
        const event = newEvent(job, `frame.${r.status}`, now, { ...record, frame, jobId: job.id });
        const attributes = { ...record, eventId: event.id };
        const from = statusIn(frameStatusesBefore(r.status), '#a_status');
        const names: Record<string, string> = { '#a_status': 'status' };
        const values: Record<string, unknown> = { ...from.values };
        const sets = Object.entries(attributes).map(([k, v], n) => {
          names[`#a${n}`] = k;
          values[`:a${n}`] = v;
          return `#a${n} = :a${n}`;
        });
        items[`f${frame}`] = {
          Update: {
            TableName: this.table,
            Key: frameKey(job.id, frame),
            UpdateExpression: `SET ${sets.join(', ')}`,
            ConditionExpression: from.condition,
            ExpressionAttributeNames: names,
            ExpressionAttributeValues: values,
          },
        };
        items[`e${frame}`] = putEvent(this.table, event);
        made.push(event);
      }
      const failed = pending.filter((r) => r.status === 'failed').map((r) => r.frame);
      const succeeded = pending.length - failed.length;
      const spend = spendOf(pending);
      items.job = {
        Update: {
          TableName: this.table,
          Key: jobKey(job.id),
          UpdateExpression: `SET succeeded = succeeded + :s, failed = failed + :f ADD unfinished :minus, gpuMs :ms, costMicros :micros${failed.length > 0 ? ', failedFrames :frameSet' : ''}`,
          ConditionExpression: expectMore ? `${live.condition} AND unfinished > :n` : live.condition,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':s': succeeded,
            ':f': failed.length,
            ':minus': -pending.length,
            ':ms': spend.gpuMs,
            ':micros': spend.costMicros,
            ...(expectMore && { ':n': pending.length }),
            ...(failed.length > 0 && { ':frameSet': new Set(failed) }),
            ...live.values,
          },
        },
      };
      Object.assign(items, usageItems(this.table, job, spend, now));
      const written = await transact(this.db, items);
      if (written.ok) return { recorded: pending, duplicates, events: made, last: !expectMore };
      const frames = new Set(written.failedAll.filter((n) => n.startsWith('f')));
      if (frames.size > 0) {
        duplicates.push(...pending.filter((r) => frames.has(`f${r.frame}`)).map((r) => r.frame));
        pending = pending.filter((r) => !frames.has(`f${r.frame}`));
        continue;
      }
      if (written.failedAll.includes('job')) {
        // Not live, or this may be the job's last write: once more without asking for more to come.
        if (!expectMore) return 'job-ended';
        expectMore = false;
        continue;
      }
      if (round >= CONFLICT_ROUNDS) throw written.error;
      await backOff(round);
    }
  }

  /** Records a stored frame and counts it, once; its frame.succeeded event is written with it. */
  async frameSucceeded(
    job: JobRecord,
    result: Pick<
      FrameRecord,
      | 'frame'
      | 'seed'
      | 'attempts'
      | 'sha256'
      | 'size'
      | 'key'
      | 'predictTime'
      | 'inputs'
      | 'gpuMs'
      | 'costMicros'
    >,
    now = new Date(),
  ): Promise<{ outcome: FinishFrameResult; event?: EventRecord }> {
    const frame: FrameRecord = {
      jobId: job.id,
      status: 'succeeded',
      ...result,
      finishedAt: nowIso(now),
    };
    return this.finishFrame(
      job,
      frame,
      'frame.succeeded',
      'SET succeeded = succeeded + :one ADD unfinished :minusOne, gpuMs :ms, costMicros :micros',
      now,
    );
  }

  /** Records a frame that failed every attempt, once, and lists it on the job. */
  async frameFailed(
    job: JobRecord,
    result: Pick<FrameRecord, 'frame' | 'seed' | 'attempts' | 'error' | 'gpuMs' | 'costMicros'>,
    now = new Date(),
  ): Promise<{ outcome: FinishFrameResult; event?: EventRecord }> {
    const frame: FrameRecord = { jobId: job.id, status: 'failed', ...result, finishedAt: nowIso(now) };
    return this.finishFrame(
      job,
      frame,
      'frame.failed',
      'SET failed = failed + :one ADD failedFrames :frameSet, unfinished :minusOne, gpuMs :ms, costMicros :micros',
      now,
      new Set([result.frame]),
    );
  }

  private async finishFrame(
    job: JobRecord,
    frame: FrameRecord,
    type: EventType,
    jobUpdate: string,
    now: Date,
    frameSet?: Set<number>,
  ): Promise<{ outcome: FinishFrameResult; event?: EventRecord }> {
    const event = newEvent(job, type, now, frame);
    const { frame: number, jobId: _jobId, ...attributes } = { ...frame, eventId: event.id };
    const from = statusIn(frameStatusesBefore(frame.status), '#a_status');
    const live = statusIn(liveJobStatuses());
    const names: Record<string, string> = {};
    const values: Record<string, unknown> = { ...from.values };
    const sets = Object.entries(attributes).map(([k, v], i) => {
      names[`#a${i}`] = k;
      values[`:a${i}`] = v;
      return `#a${i} = :a${i}`;
    });
    const spend = spendOf([frame]);
    const written = await transact(this.db, {
      ...usageItems(this.table, job, spend, now),
      frame: {
        Update: {
          TableName: this.table,
          Key: frameKey(job.id, number),
          UpdateExpression: `SET ${sets.join(', ')}`,
          ConditionExpression: from.condition,
          ExpressionAttributeNames: { ...names, '#a_status': 'status' },
          ExpressionAttributeValues: values,
        },
      },
      job: {
        Update: {
          TableName: this.table,
          Key: jobKey(job.id),
          UpdateExpression: jobUpdate,
          ConditionExpression: live.condition,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: {
            ':one': 1,
            ':minusOne': -1,
            ':ms': spend.gpuMs,
            ':micros': spend.costMicros,
            ...live.values,
            ...(frameSet ? { ':frameSet': frameSet } : {}),
          },
        },
      },
      event: putEvent(this.table, event),
    });
    if (written.ok) return { outcome: 'recorded', event };
    if (written.failed === 'frame') return { outcome: 'duplicate' };
    if (written.failed === 'job') {
      // The job ended (canceled) while this frame was generated: it counts among the canceled frames.
      await this.markFrameCanceled(job.id, number);
      return { outcome: 'job-ended' };
    }
    throw written.error;
  }

  private async markFrameCanceled(jobId: string, frame: number): Promise<void> {
    const to: FrameStatus = 'canceled';
    const from = statusIn(frameStatusesBefore(to));
    try {
      await this.db.send(
        new UpdateCommand({
          TableName: this.table,
          Key: frameKey(jobId, frame),
          UpdateExpression: 'SET #status = :to',
          ConditionExpression: from.condition,
          ExpressionAttributeNames: { '#status': 'status' },
          ExpressionAttributeValues: { ':to': to, ...from.values },
        }),
      );
    } catch (err) {
      if (!isConditionFailure(err)) throw err;
    }
  }

  /**
   * Reopens frames that failed every attempt, once their fault is fixed: the worker takes a redriven dead
   * letter (docs/reliability.md, "Poison and redrive") through here before it makes them. In one
   * transaction each frame goes back to pending (its record removed, so it is taken afresh, attempts from
   * one), the job's counts and `failedFrames` give it back, and a job that had failed for it moves
   * `failed -> running` with its job.reopened event and audit record. Frames that are not failed (another
   * copy of the message reopened them) are left out. Undefined when the job cannot take them (canceled).
   *
   * For a chained window that failed (`window`), the job's record of it goes too, and the frames after it,
   * which its failure counted canceled (`later`, none of them has a record), count as unfinished again:
   * the chain goes on from the window. Only while the job records that window as its failed one.
   */
  async reopenFrames(
    job: JobRecord,
    frames: readonly number[],
    reason: string,
    now = new Date(),
    window?: { readonly index: number; readonly later: number },
  ): Promise<{ job: JobRecord; reopened: number[]; event?: EventRecord } | undefined> {
    const failed = reopenedFrameStatus();
    let current = job;
    let pending = [...new Set(frames)].filter((f) => f >= job.frames.start && f <= job.frames.end);
    // The job, its event and audit record, and each frame: within DynamoDB's 100 items.
    if (pending.length > 97) throw new Error(`cannot reopen ${pending.length} frames at once (97 at most)`);
    for (let round = 0; ; round++) {
      // Reopened already (another copy of the message): nothing left to give back.
      if (pending.length === 0 || (window && current.failedWindow?.index !== window.index))
        return { job: current, reopened: [] };
      if (!reopeningJobStatuses().includes(current.status)) return undefined;
      const to = reopenedJobStatus(current.status);
      const gone = new Set(pending);
      // A job that runs again has not finished; a window reopened has not failed.
      const { finishedAt, failedWindow, ...rest } = current;
      const later = window?.later ?? 0;
      const after: JobRecord = {
        ...rest,
        status: to ?? current.status,
        ...(!to && finishedAt !== undefined && { finishedAt }),
        ...(!window && failedWindow !== undefined && { failedWindow }),
        failed: current.failed - pending.length,
        canceled: current.canceled - later,
        failedFrames: current.failedFrames.filter((f) => !gone.has(f)),
      };
      const removed = [...(to ? ['finishedAt'] : []), ...(window ? ['failedWindow'] : [])];
      const event = to ? newEvent(after, 'job.reopened', now) : undefined;
      const from = to ? statusIn([current.status]) : statusIn(reopeningJobStatuses());
      const items: Record<string, TransactItem> = {
        job: {
          Update: {
            TableName: this.table,
            Key: jobKey(job.id),
            UpdateExpression: `SET failed = failed - :n, canceled = canceled - :later${to ? ', #status = :to' : ''}${removed.length > 0 ? ` REMOVE ${removed.join(', ')}` : ''} ADD unfinished :all DELETE failedFrames :frames`,
            ConditionExpression: `${from.condition} AND failed >= :n AND canceled >= :later${window ? ' AND failedWindow.#index = :window' : ''}`,
            ExpressionAttributeNames: { '#status': 'status', ...(window && { '#index': 'index' }) },
            ExpressionAttributeValues: {
              ':n': pending.length,
              ':later': later,
              ':all': pending.length + later,
              ':frames': new Set(pending),
              ...(to && { ':to': to }),
              ...(window && { ':window': window.index }),
              ...from.values,
            },
          },
        },
        ...(event && {
          event: putEvent(this.table, event),
          audit: this.auditItem(reopenedRecord(after, pending, reason, nowIso(now))),
        }),
      };
      for (const frame of pending) {
        items[`f${frame}`] = {
          Delete: {
            TableName: this.table,
            Key: frameKey(job.id, frame),
            ConditionExpression: '#status = :failed',
            ExpressionAttributeNames: { '#status': 'status' },
            ExpressionAttributeValues: { ':failed': failed },
          },
        };
      }
      const written = await transact(this.db, items);
      if (written.ok) return { job: after, reopened: pending, ...(event && { event }) };
      const notFailed = new Set(written.failedAll.filter((n) => n.startsWith('f')));
      if (notFailed.size > 0) {
        pending = pending.filter((f) => !notFailed.has(`f${f}`));
        continue;
      }
      if (written.failedAll.includes('job')) {
        // Moved meanwhile (reopened by another copy, or canceled): read it and look again.
        const read = await this.getJob(job.id);
        if (!read || round >= CONFLICT_ROUNDS) return undefined;
        current = read;
        continue;
      }
      if (round >= CONFLICT_ROUNDS) throw written.error;
      await backOff(round);
    }
  }

  /**
   * Moves a job whose frames are all finished to succeeded or failed, with its event, exactly once.
   * Safe to call after every frame and on every redelivery: only the call that makes the move gets the event.
   */
  async finalizeIfDone(
    jobId: string,
    now = new Date(),
    /** The job as just read (consistently) by the caller, to save reading it again. */
    read?: JobRecord,
    /** The frames and model for the job.finished audit record(s), written in the same transaction. */
    audit?: FinishAudit,
  ): Promise<{ job: JobRecord; event?: EventRecord } | undefined> {
    const job = read ?? (await this.getJob(jobId));
    if (!job) return undefined;
    const end = jobEnd(job);
    if (!end) return { job };
    const done: JobRecord = { ...job, status: end.status, finishedAt: nowIso(now) };
    const event = newEvent(done, end.event, now);
    const from = statusIn(jobStatusesBefore(end.status));
    const records = audit
      ? jobFinishedRecords(job, audit.frames, audit.model, done.finishedAt!, end.status)
      : [];
    const moved = await this.updateJobWithEvent(
      jobId,
      {
        set: 'SET #status = :to, finishedAt = :now',
        condition: from.condition,
        values: { ':to': end.status, ':now': done.finishedAt, ...from.values },
      },
      event,
      false,
      this.inTransaction(records),
      // The model's record of time per pixel grows by the job's, in the move that ends it: once.
      modelStatsItem(this.table, job),
    );
    // Parts beyond one transaction (a shot of tens of thousands of frames) follow it.
    if (moved) await this.afterTransaction(records);
    return moved ? { job: done, event } : { job: (await this.getJob(jobId)) ?? job };
  }

  /**
   * The job.progress event due for the job as just read (core/progress.ts decides), recorded once: the
   * step and the quiet interval are also conditions on the job, so concurrent workers announce a step once.
   */
  async maybeProgress(job: JobRecord, now = new Date()): Promise<EventRecord | undefined> {
    const due = progressDue(job as JobRecord & ProgressMarks, now.getTime());
    if (!due) return undefined;
    const event = newEvent(job, 'job.progress', now);
    const generating = statusIn(generatingJobStatuses());
    const moved = await this.updateJobWithEvent(
      job.id,
      {
        set: 'SET progressStep = :step, progressAt = :now',
        condition: `${generating.condition} AND (attribute_not_exists(progressStep) OR progressStep < :step) AND (attribute_not_exists(progressAt) OR progressAt <= :quietUntil)`,
        values: {
          ':step': due.step,
          ':now': now.getTime(),
          ':quietUntil': due.quietUntil,
          ...generating.values,
        },
      },
      event,
    );
    return moved ? event : undefined;
  }

  // ---- review gates (docs/architecture.md, "Versions and review") --------------------------------------

  /**
   * running -> awaiting_review with its job.review_requested event, once: for a gated job whose review
   * frames are all finished (core/review.ts `reviewDue`, decided on the job as read; in that phase only
   * review frames are made, so its counts only grow towards the gate's).
   */
  async requestReview(job: JobRecord, now = new Date()): Promise<EventRecord | undefined> {
    const waiting: JobRecord = {
      ...job,
      status: 'awaiting_review',
      review: { ...job.review!, requestedAt: nowIso(now) },
    };
    const event = newEvent(waiting, 'job.review_requested', now);
    const from = statusIn(jobStatusesBefore(waiting.status));
    const moved = await this.updateJobWithEvent(
      job.id,
      {
        set: 'SET #status = :to, #review.requestedAt = :now',
        condition: `${from.condition} AND attribute_not_exists(#review.approvedAt)`,
        values: { ':to': waiting.status, ':now': nowIso(now), ...from.values },
        names: { '#review': 'review' },
      },
      event,
    );
    return moved ? event : undefined;
  }

  /**
   * awaiting_review -> running, recording who approved and when, with its job.approved event; the plan
   * position is forgotten so the plan message that follows queues the frames the gate held back. An
   * approve repeated once the job runs again answers the job (`approved: false`), so a caller whose
   * plan message was not sent can send it.
   */
  async approveJob(
    jobId: string,
    by: Actor,
    now = new Date(),
  ): Promise<{ job: JobRecord; event?: EventRecord }> {
    const job = await this.getJob(jobId);
    if (!job) throw new FramecastError('not_found', 'job was not found');
    if (job.review?.approvedAt && job.status !== 'awaiting_review') return { job };
    if (job.status !== 'awaiting_review') throw notAwaitingReview(job);
    const approved: JobRecord = {
      ...job,
      status: 'running',
      review: { ...job.review!, approvedBy: by, approvedAt: nowIso(now) },
    };
    const { plannedUpTo: _plannedUpTo, ...shown } = approved;
    const event = newEvent(shown, 'job.approved', now);
    const moved = await this.updateJobWithEvent(
      jobId,
      {
        set: 'SET #status = :to, #review.approvedBy = :by, #review.approvedAt = :now REMOVE plannedUpTo',
        condition: '#status = :was',
        values: { ':to': 'running', ':by': by, ':now': nowIso(now), ':was': job.status },
        names: { '#review': 'review' },
      },
      event,
      false,
      [this.auditItem(approvedRecord(job, by, nowIso(now)))],
    );
    if (!moved) return this.approveJob(jobId, by, now);
    return { job: shown, event };
  }

  /**
   * awaiting_review -> canceled, recording who rejected, when and why, with the job.canceled event a cancel
   * sends (its data carries the review). Nothing is generating while a job awaits review, so the counts
   * read are the counts written.
   */
  async rejectJob(
    jobId: string,
    by: Actor,
    reason: string | undefined,
    now = new Date(),
  ): Promise<{ job: JobRecord; event: EventRecord }> {
    const job = await this.getJob(jobId);
    if (!job) throw new FramecastError('not_found', 'job was not found');
    if (job.status !== 'awaiting_review') throw notAwaitingReview(job);
    const canceled = unfinishedFrames(job);
    const review = {
      ...job.review!,
      rejectedBy: by,
      rejectedAt: nowIso(now),
      ...(reason !== undefined && { reason }),
    };
    const done: JobRecord = { ...job, status: 'canceled', canceled, finishedAt: nowIso(now), review };
    const event = newEvent(done, 'job.canceled', now);
    const records = await this.endAudit(job, {
      kind: 'job.rejected',
      status: 'canceled',
      at: done.finishedAt!,
      model: { name: job.model },
      by,
      ...(reason !== undefined && { reason }),
    });
    const moved = await this.updateJobWithEvent(
      jobId,
      {
        set: 'SET #status = :to, canceled = :n, finishedAt = :now, #review = :review',
        condition: '#status = :was AND succeeded = :s AND failed = :f',
        values: {
          ':to': done.status,
          ':n': canceled,
          ':now': done.finishedAt,
          ':review': review,
          ':was': job.status,
          ':s': job.succeeded,
          ':f': job.failed,
        },
        names: { '#review': 'review' },
      },
      event,
      true,
      this.inTransaction(records),
    );
    if (!moved) return this.rejectJob(jobId, by, reason, now);
    await this.afterTransaction(records);
    return { job: done, event };
  }

  /**
   * After a job awaiting review is rejected or canceled: frames left `running` count as canceled. Only a
   * parallel gate leaves any (a frame its windows share with a window the gate held back waits for that
   * window's version), and no worker will finish them.
   */
  async cancelWaitingFrames(job: JobRecord): Promise<void> {
    const frames = await this.listFrames(job.id, job.frames.start, job.frames.end, true);
    for (const f of frames) if (f.status === 'running') await this.markFrameCanceled(job.id, f.frame);
  }

  /**
   * A conditional update of the job and the event that announces it, in one transaction.
   * False when the condition does not hold (another writer moved the job first), or on a conflict
   * with a concurrent transaction when `retryConflicts` asks to hear about it.
   */
  private async updateJobWithEvent(
    jobId: string,
    update: {
      set: string;
      condition: string;
      values: Record<string, unknown>;
      names?: Record<string, string>;
    },
    event: EventRecord,
    retryConflicts = false,
    /** Audit records of the change, written with it (core/audit.ts). */
    audit: readonly TransactItem[] = [],
    also?: TransactItem,
  ): Promise<boolean> {
    const items: Record<string, TransactItem> = {
      ...(also && { also }),
      job: {
        Update: {
          TableName: this.table,
          Key: jobKey(jobId),
          UpdateExpression: update.set,
          ConditionExpression: update.condition,
          ExpressionAttributeNames: { '#status': 'status', ...update.names },
          ExpressionAttributeValues: update.values,
        },
      },
      event: putEvent(this.table, event),
      ...Object.fromEntries(audit.map((item, i) => [`audit${i}`, item])),
    };
    const written = await transact(this.db, items);
    if (written.ok) return true;
    if (written.failed === 'job' || (retryConflicts && written.conflict)) return false;
    throw written.error;
  }
}
