import { type FrameRange, frameCount } from './frames.ts';
import type { JobRecord } from './model.ts';
import { MAX_REVIEW_FRAMES } from './schemas.ts';
import { chainedFrames, planWindows, type Window, windowsOf } from './windows.ts';

/**
 * Review gates and re-roll units (docs/architecture.md, "Versions and review"): pure rules over the job
 * record, applied by the job service at submit, by the fan-out when it plans, and by the worker when it
 * decides that the job waits for review.
 */

type Planned = Pick<JobRecord, 'frames' | 'window'>;
type Gated = Planned & Pick<JobRecord, 'review'>;

/** What a re-roll or a select acts on: one frame, or the frames a window owns. */
export interface Unit {
  readonly start: number;
  readonly end: number;
  /** The window's index, for a model with windows. */
  readonly window?: number;
}

/** The frames each window owns: from the frame after its predecessor's end to its own end. */
function ownedBy(job: Planned & { window: NonNullable<Planned['window']> }): {
  windows: Window[];
  own: FrameRange[];
} {
  const windows = planWindows(job.frames, job.window);
  return { windows, own: windows.map((w) => chainedFrames(w, windows, job.frames)) };
}

/** The unit frame `frame` of `job` belongs to (the frame must be in the job's range). */
export function unitOf(job: Planned, frame: number): Unit {
  if (!job.window) return { start: frame, end: frame };
  const { own } = ownedBy({ ...job, window: job.window });
  const index = own.findIndex((r) => frame >= r.start && frame <= r.end);
  const r = own[index]!;
  return { start: r.start, end: r.end, window: index };
}

export type ResolvedReview = { ok: true; frames: number[] } | { ok: false; field: string; message: string };

/**
 * The review frames a gate names, sorted and once each: `frames` as given (each in the job's range), or
 * `every: N` from the first frame. At most MAX_REVIEW_FRAMES.
 */
export function resolveReview(
  gate: { readonly frames?: readonly number[] | undefined; readonly every?: number | undefined },
  range: FrameRange,
): ResolvedReview {
  let frames: number[];
  if (gate.frames) {
    const outside = gate.frames.findIndex((f) => f < range.start || f > range.end);
    if (outside >= 0) {
      return {
        ok: false,
        field: `body.review.frames.${outside}`,
        message: `frame ${gate.frames[outside]} is not in the job's frames ${range.start}-${range.end}`,
      };
    }
    frames = [...new Set(gate.frames)].sort((a, b) => a - b);
  } else {
    const every = gate.every ?? 1;
    const count = Math.floor((range.end - range.start) / every) + 1;
    if (count > MAX_REVIEW_FRAMES) {
      return {
        ok: false,
        field: 'body.review.every',
        message: `makes ${count} review frames; at most ${MAX_REVIEW_FRAMES}`,
      };
    }
    frames = Array.from({ length: count }, (_, i) => range.start + i * every);
  }
  return { ok: true, frames };
}

/**
 * The windows made before review. Parallel mode: every window that makes a review frame (two, for a frame
 * in an overlap, so that it is cross-faded). Chained mode: every window up to the last one owning a review
 * frame, since each window is made from its predecessor's last frames.
 */
export function gateWindows(job: Gated): Set<number> {
  if (!job.window || !job.review) return new Set();
  const { windows, own } = ownedBy({ ...job, window: job.window });
  if (job.window.mode === 'parallel') {
    return new Set(job.review.frames.flatMap((f) => windowsOf(f, windows).map((w) => w.index)));
  }
  const owning = job.review.frames.map((f) => own.findIndex((r) => f >= r.start && f <= r.end));
  const last = Math.max(-1, ...owning);
  return new Set(Array.from({ length: last + 1 }, (_, i) => i));
}

/**
 * How many of the job's frames are finished before review: when that many are, the job waits. In
 * parallel mode a frame the gate's windows share with a window outside it waits (running) for that
 * window's version, made after approval, so it is not counted.
 */
export function gateFrameCount(job: Gated): number {
  if (!job.review) return 0;
  if (!job.window) return job.review.frames.length;
  const { windows, own } = ownedBy({ ...job, window: job.window });
  const gate = gateWindows(job);
  if (job.window.mode === 'chained') {
    let count = 0;
    for (const i of gate) count += frameCount(own[i]!);
    return count;
  }
  let count = 0;
  for (let f = job.frames.start; f <= job.frames.end; f++) {
    if (windowsOf(f, windows).every((w) => gate.has(w.index))) count++;
  }
  return count;
}

/** The gate makes every frame of the shot, so nothing would be left to wait for review. */
export const gateCoversShot = (job: Gated): boolean =>
  job.review !== undefined && gateFrameCount(job) >= frameCount(job.frames);

/** The job has a gate no person has approved yet: only the review frames may be made. */
export const isGated = (job: Pick<JobRecord, 'review'>): boolean =>
  job.review !== undefined && job.review.approvedAt === undefined;

/** True when frame `frame` (or window `window`) may be queued now: not gated, or part of the gate. */
export function mayQueueWindow(job: Gated, window: number): boolean {
  return !isGated(job) || gateWindows(job).has(window);
}

/**
 * The running, gated job as just read has finished every frame made before review: it is time to move it
 * to awaiting_review.
 */
export function reviewDue(job: Gated & Pick<JobRecord, 'status' | 'succeeded' | 'failed' | 'canceled'>) {
  return (
    job.status === 'running' &&
    isGated(job) &&
    job.succeeded + job.failed + job.canceled >= gateFrameCount(job)
  );
}
