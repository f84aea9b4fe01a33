import type { FrameStore } from '../adapters/frame-store.ts';
import type { Queue, ReceivedMessage } from '../adapters/queues.ts';
import type { EventStore } from '../adapters/store/events.ts';
import type { JobStore } from '../adapters/store/jobs.ts';
import { frameCount, frameKey, frameSeed, manifestKey } from '../core/frames.ts';
import { type ChunkMessage, chunkMessageSchema, parseMessage } from '../core/messages.ts';
import type { EventRecord, FrameRecord, JobRecord } from '../core/model.ts';
import { withProvenance } from '../core/png.ts';
import { finalStatus } from '../core/state.ts';
import { toJobResponse } from '../core/views.ts';
import { logger } from '../logger.ts';
import { countMetric, publishMetrics } from '../metrics.ts';
import { APP_METRICS } from '../shared/metrics.ts';
import { type CogClient, ModelError } from './cog.ts';

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
  readonly settings: WorkerSettings;
}

export interface WorkerStats {
  received: number;
  framesSucceeded: number;
  framesFailed: number;
  framesSkipped: number;
  duplicates: number;
  handedBack: number;
  /** Receives of messages that are not chunks this code reads, each left for SQS to dead-letter. */
  malformed: number;
  modelBusyMs: number;
}

/** A counting semaphore: the model's slots. */
class Slots {
  private free: number;
  private readonly waiters: (() => void)[] = [];
  constructor(n: number) {
    this.free = n;
  }
  async acquire(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((resolve) => this.waiters.push(resolve));
  }
  release(): void {
    const next = this.waiters.shift();
    if (next) next();
    else this.free++;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const PNG_SIGNATURE = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const isPng = (bytes: Uint8Array) => Buffer.from(bytes.subarray(0, 8)).equals(PNG_SIGNATURE);

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
  };
  private stopping = false;
  private readonly stopController = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();
  private readonly slots: Slots;

