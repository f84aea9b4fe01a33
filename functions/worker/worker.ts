import { AsyncLocalStorage } from 'node:async_hooks';
import type { FrameStore } from '../adapters/frame-store.ts';
import type { ReceivedMessage } from '../adapters/queues.ts';
import type { EventStore } from '../adapters/store/events.ts';
import type { FinishedFrame, JobStore } from '../adapters/store/jobs.ts';
import type { VersionStore } from '../adapters/store/versions.ts';
import type { ModelIdentity } from '../core/audit.ts';
import { eachLimit, gate, limiter } from '../core/concurrency.ts';
import { DEFAULT_GPU_HOUR_USD, gpuShareMs, spendMicros, usdToMicros } from '../core/cost.ts';
import { frameCount, frameSeed, hasThumbnail, manifestKey } from '../core/frames.ts';
import { manifestOf } from '../core/manifest.ts';
import { type ChunkMessage, deadLetterNote, encodeChunk, parseFrameQueueMessage } from '../core/messages.ts';
import type { EventRecord, FrameRecord, JobRecord } from '../core/model.ts';
import type { NamingTemplate } from '../core/naming.ts';
import { checkPng, isPng, type Provenance, stampProvenance } from '../core/png.ts';
import { isGated, reviewDue } from '../core/review.ts';
import { finalStatus, isTerminalJob } from '../core/state.ts';
import { logger } from '../logger.ts';
import { countMetric, publishMetrics } from '../metrics.ts';
import { APP_METRICS } from '../shared/metrics.ts';
import { BudgetGate, type WorkerBudgets } from './budget-gate.ts';
import { type CogClient, ModelError } from './cog.ts';
import { Slots, sleep } from './concurrency.ts';
import { type DeliveredFrame, type DeliverFrame, deliverFrames } from './deliverables.ts';
import { FairShare } from './fair-share.ts';
import { type InputsFor, noInputs, type PredictionInputs } from './inputs.ts';
import { recordedModel } from './model-image.ts';
import type { FrameQueue } from './polling.ts';
import { isReroll, RerollMaker } from './reroll.ts';
import { stagedKeys, WindowMaker } from './windows.ts';

export interface WorkerSettings {
  /** Frames generated at once: the model's prediction slots (one for most models on one GPU). */
  readonly concurrency: number;
  /** Chunks or windows in hand per slot, so the next prediction is ready when a slot frees. */
  readonly prefetchPerSlot?: number;
  /** Frames stored to S3 at once, beside generation. */
  readonly uploadConcurrency?: number;
  /** Tries per frame before it is marked failed. */
  readonly maxAttempts: number;
  /** The frame queue's visibility timeout, renewed by the heartbeat. */
  readonly visibilitySeconds: number;
  readonly heartbeatSeconds: number;
  /** Long-poll wait of each receive (SQS allows up to 20 s). */
  readonly waitSeconds: number;
  /**
   * Longest a chained job's window message is held while this worker makes the windows after it
   * (functions/worker/windows.ts); then the chain goes on by a message of its own. Default one hour:
   * SQS keeps a message hidden 12 hours at most.
   */
  readonly chainHoldSeconds?: number;
  /**
   * Largest context, in bytes of its files, a chained window is given from memory (data URLs in the
   * prediction's request) rather than stored and presigned first (functions/worker/windows.ts). Default
   * 32 MiB: 8 frames of 1080p PNG; 4K frames go the stored way, so the request stays of a size Cog
   * servers and proxies take.
   */
  readonly contextInMemoryMaxBytes?: number;
  /**
   * Largest window, estimated as its frames' pixels (width x height x 3 bytes x frames, what a PNG of a
   * generated frame stays well under), made in memory: the model's whole answer held, then stored. A
   * larger one is streamed: each frame stored as the answer brings it (functions/worker/windows.ts).
   * Default 512 MiB: a 49-frame window of 1080p (305 MB) is made in memory, one of 1440p or 4K streams.
   */
  readonly windowInMemoryMaxBytes?: number;
  /** First back-off between tries of a frame; doubles each time. */
  readonly retryBaseMs: number;
  readonly modelImage: string;
  /** What an hour of this task's GPU host costs, micro-dollars (core/cost.ts); the default price when absent. */
  readonly gpuHourMicros?: number;
  /** How often a tenant's budgets are read again (./budget-gate.ts). @default 5000 */
  readonly budgetCheckMs?: number;
  /** How long a message held by a budget waits before it is looked at again. @default 60 */
  readonly holdSeconds?: number;
}

