import type { JobRecord } from './model.ts';
import {
  DEFAULT_NAMING_TEMPLATE,
  hasField,
  type NamingTemplate,
  parseTemplate,
  renderName,
} from './naming.ts';
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

/** `EP101_SH040.1001.png`: the frame-sequence naming compositing tools read as one clip (`.exr` for EXR frames). */
export const frameFileName = (shot: string, frame: number, ext = 'png'): string =>
  `${shot}.${String(frame).padStart(4, '0')}.${ext}`;

export const jobPrefix = (tenant: string, shot: string, jobId: string): string =>
  `${tenant}/${shot}/${jobId}/`;

export const frameKey = (tenant: string, shot: string, jobId: string, frame: number, ext = 'png'): string =>
  jobPrefix(tenant, shot, jobId) + frameFileName(shot, frame, ext);

export const manifestKey = (tenant: string, shot: string, jobId: string): string =>
  `${jobPrefix(tenant, shot, jobId)}manifest.json`;

/** The thumbnail of a stored frame PNG: beside it, in a `thumbnails/` folder, as WebP. */
export function thumbnailKey(pngKey: string): string {
  const slash = pngKey.lastIndexOf('/');
  return `${pngKey.slice(0, slash + 1)}thumbnails/${pngKey.slice(slash + 1).replace(/\.png$/, '')}.webp`;
}

/**
 * Whether a stored version of a frame has its thumbnail: a re-roll's versions always do (they are made
 * to be looked at); version 1 when the job asked for thumbnails (by default, a job with a review gate).
 */
export const hasThumbnail = (job: { readonly thumbnails?: boolean }, version = 1): boolean =>
  version > 1 || job.thumbnails !== false;

const DEFAULT_NAMING = parseTemplate(DEFAULT_NAMING_TEMPLATE);

type Delivered = Pick<JobRecord, 'tenant' | 'shot' | 'id' | 'output'>;

/** The extension of a job's delivered frames: `exr` for `output: {format: 'exr'}`, else `png`. */
export const deliveredExt = (job: Pick<JobRecord, 'output'>): string =>
  job.output?.format === 'exr' ? 'exr' : 'png';

/** Where a job's frame is delivered: under the job's prefix, named by the production's template. */
export const deliveredKey = (
  job: Delivered,
  frame: number,
  naming: NamingTemplate = DEFAULT_NAMING,
): string =>
  jobPrefix(job.tenant, job.shot, job.id) +
  renderName(naming, {
    shot: job.shot,
    frame,
    ext: deliveredExt(job),
    ...(job.output?.pass !== undefined && { pass: job.output.pass }),
    ...(job.output?.version !== undefined && { version: job.output.version }),
  });

/**
 * Where version `version` of a frame is kept (version 1 is copied there at the frame's first re-roll): in
 * `versions/` beside the sequence, in the job's delivery format, named as the production's template says.
 * A template with `{version}` bumps it: the job delivered as v003 keeps its re-roll 2 as v004. Without
 * `{version}`, the version goes after the shot: `EP101_SH040.v002.1001.png` with the default template.
 */
export function versionKey(
  job: Delivered,
  frame: number,
  version: number,
  naming: NamingTemplate = DEFAULT_NAMING,
): string {
  const bumps = hasField(naming, 'version');
  const name = renderName(naming, {
    shot: bumps ? job.shot : `${job.shot}.v${String(version).padStart(3, '0')}`,
    frame,
    ext: deliveredExt(job),
    ...(job.output?.pass !== undefined && { pass: job.output.pass }),
    ...(bumps && { version: (job.output?.version ?? 1) + version - 1 }),
  });
  return `${jobPrefix(job.tenant, job.shot, job.id)}versions/${name}`;
}
