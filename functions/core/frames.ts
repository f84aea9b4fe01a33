import { UINT32_MAX } from './schemas.ts';

/** Frame planning, seeds and names: pure functions of the job. */

export interface FrameRange {
  readonly start: number;
  readonly end: number;
}

export const frameCount = (r: FrameRange): number => r.end - r.start + 1;

/**
 * The chunks a frame range is sent in, in frame order, each at most `chunkSize` frames.
 * A generator: a 10,000-frame shot is planned without building every chunk at once.
 */
export function* planChunks(r: FrameRange, chunkSize: number, from = r.start): Generator<number[]> {
  if (!Number.isInteger(chunkSize) || chunkSize < 1)
    throw new RangeError('chunkSize must be a positive integer');
  for (let first = Math.max(from, r.start); first <= r.end; first += chunkSize) {
    const last = Math.min(first + chunkSize - 1, r.end);
    yield Array.from({ length: last - first + 1 }, (_, i) => first + i);
  }
}

export type SeedMode = 'fixed' | 'per-frame';

/** The design's seed rule: per-frame seed = seed + (frame - start), kept in uint32 by wrapping. */
export function frameSeed(seed: number, mode: SeedMode, frame: number, start: number): number {
  if (mode === 'fixed') return seed;
  return (seed + (frame - start)) % (UINT32_MAX + 1);
}

/** A random uint32, for jobs that do not give a seed; the job records it. */
export function randomSeed(random: () => number = Math.random): number {
  return Math.floor(random() * (UINT32_MAX + 1)) >>> 0;
}

/** `EP101_SH040.1001.png`: the frame-sequence naming compositing tools read as one clip. */
export const frameFileName = (shot: string, frame: number): string =>
  `${shot}.${String(frame).padStart(4, '0')}.png`;

export const jobPrefix = (tenant: string, shot: string, jobId: string): string =>
  `${tenant}/${shot}/${jobId}/`;

export const frameKey = (tenant: string, shot: string, jobId: string, frame: number): string =>
  jobPrefix(tenant, shot, jobId) + frameFileName(shot, frame);

export const manifestKey = (tenant: string, shot: string, jobId: string): string =>
  `${jobPrefix(tenant, shot, jobId)}manifest.json`;

/** `EP101_SH040.v002.1001.png`: version `version` of a frame, itself a sequence a compositing tool reads. */
export const versionFileName = (shot: string, frame: number, version: number): string =>
  `${shot}.v${String(version).padStart(3, '0')}.${String(frame).padStart(4, '0')}.png`;

/** Where version `version` of a frame is kept (version 1 is copied there at the frame's first re-roll). */
export const versionKey = (
  tenant: string,
  shot: string,
  jobId: string,
  frame: number,
  version: number,
): string => `${jobPrefix(tenant, shot, jobId)}versions/${versionFileName(shot, frame, version)}`;

/** The thumbnail of a stored frame PNG: beside it, in a `thumbnails/` folder, as WebP. */
export function thumbnailKey(pngKey: string): string {
  const slash = pngKey.lastIndexOf('/');
  return `${pngKey.slice(0, slash + 1)}thumbnails/${pngKey.slice(slash + 1).replace(/\.png$/, '')}.webp`;
}

/** The key of the PNG of a frame's version: the sequence name holds version 1 until a re-roll copies it. */
export const versionPngKey = (
  job: { tenant: string; shot: string; id: string },
  frame: number,
  version: number,
): string =>
  version === 1
    ? frameKey(job.tenant, job.shot, job.id, frame)
    : versionKey(job.tenant, job.shot, job.id, frame, version);
