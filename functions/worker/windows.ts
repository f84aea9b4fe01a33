import { createHash } from 'node:crypto';
import type { FrameStore } from '../adapters/frame-store.ts';
import type { FinishedFrame, JobStore } from '../adapters/store/jobs.ts';
import { eachLimit, mapLimit } from '../core/concurrency.ts';
import { pastStartBy, startByReason } from '../core/fair-share.ts';
import { type FrameRange, frameSeed } from '../core/frames.ts';
import { deadLetterNote, encodeWindow, type WindowMessage } from '../core/messages.ts';
import type { FrameRecord, JobRecord, JobWindows } from '../core/model.ts';
import { checkPng, decodeRgb, encodePng, isPng, stampProvenance, withProvenance } from '../core/png.ts';
import { mayQueueWindow } from '../core/review.ts';
import type { FrameStatus } from '../core/schemas.ts';
import { isTerminalJob } from '../core/state.ts';
import {
  chainedFrames,
  contextFrames,
  crossFade,
  crossFadeWeight,
  type FrameOrigin,
  frameOrigin,
  keptEnd,
  planWindows,
  type Window,
  windowSeed,
} from '../core/windows.ts';
import { logger } from '../logger.ts';
import { type FilesPrediction, ModelError } from './cog.ts';
import { sleep } from './concurrency.ts';
import type { DeliveredFrame } from './deliverables.ts';
import { noInputs, type PredictionInputs } from './inputs.ts';
import { decodeVideo } from './video.ts';
import type { Worker } from './worker.ts';

/**
 * Windows on the worker (docs/architecture.md, "Windows"): one window message is one prediction of a
 * video model, `start_frame` and `num_frames` long, seeded with the window's seed, and in chained mode
 * given its predecessor's last frames as `context`. Its frames are stored and recorded through the same
 * exactly-once frame records as chunks' frames, several at a time: once the model's whole answer is in
 * hand, or, for a window of large frames, each as the answer brings it (`streamWindow`).
 *
 * Whose frames are whose: every window starts, counts attempts on and fails the frames of
 * `chainedFrames` (from the frame after its predecessor's end), so each frame of the shot is taken by
 * one window. In chained mode those are also the frames it stores. In parallel mode a frame two windows
 * share is made by both: each stages its raw version of the shared frames, then looks for its
 * neighbour's, and whichever finds both cross-fades and records the frame (both may; the record counts
 * it once and the pixels are the same).
 *
 * A window is the unit of retry: an attempt counts one attempt on each of its frames, and prediction ids
 * are `<job>-w<index>-<attempt>`.
 */

/** Frames of one window stored and recorded at once: S3 and DynamoDB round trips overlap. */
const STORE_CONCURRENCY = 8;

/** WorkerSettings.contextInMemoryMaxBytes by default. */
const CONTEXT_IN_MEMORY_MAX_BYTES = 32 * 1024 * 1024;

/** WorkerSettings.windowInMemoryMaxBytes by default. */
const WINDOW_IN_MEMORY_MAX_BYTES = 512 * 1024 * 1024;

const FINISHED: ReadonlySet<FrameStatus> = new Set(['succeeded', 'failed', 'canceled']);
const isFinished = (record: FrameRecord | undefined): boolean =>
  record !== undefined && FINISHED.has(record.status);

const framesIn = (r: FrameRange): number[] =>
  r.end < r.start ? [] : Array.from({ length: r.end - r.start + 1 }, (_, i) => r.start + i);

/** Where a parallel job's windows stage their raw versions of shared frames; removed when the job ends. */
const stagingPrefix = (job: Pick<JobRecord, 'prefix'>): string => `${job.prefix}.windows/`;
const stagedKey = (job: Pick<JobRecord, 'prefix'>, window: number, frame: number) =>
  `${stagingPrefix(job)}${window}/${frame}.png`;
/** Written by a parallel window that failed for good: its neighbours stop waiting for its versions. */
const failedKey = (job: Pick<JobRecord, 'prefix'>, window: number) =>
  `${stagingPrefix(job)}${window}/failed.json`;

/** Every work file a parallel job's windows may have staged: both versions of each shared frame. */
export function stagedKeys(job: Pick<JobRecord, 'prefix' | 'frames' | 'window'>): string[] {
  if (job.window?.mode !== 'parallel') return [];
  const windows = planWindows(job.frames, job.window);
  const keys: string[] = [];
  for (const w of windows) {
    keys.push(failedKey(job, w.index));
    const next = windows[w.index + 1];
    for (let f = next?.start ?? w.end + 1; next && f <= Math.min(w.end, job.frames.end); f++) {
      keys.push(stagedKey(job, w.index, f), stagedKey(job, next.index, f));
    }
  }
  return keys;
}

/** What the window logic (and re-rolls) use of the worker: its dependencies, its slots, its frame records. */
export type WindowHost = Pick<
  Worker,
  | 'deps'
  | 'slots'
  | 'stats'
  | 'isStopping'
  | 'jobBeside'
  | 'provenance'
  | 'recordFailure'
  | 'storeFrame'
  | 'deliverFrame'
  | 'recordFrames'
  | 'frameEventsWanted'
  | 'spendOf'
  | 'republishFrameEvent'
  | 'republishEnded'
  | 'afterWork'
  | 'reopen'
>;

type WindowedJob = JobRecord & { readonly window: JobWindows };

/** One window of one job, as planned from the job's record. */
interface Planned {
  readonly job: WindowedJob;
  readonly windows: readonly Window[];
  readonly w: Window;
  /** The frames whose records this window starts, counts attempts on and fails. */
  readonly own: FrameRange;
  /** The frames this window stores: its own in chained mode, all of its frames in the shot in parallel. */
  readonly kept: FrameRange;
  readonly seed: number;
}

/** A window the model made: its frames as PNGs, in order from the window's start. */
interface Made {
  readonly frames: (Uint8Array | undefined)[];
  /**
   * A streamed window's frames stored as the model's answer brought them, to be recorded; `frames` then
   * holds only those still to be stored (in parallel mode, the ones shared with a neighbour).
   */
  readonly stored?: readonly FinishedFrame[];
  readonly attempt: number;
  /** The model's time for the window, shared out over its frames. */
  readonly predictTimePerFrame?: number;
  /** How long the window held its model slot over this delivery's attempts, ms. */
  readonly heldMs: number;
  /** Chained mode: the context the window was made from. */
  readonly context?: Context;
}

