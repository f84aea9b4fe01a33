import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ffmpegPath } from '../adapters/ffmpeg.ts';
import type { JobRecord } from '../core/model.ts';
import { planWindows } from '../core/windows.ts';
import { type ModelSpec, specOf } from '../shared/models.ts';
import { ModelError } from './cog.ts';

/**
 * An input a model declares as `video` (the design's "Job inputs"): the prediction's input files, in
 * frame order, as one lossless video. Each file is decoded to 8-bit RGB by sharp and piped into ffmpeg,
 * which writes FFV1 (every frame a key frame, a CRC per slice) in Matroska, as the reference model writes
 * its own video output: decoded to rgb24 the video gives back the input's pixels bit for bit. Only one
 * decoded frame is in the worker's memory at a time (a held frame is decoded once); the video goes
 * through a temp file.
 */

export const INPUT_VIDEO = { contentType: 'video/x-matroska', extension: 'mkv' } as const;

// Frames are numbers in a sequence, not a time base: 24 fps, as the reference model's video output says.
const FPS = 24;

/** One frame's file: its content hash (a held frame repeats it) and how to read its bytes. */
export interface InputFrame {
  readonly sha256: string;
  read(): Promise<Uint8Array>;
}

async function loadSharp() {
  try {
    return (await import('sharp')).default;
  } catch (err) {
    throw new ModelError(`video inputs need sharp, which cannot load: ${(err as Error).message}`, false);
  }
}

/** 8-bit RGB of one image file, with its size. */
async function rgbOf(bytes: Uint8Array): Promise<{ data: Buffer; width: number; height: number }> {
  const sharp = await loadSharp();
  const { data, info } = await sharp(bytes)
    .removeAlpha()
    .toColourspace('srgb')
    .raw({ depth: 'uchar' })
    .toBuffer({ resolveWithObject: true });
  if (info.channels !== 3) throw new ModelError(`an input frame decoded to ${info.channels} channels`, false);
  return { data, width: info.width, height: info.height };
}

/**
 * Encodes `frames`, in order, as one FFV1/Matroska file. Every frame must be the first one's size (checked
 * at submit; a mismatch here fails the prediction for good).
 */
export async function encodeInputVideo(frames: readonly InputFrame[], name = 'input'): Promise<Buffer> {
  if (frames.length === 0) throw new ModelError(`input "${name}" has no frames to encode`, false);
  let ffmpegBin: string;
  try {
    ffmpegBin = await ffmpegPath();
  } catch (err) {
    throw new ModelError(`input "${name}" is a video, and ${(err as Error).message}`, false);
  }
  const first = await rgbOf(await frames[0]!.read());
  const { width, height } = first;
  const dir = await mkdtemp(join(tmpdir(), 'framecast-input-'));
  const file = join(dir, `${name}.${INPUT_VIDEO.extension}`);
  const ffmpeg = spawn(
    ffmpegBin,
    [
      ...['-hide_banner', '-loglevel', 'error', '-nostdin'],
      ...['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s:v', `${width}x${height}`, '-framerate', String(FPS)],
      ...['-i', 'pipe:0'],
      ...['-c:v', 'ffv1', '-level', '3', '-g', '1', '-slicecrc', '1'],
      ...['-f', 'matroska', '-y', file],
    ],
    { stdio: ['pipe', 'ignore', 'pipe'] },
  );
  let stderr = '';
  ffmpeg.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-2000);
  });
  let ended = false;
  const exited = new Promise<number | null>((resolve) => {
    ffmpeg.once('exit', (code) => resolve(code));
    ffmpeg.once('error', (err) => {
      stderr ||= err.message;
      resolve(null);
    });
  }).finally(() => {
    ended = true;
  });
  const failure = () =>
    new ModelError(`input "${name}" could not be encoded: ffmpeg: ${stderr.trim() || 'no message'}`);
  // A write to an ffmpeg that has died fails with EPIPE; its own message says why.
  ffmpeg.stdin.on('error', () => undefined);
  const write = async (rgb: Uint8Array) => {
    if (ended) throw failure();
    if (!ffmpeg.stdin.write(rgb)) {
      await Promise.race([once(ffmpeg.stdin, 'drain'), exited.then(() => Promise.reject(failure()))]);
    }
  };

  try {
    let last = { sha256: frames[0]!.sha256, rgb: first.data };
    await write(last.rgb);
    for (let i = 1; i < frames.length; i++) {
      const frame = frames[i]!;
      if (frame.sha256 !== last.sha256) {
        const next = await rgbOf(await frame.read());
        if (next.width !== width || next.height !== height) {
          throw new ModelError(
            `input "${name}" frame ${i} is ${next.width}x${next.height}, the first is ${width}x${height}`,
            false,
          );
        }
        last = { sha256: frame.sha256, rgb: next.data };
      }
      await write(last.rgb);
    }
    ffmpeg.stdin.end();
    if ((await exited) !== 0) throw failure();
    return await readFile(file);
  } catch (err) {
    if (!ended) ffmpeg.kill('SIGKILL');
    await exited;
    throw err;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** Where a prediction's video input is staged in the frames bucket: by job, input and the frames it covers. */
export const inputVideoKey = (job: Pick<JobRecord, 'prefix'>, name: string, frames: readonly number[]) =>
  `${job.prefix}.inputs/${name}/${frames[0]}-${frames[frames.length - 1]}.${INPUT_VIDEO.extension}`;

/**
 * Every video input a job's predictions may have staged: one per window (or per frame, without windows)
 * and input the model declares as video. Removed when the job ends.
 */
export function stagedInputKeys(
  job: Pick<JobRecord, 'prefix' | 'frames' | 'window' | 'inputs' | 'model'>,
  specs: Readonly<Record<string, ModelSpec>>,
): string[] {
  if (!job.inputs) return [];
  const declared = specOf(specs, job.model).inputs;
  const names = Object.keys(job.inputs).filter((name) => declared[name] === 'video');
  if (names.length === 0) return [];
  const ranges = job.window
    ? planWindows(job.frames, job.window).map((w) => [w.start, w.end])
    : Array.from({ length: job.frames.end - job.frames.start + 1 }, (_, i) => [
        job.frames.start + i,
        job.frames.start + i,
      ]);
  return names.flatMap((name) => ranges.map((r) => inputVideoKey(job, name, r)));
}
