import type { FrameStatus, JobStatus } from './schemas.ts';

/**
 * The job and frame state machines. Stores apply these as DynamoDB conditions; the functions here are
 * the single statement of which moves are legal, checked by property tests.
 */

const JOB_MOVES: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  queued: ['running', 'canceled', 'failed'],
  running: ['succeeded', 'failed', 'canceled'],
  succeeded: [],
  failed: [],
  canceled: [],
};

/** A frame is `pending` until a worker takes it; a re-roll sends a finished frame back to `running`. */
const FRAME_MOVES: Readonly<Record<FrameStatus, readonly FrameStatus[]>> = {
  pending: ['running', 'canceled'],
  running: ['running', 'succeeded', 'failed', 'canceled'],
  succeeded: ['running'],
  failed: ['running'],
  canceled: [],
};

export class IllegalTransition extends Error {
  constructor(kind: 'job' | 'frame', from: string, to: string) {
    super(`a ${kind} cannot go from ${from} to ${to}`);
    this.name = 'IllegalTransition';
  }
}

export const canMoveJob = (from: JobStatus, to: JobStatus): boolean => JOB_MOVES[from].includes(to);
export const canMoveFrame = (from: FrameStatus, to: FrameStatus): boolean => FRAME_MOVES[from].includes(to);

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
  (Object.keys(JOB_MOVES) as JobStatus[]).filter((from) => canMoveJob(from, to));

export const isTerminalJob = (s: JobStatus): boolean => JOB_MOVES[s].length === 0;

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
export function finalStatus(c: FrameCounts): 'succeeded' | 'failed' | undefined {
  if (c.succeeded + c.failed + c.canceled < c.total) return undefined;
  return c.failed > 0 ? 'failed' : 'succeeded';
}
