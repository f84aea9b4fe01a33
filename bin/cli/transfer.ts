import { createHash } from 'node:crypto';
import { createWriteStream } from 'node:fs';
import { mkdir, readFile, rename, stat, unlink } from 'node:fs/promises';
import { basename, join } from 'node:path';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream } from 'node:stream/web';
import pLimit from 'p-limit';
import type { Asset, AssetFileInput, AssetUpload, Frame, FramecastClient, Job } from '../../client/index.ts';
import { assetNameOf, findSequence, formatOf, sha256File } from './sequence.ts';

/** Files per announcement: the API takes at most 1000 a request. */
const FILES_PER_REQUEST = 1000;

export interface Progress {
  start(total: number): void;
  tick(n?: number): void;
  stop(): void;
}
export const noProgress: Progress = { start() {}, tick() {}, stop() {} };

export interface UploadResult {
  readonly asset: Asset;
  readonly files: number;
  /** Files whose content was sent; the rest the production held already. */
  readonly uploaded: number;
  readonly bytesSent: number;
}

/**
 * Uploads a still or a sequence by content: hashes every file, announces them (1000 a request), PUTs only
 * what the API asks for, and completes the asset.
 */
export async function uploadSequence(
  api: FramecastClient,
  pattern: string,
  options: { name?: string; concurrency?: number; progress?: Progress } = {},
): Promise<UploadResult> {
  const files = await findSequence(pattern);
  const format = formatOf(files[0]!.path);
  const limit = pLimit(options.concurrency ?? 8);
  const hashed = await Promise.all(
    files.map((f) => limit(async () => ({ ...f, ...(await sha256File(f.path)) }))),
  );
  const entries: AssetFileInput[] = hashed.map((f) => ({
    ...(f.frame !== undefined && { frame: f.frame }),
    sha256: f.sha256,
    size: f.size,
  }));
  const frames = hashed.map((f) => f.frame).filter((f): f is number => f !== undefined);
  const isSequence = frames.length > 0;
  const created = await api.createAsset({
    name: options.name ?? assetNameOf(pattern),
    format,
    ...(isSequence && { frames: { start: frames[0]!, end: frames[frames.length - 1]! } }),
    files: entries.slice(0, FILES_PER_REQUEST),
  });
  const uploads: AssetUpload[] = [...created.uploads];
  for (let i = FILES_PER_REQUEST; i < entries.length; i += FILES_PER_REQUEST)
    uploads.push(
      ...(await api.addAssetFiles(created.id, { files: entries.slice(i, i + FILES_PER_REQUEST) })).uploads,
    );

  const pathBySha = new Map(hashed.map((f) => [f.sha256, f.path]));
  const progress = options.progress ?? noProgress;
  progress.start(uploads.length);
  let bytesSent = 0;
  try {
    await Promise.all(
      uploads.map((u) =>
        limit(async () => {
          const bytes = await readFile(pathBySha.get(u.sha256)!);
          await api.upload(u, bytes);
          bytesSent += bytes.length;
          progress.tick();
        }),
      ),
    );
  } finally {
    progress.stop();
  }
  const asset = await api.completeAsset(created.id);
  return { asset, files: files.length, uploaded: uploads.length, bytesSent };
}

export interface DownloadResult {
  readonly job: string;
  readonly dir: string;
  /** The job's status when the download ended. */
  readonly status: Job['status'];
  /** Frames of the job stored (succeeded). */
  readonly frames: number;
  readonly downloaded: number;
  /** Files already on disk with the right SHA-256. */
  readonly skipped: number;
  readonly bytes: number;
  /** Frames that have no file to download (failed, canceled or not done yet). */
  readonly notStored: number[];
  /**
   * What each file was checked against: the job's manifest.json once the job has ended and the manifest
   * is there, else the frames listing (a running job, or a job canceled before any frame ran).
   */
  readonly verifiedAgainst: 'manifest' | 'listing';
}

/** The file name a frame is stored under (`EP101_SH040.1001.png`), from its key or the shot. */
export const frameName = (job: Job, frame: Frame): string =>
  frame.key ? basename(frame.key) : `${job.shot}.${frame.frame}.png`;