/** A window's take of its own frames (`startOwn`). */
type Taken = 'started' | 'job-ended';

/** A promise whose value can be read at once when it has resolved; never an unhandled rejection. */
interface Watched<T> {
  readonly promise: Promise<T>;
  readonly value: T | undefined;
}

function watched<T>(promise: Promise<T>): Watched<T> {
  const out: { promise: Promise<T>; value: T | undefined } = { promise, value: undefined };
  promise.then(
    (value) => {
      out.value = value;
    },
    () => undefined,
  );
  return out;
}

/** `run` started by the first call, and the same promise given to every call. */
function once<T>(run: () => Promise<T>): () => Promise<T> {
  let started: Promise<T> | undefined;
  return () => {
    started ??= run();
    return started;
  };
}

/** Frames this worker stored and recorded, by number: their keys and hashes. */
type Stored = ReadonlyMap<number, { readonly key: string; readonly sha256: string }>;

/**
 * Whose the previous window's context frames are once recorded: this delivery's (`recorded`), or another
 * delivery's making the same chain at once (`elsewhere`), whose stored bytes may differ from the ones
 * this delivery gave the next window from memory.
 */
type Handed = 'recorded' | 'elsewhere';

/** What one window hands the next one made for the same message. */
interface Carried {
  /**
   * The previous window's frames: stored, recorded and counted once this settles. Started by the first
   * call (each call gives the same promise): this window calls it once it has asked the model for its
   * prediction, after its take, so that nothing of the previous window's storing stands between the two
   * predictions and the two windows' transactions on the job do not meet.
   */
  readonly behind: () => Promise<Handed>;
  /** The previous window's context frames as stored; absent for the message's own window. */
  readonly known: Stored | undefined;
  /** The previous window's context frames given from memory, the bytes being stored (`storeChained`). */
  readonly given?: Context;
  /** The job as the previous window read it: this window's frames are planned from it alike. */
  readonly job?: WindowedJob;
}

/** A window's end: the chain stops (`outcome`), or goes on with window `next`. */
type Step =
  | { readonly outcome: 'done' | 'handed-back' }
  | {
      readonly next: number;
      readonly job: WindowedJob;
      readonly context: Stored;
      readonly given?: Context;
      readonly rest: () => Promise<Handed>;
    };

const nothingBehind = (): Promise<Handed> => Promise.resolve('recorded');

/** A chained window whose context frames were recorded before the rest (`recordContextFirst`). */
interface ContextFirst {
  readonly outcome: 'context-recorded' | 'recorded' | 'made-elsewhere';
  readonly context: Stored;
  readonly rest: () => Promise<Handed>;
}

export interface Context {
  /**
   * The predecessor's overlap frames, in frame order: presigned GET URLs of the stored frames, or data
   * URLs of the very bytes being stored (a window made on this worker right after its predecessor).
   */
  readonly urls: string[];
  readonly sha256Of: (frame: number) => string | undefined;
}

export class WindowMaker {
  constructor(private readonly host: WindowHost) {}

  private get store(): JobStore {
    return this.host.deps.store;
  }
  private get files(): FrameStore {
    return this.host.deps.frames;
  }

  /**
   * Makes the message's window and, in chained mode, the windows after it, here, while the message stays
   * in hand (docs/architecture.md, "Windows"): this worker holds the context the next window needs, so
   * the model does not wait for a queue hop per window. The message stands for the chain from its window
   * on: it is deleted only once the chain stops (the last window, a failed window, a cancel, a review
   * gate), so a worker killed mid-chain loses nothing: the message comes back, and its next delivery
   * walks the windows from its own, past those whose frames are finished, to the first that is not.
   * 'handed-back' when the worker stops: the chain continues from the message on another worker.
   */
  async process(message: WindowMessage, delivery = 1): Promise<'done' | 'handed-back'> {
    const held = Date.now();
    const holdMs = (this.host.deps.settings.chainHoldSeconds ?? 3600) * 1000;
    // The previous window's frames, still being stored and recorded while the model makes this one;
    // settled before this window stores its own and before the message goes.
    let behind: () => Promise<Handed> = nothingBehind;
    let known: Stored | undefined;
    let given: Context | undefined;
    let job: WindowedJob | undefined;
    try {
      for (let window = message.window; ; ) {
        // The message's own window is its delivery's; the windows after it are made here for the first time.
        // A dead letter reopens its own window only; the windows after it are made as any chain's.
        const out = await this.processWindow(
          window === message.window
            ? message
            : { jobId: message.jobId, tenant: message.tenant, v: 1, window },
          { behind, known, ...(given && { given }), ...(job && { job }) },
          window === message.window ? delivery : 1,
        );
        if (!('next' in out)) {
          await behind();
          return out.outcome;
        }
        behind = once(out.rest);
        known = out.context;
        given = out.given;
        job = out.job;
        if (this.host.isStopping) {
          await behind();
          return 'handed-back';
        }
        if (delivery > 1 || Date.now() - held >= holdMs) {
          // A message delivered again (its worker was killed mid-chain) has made progress past its own
          // window: the chain goes on by a fresh message, so the kills over a long chain do not add up on
          // one message's receive count until SQS dead-letters it (a window that kills every worker still
          // does: its message makes no progress).
          // And SQS lets a message stay hidden 12 hours at most: past the hold, the chain goes on by a
          // message of its own, as any worker would take it. Dying between the send and the delete below makes both
          // this message's next delivery and the new one run the next window; the first to record it goes on.
          await behind();
          await this.host.deps.queue.send(
            encodeWindow({ jobId: message.jobId, tenant: message.tenant, window: out.next }),
          );
          return 'done';
        }
        window = out.next;
      }
    } catch (err) {
      await behind().catch(() => undefined);
      throw err;
    }
  }

  /**
   * Makes one window: 'handed-back' when the worker stopped before the model started on it, the next
   * window when the chain goes on from here (with this window's context frames and the rest of its
   * frames to record), 'done' otherwise. `carried` is what the window before, made here for the same
   * message, hands on (nothing for the message's own window).
   */
  private async processWindow(message: WindowMessage, carried: Carried, delivery: number): Promise<Step> {
    const step = await this.makeWindow(message, carried, delivery);
    return typeof step === 'string' ? { outcome: step } : step;
  }

