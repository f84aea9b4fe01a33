import type { FrameStore } from '../adapters/frame-store.ts';
import type { Queue, ReceivedMessage } from '../adapters/queues.ts';
import type { EventStore } from '../adapters/store/events.ts';
import type { JobStore } from '../adapters/store/jobs.ts';
import type { VersionStore } from '../adapters/store/versions.ts';
import { frameCount, frameKey, frameSeed, manifestKey } from '../core/frames.ts';
import { manifestOf } from '../core/manifest.ts';
import { type ChunkMessage, parseFrameQueueMessage } from '../core/messages.ts';
import type { EventRecord, FrameRecord, JobRecord } from '../core/model.ts';
import { isPng, type Provenance, withProvenance } from '../core/png.ts';
import { reviewDue } from '../core/review.ts';
import { finalStatus, isTerminalJob } from '../core/state.ts';
import { logger } from '../logger.ts';
import { countMetric, publishMetrics } from '../metrics.ts';
import { APP_METRICS } from '../shared/metrics.ts';
import { type CogClient, ModelError } from './cog.ts';
import { Slots, sleep } from './concurrency.ts';
import { type InputsFor, noInputs, type PredictionInputs } from './inputs.ts';
import { isReroll, RerollMaker } from './reroll.ts';
import { stagedKeys, WindowMaker } from './windows.ts';

export interface WorkerSettings {
  /** Frames generated at once: the model's slots. */
  readonly concurrency: number;
  /** Tries per frame before it is marked failed. */
  readonly maxAttempts: number;
  /** The frame queue's visibility timeout, renewed by the heartbeat. */
  readonly visibilitySeconds: number;
  readonly heartbeatSeconds: number;
  /** Long-poll wait of each receive (SQS allows up to 20 s). */
  readonly waitSeconds: number;
  /** First back-off between tries of a frame; doubles each time. */
  readonly retryBaseMs: number;
  readonly modelImage: string;
}

export interface WorkerDeps {
  readonly store: JobStore;
  readonly events: Pick<EventStore, 'getEvent'>;
  readonly frames: FrameStore;
  readonly queue: Queue;
  readonly model: CogClient;
  readonly publishEvents: (events: readonly EventRecord[]) => Promise<void>;
  /** A prediction's extra inputs and their hashes (./inputs.ts); none when absent. */
  readonly inputsFor?: InputsFor;
  /** Frame versions: re-roll messages are made only by a worker that has them (./reroll.ts). */
  readonly versions?: VersionStore;
  /** Work files a job's inputs may have staged (video inputs, ./video-input.ts), removed when it ends. */
  readonly inputFiles?: (job: JobRecord) => string[];
  readonly settings: WorkerSettings;
}

export interface WorkerStats {
  received: number;
  framesSucceeded: number;
  framesFailed: number;
  framesSkipped: number;
  duplicates: number;
  handedBack: number;
  /** Receives of messages that are not chunks or windows this code reads, each left for SQS to dead-letter. */
  malformed: number;
  modelBusyMs: number;
  /** Windows whose prediction succeeded and whose frames were stored. */
  windowsSucceeded: number;
  /** Windows that failed after every attempt. */
  windowsFailed: number;
}

/** What every model is asked for one frame of a job (it receives the inputs it declares of these). */
export function frameInput(job: JobRecord, frame: number, seed: number) {
  return {
    prompt: job.prompt,
    ...(job.negativePrompt !== undefined && { negative_prompt: job.negativePrompt }),
    seed,
    shot_seed: job.seed,
    width: job.width,
    height: job.height,
    frame,
    job_id: job.id,
    shot: job.shot,
    output_format: 'png' as const,
    num_outputs: 1 as const,
  };
}

/**
 * The GPU worker: long-polls the frame queue, generates each chunk's frames on the model, stores them,
 * records them exactly once and announces them.
 *
 * Three stages overlap: receiving keeps a chunk ready for every model slot; generation holds a slot per
 * frame only while the model runs; storing and recording a frame proceed while the slot generates the
 * next one. A message stays hidden by a heartbeat while it is worked on, and on stop() the messages no
 * slot has started yet are handed back at once (visibility 0), so scale-in loses nothing.
 */
