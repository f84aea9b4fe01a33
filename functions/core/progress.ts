import { frameCount } from './frames.ts';
import type { JobRecord } from './model.ts';
import { canMoveJob, finalStatus, generatingJobStatuses } from './state.ts';

/**
 * How far a job has come, and what follows from it: when a job.progress event is due, which status the
 * job ends in, and how many frames a cancel leaves. Pure decisions over the job as just read; the store
 * writes them with conditions on the job, so concurrent workers carry each one out once.
 */

/** job.progress is announced in tenths of a job's frames. */
export const PROGRESS_STEPS = 10;
/** job.progress events: at most one per job this often. */
export const PROGRESS_INTERVAL_MS = 5000;

type Counts = Pick<JobRecord, 'status' | 'frames' | 'succeeded' | 'failed' | 'canceled' | 'canceledReason'>;

/** What the job's record keeps of its last job.progress event. */
export interface ProgressMarks {
  readonly progressStep?: number;
  /** When it was announced, in epoch milliseconds. */
  readonly progressAt?: number;
}

/** The tenths of its frames a job has finished (succeeded or failed): 0 to 10. */
export const progressStep = (job: Pick<Counts, 'frames' | 'succeeded' | 'failed'>): number =>
  Math.floor(((job.succeeded + job.failed) * PROGRESS_STEPS) / frameCount(job.frames));

export interface ProgressDue {
  readonly step: number;
  /** The last announcement must be at or before this (epoch ms) for this one to go out. */
  readonly quietUntil: number;
}

/**
 * The job.progress event due for `job` at `now` (epoch ms), if any: the job is generating, has reached a
 * step past the last one announced, and has announced nothing for PROGRESS_INTERVAL_MS. The last step
 * is never announced: the job's own end event says it. Steps passed during a quiet interval are not
 * announced one by one: the next announcement names the step reached.
 */
export function progressDue(job: Counts & ProgressMarks, now: number): ProgressDue | undefined {
  if (!generatingJobStatuses().includes(job.status)) return undefined;
  const step = progressStep(job);
  if (step <= (job.progressStep ?? 0) || step >= PROGRESS_STEPS) return undefined;
  const quietUntil = now - PROGRESS_INTERVAL_MS;
  if (job.progressAt !== undefined && job.progressAt > quietUntil) return undefined;
  return { step, quietUntil };
}

export interface JobEnd {
  readonly status: 'succeeded' | 'failed' | 'canceled';
  readonly event: 'job.succeeded' | 'job.failed' | 'job.canceled';
}

/**
 * How `job` ends, and the event that says so, once every frame is finished; undefined while frames
 * remain or when the job cannot make that move (it is not running).
 */
export function jobEnd(job: Counts): JobEnd | undefined {
  const status = finalStatus({
    total: frameCount(job.frames),
    succeeded: job.succeeded,
    failed: job.failed,
    canceled: job.canceled,
    canceledReason: job.canceledReason,
  });
  if (!status || !canMoveJob(job.status, status)) return undefined;
  return { status, event: `job.${status}` };
}

/** The frames not finished: what a cancel counts as canceled. */
export const unfinishedFrames = (job: Pick<Counts, 'frames' | 'succeeded' | 'failed'>): number =>
  frameCount(job.frames) - job.succeeded - job.failed;
