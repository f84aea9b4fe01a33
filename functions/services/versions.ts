import { createHash } from 'node:crypto';
import type { FrameStore } from '../adapters/frame-store.ts';
import type { AuditStore } from '../adapters/store/audit.ts';
import type { JobStore } from '../adapters/store/jobs.ts';
import { firstVersion, type VersionStore } from '../adapters/store/versions.ts';
import type { Caller } from '../core/api-keys.ts';
import { selectedRecord } from '../core/audit.ts';
import { eachLimit } from '../core/concurrency.ts';
import { FramecastError, invalid } from '../core/errors.ts';
import {
  deliveredKey,
  frameSeed,
  hasThumbnail,
  manifestKey,
  randomSeed,
  thumbnailKey,
  versionKey,
} from '../core/frames.ts';
import { manifestOf } from '../core/manifest.ts';
import { encodeChunk, encodeWindow } from '../core/messages.ts';
import type { FrameRecord, JobRecord, VersionRecord } from '../core/model.ts';
import type { NamingTemplate } from '../core/naming.ts';
import { type Unit, unitOf } from '../core/review.ts';
import {
  type FrameDetail,
  type FrameVersion,
  type Reroll,
  RerollRequest,
  SelectVersionRequest,
} from '../core/schemas.ts';
import { isTerminalJob } from '../core/state.ts';
import { parse } from '../core/validation.ts';
import { toFrameResponse, toReroll } from '../core/views.ts';
import { planWindows, windowSeed } from '../core/windows.ts';
import { logger } from '../logger.ts';
import { frameLinks } from './frame-links.ts';
import { actorOf, canonicalJson, tenantJob } from './jobs.ts';

/**
 * Frame versions: re-roll, the versions of a frame, select (docs/architecture.md, "Versions and review").
 * A re-roll is recorded and queued here and made by the worker (functions/worker/reroll.ts); a select
 * copies the version onto the sequence name here.
 */
export interface VersionServiceDeps {
  readonly jobs: Pick<JobStore, 'getJob' | 'getFrame' | 'listFrames'>;
  readonly versions: VersionStore;
  readonly files: Pick<FrameStore, 'presignGet' | 'copy' | 'getFile' | 'putJson'>;
  /** Sends a message to the frame queue of the job's model. */
  readonly sendFrameMessage: (model: string, body: string) => Promise<void>;
  /** The production's naming template, which names versions as it names frames (the default when absent). */
  readonly naming?: NamingTemplate;
  /** Where a select's audit record is written (a select has no transaction to carry it). */
  readonly audit?: Pick<AuditStore, 'put'>;
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;
const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');

export class VersionService {
  constructor(private readonly deps: VersionServiceDeps) {}

  /** The frame a path names, in the job's range; a number outside it is not found. */
  private frameOf(job: JobRecord, param: string): number {
    if (!/^\d{1,7}$/.test(param)) throw invalid('frame', 'must be a frame number');
    const frame = Number(param);
    if (frame < job.frames.start || frame > job.frames.end) {
      throw new FramecastError(
        'not_found',
        `frame ${frame} was not found: the job's frames are ${job.frames.start}-${job.frames.end}`,
        { field: 'frame' },
      );
    }
    return frame;
  }

  /** The seed the first generation gave a unit: a frame's own, or its window's. */
  private firstSeed(job: JobRecord, unit: Unit): number {
    if (unit.window === undefined || !job.window) {
      return frameSeed(job.seed, job.seedMode, unit.start, job.frames.start);
    }
    const w = planWindows(job.frames, job.window)[unit.window]!;
    return windowSeed(job.seed, job.seedMode, w, job.frames);
  }

