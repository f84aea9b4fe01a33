import {
  FRAME_STATUSES,
  type FrameStatus,
  JOB_STATUSES,
  type JobStatus,
  VERSION_STATUSES,
  type VersionStatus,
} from './schemas.ts';

/**
 * The job and frame state machines: the single statement of which moves are legal, checked by property
 * tests. The store derives its conditional writes from the functions here; it types no status list of
 * its own. Only moves a feature makes are listed: a feature that needs another (the frame re-roll) adds it.
 */

/**
 * A job with a review gate goes `running -> awaiting_review` once its review frames are finished, and back
 * to `running` when a person approves it (or to `canceled` when rejected or canceled).
 */
const JOB_MOVES: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  queued: ['running', 'canceled'],
  running: ['awaiting_review', 'succeeded', 'failed', 'canceled'],
  awaiting_review: ['running', 'canceled'],
  succeeded: [],
  failed: [],
  canceled: [],
};

/**
 * A frame is `pending` until a worker takes it (it has no record until then) and counts as `canceled`
 * if its job is canceled first. A running frame taken again (its worker died) stays `running`.
 */
const FRAME_MOVES: Readonly<Record<FrameStatus, readonly FrameStatus[]>> = {
  pending: ['running', 'canceled'],
  running: ['running', 'succeeded', 'failed', 'canceled'],
  succeeded: [],
  failed: [],
  canceled: [],
};

/**
 * A version a re-roll makes (docs/architecture.md, "Versions and review"): `pending` once accepted,
 * `running` while a worker makes it (taken again by another worker if the first dies), then finished.
 * The frame itself stays `succeeded` meanwhile: its selected version is unchanged until a select.
 */
const VERSION_MOVES: Readonly<Record<VersionStatus, readonly VersionStatus[]>> = {
  pending: ['running'],
  running: ['running', 'succeeded', 'failed'],
  succeeded: [],
  failed: [],
};

export class IllegalTransition extends Error {
  constructor(kind: 'job' | 'frame' | 'version', from: string, to: string) {
    super(`a ${kind} cannot go from ${from} to ${to}`);
    this.name = 'IllegalTransition';
  }
}

export const canMoveJob = (from: JobStatus, to: JobStatus): boolean => JOB_MOVES[from].includes(to);
export const canMoveFrame = (from: FrameStatus, to: FrameStatus): boolean => FRAME_MOVES[from].includes(to);

export const canMoveVersion = (from: VersionStatus, to: VersionStatus): boolean =>
  VERSION_MOVES[from].includes(to);

/** The statuses a version may be in when it moves to `to`: what a conditional write checks. */
export const versionStatusesBefore = (to: VersionStatus): VersionStatus[] =>
  VERSION_STATUSES.filter((from) => canMoveVersion(from, to));

/** A version no worker will touch again. */
export const isFinishedVersion = (s: VersionStatus): boolean => VERSION_MOVES[s].length === 0;

export function moveJob(from: JobStatus, to: JobStatus): JobStatus {
  if (!canMoveJob(from, to)) throw new IllegalTransition('job', from, to);
  return to;
}

export function moveFrame(from: FrameStatus, to: FrameStatus): FrameStatus {
  if (!canMoveFrame(from, to)) throw new IllegalTransition('frame', from, to);
  return to;
}

/** The statuses a job may be in when it moves to `to`: what a conditional write checks. */
export const jobStatusesBefore = (to: JobStatus): JobStatus[] =>
  JOB_STATUSES.filter((from) => canMoveJob(from, to));

/** The statuses a frame may be in when it moves to `to`: what a conditional write checks. */
export const frameStatusesBefore = (to: FrameStatus): FrameStatus[] =>
  FRAME_STATUSES.filter((from) => canMoveFrame(from, to));

export const isTerminalJob = (s: JobStatus): boolean => JOB_MOVES[s].length === 0;

/**
 * The statuses a job starts from (its job.started move): those before `running` that a running job
 * never goes back to, so an approve (awaiting_review -> running) is never taken for a start.
 */
export const jobStartStatuses = (): JobStatus[] =>
  jobStatusesBefore('running').filter((s) => !canMoveJob('running', s));

/** A job that has not ended: its frames may still be taken and finished. */
export const liveJobStatuses = (): JobStatus[] => JOB_STATUSES.filter((s) => !isTerminalJob(s));

/**
 * A job whose frames decide how it ends (see `finalStatus`): the statuses from which it may both succeed
 * and fail. Progress is announced, and the end is written, only from these.
 */
export const generatingJobStatuses = (): JobStatus[] =>
  jobStatusesBefore('succeeded').filter((s) => canMoveJob(s, 'failed'));

/**
 * Reopening (docs/reliability.md, "Poison and redrive"). Frames that failed every attempt are dead-lettered
 * beside being recorded `failed`; redriven once the fault is fixed, they go back to `pending` (their
 * record removed, so a worker takes them afresh) and a job that failed for them goes back to `running`.
 * These are not moves of the machines above: no worker's own work leaves `failed`, which stays an end
 * (`isTerminalJob`); only the operator's redrive does, through these.
 */
const REOPENED_FROM: FrameStatus = 'failed';
const REOPENED_JOB: Partial<Record<JobStatus, JobStatus>> = { failed: 'running' };

/** The status a frame must have to be reopened: `failed`. */
export const reopenedFrameStatus = (): FrameStatus => REOPENED_FROM;

/** The status a job reopening its frames moves to (`failed -> running`); undefined when it stays. */
export const reopenedJobStatus = (s: JobStatus): JobStatus | undefined => REOPENED_JOB[s];

/** The statuses of a job whose failed frames can be reopened: a live job keeps its status. */
export const reopeningJobStatuses = (): JobStatus[] =>
  JOB_STATUSES.filter((s) => REOPENED_JOB[s] !== undefined || !isTerminalJob(s));

export interface FrameCounts {
  readonly total: number;
  readonly succeeded: number;
  readonly failed: number;
  readonly canceled: number;
}

/**
 * The status a job ends in once every frame is done, or undefined while frames remain.
 * One failed frame fails the job: a shot with a hole in it is not delivered as a success.
 */
export function finalStatus(
  c: FrameCounts & { readonly canceledReason?: string | undefined },
): 'succeeded' | 'failed' | 'canceled' | undefined {
  if (c.succeeded + c.failed + c.canceled < c.total) return undefined;
  if (c.failed > 0) return 'failed';
  // Frames canceled by a missed startBy: the shot is not whole, and the job says why.
  return c.canceledReason !== undefined && c.canceled > 0 ? 'canceled' : 'succeeded';
}