export class Worker {
  readonly stats: WorkerStats = {
    received: 0,
    framesSucceeded: 0,
    framesFailed: 0,
    framesSkipped: 0,
    duplicates: 0,
    handedBack: 0,
    malformed: 0,
    modelBusyMs: 0,
    windowsSucceeded: 0,
    windowsFailed: 0,
  };
  private stopping = false;
  private readonly stopController = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();
  /** The model's slots: held by one frame, or one window, while the model makes it. */
  readonly slots: Slots;
  private readonly windows: WindowMaker;
  private readonly rerolls?: RerollMaker;

  constructor(readonly deps: WorkerDeps) {
    this.slots = new Slots(deps.settings.concurrency);
    this.windows = new WindowMaker(this);
    if (deps.versions) this.rerolls = new RerollMaker(this, deps.versions);
  }

  /** Runs until stop(); resolves once every message in hand is finished or handed back. */
  async run(): Promise<void> {
    const { queue, settings } = this.deps;
    await this.deps.model.waitUntilReady(15 * 60_000, this.stopController.signal);
    // Enough chunks in hand that a slot never waits on a receive; no more, so others can take the rest.
    const prefetch = settings.concurrency * 2;
    let errorBackoff = 500;
    while (!this.stopping) {
      if (this.inFlight.size >= prefetch) {
        await Promise.race(this.inFlight);
        continue;
      }
      let messages: ReceivedMessage[];
      try {
        // Not aborted on stop: a long poll cut off mid-way may already have taken messages, which would
        // then stay hidden until their visibility timeout. It ends within waitSeconds; what it brings
        // is handed back below.
        messages = await queue.receive({
          max: prefetch - this.inFlight.size,
          waitSeconds: settings.waitSeconds,
          visibilitySeconds: settings.visibilitySeconds,
        });
        errorBackoff = 500;
      } catch (err) {
        if (this.stopping) break;
        logger.warn('receive failed; backing off', { error: err as Error, backoffMs: errorBackoff });
        await sleep(errorBackoff);
        errorBackoff = Math.min(errorBackoff * 2, 20_000);
        continue;
      }
      if (this.stopping) {
        await Promise.all(messages.map((m) => this.handBack(m)));
        break;
      }
      for (const message of messages) {
        this.stats.received++;
        const task = this.handle(message).finally(() => this.inFlight.delete(task));
        this.inFlight.add(task);
      }
    }
    await Promise.allSettled([...this.inFlight]);
  }

  private async handBack(message: ReceivedMessage): Promise<void> {
    this.stats.handedBack++;
    await this.deps.queue.setVisibility(message.receiptHandle, 0).catch((err: unknown) => {
      logger.warn('could not hand a chunk back; it returns after its visibility timeout', {
        error: err as Error,
      });
    });
  }

  /**
   * A message that is not a chunk or window this code reads (malformed, or of an unknown version) goes to the frame
   * DLQ, where the DLQ alarm shows it to ops and a redrive brings it back once code that reads it runs.
   * It is left undeleted and handed back at once rather than sent to the DLQ by hand: each receive
   * counts, so within seconds SQS itself moves it there past the queue's maxReceiveCount. That is the
   * Lambda consumers' path too, needs no DLQ address or send permission per model queue, and keeps the
   * message as it was (id, first send time) for the redrive.
   */
  private async refuse(message: ReceivedMessage, reason: string): Promise<void> {
    this.stats.malformed++;
    logger.error('malformed frame queue message; it goes to the DLQ after its retries', {
      messageId: message.id,
      reason,
      receiveCount: message.receiveCount,
    });
    await this.deps.queue.setVisibility(message.receiptHandle, 0).catch((err: unknown) => {
      logger.warn('could not hand a malformed chunk back; it returns after its visibility timeout', {
        messageId: message.id,
        error: err as Error,
      });
    });
  }