  constructor(private readonly deps: WorkerDeps) {
    this.slots = new Slots(deps.settings.concurrency);
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
   * A message that is not a chunk this code reads (malformed, or of an unknown version) goes to the frame
   * DLQ, where the DLQ alarm shows it to ops and a redrive brings it back once code that reads it runs.
   * It is left undeleted and handed back at once rather than sent to the DLQ by hand: each receive
   * counts, so within seconds SQS itself moves it there past the queue's maxReceiveCount. That is the
   * Lambda consumers' path too, needs no DLQ address or send permission per model queue, and keeps the
   * message as it was (id, first send time) for the redrive.
   */
  private async refuse(message: ReceivedMessage, reason: string): Promise<void> {
    this.stats.malformed++;
    logger.error('malformed chunk; it goes to the DLQ after its retries', {
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
    const parsed = parseMessage(chunkMessageSchema, message.body);
    if (!parsed.ok) {
      await this.refuse(message, parsed.reason);
      return;
    }
    const chunk = parsed.message;
    const heartbeat = setInterval(() => {
      queue.setVisibility(message.receiptHandle, settings.visibilitySeconds).catch((err: unknown) => {
        logger.warn('visibility heartbeat failed', { messageId: message.id, error: err as Error });
      });
    }, settings.heartbeatSeconds * 1000);
    try {
      const outcome = await this.processChunk(chunk, message);
      if (outcome === 'handed-back') {
        await this.handBack(message);
      } else {
        await queue.delete(message.receiptHandle);
      }
    } catch (err) {
      // Not deleted: SQS hands the chunk out again after its visibility timeout; frames done stay done.
      logger.error('chunk failed; it will be delivered again', { jobId: chunk.jobId, error: err as Error });
      await queue.setVisibility(message.receiptHandle, 30).catch(() => undefined);
    } finally {
      clearInterval(heartbeat);
    }
  }

  private async processChunk(chunk: ChunkMessage, message: ReceivedMessage): Promise<'done' | 'handed-back'> {
    const { store } = this.deps;
    let job = await store.getJob(chunk.jobId);
    if (!job || job.tenant !== chunk.tenant) return 'done';
    if (job.status === 'queued') {
      const started = await store.markStarted(job);
      if (started) await this.deps.publishEvents([started]);
      job = (await store.getJob(chunk.jobId)) ?? job;
    }
    if (job.status !== 'running') {
      this.stats.framesSkipped += chunk.frames.length;
      return 'done';
    }
    const storing: Promise<void>[] = [];
    let storeError: unknown;
    let handBack = false;
    for (const [index, frame] of chunk.frames.entries()) {
      if (frame < job.frames.start || frame > job.frames.end) continue;
      await this.slots.acquire();
      if (this.stopping) {
        // Frames already recorded stay recorded; the next delivery skips them and does the rest.
        this.slots.release();
        handBack = true;
        break;
      }
      const outcome = await this.generate(job, frame, message).finally(() => this.slots.release());
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
    await this.afterChunk(job.id);
    return 'done';
  }

  /**
   * Generates one frame, trying again with back-off until it succeeds or runs out of attempts.
   * Returns the step that stores and records it, so storing overlaps the next frame's generation.
   */
  private async generate(
    job: JobRecord,
    frame: number,
    message: ReceivedMessage,
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
        const input = model.inputFor(
          {
            prompt: job.prompt,
            ...(job.negativePrompt !== undefined && { negative_prompt: job.negativePrompt }),
            seed,
            shot_seed: job.seed,
            width: job.width,
            height: job.height,
            frame,
            job_id: job.id,
            shot: job.shot,
            output_format: 'png',
            num_outputs: 1,
          },
          job.params,
        );
        const prediction = await model.predict(`${job.id}-${frame}-${attempts}`, input);
        this.stats.modelBusyMs += Date.now() - began;
        if (!isPng(prediction.png)) {
          throw new ModelError(
            'model output is not a PNG; frames are stored as PNG with their provenance (a model with an output_format input is asked for png)',
            false,
          );
        }
        const png = withProvenance(prediction.png, {
          generator: 'framecast',
          model: job.model,
          modelImage: settings.modelImage,
          prompt: job.prompt,
          ...(job.negativePrompt !== undefined && { negativePrompt: job.negativePrompt }),
          seed,
          frame,
          jobId: job.id,
          shot: job.shot,
          width: job.width,
          height: job.height,
          ...(job.params !== undefined && { params: job.params }),
        });
        return () => this.recordSuccess(job, frame, seed, attempts, png, prediction.predictTime);
      } catch (err) {
        this.stats.modelBusyMs += Date.now() - began;
        const error = err instanceof Error ? err.message : String(err);
        const retryable = !(err instanceof ModelError && !err.retryable);
        logger.warn('frame attempt failed', { jobId: job.id, frame, attempts, error, messageId: message.id });
        if (!retryable || attempts >= settings.maxAttempts) {
          return () => this.recordFailure(job, frame, seed, attempts, error);
        }
        await sleep(settings.retryBaseMs * 2 ** (attempts - 1));
      }
    }
  }

  private async recordSuccess(
    job: JobRecord,
    frame: number,
    seed: number,
    attempts: number,
    png: Buffer,
    predictTime?: number,
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

  private async recordFailure(job: JobRecord, frame: number, seed: number, attempts: number, error: string) {
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
  private async republishFrameEvent(jobId: string, frame: number): Promise<void> {
    const record = await this.deps.store.getFrame(jobId, frame);
    if (!record?.eventId) return;
    const event = await this.deps.events.getEvent(record.eventId);
    if (event) await this.deps.publishEvents([event]);
  }

  /**
   * After each chunk, one read of the job's counts: a job.progress event at each 10% step, or, once every
   * frame is finished, the manifest and then the job's terminal move. A worker that dies between those
   * two leaves the chunk undeleted, and the next delivery does both again, idempotently.
   */
  private async afterChunk(jobId: string): Promise<void> {
    const { store } = this.deps;
    const job = await store.getJob(jobId);
    if (job?.status !== 'running') return;
    const to = finalStatus({ total: frameCount(job.frames), ...job });
    if (!to) {
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
  }

  private manifest(job: JobRecord, frames: FrameRecord[]) {
    const { settings } = this.deps;
    const view = toJobResponse(job);
    return {
      framecast: 1,
      job: view,
      request: {
        shot: job.shot,
        prompt: job.prompt,
        ...(job.negativePrompt !== undefined && { negativePrompt: job.negativePrompt }),
        model: job.model,
        width: job.width,
        height: job.height,
        frames: job.frames,
        seed: job.seed,
        seedMode: job.seedMode,
        ...(job.params !== undefined && { params: job.params }),
      },
      model: { name: job.model, image: settings.modelImage },
      frames: frames.map((f) => ({
        frame: f.frame,
        file: f.key ? f.key.slice(f.key.lastIndexOf('/') + 1) : undefined,
        status: f.status,
        seed: f.seed,
        attempts: f.attempts,
        sha256: f.sha256,
        size: f.size,
        predictTime: f.predictTime,
        startedAt: f.startedAt,
        finishedAt: f.finishedAt,
        ...(f.error !== undefined && { error: f.error }),
      })),
    };
  }
}
