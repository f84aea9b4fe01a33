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
  /** Frames of the job stored (succeeded). */
  readonly frames: number;
  readonly downloaded: number;
  /** Files already on disk with the right SHA-256. */
  readonly skipped: number;
  readonly bytes: number;
  /** Frames that have no file to download (failed, canceled or not done yet). */
  readonly notStored: number[];
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

/**
 * Downloads a job's frames into `dir` under their sequence names, in parallel. A file already there with
 * the listing's SHA-256 is kept; anything else is fetched to `<name>.part`, verified, then renamed, so an
 * interrupted run leaves no wrong file under a frame's name and the next run fetches only what is missing.
 */
export async function downloadJob(
  api: FramecastClient,
  jobId: string,
  dir: string,
  options: { concurrency?: number; progress?: Progress; fetch?: typeof fetch } = {},
): Promise<DownloadResult> {
  const job = await api.getJob(jobId);
  const frames = await api.allFrames(jobId);
  const stored = frames.filter((f) => f.status === 'succeeded' && f.url && f.sha256);
  const notStored = frames.filter((f) => !stored.includes(f)).map((f) => f.frame);
  await mkdir(dir, { recursive: true });
  const limit = pLimit(options.concurrency ?? 8);
  const progress = options.progress ?? noProgress;
  const get = options.fetch ?? fetch;
  let downloaded = 0;
  let skipped = 0;
  let bytes = 0;
  progress.start(stored.length);
  try {
    await Promise.all(
      stored.map((frame) =>
        limit(async () => {
          const path = join(dir, frameName(job, frame));
          if ((await hashOf(path))?.sha256 === frame.sha256) {
            skipped++;
            progress.tick();
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
              if (sha256 !== frame.sha256)
                throw new Error(
                  `frame ${frame.frame}: SHA-256 ${sha256} is not the listing's ${frame.sha256}`,
                );
              await rename(part, path);
              bytes += size;
              downloaded++;
              progress.tick();
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
  } finally {
    progress.stop();
  }
  return { job: jobId, dir, frames: stored.length, downloaded, skipped, bytes, notStored };
}