  /**
   * Accepts a re-roll of the frame's unit: 202 with the new version, `pending`. Refused with 409 while a
   * frame of the unit has not succeeded or a re-roll of it is unfinished. Idempotent by Idempotency-Key.
   */
  async reroll(
    caller: Caller,
    id: string,
    param: string,
    body: unknown,
    idempotencyKey?: string,
    now = new Date(),
  ): Promise<{ reroll: Reroll; created: boolean }> {
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw invalid('Idempotency-Key', 'must be 1 to 255 visible ASCII characters');
    }
    const request = parse(RerollRequest, body ?? {});
    const job = await tenantJob(this.deps.jobs, caller.tenant, id);
    const frame = this.frameOf(job, param);
    const unit = unitOf(job, frame);
    const records = await this.deps.jobs.listFrames(job.id, unit.start, unit.end, true);
    const byFrame = new Map(records.map((r) => [r.frame, r]));
    for (let f = unit.start; f <= unit.end; f++) {
      const status = byFrame.get(f)?.status ?? (isTerminalJob(job.status) ? 'canceled' : 'pending');
      if (status === 'succeeded') continue;
      const what = f === frame ? `frame ${f}` : `frame ${f} (of frame ${frame}'s window ${unit.window})`;
      throw new FramecastError(
        'conflict',
        status === 'pending' || status === 'running'
          ? `${what} is ${status}; it can be re-rolled once it has succeeded`
          : `${what} is ${status}; only a frame that succeeded can be re-rolled`,
        { frame: f, status },
      );
    }
    const requestHash = sha256(canonicalJson({ reroll: job.id, frame, body: body ?? {} }));
    for (let round = 0; round < 5; round++) {
      const head = await this.deps.versions.head(job.id, unit.start);
      const params =
        job.params !== undefined || request.params !== undefined
          ? { ...job.params, ...request.params }
          : undefined;
      const version: VersionRecord = {
        jobId: job.id,
        start: unit.start,
        end: unit.end,
        ...(unit.window !== undefined && { window: unit.window }),
        version: (head?.latest ?? 1) + 1,
        status: 'pending',
        seed: request.seed ?? randomSeed(),
        ...(params !== undefined && { params }),
        attempts: 0,
        createdAt: now.toISOString(),
        requestedBy: actorOf(caller),
        frames: {},
      };
      const result = await this.deps.versions.accept(
        {
          job,
          unit,
          ...(head && { head }),
          version,
          ...(!head && { first: firstVersion(job, unit, records, this.firstSeed(job, unit)) }),
          ...(idempotencyKey !== undefined && {
            idempotency: { keyHash: sha256(idempotencyKey), requestHash },
          }),
        },
        now,
      );
      if (result.outcome === 'busy') {
        throw new FramecastError(
          'conflict',
          `a re-roll of frame ${frame}${unit.window !== undefined ? `'s window ${unit.window} (frames ${unit.start}-${unit.end})` : ''} is not finished yet`,
          { frame, version: (await this.deps.versions.head(job.id, unit.start))?.busy },
        );
      }
      if (result.outcome === 'raced') continue;
      // A replay whose version is still pending queues it again: the first answer may have been a 503.
      if (result.outcome === 'accepted' || result.version.status === 'pending') {
        await this.send(job, unit, result.version);
      }
      return { reroll: toReroll(result.version, frame), created: result.outcome === 'accepted' };
    }
    throw new FramecastError('conflict', 'the frame is being re-rolled by another request; retry');
  }

  private async send(job: JobRecord, unit: Unit, v: VersionRecord): Promise<void> {
    const reroll = {
      version: v.version,
      seed: v.seed,
      ...(v.params !== undefined && { params: v.params }),
    };
    const body =
      unit.window !== undefined
        ? encodeWindow({ jobId: job.id, tenant: job.tenant, window: unit.window, reroll })
        : encodeChunk({ jobId: job.id, tenant: job.tenant, frames: [unit.start], reroll });
    try {
      await this.deps.sendFrameMessage(job.model, body);
    } catch (err) {
      logger.error('frame queue send failed', { jobId: job.id, error: err as Error });
      throw new FramecastError(
        'unavailable',
        'the re-roll was recorded but could not be queued; retry with the same Idempotency-Key',
        { jobId: job.id },
      );
    }
  }

  /** One frame with every version. */
  async frame(tenant: string, id: string, param: string): Promise<FrameDetail> {
    const job = await tenantJob(this.deps.jobs, tenant, id);
    return this.detail(job, this.frameOf(job, param));
  }

