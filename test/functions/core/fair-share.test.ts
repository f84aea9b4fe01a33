import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  bandOf,
  lowWaterMark,
  pastStartBy,
  releaseLimit,
  startByReason,
  wantsRelease,
  windowFrames,
} from '../../../functions/core/fair-share.ts';

const job = (over: Record<string, unknown> = {}) => ({
  frames: { start: 1001, end: 11_000 },
  succeeded: 0,
  failed: 0,
  canceled: 0,
  status: 'running' as const,
  ...over,
});

describe('priority bands', () => {
  it('puts 67-100 in the high band, 34-66 (the default 50) in the normal band, 0-33 in the low band', () => {
    expect([100, 67, 66, 50, 34, 33, 0].map(bandOf)).toEqual([
      'high',
      'high',
      'normal',
      'normal',
      'normal',
      'low',
      'low',
    ]);
  });
});

describe('the release window', () => {
  it('is the fair-share chunks times the chunk size', () => {
    expect(windowFrames(8, 40)).toBe(320);
  });

  it('lets chunks be released up to one window past the frames finished', () => {
    expect(releaseLimit(job(), 320)).toBe(1321);
    expect(releaseLimit(job({ succeeded: 100, failed: 3, canceled: 5 }), 320)).toBe(1429);
  });

  it('keeps the frames queued and unfinished under the window plus one chunk, whatever finishes when', () => {
    // A model of the fan-out's loop: chunks released while their first frame is under the limit, and a
    // release after any number of frames finish (in order, as one worker takes them).
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 20 }),
        fc.integer({ min: 1, max: 50 }),
        fc.array(fc.integer({ min: 1, max: 100 }), { maxLength: 30 }),
        (chunk, chunks, finishing) => {
          const window = chunk * chunks;
          const start = 1;
          let planned = start;
          let done = 0;
          const release = () => {
            while (
              planned <
              releaseLimit({ frames: { start, end: 1e9 }, succeeded: done, failed: 0, canceled: 0 }, window)
            )
              planned += chunk;
          };
          release();
          for (const n of finishing) {
            done = Math.min(planned - start, done + n);
            expect(planned - start - done).toBeLessThan(window + chunk);
            release();
            expect(planned - start - done).toBeLessThan(window + chunk);
            expect(planned - start - done).toBeGreaterThanOrEqual(window);
          }
        },
      ),
    );
  });

  it('asks for the next release half a window before the end of what is queued', () => {
    expect(lowWaterMark(1321, 320)).toBe(1161);
  });
});

describe('which finished chunk asks the fan-out for more', () => {
  const read = job({ plannedUpTo: 1321, releaseAt: 1161 });

  it('the chunk holding the low-water mark', () => {
    expect(wantsRelease(read, [1161, 1162, 1163, 1164, 1165, 1166, 1167, 1168])).toBe(true);
    expect(wantsRelease(read, [1153, 1154, 1155, 1156, 1157, 1158, 1159, 1160])).toBe(false);
  });

  it('the last chunk released, and one read before its own release was recorded', () => {
    expect(wantsRelease(read, [1313, 1314, 1315, 1316, 1317, 1318, 1319, 1320])).toBe(true);
    expect(wantsRelease(read, [1321, 1322])).toBe(true);
  });

  it('none once every chunk is released, or while the job waits for review', () => {
    expect(wantsRelease({ ...read, plannedUpTo: 11_001 }, [11_000])).toBe(false);
    expect(wantsRelease({ ...read, status: 'awaiting_review' }, [1161])).toBe(false);
    expect(wantsRelease({ ...read, plannedUpTo: undefined }, [1161])).toBe(false);
  });

  it('asks from a job read before its first release was recorded, when the job is longer than a window', () => {
    const unread = { ...read, plannedUpTo: undefined, releaseAt: undefined };
    expect(wantsRelease(unread, [1001, 1002], 320)).toBe(true);
    expect(wantsRelease({ ...unread, frames: { start: 1001, end: 1300 } }, [1001, 1002], 320)).toBe(false);
  });
});

describe('startBy', () => {
  it('has passed only after its time', () => {
    const startBy = '2026-12-01T00:00:00.000Z';
    expect(pastStartBy({ startBy }, new Date('2026-12-01T00:00:00.000Z'))).toBe(false);
    expect(pastStartBy({ startBy }, new Date('2026-12-01T00:00:00.001Z'))).toBe(true);
    expect(pastStartBy({}, new Date())).toBe(false);
  });

  it('gives a reason naming the deadline', () => {
    expect(startByReason('2026-12-01T00:00:00.000Z')).toBe(
      'startBy passed: frames not started by 2026-12-01T00:00:00.000Z were canceled',
    );
  });
});