  private async makeWindow(
    message: WindowMessage,
    carried: Carried,
    delivery: number,
  ): Promise<Step | 'done' | 'handed-back'> {
    const { stats } = this.host;
    // A window made here after the one before reads its frames' records beside the job: they are planned
    // from the job as that window read it (a job's frames and windows do not change once accepted).
    const early = carried.job && plan(carried.job, message.window);
    // A queued job is moved to running beside the first window's prediction, before its take (`started`).
    const [beside, earlyRecords] = await Promise.all([
      this.host.jobBeside(message.jobId, message.tenant),
      early && this.recordsOf(early.job.id, early.kept),
    ]);
    if (!beside) return 'done';
    const { job: read, started } = beside;
    // The chain stops at a review gate's last window until approval, which sends the next window.
    if (carried.known && !mayQueueWindow(read, message.window)) return 'done';
    if (!read.window) {
      logger.error('a window message for a job without windows; it is dropped', { jobId: read.id });
      return 'done';
    }
    let p = plan({ ...read, window: read.window }, message.window);
    if (!p) {
      logger.error('a window message for a window the job does not have; it is dropped', {
        jobId: read.id,
        window: message.window,
      });
      return 'done';
    }
    if (message.v === 3 && read.window.mode === 'chained') {
      await started;
      // A dead letter redriven once its fault was fixed: the window is reopened, with the frames after it
      // its failure counted canceled, and the chain goes on from here (docs/reliability.md).
      const reopened = await this.host.reopen(read, framesIn(p.own), message.deadLetter.reason, {
        index: p.w.index,
        later: read.frames.end - p.own.end,
      });
      if (!reopened?.window) return 'done';
      p = plan({ ...reopened, window: reopened.window }, message.window)!;
    }
    const job = p.job;
    const { w, own } = p;
    if (job.status !== 'running') {
      // Canceled (or ended): the chain stops here, and nothing of this window is made.
      stats.framesSkipped += framesIn(p.kept).length;
      if (delivery > 1 && isTerminalJob(job.status)) await this.host.republishEnded(job, framesIn(p.kept));
      await this.host.afterWork(job.id);
      return 'done';
    }

    const records = earlyRecords ?? (await this.recordsOf(job.id, p.kept));
    if (job.startBy !== undefined && pastStartBy(job, new Date()) && records.size === 0) {
      await started;
      // Not started by the job's queue deadline: the window's frames are canceled with the reason the
      // job shows, and in chained mode every frame after them (no window of them will come), in the
      // store's counted-once transactions; a window started before the deadline is made.
      await carried.behind();
      const last = job.window.mode === 'chained' ? job.frames.end : p.kept.end;
      const frames = framesIn({ start: p.kept.start, end: last }).map((frame) => ({
        frame,
        seed: this.seedOf(job, frame),
      }));
      const out = await this.store.cancelUnstarted(job, frames, startByReason(job.startBy));
      if (out.ok) stats.framesSkipped += out.canceled.length;
      await this.host.afterWork(job.id);
      return 'done';
    }
    const finished = framesIn(p.kept).filter((f) => isFinished(records.get(f)));
    // Finished by an earlier delivery: announce them again, in case that worker died before it could.
    await eachLimit(
      finished.filter((f) => f >= own.start && f <= own.end),
      STORE_CONCURRENCY,
      (f) => this.host.republishFrameEvent(job.id, f),
    );
    if (finished.length === framesIn(p.kept).length) {
      await started;
      stats.duplicates += finished.length;
      await carried.behind();
      return this.afterWindow(p);
    }

    // Inputs before the model's slot is taken, so the model never waits on them. So is the first
    // attempt's take of the window's frames, begun before the slot as a chunk in hand takes its frames:
    // when the slot frees first (a shot's first window, a chained window after its predecessor), the
    // model is asked beside the take, and its answer kept only once the take holds (`generate`).
    const extra = await (this.host.deps.inputsFor ?? noInputs)(job, framesIn(w));
    const taking = watched(started.then(() => this.startOwn(p)));

    let made: Made | { failed: string; attempt: number } | 'job-ended' = 'job-ended';
    // A busy slot is waited for once the take has held: a window of a job ended meanwhile (canceled)
    // does not wait for the model at all.
    const { slots } = this.host;
    if (slots.inUse < slots.capacity || (await taking.promise) === 'started') {
      await slots.acquire();
      if (this.host.isStopping) {
        slots.release();
        await taking.promise.catch(() => undefined);
        return 'handed-back';
      }
      try {
        made = await this.generate(p, records, extra, carried, taking);
      } finally {
        slots.release();
      }
    }
    // The previous window's last frames are stored by now (a window's prediction takes longer); waiting
    // here keeps at most two windows' frames in memory, and the job's counts in frame order.
    if ((await carried.behind()) === 'elsewhere') {
      // The context this window was given from memory was recorded by another delivery making the same
      // chain at once (a duplicated message): its stored bytes may not be the ones this window continued,
      // so nothing of it is kept, and that delivery goes on from there (its own take counted one more
      // attempt on this window's frames).
      await this.host.afterWork(job.id);
      return 'done';
    }
    if (made === 'job-ended') {
      stats.framesSkipped += framesIn(p.kept).length;
      await this.host.afterWork(job.id);
      return 'done';
    }
    if ('failed' in made) {
      await this.failWindow(p, made.failed);
      return 'done';
    }
    if (p.job.window.mode === 'chained') {
      const stored = await this.storeChained(p, made, records, extra);
      stats.windowsSucceeded++;
      const next = p.windows[w.index + 1];
      if (stored.outcome === 'made-elsewhere') {
        // Every frame was recorded by another delivery making the same chain at the same time (a
        // duplicated message): that one goes on, this one stops, so the chain is made once from here.
        await stored.rest();
        await this.host.afterWork(job.id);
        return 'done';
      }
      if (next && (stored.outcome === 'context-recorded' || stored.outcome === 'handed-on')) {
        // The next window's context is in hand, as stored or as being stored: the model goes on with it
        // while this window is stored, recorded and counted.
        return {
          next: next.index,
          job: p.job,
          context: stored.context,
          ...(stored.given && { given: stored.given }),
          rest: () =>
            stored.rest().then(async (handed) => {
              await this.host.afterWork(job.id);
              return handed;
            }),
        };
      }
      await stored.rest();
      return this.afterWindow(p);
    }
    await this.storeParallel(p, made, records, extra);
    stats.windowsSucceeded++;
    return this.afterWindow(p);
  }

