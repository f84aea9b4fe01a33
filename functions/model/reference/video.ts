import { FFV1_VIDEO, startFfv1 } from '../../adapters/ffmpeg.ts';

/**
 * A window as one video file, for clients of models whose Cog output is a video: FFV1 (lossless, every
 * frame a key frame, a CRC per slice) in Matroska, the archival choice for lossless video. Decoded to
 * rgb24 it gives back the frames' pixels bit for bit, so a window stored from the video and one stored
 * from the list of PNGs are the same frames. ffmpeg comes with its npm package; it is loaded only when a
 * video is made.
 */

export const VIDEO_FILE = FFV1_VIDEO;

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

export async function startVideo(options: VideoOptions): Promise<VideoWriter> {
  const { width, height, frames, metadata, signal } = options;
  const encoder = await startFfv1({ width, height, metadata, signal });
  const waiting = new Map<number, Uint8Array>();
  let next = 0;
  let writing = Promise.resolve();

  return {
    frame(index, rgb) {
      waiting.set(index, rgb);
      // One flush at a time, in index order; each caller waits until what it made writable is written.
      writing = writing.then(async () => {
        for (let frame = waiting.get(next); frame; frame = waiting.get(next)) {
          waiting.delete(next++);
          await encoder.write(frame);
        }
      });
      return writing;
    },
    async finish() {
      await writing;
      if (next !== frames) throw new Error(`video has ${next} of ${frames} frames`);
      return encoder.finish();
    },
    async abort() {
      waiting.clear();
      await encoder.abort();
    },
  };
}