  private async detail(job: JobRecord, frame: number): Promise<FrameDetail> {
    const unit = unitOf(job, frame);
    const [record, versions] = await Promise.all([
      this.deps.jobs.getFrame(job.id, frame),
      this.deps.versions.versions(job.id, unit.start),
    ]);
    const view = record
      ? toFrameResponse(record)
      : {
          frame,
          status: isTerminalJob(job.status) ? ('canceled' as const) : ('pending' as const),
          seed: frameSeed(job.seed, job.seedMode, frame, job.frames.start),
          attempts: 0,
        };
    const links = record?.status === 'succeeded' ? await this.links(job, record) : {};
    const selected = record?.selected ?? 1;
    const listed: FrameVersion[] = [];
    const rerolled = versions.length > 0;
    const shown: readonly VersionRecord[] = rerolled
      ? versions
      : record?.status === 'succeeded'
        ? [firstVersion(job, unit, [record], record.seed)]
        : [];
    for (const v of shown) {
      const f = v.frames[String(frame)];
      const key =
        v.version === 1 ? (rerolled ? versionKey(job, frame, 1, this.deps.naming) : record?.key) : f?.key;
      const thumb = !hasThumbnail(job, v.version)
        ? undefined
        : v.version === 1
          ? record?.key && thumbnailKey(record.key)
          : f?.key && thumbnailKey(f.key);
      const stored = v.status === 'succeeded' && key !== undefined;
      const url = stored ? await this.deps.files.presignGet(key) : undefined;
      const thumbnail = stored && thumb ? await this.deps.files.presignGet(thumb) : undefined;
      listed.push({
        version: v.version,
        status: v.status,
        selected: v.version === selected,
        seed: f?.seed ?? v.seed,
        ...(v.params !== undefined && { params: v.params as FrameVersion['params'] }),
        ...(f?.sha256 !== undefined && { sha256: f.sha256 }),
        ...(f?.size !== undefined && { size: f.size }),
        ...(key !== undefined && stored && { key }),
        ...(url && { url: url.url, urlExpiresAt: url.expiresAt.toISOString() }),
        ...(thumbnail && { thumbnailUrl: thumbnail.url }),
        attempts: v.attempts,
        ...(v.error !== undefined && { error: v.error }),
        createdAt: v.createdAt,
        ...(v.finishedAt !== undefined && { finishedAt: v.finishedAt }),
        ...(v.requestedBy && { requestedBy: v.requestedBy }),
      });
    }
    return {
      ...view,
      ...links,
      unit: { start: unit.start, end: unit.end, ...(unit.window !== undefined && { window: unit.window }) },
      versions: listed,
    };
  }

  private links(job: JobRecord, record: FrameRecord) {
    return frameLinks((key) => this.deps.files.presignGet(key), job, record, this.deps.naming);
  }

  /**
   * Points the sequence name of every frame of the unit at `version`: S3 copies the version's object onto
   * it, then the frame records take the version's sha256, size and seed. Selecting the selected version
   * changes nothing.
   */
  async select(caller: Caller, id: string, param: string, body: unknown): Promise<FrameDetail> {
    const { version } = parse(SelectVersionRequest, body);
    const job = await tenantJob(this.deps.jobs, caller.tenant, id);
    const frame = this.frameOf(job, param);
    const unit = unitOf(job, frame);
    const [record, versions] = await Promise.all([
      this.deps.jobs.getFrame(job.id, frame),
      this.deps.versions.versions(job.id, unit.start),
    ]);
    const target = versions.find((v) => v.version === version);
    if (!target) {
      if (version === 1 && versions.length === 0 && record?.status === 'succeeded')
        return this.detail(job, frame);
      throw new FramecastError(
        'not_found',
        `version ${version} of frame ${frame} was not found; it has ${Math.max(versions.length, record?.status === 'succeeded' ? 1 : 0)}`,
        { field: 'body.version' },
      );
    }
    if (target.status !== 'succeeded') {
      throw new FramecastError(
        'conflict',
        `version ${version} of frame ${frame} is ${target.status}; only a version that succeeded can be selected`,
        { field: 'body.version', status: target.status },
      );
    }
    if ((record?.selected ?? 1) !== version) {
      await eachLimit(Object.keys(target.frames).map(Number), 8, async (f) => {
        const from = version === 1 ? versionKey(job, f, 1, this.deps.naming) : target.frames[String(f)]!.key!;
        // Onto the frame's delivered name (the production's template and the job's format).
        const copied = await this.deps.files.copy(from, deliveredKey(job, f, this.deps.naming));
        if (!copied) {
          throw new FramecastError(
            'conflict',
            `version ${version} of frame ${f} is not stored yet; retry shortly`,
          );
        }
      });
      await this.deps.versions.describeFrames(job.id, versions, target);
      // After the records: a select that failed part-way is no selection, and its retry is recorded.
      await this.deps.audit?.put(selectedRecord(job, target, actorOf(caller), new Date().toISOString()));
      await this.rewriteManifest(job);
    }
    return this.detail(job, frame);
  }

  /** A job that has ended gets its manifest again, with the model image its first manifest names. */
  private async rewriteManifest(job: JobRecord): Promise<void> {
    const current = await this.deps.jobs.getJob(job.id);
    if (!current || !isTerminalJob(current.status)) return;
    const key = manifestKey(job.tenant, job.shot, job.id);
    const existing = await this.deps.files.getFile(key);
    if (!existing) return;
    const image = (JSON.parse(Buffer.from(existing).toString('utf8')) as { model?: { image?: string } }).model
      ?.image;
    const frames = await this.deps.jobs.listFrames(job.id, job.frames.start, job.frames.end, true);
    await this.deps.files.putJson(key, manifestOf(current, frames, image ?? 'unknown'));
  }
}
