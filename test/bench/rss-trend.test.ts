import { describe, expect, it } from 'vitest';
import { FLAT_MB_PER_1000_FRAMES, type RssSample, rssTrend } from '../../bench/rss-trend.ts';

const MB = 1024 * 1024;

describe('the RSS trend of a long run', () => {
  it('finds a leak of 10 KB a frame as about 10 MB per 1,000 frames, and calls it not flat', () => {
    const samples: RssSample[] = [];
    for (let f = 0; f <= 3000; f += 10) samples.push([f, 150 * MB + f * 10 * 1024]);
    const trend = rssTrend(samples, 300);
    expect(trend?.mbPer1000Frames).toBeCloseTo(9.77, 1);
    expect(trend?.flat).toBe(false);
    expect(trend?.frames).toBe(2700);
  });

  it('calls a garbage-collection sawtooth around a level flat', () => {
    const samples: RssSample[] = [];
    // The heap grows 40 MB over 200 frames, then a collection gives it back, again and again.
    for (let f = 0; f <= 3000; f += 5) samples.push([f, 180 * MB + ((f % 200) / 200) * 40 * MB]);
    const trend = rssTrend(samples, 300);
    expect(Math.abs(trend?.mbPer1000Frames ?? Number.NaN)).toBeLessThan(FLAT_MB_PER_1000_FRAMES);
    expect(trend?.flat).toBe(true);
  });

  it('leaves out the warm-up, when the heap grows to its working size', () => {
    const samples: RssSample[] = [
      [0, 120 * MB],
      [100, 180 * MB],
      [200, 200 * MB],
      [1000, 200 * MB],
      [2000, 200 * MB],
    ];
    expect(rssTrend(samples, 200)).toMatchObject({ mbPer1000Frames: 0, flat: true, samples: 3 });
  });

  it('gives no trend from samples all taken at one frame count', () => {
    expect(
      rssTrend(
        [
          [500, MB],
          [500, 2 * MB],
        ],
        0,
      ),
    ).toBeUndefined();
  });
});