async function hashOf(path: string): Promise<{ sha256: string; size: number } | undefined> {
  try {
    await stat(path);
  } catch {
    return undefined;
  }
  return sha256File(path);
}

const TERMINAL: ReadonlySet<Job['status']> = new Set(['succeeded', 'failed', 'canceled']);

interface Expected {
  readonly sha256: string;
  readonly size?: number;
}

/**
 * The SHA-256 and size of each stored frame by the job's manifest.json, written when the job ended; undefined
 * while the job runs or when it has none (a job canceled before its frames ran).
 */
async function manifestOf(
  api: FramecastClient,
  job: Job,
  get: typeof fetch,
): Promise<Map<number, Expected> | undefined> {
  if (!TERMINAL.has(job.status)) return undefined;
  const { manifest } = await api.listFrames(job.id, { limit: 1 });
  if (!manifest) return undefined;
  const res = await get(manifest.url);
  if (res.status === 404) {
    await res.body?.cancel();
    return undefined;
  }
  if (!res.ok) throw new Error(`job ${job.id}: the manifest answered ${res.status}`);
  const body = (await res.json()) as {
    frames?: { frame: number; status: string; sha256?: string; size?: number }[];
  };
  const out = new Map<number, Expected>();
  for (const f of body.frames ?? [])
    if (f.status === 'succeeded' && f.sha256)
      out.set(f.frame, { sha256: f.sha256, ...(f.size !== undefined && { size: f.size }) });
  return out;
}

interface TransferOptions {
  concurrency?: number;
  progress?: Progress;
  fetch?: typeof fetch;
}

/**
 * One pass over a job's stored frames: each file whose SHA-256 is not the expected one is fetched to
 * `<name>.part`, verified, then renamed, so an interrupted run leaves no wrong file under a frame's name.
 * `known` holds what this process has verified already (sync's later passes hash nothing again).
 */
async function transferFrames(
  job: Job,
  stored: readonly Frame[],
  expectedOf: (frame: Frame) => Expected,
  dir: string,
  known: Map<string, string>,
  options: TransferOptions & { onFirstSeen?: () => void },
): Promise<{ downloaded: number; skipped: number; bytes: number }> {
  await mkdir(dir, { recursive: true });
  const limit = pLimit(options.concurrency ?? 8);
  const get = options.fetch ?? fetch;
  let downloaded = 0;
  let skipped = 0;
  let bytes = 0;
  await Promise.all(
    stored.map((frame) =>
      limit(async () => {
        const path = join(dir, frameName(job, frame));
        const expected = expectedOf(frame);
        const seen = known.has(path);
        const have = known.get(path) ?? (await hashOf(path))?.sha256;
        if (have === expected.sha256) {
          known.set(path, have);
          if (!seen) {
            skipped++;
            options.onFirstSeen?.();
          }
          return;
        }
        const part = `${path}.part`;
        for (let attempt = 1; ; attempt++) {
          try {
            const res = await get(frame.url!);
            if (!res.ok || !res.body)
              throw new Error(`frame ${frame.frame}: download answered ${res.status}`);
            const hash = createHash('sha256');
            let size = 0;
            const body = Readable.fromWeb(res.body as ReadableStream<Uint8Array>);
            body.on('data', (chunk: Buffer) => {
              hash.update(chunk);
              size += chunk.length;
            });
            await pipeline(body, createWriteStream(part));
            const sha256 = hash.digest('hex');
            if (sha256 !== expected.sha256 || (expected.size !== undefined && size !== expected.size))
              throw new VerifyError(
                `frame ${frame.frame}: got SHA-256 ${sha256} (${size} bytes), expected ${expected.sha256}${expected.size !== undefined ? ` (${expected.size} bytes)` : ''}`,
              );
            await rename(part, path);
            known.set(path, sha256);
            bytes += size;
            downloaded++;
            if (!seen) options.onFirstSeen?.();
            return;
          } catch (err) {
            await unlink(part).catch(() => undefined);
            if (attempt >= 3) throw err;
            await new Promise((ok) => setTimeout(ok, Math.random() * 200 * 2 ** attempt));
          }
        }
      }),
    ),
  );
  return { downloaded, skipped, bytes };
}