  /** Stops polling; chunks not yet started go back to the queue at once. */
  stop(): void {
    this.stopping = true;
    this.stopController.abort();
  }

  get isStopping(): boolean {
    return this.stopping;
  }

  private async handle(message: ReceivedMessage): Promise<void> {
    const { queue, settings } = this.deps;
    const parsed = parseFrameQueueMessage(message.body);
    if (!parsed.ok) {
      await this.refuse(message, parsed.reason);
      return;
    }
    const work = parsed.message;
    if (isReroll(work) && !this.rerolls) {
      await this.refuse(message, 're-roll message, and this worker has no version store');
      return;
    }
    const heartbeat = setInterval(() => {
      queue.setVisibility(message.receiptHandle, settings.visibilitySeconds).catch((err: unknown) => {
        logger.warn('visibility heartbeat failed', { messageId: message.id, error: err as Error });
      });
    }, settings.heartbeatSeconds * 1000);
    try {
      const outcome = isReroll(work)
        ? await this.rerolls!.process(work)
        : work.kind === 'window'
          ? await this.windows.process(work)
          : await this.processChunk(work);
      if (outcome === 'handed-back') {
        await this.handBack(message);
      } else {
        await queue.delete(message.receiptHandle);
      }
    } catch (err) {
      // Not deleted: SQS hands the chunk out again after its visibility timeout; frames done stay done.
      logger.error(`${work.kind} failed; it will be delivered again`, {
        jobId: work.jobId,
        ...(work.kind === 'window' && { window: work.window }),
        error: err as Error,
      });
      await queue.setVisibility(message.receiptHandle, 30).catch(() => undefined);
    } finally {
      clearInterval(heartbeat);
    }
  }

  /** The job a message names, moved to running by the first message of it that arrives. */
  async jobOf(jobId: string, tenant: string): Promise<JobRecord | undefined> {
    const { store } = this.deps;
    const job = await store.getJob(jobId);
    if (!job || job.tenant !== tenant) return undefined;
    if (job.status !== 'queued') return job;
    const started = await store.markStarted(job);
    if (started) await this.deps.publishEvents([started]);
    return (await store.getJob(jobId)) ?? job;
  }

  private async processChunk(chunk: ChunkMessage): Promise<'done' | 'handed-back'> {
    const job = await this.jobOf(chunk.jobId, chunk.tenant);
    if (!job) return 'done';
    if (job.status !== 'running') {
      this.stats.framesSkipped += chunk.frames.length;
      return 'done';
    }
    const storing: Promise<void>[] = [];
    let storeError: unknown;
    let handBack = false;
    // Every frame's inputs are read and signed now, while earlier frames hold the model: a slot is never
    // held waiting on the table or the signer. A failure surfaces on the frame it belongs to.
    const inputsFor = this.deps.inputsFor ?? noInputs;
    const prepared = chunk.frames.map((frame) => {
      const extra = inputsFor(job, [frame]);
      extra.catch(() => undefined);
      return extra;
    });
    for (const [index, frame] of chunk.frames.entries()) {
      if (frame < job.frames.start || frame > job.frames.end) continue;
      const extra = await prepared[index]!;
      await this.slots.acquire();
      if (this.stopping) {
        // Frames already recorded stay recorded; the next delivery skips them and does the rest.
        this.slots.release();
        handBack = true;
        break;
      }
      const outcome = await this.generate(job, frame, extra).finally(() => this.slots.release());
      if (outcome === 'job-ended') {
        this.stats.framesSkipped += chunk.frames.length - index;
        break;
      }
      if (outcome !== 'skipped') {
        storing.push(
          outcome().catch((err: unknown) => {
            storeError ??= err;
          }),
        );
      }
    }
    await Promise.all(storing);
    if (storeError) throw storeError;
    if (handBack) return 'handed-back';
    await this.afterWork(job.id);
    return 'done';
  }