export interface WorkerDeps {
  readonly store: JobStore;
  readonly events: Pick<EventStore, 'getEvent' | 'latestEvents'>;
  readonly frames: FrameStore;
  /** The model's frame queue, or its priority bands read as one (./polling.ts). */
  readonly queue: FrameQueue;
  readonly model: CogClient;
  readonly publishEvents: (events: readonly EventRecord[]) => Promise<void>;
  /** A prediction's extra inputs and their hashes (./inputs.ts); none when absent. */
  readonly inputsFor?: InputsFor;
  /** Whether any webhook wants the job's frame events; when absent, they are always written and sent. */
  readonly frameEventsWanted?: (job: JobRecord) => Promise<boolean>;
  /** Frame versions: re-roll messages are made only by a worker that has them (./reroll.ts). */
  readonly versions?: VersionStore;
  /** Work files a job's inputs may have staged (video inputs, ./video-input.ts), removed when it ends. */
  readonly inputFiles?: (job: JobRecord) => string[];
  /** What a frame is stored as: its key and bytes (./deliverables.ts; PNG when absent). */
  readonly deliver?: DeliverFrame;
  /** The production's naming template, which `deliver` names frames by (the default when absent). */
  readonly naming?: NamingTemplate;
  /** Writes a finished job's OpenTimelineIO file beside its manifest (./deliverables.ts). */
  readonly writeTimeline?: (job: JobRecord) => Promise<void>;
  /** The model's image and digest for the audit trail (./model-image.ts); the configured image when absent. */
  readonly modelIdentity?: () => Promise<ModelIdentity>;
  /** Sends a plan message, asking the fan-out to release more of a job (./fair-share.ts). */
  readonly sendPlan?: (body: string) => Promise<void>;
  /** The fan-out's release window in frames (core/fair-share.ts), which a job read before its release needs. */
  readonly releaseWindow?: number;
  /** Budgets: work of a tenant at its stop threshold is held, warnings are sent (./budget-gate.ts). */
  readonly budgets?: WorkerBudgets;
  /**
   * Puts a message on the frame queue's DLQ: frames that failed every attempt, to be redriven once the
   * fault is fixed (docs/reliability.md, "Poison and redrive"). Absent: they are only recorded failed.
   */
  readonly deadLetter?: (body: string) => Promise<void>;
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
  /** Predictions the model refused with 409 (every slot busy): rare once the worker knows its slots. */
  modelRefusals: number;
  /** Windows whose prediction succeeded and whose frames were stored. */
  windowsSucceeded: number;
  /** Windows that failed after every attempt. */
  windowsFailed: number;
  /** Messages put back because a budget held their tenant's work. */
  held: number;
}

/** A frame made and stamped with its provenance, to be stored. */
export interface StoredFrameInput {
  readonly frame: number;
  readonly seed: number;
  readonly png: Buffer;
  readonly predictTime?: number;
  /** GPU time the frame held (the task's share), ms, and its spend, micro-dollars (Worker.spendOf). */
  readonly gpuMs?: number;
  readonly costMicros?: number;
  readonly inputs?: Readonly<Record<string, string>>;
}

/** A frame the model made for a chunk. */
interface MadeFrame extends StoredFrameInput {
  readonly status: 'made';
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

/** A message being worked on (its identity is what counts: Worker.pastModel). */
interface Task {
  readonly messageId: string;
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
    modelRefusals: 0,
    windowsSucceeded: 0,
    windowsFailed: 0,
    held: 0,
  };
  private stopping = false;
  private readonly stopController = new AbortController();
  private readonly inFlight = new Set<Promise<void>>();
  /**
   * Each message's task, known in its own async context: the receive loop counts a task that gave its
   * slot back (storing and recording what the model made) apart from those still to use the model.
   */
  private readonly task = new AsyncLocalStorage<Task>();
  private readonly pastModel = new Set<Task>();
  /** Resolved when a task gives its slot back: the receive loop may take another message. */
  private slotGivenBack: { promise: Promise<void>; resolve(): void } | undefined;
  /** The model's slots: held by one frame, or one window, while the model makes it. */
  readonly slots: Slots;
  private readonly windows: WindowMaker;
  /** Bounds the frames being stored at once. */
  readonly uploads: ReturnType<typeof limiter>;
  /** Chunk frames made and not yet stored (each holds its PNG): no frame is made while the uploads are full. */
  private readonly unstored = new Set<Promise<void>>();
  /**
   * Frames asked of the model and not yet made (or not yet among the unstored): they count against the
   * uploads' bound, with one more for each slot beyond the first.
   */
  private readonly making = new Set<Promise<void>>();
  /** A new job's start, made once however many of its chunks arrive together. */
  private readonly starting = new Map<string, Promise<JobRecord | undefined>>();
  private readonly rerolls?: RerollMaker;
  private readonly fairShare: FairShare;
  private readonly budgetGate?: BudgetGate;

