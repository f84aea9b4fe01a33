import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import type { JobRecord, JobWindows } from '../../../functions/core/model.ts';
import {
  gateCoversShot,
  gateFrameCount,
  gateWindows,
  isGated,
  mayQueueWindow,
  resolveReview,
  reviewDue,
  unitOf,
} from '../../../functions/core/review.ts';

const frames = { start: 1, end: 60 };
// Window 17, overlap 4, 4n+1 over 1-60: windows 1-17, 14-30, 27-43, 40-56, 53-61 (own 1-17, 18-30, 31-43, 44-56, 57-60).
const spec = (mode: 'chained' | 'parallel'): JobWindows => ({
  window: 17,
  overlap: 4,
  lengths: { multiple: 4, offset: 1 },
  mode,
});
const gated = (review: number[], window?: JobWindows) => ({
  frames,
  ...(window && { window }),
  review: { frames: review },
});

describe('a review gate', () => {
  it('resolves frames sorted and once each, or every N-th frame from the first', () => {
    expect(resolveReview({ frames: [9, 3, 9] }, frames)).toEqual({ ok: true, frames: [3, 9] });
    expect(resolveReview({ every: 25 }, frames)).toEqual({ ok: true, frames: [1, 26, 51] });
    expect(resolveReview({ frames: [3, 61] }, frames)).toMatchObject({
      ok: false,
      field: 'body.review.frames.1',
      message: expect.stringContaining('1-60'),
    });
    expect(resolveReview({ every: 1 }, { start: 1, end: 5000 })).toMatchObject({
      ok: false,
      field: 'body.review.every',
    });
  });

  it('makes only the review frames of a job without windows, and knows when they are all finished', () => {
    const job = gated([3, 9]);
    expect(gateFrameCount(job)).toBe(2);
    expect(gateCoversShot(job)).toBe(false);
    const running = { ...job, status: 'running' as const, succeeded: 1, failed: 0, canceled: 0 };
    expect(reviewDue(running)).toBe(false);
    expect(reviewDue({ ...running, failed: 1 })).toBe(true);
    expect(reviewDue({ ...running, succeeded: 2, status: 'awaiting_review' })).toBe(false);
    const approved = { ...running, succeeded: 2, review: { frames: [3, 9], approvedAt: 'now' } };
    expect(isGated(approved)).toBe(false);
    expect(reviewDue(approved)).toBe(false);
  });

  it('in chained mode makes every window up to the last one owning a review frame', () => {
    const job = gated([20], spec('chained'));
    expect([...gateWindows(job)]).toEqual([0, 1]);
    expect(gateFrameCount(job)).toBe(30);
    expect(mayQueueWindow(job, 1)).toBe(true);
    expect(mayQueueWindow(job, 2)).toBe(false);
    expect(gateCoversShot(gated([58], spec('chained')))).toBe(true);
  });

  it('in parallel mode makes the windows making a review frame, and counts only frames no other window shares', () => {
    expect([...gateWindows(gated([50], spec('parallel')))]).toEqual([3]);
    expect(gateFrameCount(gated([50], spec('parallel')))).toBe(9);
    // Frame 55 is in the overlap of windows 3 and 4: both make it, so it is cross-faded before review.
    const overlap = gated([55], spec('parallel'));
    expect([...gateWindows(overlap)].sort()).toEqual([3, 4]);
    // Frames 44-60: 40-43 are shared with window 2, made after approval.
    expect(gateFrameCount(overlap)).toBe(17);
  });

  it('never counts more frames than the shot has, nor fewer than its review frames (property)', () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 60 }), { minLength: 1, maxLength: 10 }),
        fc.constantFrom<'chained' | 'parallel' | undefined>('chained', 'parallel', undefined),
        (review, mode) => {
          const job = gated(review, mode ? spec(mode) : undefined);
          const count = gateFrameCount(job);
          expect(count).toBeLessThanOrEqual(60);
          if (!mode) expect(count).toBe(review.length);
          if (mode === 'chained') expect(count).toBeGreaterThanOrEqual(review.length);
        },
      ),
    );
  });
});

describe('the unit of a re-roll', () => {
  it('is the frame itself without windows, and the frames a window owns with them', () => {
    expect(unitOf({ frames }, 7)).toEqual({ start: 7, end: 7 });
    const job: Pick<JobRecord, 'frames' | 'window'> = { frames, window: spec('chained') };
    expect(unitOf(job, 1)).toEqual({ start: 1, end: 17, window: 0 });
    expect(unitOf(job, 18)).toEqual({ start: 18, end: 30, window: 1 });
    expect(unitOf(job, 60)).toEqual({ start: 57, end: 60, window: 4 });
  });
});
