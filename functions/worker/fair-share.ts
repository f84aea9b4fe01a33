import type { JobStore } from '../adapters/store/jobs.ts';
import { pastStartBy, startByReason, wantsRelease } from '../core/fair-share.ts';
import { frameSeed } from '../core/frames.ts';
import { encodePlan } from '../core/messages.ts';
import type { JobRecord } from '../core/model.ts';
import { logger } from '../logger.ts';

/**
 * The worker's side of fair share and queue deadlines (core/fair-share.ts): after a chunk it asks the
 * fan-out to release more of the job when the chunk was at the job's low-water mark or the last one
 * released; a chunk taken after the job's `startBy` has its unstarted frames canceled instead of made.
 */
export class FairShare {
  constructor(
    private readonly store: Pick<JobStore, 'cancelUnstarted'>,
    /** Sends a plan message: the fan-out releases the job's next chunks. Absent: nothing is asked. */
    private readonly sendPlan?: (body: string) => Promise<void>,
    /** The fan-out's window in frames (core/fair-share.ts `windowFrames`), for a job read before its release. */
    private readonly window?: number,
  ) {}

  /**
   * Called once a chunk is finished, found finished (a second delivery) or canceled: a lost request is
   * asked again by the next delivery, since the chunk is deleted only after this.
   */
  async chunkDone(job: JobRecord, frames: readonly number[], now = new Date()): Promise<void> {
    if (!this.sendPlan || pastStartBy(job, now) || !wantsRelease(job, frames, this.window)) return;
    await this.sendPlan(encodePlan({ jobId: job.id, tenant: job.tenant }));
  }

  /**
   * Of a chunk's frames, those to make: all of them before the job's `startBy`; after it, only those a
   * worker started before it (they have a record). The others are canceled with the reason the job
   * shows, and with them the frames the fan-out never released.
   */
  async framesToMake(job: JobRecord, frames: readonly number[], now = new Date()): Promise<number[]> {
    if (!pastStartBy(job, now) || job.startBy === undefined) return [...frames];
    const seeded = frames.map((frame) => ({
      frame,
      seed: frameSeed(job.seed, job.seedMode, frame, job.frames.start),
    }));
    const out = await this.store.cancelUnstarted(job, seeded, startByReason(job.startBy), now);
    if (!out.ok) return [];
    logger.info('startBy passed: unstarted frames canceled', {
      jobId: job.id,
      startBy: job.startBy,
      canceled: out.canceled.length,
    });
    const canceled = new Set(out.canceled);
    return frames.filter((f) => !canceled.has(f));
  }
}
