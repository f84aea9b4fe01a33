import { spawn } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/**
 * The ffmpeg to run: FRAMECAST_FFMPEG when set (the container image installs Debian's ffmpeg there), else
 * the one that comes with `@ffmpeg-installer/ffmpeg`, so `npm ci` alone is enough on a developer's machine.
 * The reference model encodes window videos with it, the worker encodes video inputs and decodes the
 * videos models answer.
 */
export async function ffmpegPath(): Promise<string> {
  if (process.env.FRAMECAST_FFMPEG) return process.env.FRAMECAST_FFMPEG;
  try {
    return (await import('@ffmpeg-installer/ffmpeg')).default.path;
  } catch (err) {
    // The package throws a string when it finds no binary for this platform.
    throw new Error(`ffmpeg is not available: ${err instanceof Error ? err.message : String(err)}`);
  }
}

/** Lossless video: FFV1 (every frame a key frame, a CRC per slice) in Matroska, the archival choice. */
export const FFV1_VIDEO = { contentType: 'video/x-matroska', extension: 'mkv' } as const;

// Frames are numbers in a sequence, not a time base: 24 fps is what the file says, and what players show.
const FPS = 24;

export interface Ffv1Options {
  readonly width: number;
  readonly height: number;
  /** Container tags, such as a window's provenance. */
  readonly metadata?: Readonly<Record<string, string>>;
  /** Stops ffmpeg (a canceled prediction). */
  readonly signal?: AbortSignal;
  /** The error a failure of ffmpeg is reported as, from the end of what it printed. */
  readonly failure?: (stderr: string) => Error;
}

/** An FFV1 encoder fed raw RGB frames in order: decoded to rgb24, the file gives them back bit for bit. */
export interface Ffv1Encoder {
  /** Adds the next frame (`width * height * 3` bytes of RGB); resolves once ffmpeg has taken it. */
  write(rgb: Uint8Array): Promise<void>;
  /** Ends the stream: the encoded file. */
  finish(): Promise<Buffer>;
  /** Stops ffmpeg and removes its file (after a failure). */
  abort(): Promise<void>;
}

/** Starts ffmpeg writing an FFV1/Matroska file through a temp file; frames stream in one at a time. */
export async function startFfv1(options: Ffv1Options): Promise<Ffv1Encoder> {
  const { width, height, metadata = {}, signal } = options;
  const command = await ffmpegPath();
  const dir = await mkdtemp(join(tmpdir(), 'framecast-video-'));
  const file = join(dir, `video.${FFV1_VIDEO.extension}`);
  const ffmpeg = spawn(
    command,
    [
      ...['-hide_banner', '-loglevel', 'error', '-nostdin'],
      ...['-f', 'rawvideo', '-pix_fmt', 'rgb24', '-s:v', `${width}x${height}`, '-framerate', String(FPS)],
      ...['-i', 'pipe:0'],
      ...['-c:v', 'ffv1', '-level', '3', '-g', '1', '-slicecrc', '1'],
      ...Object.entries(metadata).flatMap(([key, value]) => ['-metadata', `${key}=${value}`]),
      ...['-f', 'matroska', '-y', file],
    ],
    { stdio: ['pipe', 'ignore', 'pipe'], ...(signal && { signal }) },
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
  const failure = () =>
    (options.failure ?? ((text) => new Error(`ffmpeg failed: ${text || 'no message'}`)))(stderr.trim());
  // A write to an ffmpeg that has died fails with EPIPE; its own message says why, so that is the one kept.
  ffmpeg.stdin.on('error', () => undefined);
  const removeDir = () => rm(dir, { recursive: true, force: true });

  return {
    async write(rgb) {
      if (ended) throw failure();
      if (!ffmpeg.stdin.write(rgb)) {
        await Promise.race([once(ffmpeg.stdin, 'drain'), exited.then(() => Promise.reject(failure()))]);
      }
    },
    async finish() {
      ffmpeg.stdin.end();
      const code = await exited;
      try {
        if (code !== 0) throw failure();
        return await readFile(file);
      } finally {
        await removeDir();
      }
    },
    async abort() {
      if (!ended) ffmpeg.kill('SIGKILL');
      await exited;
      await removeDir();
    },
  };
}
