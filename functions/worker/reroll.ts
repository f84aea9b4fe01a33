import type { VersionStore } from '../adapters/store/versions.ts';
import { rerolledRecord } from '../core/audit.ts';
import { eachLimit } from '../core/concurrency.ts';
import { deliveredKey, frameSeed, manifestKey, versionKey } from '../core/frames.ts';
import { newEventId } from '../core/ids.ts';
import { manifestOf } from '../core/manifest.ts';
import type { FrameQueueMessage, RerollOrder } from '../core/messages.ts';
import type { EventRecord, JobRecord, VersionFrame, VersionRecord } from '../core/model.ts';
import { isPng, type WindowProvenance, withProvenance } from '../core/png.ts';
import { type Unit, unitOf } from '../core/review.ts';
import { isTerminalJob } from '../core/state.ts';
import { toJobResponse } from '../core/views.ts';
import { chainedFrames, planWindows, type Window } from '../core/windows.ts';
import { logger } from '../logger.ts';
import { ModelError } from './cog.ts';
import { sleep } from './concurrency.ts';
import { deliverFrames } from './deliverables.ts';
import { noInputs } from './inputs.ts';
import { recordedModel } from './model-image.ts';
import { type Context, framesOf, storedContext, type WindowHost, windowInput } from './windows.ts';
import { frameInput } from './worker.ts';

/**
 * Re-rolls on the worker (docs/architecture.md, "Versions and review"): a v2 chunk or window message makes
 * one new version of a frame, or of the frames a window owns, with the seed and params it carries. The
 * first re-roll of a unit first keeps version 1 (CopyObject to its version key) so that a select can put
 * it back. The version is stored under its version key, never the sequence name, and recorded with its
 * frame.rerolled event once; a select decides what the sequence name holds.
 */

const STORE_CONCURRENCY = 8;

type Rerolled = FrameQueueMessage & { readonly reroll: RerollOrder };

export const isReroll = (m: FrameQueueMessage): m is Rerolled => 'reroll' in m && m.reroll !== undefined;

export class RerollMaker {
  constructor(
    private readonly host: WindowHost,
    private readonly versions: VersionStore,
  ) {}

  async process(message: Rerolled): Promise<'done' | 'handed-back'> {
    const { deps, stats } = this.host;
    const job = await deps.store.getJob(message.jobId);
    if (!job || job.tenant !== message.tenant) return 'done';
    const frame = message.kind === 'chunk' ? message.frames[0]! : undefined;
    const windows = job.window ? planWindows(job.frames, job.window) : undefined;
    const w = message.kind === 'window' ? windows?.[message.window] : undefined;
    const unit: Unit = w
      ? unitOf(job, chainedFrames(w, windows!, job.frames).start)
      : unitOf(job, frame ?? job.frames.start);
    const order = message.reroll;
    const version = await this.versions.version(job.id, unit.start, order.version);
    if (!version || version.status === 'succeeded' || version.status === 'failed') {
      stats.duplicates++;
      return 'done';
    }
    // Before anything could replace the sequence name's bytes: keep version 1 under its version key.
    if (order.version === 2) await this.keepFirst(job, unit);

    await this.host.slots.acquire();
    if (this.host.isStopping) {
      this.host.slots.release();
      return 'handed-back';
    }
    let made: Map<number, Buffer> | { failed: string; attempts: number } | 'done';
    let attempts = 0;
    const held = Date.now();
    try {
      made = await this.make(job, unit, order, w, windows, (n) => {
        attempts = n;
      });
    } finally {
      this.host.slots.release();
    }
    if (made === 'done') return 'done';
    // The slot was held for the version from its first try to its last: spent like a frame's time.
    const spend = this.host.spendOf(Date.now() - held);
    if (!(made instanceof Map)) {
      await this.record(job, {
        ...version,
        ...spend,
        status: 'failed',
        attempts: made.attempts,
        error: made.failed,
      });
      return 'done';
    }
    const frames: Record<string, VersionFrame> = {};
    const deliver = deps.deliver ?? deliverFrames(undefined, deps.naming);
    let refused: string | undefined;
    await eachLimit([...made.keys()], STORE_CONCURRENCY, async (f) => {
      // The job's delivery format (EXR in the plates' colour space, or PNG), named by its template.
      const file = await deliver(job, f, made.get(f)!, order.version).catch((err: Error) => err);
      if (file instanceof Error) {
        refused ??= file.message;
        return;
      }
      const seed = this.seedOf(job, unit, order, f);
      const { sha256, size } = await deps.frames.putFrame(
        file.key,
        file.body,
        { job: job.id, frame: String(f), seed: String(seed), version: String(order.version) },
        file.contentType,
      );
      frames[String(f)] = { seed, sha256, size, key: file.key };
    });
    if (refused !== undefined) {
      // A format this worker cannot write (EXR without oiiotool): the version fails and says why.
      await this.record(job, {
        ...version,
        ...spend,
        status: 'failed',
        attempts,
        error: refused.slice(0, 1000),
      });
      return 'done';
    }
    await this.record(job, { ...version, ...spend, status: 'succeeded', attempts, frames });
    return 'done';
  }

