import type { Queue } from '../adapters/queues.ts';
import type { JobStore } from '../adapters/store/jobs.ts';
import { planChunks } from '../core/frames.ts';
import { encodeChunk, encodePlan, type PlanMessage } from '../core/messages.ts';
import { isTerminalJob } from '../core/state.ts';

export interface FanOutDeps {
  readonly store: JobStore;
  /** The frame queue of a model: each model's GPU service polls its own. */
  readonly frameQueueFor: (model: string) => Pick<Queue, 'sendAll'>;
  readonly planQueue: Pick<Queue, 'send'>;
  readonly chunkSize: number;
}

/** Chunk messages sent per progress write: one SendMessageBatch, then one conditional update. */
const MESSAGES_PER_STEP = 10;

/**
 * Queues a job's frames as chunk messages. Resumable and idempotent: progress (`plannedUpTo`) is
 * recorded after each batch, so a redelivered plan message resumes where the last one stopped and
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
  const frameQueue = deps.frameQueueFor(job.model);
  let batch: { body: string; next: number }[] = [];
  const flush = async () => {
    if (batch.length === 0) return;
    await frameQueue.sendAll(batch.map((b) => b.body));
    await deps.store.advancePlan(job.id, batch[batch.length - 1]!.next);
    batch = [];
  };
  for (const frames of planChunks(job.frames, deps.chunkSize, job.plannedUpTo ?? job.frames.start)) {
    const body = encodeChunk({ jobId: job.id, tenant: job.tenant, frames });
    batch.push({ body, next: frames[frames.length - 1]! + 1 });
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