  /**
   * Generates one frame, trying again with back-off until it succeeds or runs out of attempts.
   * Returns the step that stores and records it, so storing overlaps the next frame's generation.
   */
  private async generate(
    job: JobRecord,
    frame: number,
    extra: PredictionInputs,
  ): Promise<'skipped' | 'job-ended' | (() => Promise<void>)> {
    const { store, model, settings } = this.deps;
    const seed = frameSeed(job.seed, job.seedMode, frame, job.frames.start);
    for (;;) {
      const start = await store.startFrame(job, frame, seed);
      if (!start.started) {
        if (start.reason === 'job-ended') return 'job-ended';
        this.stats.duplicates++;
        await this.republishFrameEvent(job.id, frame);
        return 'skipped';
      }
      const attempts = start.attempts;
      if (attempts > settings.maxAttempts) {
        // Earlier deliveries of this chunk died mid-frame (a killed worker): do not try forever.
        return () =>
          this.recordFailure(
            job,
            frame,
            seed,
            attempts - 1,
            'gave up: the worker stopped during every attempt',
          );
      }
      const began = Date.now();
      try {
        const input = {
          ...model.inputFor(frameInput(job, frame, seed), job.params),
          ...extra.inputs,
        };
        const prediction = await model.predict(`${job.id}-${frame}-${attempts}`, input);
        this.stats.modelBusyMs += Date.now() - began;
        if (!isPng(prediction.png)) {
          throw new ModelError(
            'model output is not a PNG; frames are stored as PNG with their provenance (a model with an output_format input is asked for png)',
            false,
          );
        }
        const png = withProvenance(
          prediction.png,
          this.provenance(job, frame, seed, { inputs: extra.hashes?.get(frame) }),
        );
        return () =>
          this.recordSuccess(
            job,
            frame,
            seed,
            attempts,
            png,
            prediction.predictTime,
            extra.hashes?.get(frame),
          );
      } catch (err) {
        this.stats.modelBusyMs += Date.now() - began;
        const error = err instanceof Error ? err.message : String(err);
        const retryable = !(err instanceof ModelError && !err.retryable);
        logger.warn('frame attempt failed', { jobId: job.id, frame, attempts, error });
        if (!retryable || attempts >= settings.maxAttempts) {
          return () => this.recordFailure(job, frame, seed, attempts, error);
        }
        await sleep(settings.retryBaseMs * 2 ** (attempts - 1));
      }
    }
  }

  /** A frame's provenance: how it was made, enough to make it again (core/png.ts). */
  provenance(
    job: JobRecord,
    frame: number,
    seed: number,
    made: Pick<Provenance, 'window' | 'crossFade'> & { inputs?: Provenance['inputs'] | undefined } = {},
  ): Provenance {
    return {
      generator: 'framecast',
      model: job.model,
      modelImage: this.deps.settings.modelImage,
      prompt: job.prompt,
      ...(job.negativePrompt !== undefined && { negativePrompt: job.negativePrompt }),
      seed,
      frame,
      jobId: job.id,
      shot: job.shot,
      width: job.width,
      height: job.height,
      ...(job.params !== undefined && { params: job.params }),
      ...(made.inputs !== undefined && { inputs: made.inputs }),
      ...(made.window !== undefined && { window: made.window }),
      ...(made.crossFade !== undefined && { crossFade: made.crossFade }),
    };
  }