  private async recordsOf(jobId: string, r: FrameRange): Promise<Map<number, FrameRecord>> {
    const list = r.end < r.start ? [] : await this.store.listFrames(jobId, r.start, r.end, true);
    return new Map(list.map((f) => [f.frame, f]));
  }

  private seedOf(job: JobRecord, frame: number): number {
    return frameSeed(job.seed, job.seedMode, frame, job.frames.start);
  }

  /**
   * In chained mode, the frames of the predecessor this window overlaps, as stored: what the model
   * continues. They are all stored before this window is sent; a missing one is an error to retry.
   */
  private async contextOf(p: Planned, known?: Stored): Promise<Context | undefined> {
    if (p.job.window.mode !== 'chained') return undefined;
    return storedContext(this.store, this.files, p.job, p.w, p.windows, known);
  }

  /**
   * One attempt after another until the model makes the window or the attempts run out. Each attempt
   * first takes the window's own frames again (one more attempt on each), so a worker killed mid-window
   * counts too, and a window that kills every worker fails after `maxAttempts` deliveries.
   */
  private async generate(
    p: Planned,
    records: ReadonlyMap<number, FrameRecord>,
    extra: PredictionInputs,
    carried: Carried | undefined,
    taking: Watched<Taken>,
  ): Promise<Made | { failed: string; attempt: number } | 'job-ended'> {
    const { deps, stats } = this.host;
    const { model, settings } = deps;
    const { job, w } = p;
    const length = w.end - w.start + 1;
    // Of its own frames only: in parallel mode the frames it shares with its predecessor are that one's.
    const recorded = Math.max(
      0,
      ...[...records.values()]
        .filter((r) => r.frame >= p.own.start && r.frame <= p.own.end)
        .map((r) => r.attempts),
    );
    let heldMs = 0;
    const streamed = this.streams(p, carried);
    for (let tries = 1; ; tries++) {
      // The first try's take is makeWindow's, begun before the slot; a later try takes the frames again.
      // Still being written when the slot is had, the model is asked beside it (not for a streamed
      // window, whose frames are uploaded as they come): nothing of the answer is kept until it holds.
      const beside = tries === 1 && !streamed && taking.value === undefined;
      if (!beside && (await (tries === 1 ? taking.promise : this.startOwn(p))) === 'job-ended') {
        return 'job-ended';
      }
      // The own frames' attempts as read before, plus this delivery's tries (each took them once more).
      const attempt = recorded + tries;
      if (attempt > settings.maxAttempts) {
        if (beside && (await taking.promise) === 'job-ended') return 'job-ended';
        return { failed: 'gave up: the worker stopped during every attempt', attempt: attempt - 1 };
      }
      // Given from memory by the window before, made here; else presigned for each attempt: a URL must
      // outlive the prediction, not the wait for a slot. Not an attempt's failure when it cannot be read:
      // the message is delivered again.
      const context = carried?.given ?? (await this.contextOf(p, carried?.known));
      const began = Date.now();
      const id = `${job.id}-w${w.index}-${attempt}`;
      const predicted = (async () => {
        const input = {
          ...model.inputFor(windowInput(job, w, p.seed, context?.urls), job.params),
          ...extra.inputs,
        };
        return streamed
          ? this.streamWindow(p, id, input, records, extra, context)
          : model.predictFiles(id, input);
      })();
      // Settled below, whatever the take says.
      predicted.catch(() => undefined);
      if (beside) {
        // A take that fails (an error, or the job ended: canceled meanwhile) stops the prediction: the
        // slot frees, and nothing of it is stored. Its error is the delivery's, not the model's.
        const taken = await taking.promise.catch(async (err: unknown) => {
          await this.drop(id, predicted);
          throw err;
        });
        if (taken === 'job-ended') {
          await this.drop(id, predicted);
          stats.modelBusyMs += Date.now() - began;
          return 'job-ended';
        }
      }
      // Asked for and taken: the previous window's frames are stored and recorded now, beside the model.
      carried?.behind().catch(() => undefined);
      try {
        const out = await predicted;
        stats.modelBusyMs += Date.now() - began;
        heldMs += Date.now() - began;
        const made = {
          attempt,
          heldMs,
          ...(context && { context }),
          ...(out.predictTime !== undefined && { predictTimePerFrame: out.predictTime / length }),
        };
        if (!('stored' in out)) return { ...made, frames: await framesOf(out, length) };
        // The model's time and the slot's are known once the whole answer is read.
        const spend = this.spendPerFrame(p, made);
        const stored = out.stored.map(
          (r): FinishedFrame => ({
            ...r,
            ...(r.status === 'succeeded' &&
              made.predictTimePerFrame !== undefined && { predictTime: made.predictTimePerFrame }),
            ...spend,
          }),
        );
        return { ...made, frames: out.frames, stored };
      } catch (err) {
        stats.modelBusyMs += Date.now() - began;
        heldMs += Date.now() - began;
        const error = err instanceof Error ? err.message : String(err);
        const retryable = !(err instanceof ModelError && !err.retryable);
        logger.warn('window attempt failed', { jobId: job.id, window: w.index, attempt, error });
        if (!retryable || attempt >= settings.maxAttempts) return { failed: error, attempt };
        await sleep(settings.retryBaseMs * 2 ** (attempt - 1));
      }
    }
  }

  /** Stops a prediction whose answer is not to be kept, and waits for its end: the slot is free after. */
  private async drop(id: string, predicted: Promise<unknown>): Promise<void> {
    await this.host.deps.model.cancel(id);
    await predicted.catch(() => undefined);
  }

  /**
   * Whether window `p` is streamed (`streamWindow`) rather than made in memory: its frames' pixels over
   * `windowInMemoryMaxBytes`. Made in memory, the model's answer is held while it is stored, and in chained
   * mode the next window is asked for before this one is stored, so the model does not wait on S3; streamed,
   * the window is stored as it is read, and the next one is asked for after: the model waits for the
   * uploads (seconds, against a 4K video model's minutes a window) so the worker holds a few frames, not
   * two windows. A window given its context from memory is made in memory: should another delivery record
   * that context first (`Handed`), this one's frames must not have been written over that one's.
   */
  private streams(p: Planned, carried?: Carried): boolean {
    if (carried?.given) return false;
    const max = this.host.deps.settings.windowInMemoryMaxBytes ?? WINDOW_IN_MEMORY_MAX_BYTES;
    return p.job.width * p.job.height * 3 * (p.w.end - p.w.start + 1) > max;
  }

