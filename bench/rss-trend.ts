/**
 * Whether a process's memory stays flat over a long run: the least-squares slope of its RSS samples
 * against frames done, after a warm-up in which the heap grows to its working size. A leak of a few
 * kilobytes a frame shows as megabytes per 1,000 frames; the sawtooth of garbage collection, sampled
 * over thousands of frames, averages out.
 */

/** One sample: frames done at that moment, and the RSS in bytes. */
export type RssSample = readonly [frames: number, rssBytes: number];

export interface RssTrend {
  /** MB the RSS grows per 1,000 frames (negative: it shrinks). */
  readonly mbPer1000Frames: number;
  /** Samples the slope was fitted on. */
  readonly samples: number;
  /** Frames the fitted samples span. */
  readonly frames: number;
  readonly flat: boolean;
}

/** Beyond this, a run is not flat: 5 MB per 1,000 frames is 5 KB kept per frame. */
export const FLAT_MB_PER_1000_FRAMES = 5;

/** The trend of the samples taken once `warmUpFrames` were done; undefined with fewer than two frames counts. */
export function rssTrend(
  samples: readonly RssSample[],
  warmUpFrames: number,
  limit = FLAT_MB_PER_1000_FRAMES,
): RssTrend | undefined {
  const fitted = samples.filter(([frames]) => frames >= warmUpFrames);
  if (new Set(fitted.map(([frames]) => frames)).size < 2) return undefined;
  const n = fitted.length;
  const meanX = fitted.reduce((s, [x]) => s + x, 0) / n;
  const meanY = fitted.reduce((s, [, y]) => s + y, 0) / n;
  let sxy = 0;
  let sxx = 0;
  for (const [x, y] of fitted) {
    sxy += (x - meanX) * (y - meanY);
    sxx += (x - meanX) ** 2;
  }
  const mbPer1000Frames = ((sxy / sxx) * 1000) / 1024 / 1024;
  const xs = fitted.map(([x]) => x);
  return {
    mbPer1000Frames,
    samples: n,
    frames: Math.max(...xs) - Math.min(...xs),
    flat: mbPer1000Frames <= limit,
  };
}
