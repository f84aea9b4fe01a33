import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ffmpegPath } from '../adapters/ffmpeg.ts';
import { ModelError } from './cog.ts';

/**
 * A window a model answered as one video file (a Cog `Path` output), decoded into its frames as PNGs by
 * ffmpeg (adapters/ffmpeg.ts: the image's own, or the one inside its npm package; loaded only when a
 * video arrives). The file and the frames go through a temp dir, not the worker's memory: the worker holds the
 * video until ffmpeg has it, then the frames, never a raw copy of the whole window.
 *
 * A lossless video (FFV1, PNG-in-MKV) gives back the model's pixels bit for bit; a lossy one gives what it
 * holds. Every frame is decoded to 8-bit RGB, in order, one PNG per frame of the video: no frame is
 * dropped or repeated to fit a frame rate.
 */

export interface DecodeOptions {
  /** Frames the window should hold; a video with more is cut short after one more (to say so). */
  readonly maxFrames: number;
  readonly signal?: AbortSignal;
}

/** ffmpeg, or a model error saying why a video cannot be decoded here. */
async function ffmpeg(): Promise<string> {
  try {
    return await ffmpegPath();
  } catch (err) {
    throw new ModelError(`the model answered a video, and ${(err as Error).message}`, false);
  }
}

/** The frames of `video` as PNG files, in order. */
export async function decodeVideo(video: Uint8Array, options: DecodeOptions): Promise<Buffer[]> {
  const dir = await mkdtemp(join(tmpdir(), 'framecast-video-'));
  try {
    const input = join(dir, 'window.video');
    await writeFile(input, video);
    await run(
      await ffmpeg(),
      [
        ...['-hide_banner', '-loglevel', 'error', '-nostdin'],
        ...['-i', input, '-map', '0:v:0'],
        // Every frame the file holds, once: no duplicates or drops to keep a frame rate.
        ...['-vsync', '0', '-frames:v', String(options.maxFrames + 1)],
        ...['-pix_fmt', 'rgb24', '-c:v', 'png', '-f', 'image2', join(dir, 'frame-%06d.png')],
      ],
      options.signal,
    );
    const names = (await readdir(dir)).filter((n) => n.startsWith('frame-')).sort();
    const frames: Buffer[] = [];
    for (const name of names) frames.push(await readFile(join(dir, name)));
    return frames;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function run(command: string, args: string[], signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ['ignore', 'ignore', 'pipe'], ...(signal && { signal }) });
    let stderr = '';
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr = (stderr + d).slice(-2000);
    });
    child.on('error', (err) => reject(new ModelError(`ffmpeg did not run: ${err.message}`)));
    child.on('close', (code) => {
      if (code === 0) resolve();
      else
        reject(
          new ModelError(
            `the model's video output does not decode (ffmpeg exit ${code}): ${stderr.trim().slice(-500)}`,
          ),
        );
    });
  });
}