  /**
   * One attempt of a streamed window: each frame of the model's answer stamped, checked and uploaded as it
   * is decoded, the answer read no further while `uploadConcurrency` frames wait for S3, and dropped once
   * uploaded; the frames not this window's to store are dropped at once, and in parallel mode those shared
   * with a neighbour kept for storeParallel. Nothing is recorded here: the frames are recorded by the
   * caller only once the prediction succeeded, and a failed or cut-off attempt's uploads are written over
   * by the next attempt under the same keys; an upload that fails fails the attempt with its error, as the
   * model's failure would (the prediction is spent either way). A video (one file for the window) cannot be stored frame by
   * frame: it is given back whole, for the in-memory path.
   */
  private async streamWindow(
    p: Planned,
    id: string,
    input: Record<string, unknown>,
    records: ReadonlyMap<number, FrameRecord>,
    extra: PredictionInputs,
    context: Context | undefined,
  ): Promise<
    FilesPrediction | { frames: (Uint8Array | undefined)[]; stored: FinishedFrame[]; predictTime?: number }
  > {
    const { job, w, windows } = p;
    const length = w.end - w.start + 1;
    const { alone, shared } = spans(p);
    const toStore = (f: number) => f >= alone.start && f <= alone.end && !isFinished(records.get(f));
    const frames: (Uint8Array | undefined)[] = new Array(length);
    // By frame: an answer polled before the last may have handed some frames already.
    const stored = new Map<number, FinishedFrame>();
    const uploading = new Set<Promise<void>>();
    const limit = this.host.deps.settings.uploadConcurrency ?? 4;
    let failure: { error: unknown } | undefined;
    let video: Uint8Array | undefined;
    const take = async (file: Uint8Array, index: number) => {
      const f = w.start + index;
      if (index === 0 && !isPng(file)) {
        video = file;
        return;
      }
      if (video || !isPng(file)) throw new ModelError(NOT_PNG, false);
      if (shared.some((r) => f >= r.start && f <= r.end)) frames[index] = file;
      if (!toStore(f)) return;
      // A slot first, then the stamped copy: a frame waits for S3 as one copy, not two.
      while (uploading.size >= limit) await Promise.race(uploading);
      if (failure) throw failure.error;
      // Checked as it inflates, off this thread and without holding the raw pixels (core/png.ts).
      await checkPng(file);
      const origin = frameOrigin(job, windows, f, context?.sha256Of);
      const png = stampProvenance(file, this.provenanceOf(p, f, origin, extra));
      const upload: Promise<void> = this.store1(p, f, png, undefined, extra)
        .then(
          (r) => {
            stored.set(f, r);
          },
          (error: unknown) => {
            failure ??= { error };
          },
        )
        .finally(() => uploading.delete(upload));
      uploading.add(upload);
    };
    try {
      const out = await this.host.deps.model.predictEach(id, input, take);
      if (video)
        return {
          files: [video],
          single: out.single,
          ...(out.predictTime !== undefined && { predictTime: out.predictTime }),
        };
      if (out.count !== length) throw new ModelError(wrongCount(out.count, length));
      await Promise.all(uploading);
      if (failure) throw failure.error;
      return {
        frames,
        stored: [...stored.values()],
        ...(out.predictTime !== undefined && { predictTime: out.predictTime }),
      };
    } finally {
      // A failed attempt's uploads end before the next attempt writes the same keys.
      await Promise.all(uploading);
    }
  }

  /** One more attempt on each of the window's own frames not yet finished, in one transaction. */
  private async startOwn(p: Planned): Promise<Taken> {
    const started = await this.store.startFrames(
      p.job,
      framesIn(p.own).map((frame) => ({ frame, seed: this.seedOf(p.job, frame) })),
    );
    return started.ok ? 'started' : 'job-ended';
  }

  private stamp(
    p: Planned,
    frame: number,
    png: Uint8Array,
    origin: FrameOrigin,
    extra: PredictionInputs,
  ): Buffer {
    return withProvenance(png, this.provenanceOf(p, frame, origin, extra));
  }

  private provenanceOf(p: Planned, frame: number, origin: FrameOrigin, extra: PredictionInputs) {
    return this.host.provenance(p.job, frame, this.seedOf(p.job, frame), {
      ...origin,
      inputs: extra.hashes?.get(frame),
    });
  }