/** A file that does not match what the job recorded for it, after the retries. */
export class VerifyError extends Error {}

/** The frames of a job that have a file, and what each must hash to (manifest first, else the listing). */
async function storedFrames(api: FramecastClient, job: Job, get: typeof fetch) {
  const frames = await api.allFrames(job.id);
  const stored = frames.filter((f) => f.status === 'succeeded' && f.url && f.sha256);
  const notStored = frames.filter((f) => !stored.includes(f)).map((f) => f.frame);
  const manifest = await manifestOf(api, job, get);
  for (const f of stored) {
    const recorded = manifest?.get(f.frame);
    if (manifest && recorded?.sha256 !== f.sha256)
      throw new VerifyError(
        `frame ${f.frame}: the listing says SHA-256 ${f.sha256}, the manifest ${recorded?.sha256 ?? 'nothing'}`,
      );
  }
  return {
    stored,
    notStored,
    verifiedAgainst: manifest ? ('manifest' as const) : ('listing' as const),
    expectedOf: (f: Frame): Expected => manifest?.get(f.frame) ?? { sha256: f.sha256! },
  };
}

/**
 * Downloads a job's frames into `dir` under their sequence names, in parallel. A file already there with
 * the expected SHA-256 is kept; the next run after an interruption fetches only what is missing or wrong.
 */
export async function downloadJob(
  api: FramecastClient,
  jobId: string,
  dir: string,
  options: TransferOptions = {},
): Promise<DownloadResult> {
  const get = options.fetch ?? fetch;
  const job = await api.getJob(jobId);
  const { stored, notStored, verifiedAgainst, expectedOf } = await storedFrames(api, job, get);
  const progress = options.progress ?? noProgress;
  progress.start(stored.length);
  try {
    const r = await transferFrames(job, stored, expectedOf, dir, new Map(), {
      ...options,
      onFirstSeen: () => progress.tick(),
    });
    return { job: jobId, dir, status: job.status, frames: stored.length, ...r, notStored, verifiedAgainst };
  } finally {
    progress.stop();
  }
}

export interface SyncResult extends DownloadResult {
  /** Listings read: one per poll while the job ran, and the last after it ended. */
  readonly passes: number;
}

/**
 * Keeps `dir` up to date while the job runs: each poll downloads the frames stored since (and any whose
 * file changed), verified; once the job has ended, a last pass verifies against the manifest. The bar
 * counts the job's frames in the folder.
 */
export async function syncJob(
  api: FramecastClient,
  jobId: string,
  dir: string,
  options: TransferOptions & { intervalMs?: number; sleep?: (ms: number) => Promise<void> } = {},
): Promise<SyncResult> {
  const get = options.fetch ?? fetch;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((ok) => setTimeout(ok, ms)));
  const progress = options.progress ?? noProgress;
  const known = new Map<string, string>();
  const totals = { downloaded: 0, skipped: 0, bytes: 0 };
  let passes = 0;
  let started = false;
  try {
    for (;;) {
      const job = await api.getJob(jobId);
      if (!started) {
        progress.start(job.frames.total);
        started = true;
      }
      const ended = TERMINAL.has(job.status);
      const { stored, notStored, verifiedAgainst, expectedOf } = await storedFrames(api, job, get);
      const r = await transferFrames(job, stored, expectedOf, dir, known, {
        ...options,
        onFirstSeen: () => progress.tick(),
      });
      passes++;
      totals.downloaded += r.downloaded;
      totals.skipped += r.skipped;
      totals.bytes += r.bytes;
      if (ended)
        return {
          job: jobId,
          dir,
          status: job.status,
          frames: stored.length,
          ...totals,
          notStored,
          verifiedAgainst,
          passes,
        };
      await sleep(options.intervalMs ?? 1000);
    }
  } finally {
    progress.stop();
  }
}
