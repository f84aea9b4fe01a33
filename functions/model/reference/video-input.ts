import { spawn } from 'node:child_process';
import { mkdtemp, readdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { ffmpegPath } from '../../adapters/ffmpeg.ts';
import { ImageInputError, shown } from './images.ts';

/**
 * A plate or mask given as one video (a model whose Cog input is a video: the worker sends one for an
 * input the model's spec declares `video`). ffmpeg decodes every frame the file holds, in order, to an
 * rgb24 PNG, with no frame dropped or repeated to keep a frame rate; the window then reads frame k of the
 * video for its frame k, through the same size check as an image input. A lossless video (FFV1, as the
 * worker encodes) gives back the plate's pixels bit for bit.
 */
export async function decodeVideoInput(
  bytes: Uint8Array,
  uri: string,
  name: string,
  maxFrames: number,
  signal: AbortSignal,
): Promise<Buffer[]> {
  let ffmpeg: string;
  try {
    ffmpeg = await ffmpegPath();
  } catch (err) {
    throw new ImageInputError(`${name} (${shown(uri)}) is a video, and ${(err as Error).message}`);
  }
  const dir = await mkdtemp(join(tmpdir(), 'framecast-plate-'));
  try {
    const input = join(dir, 'input.mkv');
    await writeFile(input, bytes);
    await new Promise<void>((resolve, reject) => {
      const child = spawn(
        ffmpeg,
        [
          ...['-hide_banner', '-loglevel', 'error', '-nostdin', '-i', input, '-map', '0:v:0'],
          ...['-vsync', '0', '-frames:v', String(maxFrames)],
          ...['-pix_fmt', 'rgb24', '-c:v', 'png', '-f', 'image2', join(dir, 'frame-%06d.png')],
        ],
        { stdio: ['ignore', 'ignore', 'pipe'], signal },
      );
      let stderr = '';
      child.stderr.setEncoding('utf8').on('data', (d: string) => {
        stderr = (stderr + d).slice(-2000);
      });
      child.on('error', (err) => reject(signal.aborted ? signal.reason : err));
      child.on('close', (code) =>
        code === 0
          ? resolve()
          : reject(
              new ImageInputError(
                `${name} (${shown(uri)}) is not a readable video: ${stderr.trim().slice(-300) || `ffmpeg exit ${code}`}`,
              ),
            ),
      );
    });
    const names = (await readdir(dir)).filter((n) => n.startsWith('frame-')).sort();
    return Promise.all(names.map((n) => readFile(join(dir, n))));
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