  /**
   * Chained mode: the window's own frames, each stamped and recorded; the overlap it was given is not kept.
   *
   * When every frame the next window continues from is this delivery's to store (none finished by an
   * earlier one) and each can be delivered, their files are made at once and given to the next window
   * from memory (`handed-on`, data URLs of the very bytes being stored, with their sha256): the model
   * goes on without waiting for S3 or DynamoDB, and the whole window is uploaded (the context frames
   * first) and recorded by `rest`, which the next window starts once its prediction is asked for (see
   * Carried). `rest` then says whether this delivery recorded them (`recorded`) or another one making the
   * same chain did (`elsewhere`): only in the first case are the stored bytes the ones the next window was
   * given.
   *
   * Otherwise the context frames go first and are recorded at once: the chain may go on from them
   * (`context-recorded`, with their keys) while `rest`, the other frames, is stored and recorded. So
   * too for a streamed window, whose frames are all stored by now: they are recorded in the same order.
   * `made-elsewhere`: another delivery recorded every one of them first.
   */
  private async storeChained(
    p: Planned,
    made: Made,
    records: ReadonlyMap<number, FrameRecord>,
    extra: PredictionInputs,
  ): Promise<{
    outcome: 'handed-on' | 'context-recorded' | 'recorded' | 'made-elsewhere';
    context: Stored;
    given?: Context;
    rest: () => Promise<Handed>;
  }> {
    const { job, w } = p;
    const { context } = made;
    const events = this.host.frameEventsWanted(job);
    const next = p.windows[w.index + 1];
    const handsOn = next ? contextFrames(next, p.windows) : undefined;
    const todo = framesIn(p.own).filter((f) => !isFinished(records.get(f)));
    const isContext = (f: number) => handsOn !== undefined && f >= handsOn.start && f <= handsOn.end;
    // Released as soon as it is stamped: the window is held at most twice (as made, and as stored).
    const stamped = (f: number) => {
      const png = made.frames[f - w.start]!;
      made.frames[f - w.start] = undefined;
      return this.stamp(p, f, png, frameOrigin(job, p.windows, f, context?.sha256Of), extra);
    };
    const storeAll = (frames: number[]) =>
      mapLimit(frames, STORE_CONCURRENCY, (f) => this.store1(p, f, stamped(f), made, extra));
    const first = todo.filter(isContext);
    const others = todo.filter((f) => !isContext(f));

    if (made.stored) {
      // Streamed: every frame is stored already; the context frames are recorded first all the same.
      const stored = made.stored;
      return this.recordContextFirst(
        p,
        stored.filter((r) => isContext(r.frame)),
        () => Promise.resolve(stored.filter((r) => !isContext(r.frame))),
        events,
      );
    }
    if (handsOn && first.length === framesIn(handsOn).length) {
      const files = await mapLimit(first, STORE_CONCURRENCY, async (f) => {
        const png = stamped(f);
        return { f, png, file: await this.host.deliverFrame(job, f, png) };
      });
      const delivered = files.flatMap(({ f, png, file }) =>
        file instanceof Error ? [] : [{ f, png, file }],
      );
      const bytes = delivered.reduce((n, { file }) => n + file.body.byteLength, 0);
      const maxBytes = this.host.deps.settings.contextInMemoryMaxBytes ?? CONTEXT_IN_MEMORY_MAX_BYTES;
      if (delivered.length === files.length && bytes <= maxBytes) {
        const sha256 = new Map(delivered.map(({ f, file }) => [f, sha256Of(file.body)]));
        const given: Context = {
          urls: delivered.map(({ file }) => dataUrl(file)),
          sha256Of: (f) => sha256.get(f),
        };
        // Uploaded once `rest` is first called (the next window's prediction asked for: nothing of this
        // one's storing stands between the two predictions), the context frames first, then recorded,
        // the context frames in a transaction of their own: whose they are is that transaction's answer,
        // all or nothing.
        const rest = once(async (): Promise<Handed> => {
          const contextStored = mapLimit(delivered, STORE_CONCURRENCY, ({ f, png, file }) =>
            this.store1(p, f, png, made, extra, file),
          );
          const othersStored = storeAll(others);
          othersStored.catch(() => undefined);
          const stored = await contextStored;
          const { counts } = await this.host.recordFrames(job, stored, await events);
          await this.host.recordFrames(job, await othersStored, await events);
          if (counts.succeeded + counts.failed === stored.length) return 'recorded';
          if (counts.succeeded + counts.failed === 0) return 'elsewhere';
          // Some by this delivery, some by another: neither may go on from bytes of its own. Delivered
          // again, the message finds this window finished and gives the next one its stored frames.
          throw new Error(
            `window ${w.index}'s context frames were recorded partly by another delivery; the next window is made again from the stored ones`,
          );
        });
        return { outcome: 'handed-on', context: new Map(), given, rest };
      }
      // Too large to go in a request (see WorkerSettings), or a context frame that cannot be delivered
      // (no format for it: stored below, failing, it stops the chain): stored first, as stamped.
      const ready = new Map(files.map(({ f, png }) => [f, png]));
      return this.storeContextFirst(p, made, first, others, events, (f) => ready.get(f) ?? stamped(f), extra);
    }
    return this.storeContextFirst(p, made, first, others, events, stamped, extra);
  }

  /** storeChained's path when the next window's context is stored and recorded before it starts. */
  private async storeContextFirst(
    p: Planned,
    made: Made,
    first: number[],
    others: number[],
    events: Promise<boolean>,
    stamped: (f: number) => Buffer,
    extra: PredictionInputs,
  ): Promise<ContextFirst> {
    const storeAll = (frames: number[]) =>
      mapLimit(frames, STORE_CONCURRENCY, (f) => this.store1(p, f, stamped(f), made, extra));
    return this.recordContextFirst(p, await storeAll(first), () => storeAll(others), events);
  }

  /**
   * Records the stored context frames, then, once they are, starts `storeOthers` (the window's other
   * frames), recorded by `rest`.
   */
  private async recordContextFirst(
    p: Planned,
    stored: readonly FinishedFrame[],
    storeOthers: () => Promise<FinishedFrame[]>,
    events: Promise<boolean>,
  ): Promise<ContextFirst> {
    const { job } = p;
    const { counts } = await this.host.recordFrames(job, stored, await events);
    const keys: Stored = new Map(
      stored.flatMap((r) =>
        r.status === 'succeeded' && r.key && r.sha256 ? [[r.frame, { key: r.key, sha256: r.sha256 }]] : [],
      ),
    );
    // Uploaded now; recorded when `rest` is first called (once the next window is asked for, see Carried).
    const uploading = storeOthers();
    uploading.catch(() => undefined);
    const rest = once(async (): Promise<Handed> => {
      await this.host.recordFrames(job, await uploading, await events);
      return 'recorded';
    });
    if (stored.length === 0) return { outcome: 'recorded', context: keys, rest };
    if (counts.succeeded + counts.failed === 0) return { outcome: 'made-elsewhere', context: keys, rest };
    // A context frame that failed to store (no format to deliver it in) stops the chain: afterWindow says why.
    const outcome = stored.every((r) => r.status === 'succeeded') ? 'context-recorded' : 'recorded';
    return { outcome, context: keys, rest };
  }

  /**
   * One frame of a made window, stored under its sequence name, ready to be recorded; its times and spend
   * are `made`'s, or added once known (a streamed window's, whose frames are stored before it is made).
   */
  private store1(
    p: Planned,
    f: number,
    png: Buffer,
    made: Pick<Made, 'heldMs' | 'predictTimePerFrame'> | undefined,
    extra: PredictionInputs,
    file?: DeliveredFrame,
  ) {
    const inputs = extra.hashes?.get(f);
    return this.host.storeFrame(p.job, {
      frame: f,
      seed: this.seedOf(p.job, f),
      png,
      ...(file && { file }),
      ...(made?.predictTimePerFrame !== undefined && { predictTime: made.predictTimePerFrame }),
      ...(made && this.spendPerFrame(p, made)),
      ...(inputs && Object.keys(inputs).length > 0 && { inputs }),
    });
  }