  /** Copies the sequence name's bytes to version 1's key while they are still version 1's. */
  private async keepFirst(job: JobRecord, unit: Unit): Promise<void> {
    const first = await this.versions.version(job.id, unit.start, 1);
    const { frames: files, naming } = this.host.deps;
    await eachLimit(Object.entries(first?.frames ?? {}), STORE_CONCURRENCY, async ([f, recorded]) => {
      const from = deliveredKey(job, Number(f), naming);
      const meta = await files.metadataOf(from);
      if (!recorded.sha256 || meta?.sha256 !== recorded.sha256) return;
      await files.copy(from, versionKey(job, Number(f), 1, naming));
    });
  }

  private seedOf(job: JobRecord, unit: Unit, order: RerollOrder, frame: number): number {
    return unit.window === undefined ? order.seed : frameSeed(order.seed, job.seedMode, frame, unit.start);
  }

  /**
   * One attempt after another until the model makes the version or the attempts run out; each attempt is
   * counted on the version first, so a worker killed mid-way counts too.
   */
  private async make(
    job: JobRecord,
    unit: Unit,
    order: RerollOrder,
    w: Window | undefined,
    windows: readonly Window[] | undefined,
    attempted: (n: number) => void,
  ): Promise<Map<number, Buffer> | { failed: string; attempts: number } | 'done'> {
    const { deps, stats } = this.host;
    const { model, settings } = deps;
    const params = order.params as Record<string, unknown> | undefined;
    const asMade: JobRecord = { ...job, ...(params !== undefined && { params }) };
    const own = rangeOf(unit);
    const extra = await (deps.inputsFor ?? noInputs)(job, w ? rangeOf(w) : own);
    for (;;) {
      const attempts = await this.versions.start(job.id, unit.start, order.version);
      if (attempts === undefined) return 'done';
      attempted(attempts);
      if (attempts > settings.maxAttempts) {
        return { failed: 'gave up: the worker stopped during every attempt', attempts: attempts - 1 };
      }
      const began = Date.now();
      try {
        const out = new Map<number, Buffer>();
        if (!w || !windows) {
          const f = unit.start;
          const input = { ...model.inputFor(frameInput(job, f, order.seed), params), ...extra.inputs };
          const prediction = await model.predict(`${job.id}-${f}-r${order.version}-${attempts}`, input);
          if (!isPng(prediction.png)) throw new ModelError('model output is not a PNG', false);
          out.set(
            f,
            withProvenance(prediction.png, {
              ...this.host.provenance(asMade, f, order.seed, { inputs: extra.hashes?.get(f) }),
              version: order.version,
            }),
          );
        } else {
          const context: Context | undefined =
            job.window?.mode === 'chained'
              ? await storedContext(deps.store, deps.frames, job, w, windows)
              : undefined;
          const input = {
            ...model.inputFor(windowInput(job, w, order.seed, context?.urls), params),
            ...extra.inputs,
          };
          const made = await model.predictFiles(`${job.id}-w${w.index}-r${order.version}-${attempts}`, input);
          const pngs = await framesOf(made, w.end - w.start + 1);
          const origin: WindowProvenance = {
            index: w.index,
            start: w.start,
            end: w.end,
            seed: order.seed,
            ...(context && {
              context: rangeOf({ start: w.start, end: windows[w.index - 1]!.end }).map((f) => ({
                frame: f,
                sha256: context.sha256Of(f) ?? '',
              })),
            }),
          };
          for (const f of own) {
            const seed = this.seedOf(job, unit, order, f);
            out.set(
              f,
              withProvenance(pngs[f - w.start]!, {
                ...this.host.provenance(asMade, f, seed, { window: origin, inputs: extra.hashes?.get(f) }),
                version: order.version,
              }),
            );
          }
        }
        stats.modelBusyMs += Date.now() - began;
        return out;
      } catch (err) {
        stats.modelBusyMs += Date.now() - began;
        const error = err instanceof Error ? err.message : String(err);
        const retryable = !(err instanceof ModelError && !err.retryable);
        logger.warn('re-roll attempt failed', { jobId: job.id, unit, version: order.version, error });
        if (!retryable || attempts >= settings.maxAttempts) return { failed: error.slice(0, 1000), attempts };
        await sleep(settings.retryBaseMs * 2 ** (attempts - 1));
      }
    }
  }