  constructor(readonly deps: WorkerDeps) {
    this.fairShare = new FairShare(deps.store, deps.sendPlan, deps.releaseWindow);
    if (deps.budgets) {
      this.budgetGate = new BudgetGate(deps.budgets, deps.publishEvents, deps.settings.budgetCheckMs);
    }
    this.slots = new Slots(deps.settings.concurrency, {
      acquiring: () => {
        const task = this.task.getStore();
        if (task) this.pastModel.delete(task);
      },
      released: () => {
        const task = this.task.getStore();
        if (!task || this.pastModel.has(task)) return;
        this.pastModel.add(task);
        this.slotGivenBack?.resolve();
        this.slotGivenBack = undefined;
      },
    });
    this.uploads = limiter(deps.settings.uploadConcurrency ?? 4);
    this.windows = new WindowMaker(this);
    if (deps.versions) this.rerolls = new RerollMaker(this, deps.versions);
  }

  /** Runs until stop(); resolves once every message in hand is finished or handed back. */
  async run(): Promise<void> {
    const { queue, settings } = this.deps;
    // The queue is looked at while the model sets up: its first receive then asks no band it knows empty.
    await Promise.all([
      this.deps.model.waitUntilReady(15 * 60_000, this.stopController.signal),
      queue.prime?.(),
    ]);
    // From here on it takes work: what an operator (or a fault test restarting workers) waits for.
    logger.info('worker ready', { slots: this.slots.capacity, pipelining: this.deps.model.pipelining });
    // Enough chunks in hand that a slot never waits on a receive; no more, so others can take the rest.
    // A task that gave its slot back and is only storing what the model made does not count: the next
    // message is in hand by then (a window's storing lasts about as long as the next window's making),
    // and at most one such task per slot is beside them.
    const prefetch = settings.concurrency * (settings.prefetchPerSlot ?? 2);
    const most = prefetch + settings.concurrency;
    let errorBackoff = 500;
    while (!this.stopping) {
      const toModel = this.inFlight.size - this.pastModel.size;
      if (toModel >= prefetch || this.inFlight.size >= most) {
        if (!this.slotGivenBack) {
          let resolve!: () => void;
          const promise = new Promise<void>((r) => {
            resolve = r;
          });
          this.slotGivenBack = { promise, resolve };
        }
        await Promise.race([...this.inFlight, this.slotGivenBack.promise]);
        continue;
      }
      let messages: ReceivedMessage[];
      try {
        // Not aborted on stop: a long poll cut off mid-way may already have taken messages, which would
        // then stay hidden until their visibility timeout. It ends within waitSeconds; what it brings
        // is handed back below.
        messages = await queue.receive({
          max: Math.min(prefetch - toModel, most - this.inFlight.size),
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
        const task: Task = { messageId: message.id };
        const running = this.task
          .run(task, () => this.handle(message))
          .finally(() => {
            this.inFlight.delete(running);
            this.pastModel.delete(task);
          });
        this.inFlight.add(running);
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

  /**
   * The model answered 409: every one of its slots is busy, so it has fewer than this worker was set
   * for. If its health check says BUSY, the slots held by this worker's other predictions are all it
   * has: from now on no more are handed out. This prediction asks again when one of ours ends, or
   * after a quarter of a second.
   */
  async modelBusy(): Promise<void> {
    this.stats.modelRefusals++;
    const others = this.slots.inUse - 1;
    if (others >= 1 && others < this.slots.capacity && (await this.deps.model.health()) === 'BUSY') {
      logger.warn('the model has fewer prediction slots than configured; using what it has', {
        configured: this.deps.settings.concurrency,
        slots: others,
      });
      this.slots.resize(others);
      this.deps.model.setSlots(others);
    }
    // A short wait in any case: the slots may be held by another worker sharing the model (local mode).
    await this.slots.nextRelease(250);
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
    const hold = await this.budgetGate?.holdReason(work.tenant);
    if (hold) {
      await this.holdBack(message, work.jobId, hold);
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
          ? await this.windows.process(work, message.receiveCount)
          : await this.processChunk(work, message.receiveCount);
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

  /**
   * A budget holds the message's tenant: the job says why, and the message goes back on the queue as a
   * new one, delayed (a redelivery of the same one would climb towards the DLQ with every look), then the
   * one in hand is deleted. A worker dying in between leaves both: the duplicate is harmless.
   */
  private async holdBack(message: ReceivedMessage, jobId: string, reason: string): Promise<void> {
    this.stats.held++;
    try {
      await this.budgetGate!.hold(jobId, reason);
      await this.deps.queue.send(message.body, this.deps.settings.holdSeconds ?? 60);
      await this.deps.queue.delete(message.receiptHandle);
    } catch (err) {
      // Not lost: the message in hand comes back after a short wait, and is looked at again.
      logger.warn('could not hold a message back; it returns shortly', { jobId, error: err as Error });
      await this.deps.queue.setVisibility(message.receiptHandle, 30).catch(() => undefined);
    }
  }

  /** The job a message names, moved to running by the first message of it that arrives. */
  async jobOf(jobId: string, tenant: string): Promise<JobRecord | undefined> {
    const read = await this.jobBeside(jobId, tenant);
    if (!read) return undefined;
    await read.started;
    return read.job;
  }

  /**
   * The job as `jobOf` gives it, without waiting for a queued job's start (queued -> running, with its
   * job.started event): `started` settles once that is written, and fails as `jobOf` would. A window
   * asks the model beside it; its take, which checks the job is live, follows it, so the two writes to
   * the job do not meet.
   */
  async jobBeside(
    jobId: string,
    tenant: string,
  ): Promise<{ job: JobRecord; started: Promise<unknown> } | undefined> {
    const job = await this.deps.store.getJob(jobId);
    if (!job || job.tenant !== tenant) return undefined;
    // Its tenant may spend again (this message was not held): frames a budget held go on.
    if (job.held) await this.budgetGate?.release(job);
    if (job.status !== 'queued') return { job, started: Promise.resolve() };
    let starting = this.starting.get(jobId);
    if (!starting) {
      starting = this.start(job).finally(() => this.starting.delete(jobId));
      this.starting.set(jobId, starting);
    }
    // Awaited by whoever writes next; not an unhandled rejection meanwhile.
    starting.catch(() => undefined);
    return { job: { ...job, status: 'running' }, started: starting };
  }

  /**
   * queued -> running. If another worker moved it first, it is running too, or was canceled meanwhile:
   * the chunk's own start transaction checks the job is live, so no read is needed to tell.
   */
  private async start(job: JobRecord): Promise<JobRecord> {
    const started = await this.deps.store.markStarted(job);
    if (started) await this.deps.publishEvents([started]);
    return { ...job, status: 'running' };
  }

  private async processChunk(chunk: ChunkMessage, delivery: number): Promise<'done' | 'handed-back'> {
    const { store, settings } = this.deps;
    let job = await this.jobOf(chunk.jobId, chunk.tenant);
    if (!job) return 'done';
    if (chunk.v === 3) {
      // A dead letter redriven once its fault was fixed: its frames are made again, the job runs again.
      job = await this.reopen(job, chunk.frames, chunk.deadLetter.reason);
      if (!job) return 'done';
    }
    if (job.status !== 'running') {
      this.stats.framesSkipped += chunk.frames.length;
      if (delivery > 1 && isTerminalJob(job.status)) await this.republishEnded(job, chunk.frames);
      return 'done';
    }
    const seedOf = (frame: number) => frameSeed(job.seed, job.seedMode, frame, job.frames.start);
    // After the job's startBy, only frames started before it are made; the rest are canceled.
    const inRange = await this.fairShare.framesToMake(
      job,
      chunk.frames.filter((f) => f >= job.frames.start && f <= job.frames.end),
    );
    // Whether anyone listens to frame events, asked while the frames are taken.
    const events = this.frameEventsWanted(job);
    // The chunk's frames are taken in one transaction, before the model is asked for the first of them.
    const start = await store.startFrames(
      job,
      inRange.map((frame) => ({ frame, seed: seedOf(frame) })),
    );
    if (!start.ok) {
      this.stats.framesSkipped += chunk.frames.length;
      return 'done';
    }
    if (start.done.length > 0) {
      this.stats.duplicates += start.done.length;
      if (await events) await eachLimit(start.done, 4, (f) => this.republishFrameEvent(job.id, f));
    }
    const results: FinishedFrame[] = [];
    let todo = start.started;
    if (delivery > settings.maxAttempts && todo.length > 0) {
      // Earlier deliveries of this chunk died mid-frame (a killed worker): do not try forever.
      const gaveUp = await this.givenUp(job, todo);
      for (const frame of gaveUp) {
        results.push({
          status: 'failed',
          frame,
          seed: seedOf(frame),
          error: 'gave up: the worker stopped during every attempt',
        });
      }
      todo = todo.filter((f) => !gaveUp.has(f));
    }
    // Every frame's inputs are read and signed now, while earlier frames hold the model: a slot is never
    // held waiting on the table or the signer. A failure surfaces on the frame it belongs to.
    const inputsFor = this.deps.inputsFor ?? noInputs;
    const prepared = todo.map((frame) => {
      const extra = inputsFor(job, [frame]);
      extra.catch(() => undefined);
      return extra;
    });
    const storing: Promise<void>[] = [];
    const uploadLimit = settings.uploadConcurrency ?? 4;
    const unstored = this.unstored;
    let storeError: unknown;
    let handBack = false;
    // The chunk holds one slot from its first frame to its last, so its frames go to the model back to
    // back and the chunk is recorded as early as it can be; another chunk in hand waits its turn.
    if (todo.length > 0) await this.slots.acquire();
    let slotHeld = todo.length > 0;
    // Two of the chunk's frames are at the model at once: the one it runs and the next, whose request
    // waits on the slot's connection (CogClient.send) and starts the moment the slot frees. A model that
    // cannot take a request pipelined gets one at a time.
    const depth = this.deps.model.pipelining ? 2 : 1;
    const atModel: Promise<void>[] = [];
    // A made frame is stored once the next frame's prediction request is on its way (or when nothing
    // more is asked of the model): storing it first (its hash, the S3 request's signing) would delay the
    // request and leave the model idle meanwhile. `sent[i]` opens when frame i's request is out.
    const sent = todo.map(gate);
    const openAll = () => {
      for (const g of sent) g.open();
    };
    const making = this.making;
    const make = async (index: number, frame: number, extra: PredictionInputs) => {
      const { heldMs, ...generated } = await this.generate(job, frame, seedOf(frame), extra, delivery, () =>
        sent[index]!.open(),
      );
      this.stats.modelBusyMs += heldMs;
      const made = { ...generated, ...this.spendOf(heldMs) };
      if (made.status === 'failed') {
        results.push(made);
        return;
      }
      // Stored beside the next frame's generation; recorded with the chunk's others.
      const upload: Promise<void> = (sent[index + 1]?.promise ?? Promise.resolve())
        .then(() => this.uploads(() => this.storeFrame(job, made)))
        .then(
          (stored) => {
            results.push(stored);
          },
          (err: unknown) => {
            storeError ??= err;
          },
        )
        .finally(() => unstored.delete(upload));
      unstored.add(upload);
      storing.push(upload);
    };
    try {
      for (const [index, frame] of todo.entries()) {
        if (this.stopping) {
          // Frames made so far are recorded below; the next delivery does the rest.
          handBack = true;
          break;
        }
        // No more made frames wait for their upload, over the worker's slots, than can be uploaded at once:
        // a model faster than the uploads waits for them rather than fill the worker's memory with frames
        // (docs/performance.md, "Memory"); frames at the model count as made, one more allowed for each slot beyond the first.
        const full = () => unstored.size + making.size >= uploadLimit + this.slots.capacity - 1;
        if (full()) openAll();
        while (full()) await Promise.race([...unstored, ...making]);
        const extra = await prepared[index]!;
        // In order on the connection: the frame before is asked first; and no more than `depth` at once.
        if (index > 0) await sent[index - 1]!.promise;
        while (atModel.length >= depth) await atModel.shift();
        const task = make(index, frame, extra).finally(() => making.delete(task));
        making.add(task);
        atModel.push(task);
      }
      if (depth > 1 && todo.length > 0 && !handBack) {
        // The slot goes to the next chunk in hand once only the last frame is at the model, its request
        // out: the next chunk's first request then waits behind it, as the chunk's own frames did.
        await sent[todo.length - 1]!.promise;
        while (atModel.length > 1) await atModel.shift();
        slotHeld = false;
        this.slots.release();
      }
    } finally {
      // The frames at the model are made and stored however the loop ended.
      const settled = await Promise.allSettled(atModel);
      openAll();
      if (slotHeld) this.slots.release();
      for (const outcome of settled) if (outcome.status === 'rejected') storeError ??= outcome.reason;
    }
    await Promise.all(storing);
    if (storeError) throw storeError;
    // Frames that failed every attempt go to the DLQ before they are recorded failed: a worker dying in
    // between leaves them running, to be given up and dead-lettered again by the next delivery.
    await this.deadLetterFailed(job, results);
    const recorded = await this.recordFrames(job, results, await events);
    if (handBack) return 'handed-back';
    // The job may have ended, or (gated) reached its review: read it. Otherwise the counts as read at the
    // chunk's start, plus what it recorded, tell whether a progress step is due.
    if (recorded.last || start.done.length > 0 || isGated(job) || inRange.length < chunk.frames.length)
      await this.afterWork(job.id);
    else await this.maybeProgress(job, recorded.counts);
    await this.fairShare.chunkDone(job, chunk.frames);
    return 'done';
  }

  /**
   * Reopens a redriven dead letter's frames (JobStore.reopenFrames) and announces the job's reopening.
   * The job as it stands after, or undefined when it cannot take them (canceled meanwhile).
   */
  async reopen(
    job: JobRecord,
    frames: readonly number[],
    reason: string,
    window?: { readonly index: number; readonly later: number },
  ): Promise<JobRecord | undefined> {
    const out = await this.deps.store.reopenFrames(job, frames, reason, new Date(), window);
    if (!out) {
      logger.info('dead letter dropped: its job cannot be reopened', { jobId: job.id, status: job.status });
      return undefined;
    }
    if (out.reopened.length > 0)
      logger.info('failed frames reopened', {
        jobId: job.id,
        frames: out.reopened,
        jobStatus: out.job.status,
      });
    if (out.event) await this.deps.publishEvents([out.event]);
    return out.job;
  }

  /** Puts a chunk's frames that failed every attempt on the DLQ, with the last error, to be redriven. */
  private async deadLetterFailed(job: JobRecord, results: readonly FinishedFrame[]): Promise<void> {
    const failed = results.filter((r) => r.status === 'failed');
    if (failed.length === 0 || !this.deps.deadLetter) return;
    const body = encodeChunk({
      jobId: job.id,
      tenant: job.tenant,
      frames: failed.map((r) => r.frame),
      deadLetter: deadLetterNote(failed[0]!.error ?? 'failed'),
    });
    await this.deps.deadLetter(body);
    logger.warn('frames failed every attempt; dead-lettered for a redrive once fixed', {
      jobId: job.id,
      frames: failed.map((r) => r.frame),
    });
  }

  /** Of `frames`, those whose attempts ran out over earlier deliveries (each of which died mid-frame). */
  private async givenUp(job: JobRecord, frames: readonly number[]): Promise<Set<number>> {
    const records = await this.deps.store.listFrames(job.id, Math.min(...frames), Math.max(...frames), true);
    return new Set(
      records
        .filter((r) => frames.includes(r.frame) && r.attempts > this.deps.settings.maxAttempts)
        .map((r) => r.frame),
    );
  }

  /**
   * Generates one frame, trying again with back-off until it succeeds or its tries in this delivery run
   * out (the deliveries before it count against `maxAttempts` too). `heldMs`: the model slot's time its
   * tries had (Prediction.slotMs; a failed try, from its request to its failure), back-off not included:
   * the next frame has the slot meanwhile.
   */
  private async generate(
    job: JobRecord,
    frame: number,
    seed: number,
    extra: PredictionInputs,
    delivery: number,
    /** Called once the prediction request is sent, or once no request will be. */
    onSent: () => void = () => undefined,
  ): Promise<(MadeFrame | (FinishedFrame & { status: 'failed' })) & { readonly heldMs: number }> {
    const { store, model, settings } = this.deps;
    const tries = Math.max(1, settings.maxAttempts - (delivery - 1));
    let heldMs = 0;
    for (let attempt = 1; ; attempt++) {
      if (attempt > 1) await store.countAttempt(job.id, frame);
      const asked = Date.now();
      let answered = false;
      try {
        const input = {
          ...model.inputFor(frameInput(job, frame, seed), job.params),
          ...extra.inputs,
        };
        // The id is the same for the same delivery and try: a retried request joins its prediction.
        const prediction = await model
          .predict(`${job.id}-${frame}-${delivery}-${attempt}`, input, undefined, { onSent })
          .finally(onSent);
        heldMs += prediction.slotMs;
        answered = true;
        if (!isPng(prediction.png)) {
          throw new ModelError(
            'model output is not a PNG; frames are stored as PNG with their provenance (a model with an output_format input is asked for png)',
            false,
          );
        }
        const inputs = extra.hashes?.get(frame);
        // Checked as it inflates, off this thread and without holding the raw pixels (core/png.ts).
        await checkPng(prediction.png);
        return {
          status: 'made',
          frame,
          seed,
          heldMs,
          png: stampProvenance(prediction.png, this.provenance(job, frame, seed, { inputs })),
          ...(prediction.predictTime !== undefined && { predictTime: prediction.predictTime }),
          ...(inputs && Object.keys(inputs).length > 0 && { inputs }),
        };
      } catch (err) {
        // A try that failed after its answer (not a PNG) counted its slot time already.
        if (!answered) heldMs += Date.now() - asked;
        const error = err instanceof Error ? err.message : String(err);
        const retryable = !(err instanceof ModelError && !err.retryable);
        logger.warn('frame attempt failed', { jobId: job.id, frame, attempt, delivery, error });
        if (!retryable || attempt >= tries) return { status: 'failed', frame, seed, error, heldMs };
        await sleep(settings.retryBaseMs * 2 ** (attempt - 1));
      }
    }
  }

  /** The GPU time and its spend of a model slot held `heldMs` (core/cost.ts). */
  spendOf(heldMs: number): { gpuMs: number; costMicros: number } {
    const { settings } = this.deps;
    const gpuMs = gpuShareMs(heldMs, settings.concurrency);
    const price = settings.gpuHourMicros ?? usdToMicros(DEFAULT_GPU_HOUR_USD);
    return { gpuMs, costMicros: spendMicros(gpuMs, price) };
  }

  /** Stores a made frame's PNG under its sequence name: what recording it needs. */
  async storeFrame(
    job: JobRecord,
    made: StoredFrameInput & { readonly file?: DeliveredFrame },
  ): Promise<FinishedFrame> {
    // `file` when the caller needed the stored bytes before storing them (a chained window's context).
    const file = made.file ?? (await this.deliverFrame(job, made.frame, made.png));
    const spend = {
      ...(made.gpuMs !== undefined && { gpuMs: made.gpuMs }),
      ...(made.costMicros !== undefined && { costMicros: made.costMicros }),
    };
    if (file instanceof Error) {
      return { status: 'failed', frame: made.frame, seed: made.seed, error: file.message, ...spend };
    }
    const { sha256, size } = await this.deps.frames.putFrame(
      file.key,
      file.body,
      { job: job.id, frame: String(made.frame), seed: String(made.seed) },
      file.contentType,
      { thumbnail: hasThumbnail(job) },
    );
    return {
      status: 'succeeded',
      frame: made.frame,
      seed: made.seed,
      sha256,
      size,
      key: file.key,
      ...(made.predictTime !== undefined && { predictTime: made.predictTime }),
      ...spend,
      ...(made.inputs && { inputs: made.inputs }),
    };
  }

  /**
   * What the job asks the frame delivered as (PNG, or EXR in the plate's colour space), or, for a frame
   * that cannot be (no oiiotool for EXR), an error saying why.
   */
  deliverFrame(job: JobRecord, frame: number, png: Buffer): Promise<DeliveredFrame | Error> {
    return (this.deps.deliver ?? deliverFrames(undefined, this.deps.naming))(job, frame, png).catch(
      (err: Error) => err,
    );
  }

  /**
   * Records stored (or failed) frames, each once, in one transaction where DynamoDB's limits allow, and
   * sends their events for delivery when anyone listens (`publish`). `last` says the job may have finished: read it (afterWork).
   * `counts` are the frames this call recorded, for the progress the caller may announce.
   */
  async recordFrames(
    job: JobRecord,
    results: readonly FinishedFrame[],
    publish: boolean,
  ): Promise<{ last: boolean; counts: { succeeded: number; failed: number } }> {
    const counts = { succeeded: 0, failed: 0 };
    if (results.length === 0) return { last: false, counts };
    // The frames with the job's last are most likely its last write (JobStore.finishFrames, likelyLast).
    const likelyLast = results.some((r) => r.frame === job.frames.end);
    const out = await this.deps.store.finishFrames(job, results, new Date(), { likelyLast });
    if (out.jobEnded) {
      // Canceled while it was generated: the frames count as canceled, their files go.
      const keys = results.flatMap((r) => (r.status === 'succeeded' && r.key ? [r.key] : []));
      if (keys.length > 0) await this.deps.frames.deleteAll(keys);
      return { last: true, counts };
    }
    for (const r of out.recorded) {
      if (r.status === 'succeeded') counts.succeeded++;
      else counts.failed++;
    }
    this.stats.framesSucceeded += counts.succeeded;
    this.stats.framesFailed += counts.failed;
    this.stats.duplicates += out.duplicates.length;
    if (counts.succeeded > 0) countMetric(APP_METRICS.framesSucceeded, counts.succeeded);
    if (counts.failed > 0) countMetric(APP_METRICS.framesFailed, counts.failed);
    const spend = out.recorded.reduce((n, r) => n + (r.costMicros ?? 0), 0);
    if (spend > 0) countMetric(APP_METRICS.spendMicros, spend);
    const gpuMs = out.recorded.reduce((n, r) => n + (r.gpuMs ?? 0), 0);
    if (gpuMs > 0) countMetric(APP_METRICS.gpuMilliseconds, gpuMs);
    publishMetrics();
    if (counts.succeeded + counts.failed > 0) {
      // A warning that cannot be sent now is sent by a later chunk: the frames are recorded either way.
      await this.budgetGate?.afterSpend(job).catch((err: unknown) => {
        logger.warn('budget warning not sent; a later chunk tries again', {
          jobId: job.id,
          error: err as Error,
        });
      });
    }
    if (publish && out.events.length > 0) await this.deps.publishEvents(out.events);
    return { last: out.last, counts };
  }

  /**
   * Whether any webhook wants this job's frame events: without one, they are recorded but not sent,
   * which saves about half of the AWS requests a frame would otherwise cost (docs/performance.md).
   */
  frameEventsWanted(job: JobRecord): Promise<boolean> {
    const wanted = this.deps.frameEventsWanted?.(job) ?? Promise.resolve(true);
    // Asked before work that may fail first (the table unreachable): its rejection, never awaited then,
    // must not be an unhandled rejection, which ends the worker's process. Awaited, it still throws.
    wanted.catch(() => undefined);
    return wanted;
  }

  /** A job.progress event, when due for the job as read at the chunk's start plus what it recorded. */
  private async maybeProgress(job: JobRecord, counts: { succeeded: number; failed: number }) {
    const progress = await this.deps.store.maybeProgress({
      ...job,
      succeeded: job.succeeded + counts.succeeded,
      failed: job.failed + counts.failed,
    });
    if (progress) await this.deps.publishEvents([progress]);
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

  /**
   * Stores a made frame and records it, once, on its own: what the bench's naive worker does for every
   * frame (bench/baseline.ts); chunks and windows record their frames together (`recordFrames`).
   */
  async recordSuccess(
    job: JobRecord,
    frame: number,
    seed: number,
    attempts: number,
    png: Buffer,
    predictTime?: number,
    inputs?: Readonly<Record<string, string>>,
    spend?: { gpuMs: number; costMicros: number },
  ): Promise<void> {
    const stored = await this.storeFrame(job, {
      frame,
      seed,
      png,
      ...(predictTime !== undefined && { predictTime }),
      ...spend,
      ...(inputs && Object.keys(inputs).length > 0 && { inputs }),
    });
    if (stored.status === 'failed') return this.recordFailure(job, frame, seed, attempts, stored.error ?? '');
    const { status: _status, ...result } = stored;
    const key = result.key!;
    const { outcome, event } = await this.deps.store.frameSucceeded(job, { ...result, attempts });
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

  /**
   * A message delivered again to a job that has ended: the delivery before may have recorded its frames
   * and failed to put their events (or the job's end) on the event queue, and the job ended meanwhile.
   * They are announced again; the delivery claims make a second copy harmless.
   */
  async republishEnded(job: JobRecord, frames: readonly number[]): Promise<void> {
    const ours = frames.filter((f) => f >= job.frames.start && f <= job.frames.end);
    if (await this.frameEventsWanted(job))
      await eachLimit(ours, 4, (f) => this.republishFrameEvent(job.id, f));
    const ended = (await this.deps.events.latestEvents(job.id, 10)).find(
      (e) => e.type === `job.${job.status}`,
    );
    if (ended) await this.deps.publishEvents([ended]);
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
    // Both written, side by side, before the job says it ended; the model as the audit records it beside.
    const [, , model] = await Promise.all([
      this.deps.frames.putJson(
        manifestKey(job.tenant, job.shot, job.id),
        this.manifest({ ...job, status: to }, frames),
      ),
      this.deps.writeTimeline?.({ ...job, status: to }),
      recordedModel(this.deps, job.model),
    ]);
    // The job's audit record(s), in the transaction of its end: the frames as the manifest lists them.
    const done = await store.finalizeIfDone(jobId, new Date(), job, { frames, model });
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