  /**
   * A frame's share of its window's GPU time: the window's held time over the frames it keeps, so a chained
   * window's overlap (made, not kept) is paid by its kept frames. In parallel mode a shared frame is
   * recorded once, with the share of whichever window cross-fades it.
   */
  private spendPerFrame(p: Planned, made: Pick<Made, 'heldMs'>) {
    return this.host.spendOf(made.heldMs / Math.max(1, p.kept.end - p.kept.start + 1));
  }

  /**
   * Parallel mode: the frames only this window makes are recorded as they are; its versions of the frames
   * it shares are staged first, then each shared frame whose other version is staged too is cross-faded.
   * Writing before looking means that of two neighbours finishing together, at least the later one finds
   * both versions. The cross-fades are made while the other frames are stored, and all are recorded in
   * one call (a transaction per 48 frames), rather than a transaction per cross-faded frame, each meeting
   * the others on the job item: for the shot's last window, that was most of the time after its prediction.
   */
  private async storeParallel(
    p: Planned,
    made: Made,
    records: ReadonlyMap<number, FrameRecord>,
    extra: PredictionInputs,
  ): Promise<void> {
    const { job, w, windows } = p;
    const previous = windows[w.index - 1];
    const next = windows[w.index + 1];
    const { before, after, alone, shared } = spans(p);

    await eachLimit(shared.flatMap(framesIn), STORE_CONCURRENCY, (f) =>
      this.files.putFile(stagedKey(job, w.index, f), made.frames[f - w.start]!, 'image/png'),
    );
    const events = this.host.frameEventsWanted(job);
    // A streamed window's frames are large: it cross-fades no more of them at once than it uploads.
    const fades = made.stored ? (this.host.deps.settings.uploadConcurrency ?? 4) : STORE_CONCURRENCY;
    const stored = await Promise.all([
      made.stored ??
        mapLimit(
          framesIn(alone).filter((f) => !isFinished(records.get(f))),
          STORE_CONCURRENCY,
          (f) => {
            const png = made.frames[f - w.start]!;
            made.frames[f - w.start] = undefined;
            return this.store1(p, f, this.stamp(p, f, png, frameOrigin(job, windows, f), extra), made, extra);
          },
        ),
      previous && before ? this.crossFadeWith(p, previous, before, made, extra, fades) : [],
      next && after ? this.crossFadeWith(p, next, after, made, extra, fades) : [],
    ]);
    await this.host.recordFrames(job, stored.flat(), await events);
  }

  /**
   * The shared frames `range` with window `other`, cross-faded where its version is staged (failed where
   * it failed), stored and ready to be recorded.
   */
  private async crossFadeWith(
    p: Planned,
    other: Window,
    range: FrameRange,
    made: Made,
    extra: PredictionInputs,
    concurrency: number,
  ): Promise<FinishedFrame[]> {
    const { job, w, windows } = p;
    const [otherFailed, records] = await Promise.all([
      this.files.getFile(failedKey(job, other.index)),
      this.recordsOf(job.id, range),
    ]);
    const out = await mapLimit(
      framesIn(range),
      concurrency,
      async (f): Promise<FinishedFrame | undefined> => {
        const record = records.get(f);
        // Not started: only the frame's owner, the earlier window, starts it, and it stages before it looks.
        if (!record || isFinished(record)) return undefined;
        const seed = this.seedOf(job, f);
        if (otherFailed) {
          return { status: 'failed', frame: f, seed, error: `window ${other.index} failed` };
        }
        const theirs = await this.files.getFile(stagedKey(job, other.index, f));
        if (!theirs) return undefined; // the other window records it when it finishes
        const mine = made.frames[f - w.start]!;
        const [earlier, later] = other.index < w.index ? [theirs, mine] : [mine, theirs];
        const a = decodeRgb(earlier);
        const b = decodeRgb(later);
        if (a.width !== b.width || a.height !== b.height) {
          throw new ModelError(
            `windows ${Math.min(w.index, other.index)} and ${Math.max(w.index, other.index)} made frame ${f} in different sizes`,
          );
        }
        const laterWindow = other.index < w.index ? w : other;
        const png = encodePng(
          crossFade(a.rgb, b.rgb, crossFadeWeight(laterWindow, windows, f)),
          a.width,
          a.height,
        );
        return this.store1(p, f, this.stamp(p, f, png, frameOrigin(job, windows, f), extra), made, extra);
      },
    );
    return out.filter((r): r is FinishedFrame => r !== undefined);
  }

  /**
   * A window that failed after its attempts fails its frames: its own in chained mode, and all of its
   * frames in parallel mode (a shared frame lacks one of its two versions). In chained mode the frames of
   * the windows after it are never made and count as canceled; the job records which window failed.
   */
  private async failWindow(p: Planned, error: string): Promise<void> {
    const { job, w } = p;
    const chained = job.window.mode === 'chained';
    // A chained window waits in the frame DLQ for a redrive once the fault is fixed, which reopens it and
    // goes on with the chain; sent before its failure is recorded, as a chunk's failed frames are. A
    // parallel window is not: its neighbours' staged versions, which its shared frames need, go when the
    // job ends.
    if (chained && this.host.deps.deadLetter) {
      await this.host.deps.deadLetter(
        encodeWindow({
          jobId: job.id,
          tenant: job.tenant,
          window: w.index,
          deadLetter: deadLetterNote(error),
        }),
      );
      logger.warn('a window failed every attempt; dead-lettered for a redrive once fixed', {
        jobId: job.id,
        window: w.index,
      });
    }
    if (!chained) {
      await this.files.putFile(
        failedKey(job, w.index),
        Buffer.from(JSON.stringify({ window: w.index, error })),
        'application/json',
      );
    }
    const failing = chained ? p.own : p.kept;
    const records = await this.recordsOf(job.id, failing);
    await eachLimit(framesIn(failing), STORE_CONCURRENCY, async (f) => {
      const record = records.get(f);
      if (record?.status !== 'running') return;
      await this.host.recordFailure(job, f, this.seedOf(job, f), record.attempts, error);
    });
    this.host.stats.windowsFailed++;
    await this.recordWindowFailure(p, error);
    await this.host.afterWork(job.id);
  }

