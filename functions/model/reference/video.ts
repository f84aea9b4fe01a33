import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ffmpegPath } from '../../adapters/ffmpeg.ts';

/**
 * A window as one video file, for clients of models whose Cog output is a video: FFV1 (lossless, every
 * frame a key frame, a CRC per slice) in Matroska, the archival choice for lossless video. Decoded to
 * rgb24 it gives back the frames' pixels bit for bit, so a window stored from the video and one stored
 * from the list of PNGs are the same frames. ffmpeg comes with its npm package; it is loaded only when a
 * video is made.
 */

export const VIDEO_FILE = { contentType: 'video/x-matroska', extension: 'mkv' } as const;

export interface VideoOptions {
  readonly width: number;
  readonly height: number;
  /** Frames of the window, written in this order. */
  readonly frames: number;
  /** Container tags, such as the window's provenance. */
  readonly metadata: Record<string, string>;
  /** Aborted when the prediction is canceled: ffmpeg is stopped and its file removed. */
  readonly signal: AbortSignal;
}

export interface VideoWriter {
  /** Adds frame `index` (raw RGB); frames may come in any order and are encoded in index order. */
  frame(index: number, rgb: Uint8Array): Promise<void>;
  /** Once every frame is in: the encoded file. */
  finish(): Promise<Buffer>;
  /** Stops ffmpeg and removes its file (after a failure). */
  abort(): Promise<void>;
}

// Frames are numbers in a sequence, not a time base: 24 fps is what the file says, and what players show.
const FPS = 24;

export async function startVideo(options: VideoOptions): Promise<VideoWriter> {
  const { width, height, frames, metadata, signal } = options;
  const dir = await mkdtemp(join(tmpdir(), 'framecast-window-'));
  const file = join(dir, 'window.mkv');
  const ffmpeg = spawn(
    await ffmpegPath(),
    [
      ...['-hide_banner', '-loglevel', 'error', '-nostdin'],
      ...['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s:v', `${width}x${height}`, '-framerate', String(FPS)],
      ...['-i', 'pipe:0'],
      ...['-c:v', 'ffv1', '-level', '3', '-g', '1', '-slicecrc', '1'],
      ...Object.entries(metadata).flatMap(([key, value]) => ['-metadata', `${key}=${value}`]),
      ...['-f', 'matroska', '-y', file],
    ],
    { stdio: ['pipe', 'ignore', 'pipe'], signal },
  );
  let stderr = '';
  ffmpeg.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-2000);
  });
  let ended = false;
  const exited = new Promise<number | null>((resolve) => {
    ffmpeg.once('exit', (code) => resolve(code));
    // Not started, or stopped by the signal: there will be no exit code to wait for.
    ffmpeg.once('error', (err) => {
      stderr ||= err.message;
      resolve(null);
    });
  }).finally(() => {
    ended = true;
  });
  const failure = () => new Error(`ffmpeg failed: ${stderr.trim() || 'no message'}`);
  // A write to an ffmpeg that has died fails with EPIPE; its own message says why, so that is the one kept.
  ffmpeg.stdin.on('error', () => undefined);

  const waiting = new Map<number, Uint8Array>();
  let next = 0;
  let writing = Promise.resolve();

  async function write(rgb: Uint8Array): Promise<void> {
    if (ended) throw failure();
    if (!ffmpeg.stdin.write(rgb)) {
      await Promise.race([once(ffmpeg.stdin, 'drain'), exited.then(() => Promise.reject(failure()))]);
    }
  }

  return {
    frame(index, rgb) {
      waiting.set(index, rgb);
      // One flush at a time, in index order; each caller waits until what it made writable is written.
      writing = writing.then(async () => {
        for (let frame = waiting.get(next); frame; frame = waiting.get(next)) {
          waiting.delete(next++);
          await write(frame);
        }
      });
      return writing;
    },
    async finish() {
      await writing;
      if (next !== frames) throw new Error(`video has ${next} of ${frames} frames`);
      ffmpeg.stdin.end();
      const code = await exited;
      try {
        if (code !== 0) throw failure();
        return await readFile(file);
      } finally {
        await rm(dir, { recursive: true, force: true });
      }
    },
    async abort() {
      waiting.clear();
      if (!ended) ffmpeg.kill('SIGKILL');
      await exited;
      await rm(dir, { recursive: true, force: true });
    },
  };
}