  /** Stores a made frame and records it, once (frames of chunks and of windows alike). */
  async recordSuccess(
    job: JobRecord,
    frame: number,
    seed: number,
    attempts: number,
    png: Buffer,
    predictTime?: number,
    inputs?: Readonly<Record<string, string>>,
  ): Promise<void> {
    const key = frameKey(job.tenant, job.shot, job.id, frame);
    const { sha256, size } = await this.deps.frames.putFrame(key, png, {
      job: job.id,
      frame: String(frame),
      seed: String(seed),
    });
    const { outcome, event } = await this.deps.store.frameSucceeded(job, {
      frame,
      seed,
      attempts,
      sha256,
      size,
      key,
      ...(predictTime !== undefined && { predictTime }),
      ...(inputs && Object.keys(inputs).length > 0 && { inputs }),
    });
    if (outcome === 'recorded') {
      this.stats.framesSucceeded++;
      countMetric(APP_METRICS.framesSucceeded);
      publishMetrics();
      if (event) await this.deps.publishEvents([event]);
    } else if (outcome === 'duplicate') {
      this.stats.duplicates++;
    } else {
      // Canceled while it was generated: the frame counts as canceled, its file goes.
      await this.deps.frames.delete(key);
    }
  }

  /** Records a frame that failed every attempt, once. */
  async recordFailure(job: JobRecord, frame: number, seed: number, attempts: number, error: string) {
    const { outcome, event } = await this.deps.store.frameFailed(job, {
      frame,
      seed,
      attempts,
      error: error.slice(0, 1000),
    });
    if (outcome === 'recorded') {
      this.stats.framesFailed++;
      countMetric(APP_METRICS.framesFailed);
      publishMetrics();
      if (event) await this.deps.publishEvents([event]);
    }
  }

  /** A frame finished by an earlier delivery: announce it again in case that worker died before it could. */
  async republishFrameEvent(jobId: string, frame: number): Promise<void> {
    const record = await this.deps.store.getFrame(jobId, frame);
    if (!record?.eventId) return;
    const event = await this.deps.events.getEvent(record.eventId);
    if (event) await this.deps.publishEvents([event]);
  }

  /**
   * After each chunk or window, one read of the job's counts: a job.progress event at each 10% step, or,
   * once every frame is finished, the manifest and then the job's terminal move. A worker that dies
   * between those two leaves the message undeleted, and the next delivery does both again, idempotently.
   */
  async afterWork(jobId: string): Promise<void> {
    const { store } = this.deps;
    const job = await store.getJob(jobId);
    if (!job) return;
    if (job.status !== 'running') {
      if (isTerminalJob(job.status)) await this.cleanUp(job);
      return;
    }
    const to = finalStatus({ total: frameCount(job.frames), ...job });
    if (!to) {
      if (await this.requestReviewIfDue(job)) return;
      const progress = await store.maybeProgress(job);
      if (progress) await this.deps.publishEvents([progress]);
      return;
    }
    const frames = await store.listFrames(jobId, job.frames.start, job.frames.end, true);
    await this.deps.frames.putJson(
      manifestKey(job.tenant, job.shot, job.id),
      this.manifest({ ...job, status: to }, frames),
    );
    const done = await store.finalizeIfDone(jobId);
    if (done?.event) await this.deps.publishEvents([done.event]);
    if (done && isTerminalJob(done.job.status)) await this.cleanUp(done.job);
  }

  /**
   * A gated job whose review frames are all finished waits for review: it moves to awaiting_review with
   * its job.review_requested event (once, whichever worker sees it first). True when the job waits.
   */
  async requestReviewIfDue(job: JobRecord): Promise<boolean> {
    if (!reviewDue(job)) return false;
    const requested = await this.deps.store.requestReview(job);
    if (requested) await this.deps.publishEvents([requested]);
    return true;
  }

  /**
   * A job that has ended needs no work files: the raw versions parallel windows stage for the cross-fade
   * go, and so do the videos made of its video inputs. Best effort: a file staged by a late duplicate
   * after this stays until the bucket's lifecycle.
   */
  async cleanUp(job: JobRecord): Promise<void> {
    const keys = [...stagedKeys(job), ...(this.deps.inputFiles?.(job) ?? [])];
    if (keys.length === 0) return;
    await this.deps.frames.deleteAll(keys).catch((err: unknown) => {
      logger.warn('could not remove the staged window frames', { jobId: job.id, error: err as Error });
    });
  }

  private manifest(job: JobRecord, frames: FrameRecord[]) {
    return manifestOf(job, frames, this.deps.settings.modelImage);
  }
}
