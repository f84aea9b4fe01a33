import { FFV1_VIDEO, type Ffv1Encoder, startFfv1 } from '../adapters/ffmpeg.ts';
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

export const INPUT_VIDEO = FFV1_VIDEO;

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
  const first = await rgbOf(await frames[0]!.read());
  const { width, height } = first;
  let encoder: Ffv1Encoder;
  try {
    encoder = await startFfv1({
      width,
      height,
      failure: (stderr) =>
        new ModelError(`input "${name}" could not be encoded: ffmpeg: ${stderr || 'no message'}`),
    });
  } catch (err) {
    throw new ModelError(`input "${name}" is a video, and ${(err as Error).message}`, false);
  }
  try {
    let last = { sha256: frames[0]!.sha256, rgb: first.data };
    await encoder.write(last.rgb);
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
      await encoder.write(last.rgb);
    }
  } catch (err) {
    await encoder.abort();
    throw err;
  }
  return encoder.finish();
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
