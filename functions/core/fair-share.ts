import type { JobRecord } from './model.ts';

/**
 * Fair share, priority bands and queue deadlines: pure decisions over the job as read
 * (docs/architecture.md, "Fair share, priority and deadlines"; docs/operations.md says what they promise).
 *
 * - A job's chunks are not all queued at once. The fan-out releases them while the frames queued and not
 *   finished stay under the job's window (`windowFrames`), so a 10,000-frame shot holds at most one window
 *   of the queue and another job's first chunk enters the queue behind at most one window of it.
 * - Workers ask for the next release (a plan message, "nudge") when they finish a chunk at or past the
 *   job's low-water mark (`releaseAt`), or the last chunk released; the release itself is the fan-out's.
 * - `priority` picks one of three queues of the job's model; workers drain higher bands first.
 */

/** The queues of one model, highest first. */
export const BANDS = ['high', 'normal', 'low'] as const;
export type Band = (typeof BANDS)[number];

/** The band of a priority (0-100): 67 and over high, 34 to 66 normal (the default 50), 33 and under low. */
export function bandOf(priority: number): Band {
  if (priority >= 67) return 'high';
  if (priority >= 34) return 'normal';
  return 'low';
}

/** The window: frames of one job the fan-out lets be queued and unfinished at once. */
export const windowFrames = (chunkSize: number, fairShareChunks: number): number =>
  chunkSize * fairShareChunks;

type Progress = Pick<JobRecord, 'frames' | 'succeeded' | 'failed' | 'canceled' | 'plannedUpTo'>;

/** Frames of the job that are finished: succeeded, failed, or canceled (a failed window, a missed deadline). */
export const finishedFrames = (job: Pick<Progress, 'succeeded' | 'failed' | 'canceled'>): number =>
  job.succeeded + job.failed + job.canceled;

/**
 * The first frame the fan-out may not release yet: a chunk is released while its first frame is below it.
 * Every frame below `plannedUpTo` is queued or finished, so the frames queued and unfinished stay under
 * `window` plus one chunk. Frames skipped by the plan (a review gate's, made first) count as finished.
 */
export const releaseLimit = (job: Progress, window: number): number =>
  job.frames.start + finishedFrames(job) + window;

/**
 * The frame whose chunk asks for the next release: half a window before the end of what is queued, so the
 * next chunks are queued before the queue runs dry.
 */
export const lowWaterMark = (plannedUpTo: number, window: number): number =>
  plannedUpTo - Math.ceil(window / 2);

/**
 * Whether a worker that has just finished (or found finished) `frames` of `job` asks the fan-out to
 * release more: frames remain unreleased, and this chunk holds the low-water mark or reaches the end of
 * what was released as the worker read it. The last chunk released always asks, so a job whose nudges
 * were lost or came too early is released on by its last chunk: a job never waits for a timer.
 */
export function wantsRelease(
  job: Pick<JobRecord, 'frames' | 'plannedUpTo' | 'releaseAt' | 'status'>,
  frames: readonly number[],
  /** The fan-out's window (`windowFrames`), when the worker knows it. */
  window?: number,
): boolean {
  const planned = job.plannedUpTo;
  if (frames.length === 0 || job.status === 'awaiting_review') return false;
  const first = Math.min(...frames);
  const last = Math.max(...frames);
  if (planned === undefined) {
    // Read before the job's first release was recorded (the fan-out records a release after sending it,
    // so a resent plan never skips a chunk): what was released is not known. A job longer than one window
    // may have frames left to release, so its chunk asks; a spare ask releases no more than the window allows.
    return window !== undefined && job.frames.end - job.frames.start + 1 > window;
  }
  if (planned > job.frames.end) return false;
  if (last + 1 >= planned) return true;
  return job.releaseAt !== undefined && first <= job.releaseAt && job.releaseAt <= last;
}

/** Whether the job's queue deadline has passed at `now`: its unstarted frames are canceled, not made. */
export const pastStartBy = (job: Pick<JobRecord, 'startBy'>, now: Date): boolean =>
  job.startBy !== undefined && now.getTime() > Date.parse(job.startBy);

/** What the job says of frames canceled by its deadline. */
export const startByReason = (startBy: string): string =>
  `startBy passed: frames not started by ${startBy} were canceled`;