  /**
   * The job's record of the failed window, once, unless the window's frames all succeeded after all (a
   * duplicate delivery made them while this one failed).
   */
  private async recordWindowFailure(p: Planned, error: string): Promise<void> {
    const { job, w } = p;
    const own = await this.recordsOf(job.id, p.own);
    if (![...own.values()].some((r) => r.status === 'failed')) return;
    const later = job.window.mode === 'chained' ? job.frames.end - p.own.end : 0;
    await this.store.windowFailed(
      job.id,
      { index: w.index, start: p.kept.start, end: p.kept.end, error: error.slice(0, 1000) },
      later,
    );
  }

  /**
   * A window whose frames are all finished. In chained mode, the next window's index when the chain goes
   * on (process makes it); a failed window instead makes sure the job records its failure.
   */
  private async afterWindow(p: Planned): Promise<Step | 'done'> {
    const { job } = p;
    let next: number | undefined;
    if (job.window.mode === 'chained') {
      const own = await this.recordsOf(job.id, p.own);
      const failed = [...own.values()].find((r) => r.status === 'failed');
      if (failed) await this.recordWindowFailure(p, failed.error ?? 'failed');
      else next = p.windows[p.w.index + 1]?.index;
    }
    await this.host.afterWork(job.id);
    // Whether the job still runs, and lets the next window be made, is for the next window to read.
    return next === undefined ? 'done' : { next, job, context: new Map(), rest: nothingBehind };
  }
}

/**
 * The frames window `p` stores as it made them (`alone`: in chained mode its own) and, in parallel mode,
 * those it shares with the window before and after it (`shared`, both), which are cross-faded.
 */
function spans(p: Planned): {
  alone: FrameRange;
  before?: FrameRange;
  after?: FrameRange;
  shared: FrameRange[];
} {
  const { job, w, windows } = p;
  if (job.window.mode === 'chained') return { alone: p.own, shared: [] };
  const previous = windows[w.index - 1];
  const next = windows[w.index + 1];
  const before = previous ? { start: w.start, end: previous.end } : undefined;
  const after = next ? { start: next.start, end: Math.min(w.end, job.frames.end) } : undefined;
  return {
    alone: { start: before ? before.end + 1 : w.start, end: after ? after.start - 1 : p.kept.end },
    ...(before && { before }),
    ...(after && { after }),
    shared: [...(before ? [before] : []), ...(after ? [after] : [])],
  };
}

/** Window `index` of a job, as planned from its record; undefined when the job has no such window. */
function plan(job: WindowedJob, index: number): Planned | undefined {
  const windows = planWindows(job.frames, job.window);
  const w = windows[index];
  if (!w) return undefined;
  const own = chainedFrames(w, windows, job.frames);
  return {
    job,
    windows,
    w,
    own,
    kept: job.window.mode === 'chained' ? own : { start: w.start, end: keptEnd(w, job.frames) },
    seed: windowSeed(job.seed, job.seedMode, w, job.frames),
  };
}

/** What every model with windows is asked for one window (it receives the inputs it declares of these). */
export function windowInput(job: JobRecord, w: Window, seed: number, context?: readonly string[]) {
  return {
    prompt: job.prompt,
    ...(job.negativePrompt !== undefined && { negative_prompt: job.negativePrompt }),
    seed,
    shot_seed: job.seed,
    width: job.width,
    height: job.height,
    frame: w.start,
    start_frame: w.start,
    num_frames: w.end - w.start + 1,
    ...(context && { context: [...context] }),
    job_id: job.id,
    shot: job.shot,
    output_format: 'png' as const,
  };
}

/**
 * In chained mode, the stored frames of window `w`'s predecessor that it overlaps (the selected versions,
 * under the sequence names), presigned: what the model continues. Undefined for the first window.
 */
export async function storedContext(
  store: Pick<JobStore, 'listFrames'>,
  files: Pick<FrameStore, 'presignGet'>,
  job: JobRecord,
  w: Window,
  windows: readonly Window[],
  known?: Stored,
): Promise<Context | undefined> {
  const range = contextFrames(w, windows);
  if (!range || range.end < range.start) return undefined;
  // Recorded by this worker a moment ago (the window before, made here): no need to read them back.
  const records: ReadonlyMap<number, Pick<FrameRecord, 'status' | 'key' | 'sha256'>> = framesIn(range).every(
    (f) => known?.has(f),
  )
    ? new Map(framesIn(range).map((f) => [f, { status: 'succeeded' as const, ...known!.get(f)! }]))
    : new Map((await store.listFrames(job.id, range.start, range.end, true)).map((f) => [f.frame, f]));
  const urls: string[] = [];
  for (const f of framesIn(range)) {
    const record = records.get(f);
    if (record?.status !== 'succeeded' || !record.key) {
      throw new Error(`context frame ${f} of window ${w.index} is ${record?.status ?? 'not recorded'}`);
    }
    urls.push((await files.presignGet(record.key)).url);
  }
  return { urls, sha256Of: (f) => records.get(f)?.sha256 };
}

/** A delivered frame as a data URL: what a Cog model reads for a file input as it reads a URL. */
const dataUrl = (file: DeliveredFrame): string =>
  `data:${file.contentType};base64,${Buffer.from(file.body.buffer, file.body.byteOffset, file.body.byteLength).toString('base64')}`;

/** The sha256 a frame is recorded with: of its stored bytes (FrameStore.putFrame). */
const sha256Of = (body: Uint8Array): string => createHash('sha256').update(body).digest('hex');

/**
 * The frames of a window from the model's output: one PNG per frame, or one video of the window decoded
 * into PNGs. Any other count fails the attempt.
 */
export async function framesOf(out: FilesPrediction, length: number): Promise<Uint8Array[]> {
  let frames: Uint8Array[] = out.files;
  if (out.files.length === 1 && !isPng(out.files[0]!)) {
    const video = out.files[0]!;
    out.files.length = 0;
    frames = await decodeVideo(video, { maxFrames: length });
  }
  if (frames.length !== length) throw new ModelError(wrongCount(frames.length, length));
  if (!frames.every(isPng)) throw new ModelError(NOT_PNG, false);
  return frames;
}

const wrongCount = (made: number, length: number) =>
  `the model made ${made} frame(s) for a window of ${length}; a model with windows must declare start_frame and num_frames and make num_frames frames`;

const NOT_PNG = 'a frame of the window is not a PNG; frames are stored as PNG with their provenance';
