import type { Queue } from '../adapters/queues.ts';
import type { JobStore } from '../adapters/store/jobs.ts';
import { type Band, bandOf, lowWaterMark, releaseLimit, windowFrames } from '../core/fair-share.ts';
import { planChunks } from '../core/frames.ts';
import { encodeChunk, encodePlan, encodeWindow, type PlanMessage } from '../core/messages.ts';
import type { JobRecord } from '../core/model.ts';
import { gateWindows, isGated } from '../core/review.ts';
import { isTerminalJob } from '../core/state.ts';
import { keptEnd, planWindows } from '../core/windows.ts';

export interface FanOutDeps {
  readonly store: JobStore;
  /** The frame queue of a model: each model's GPU service polls its own. */
  readonly frameQueueFor: (model: string, band: Band) => Pick<Queue, 'sendAll'>;
  readonly planQueue: Pick<Queue, 'send'>;
  readonly chunkSize: number;
  /**
   * Fair share: chunks of one job queued and unfinished at most (core/fair-share.ts); the rest is released
   * as workers finish chunks and ask for more. Absent: every chunk at once.
   */
  readonly fairShareChunks?: number;
}

/** Chunk messages sent per progress write: one SendMessageBatch, then one conditional update. */
const MESSAGES_PER_STEP = 10;

/**
 * The messages that queue a job's frames, from the first frame not yet queued (`from`), each with the
 * frame to record as queued up to once it is sent. Chunks of frames; for a model with windows, window
 * messages: every window in parallel mode, only the first in chained mode (each window sends the next
 * once its frames are stored, so the plan is done once the first is sent).
 */
function* planMessages(
  job: JobRecord,
  chunkSize: number,
  from: number,
): Generator<{ body: string; next: number }> {
  const { id: jobId, tenant } = job;
  // A review gate (core/review.ts): before approval only the gate's frames or windows, after it the rest.
  const gated = isGated(job);
  if (job.window) {
    const windows = planWindows(job.frames, job.window);
    const gate = gateWindows(job);
    const inPhase = (index: number) => (job.review ? gate.has(index) === gated : true);
    const done = job.frames.end + 1;
    if (job.window.mode === 'chained') {
      // The chain starts at window 0, or after approval at the first window the gate did not make; each
      // window sends the next (the worker stops the chain at the gate's last window until approval).
      const first = job.review && !gated ? gate.size : 0;
      if (from <= job.frames.end && first < windows.length)
        yield { body: encodeWindow({ jobId, tenant, window: first }), next: done };
      return;
    }
    // Resumes at the first window not wholly before `from`: a window is queued whole or not at all.
    for (const w of windows) {
      const end = keptEnd(w, job.frames);
      if (end >= from && inPhase(w.index))
        yield { body: encodeWindow({ jobId, tenant, window: w.index }), next: end + 1 };
    }
    return;
  }
  if (job.review && gated) {
    const review = job.review.frames.filter((f) => f >= from);
    for (let i = 0; i < review.length; i += chunkSize) {
      const frames = review.slice(i, i + chunkSize);
      yield { body: encodeChunk({ jobId, tenant, frames }), next: frames[frames.length - 1]! + 1 };
    }
    return;
  }
  const reviewed = new Set(job.review?.frames ?? []);
  for (const chunk of planChunks(job.frames, chunkSize, from)) {
    const frames = chunk.filter((f) => !reviewed.has(f));
    if (frames.length > 0)
      yield { body: encodeChunk({ jobId, tenant, frames }), next: chunk[chunk.length - 1]! + 1 };
  }
}

/**
 * Queues a job's frames as chunk messages, or a windowed job's as window messages. Resumable and
 * idempotent: progress (`plannedUpTo`) is recorded after each batch, so a redelivered plan message resumes where the last one stopped and
 * queues at most one batch twice (workers count a frame once however often it arrives).
 * When time runs short it hands the rest to a continuation message instead of timing out.
 */
export async function fanOut(
  deps: FanOutDeps,
  message: PlanMessage,
  remainingMs: () => number = () => Number.POSITIVE_INFINITY,
): Promise<'planned' | 'continued' | 'skipped'> {
  const job = await deps.store.getJob(message.jobId);
  if (!job || job.tenant !== message.tenant || isTerminalJob(job.status)) return 'skipped';
  // Its review frames are made; the rest waits for approve, which sends a plan message of its own.
  if (job.status === 'awaiting_review') return 'skipped';
  // The job's priority picks its band: workers drain higher bands first.
  const frameQueue = deps.frameQueueFor(job.model, bandOf(job.priority));
  // A chunked job is released a window at a time; windows (one at a time when chained) and a review
  // gate's few frames go at once.
  const window =
    deps.fairShareChunks !== undefined && !job.window && !isGated(job)
      ? windowFrames(deps.chunkSize, deps.fairShareChunks)
      : undefined;
  const limit = window === undefined ? Number.POSITIVE_INFINITY : releaseLimit(job, window);
  let batch: { body: string; next: number }[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await frameQueue.sendAll(batch.map((b) => b.body));
    const next = batch[batch.length - 1]!.next;
    await deps.store.advancePlan(job.id, next, window === undefined ? undefined : lowWaterMark(next, window));
    batch = [];
  };
  let cursor = job.plannedUpTo ?? job.frames.start;
  for (const queued of planMessages(job, deps.chunkSize, cursor)) {
    // Released while its first frame is under the limit: what is queued and unfinished stays within the
    // window plus one chunk, and the chunk whose completion asked for this release always makes room.
    if (cursor >= limit) break;
    cursor = queued.next;
    batch.push(queued);
    if (batch.length === MESSAGES_PER_STEP) {
      await flush();
      if (remainingMs() < 10_000) {
        await deps.planQueue.send(encodePlan(message));
        return 'continued';
      }
    }
  }
  await flush();
  return 'planned';
}