  /**
   * Records the version once with its frame.rerolled event, then tells the unit's frame records (for the
   * manifest) and, for a job that has ended, writes its manifest again.
   */
  private async record(job: JobRecord, done: VersionRecord): Promise<void> {
    const { deps } = this.host;
    const now = new Date();
    const finished: VersionRecord = { ...done, finishedAt: now.toISOString() };
    const event = rerolledEvent(job, finished, now);
    // Its audit record goes in the same transaction: written exactly when the version is recorded.
    const model = await recordedModel(deps, job.model);
    const audit = rerolledRecord(job, finished, model, finished.finishedAt!);
    const recorded = await this.versions.finish(finished, event, audit, job, now);
    if (recorded) await deps.publishEvents([event]);
    const all = await this.versions.versions(job.id, done.start);
    await this.versions.describeFrames(job.id, all);
    const current = await deps.store.getJob(job.id);
    if (current && isTerminalJob(current.status)) {
      const frames = await deps.store.listFrames(job.id, job.frames.start, job.frames.end, true);
      await deps.frames.putJson(
        manifestKey(job.tenant, job.shot, job.id),
        manifestOf(current, frames, deps.settings.modelImage),
      );
    }
  }
}

const rangeOf = (r: { start: number; end: number }): number[] =>
  Array.from({ length: r.end - r.start + 1 }, (_, i) => r.start + i);

/** The frame.rerolled event: the job, the unit, and the version with each frame's seed and sha256. */
export function rerolledEvent(job: JobRecord, v: VersionRecord, now: Date): EventRecord {
  return {
    id: newEventId(now.getTime()),
    tenant: job.tenant,
    jobId: job.id,
    type: 'frame.rerolled',
    timestamp: now.toISOString(),
    data: {
      ...toJobResponse(job),
      frame: v.start,
      unit: { start: v.start, end: v.end, ...(v.window !== undefined && { window: v.window }) },
      version: {
        version: v.version,
        status: v.status,
        seed: v.seed,
        ...(v.params !== undefined && { params: v.params }),
        ...(v.error !== undefined && { error: v.error }),
        frames: Object.entries(v.frames).map(([f, r]) => ({ frame: Number(f), ...r })),
      },
    },
  };
}
