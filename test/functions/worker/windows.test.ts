import { describe, expect, it } from 'vitest';
import { decodeRgb, encodePng } from '../../../functions/core/png.ts';
import { startVideo } from '../../../functions/model/reference/video.ts';
import { ModelError } from '../../../functions/worker/cog.ts';
import { decodeVideo } from '../../../functions/worker/video.ts';
import { framesOf } from '../../../functions/worker/windows.ts';

const W = 16;
const H = 8;
/** Frame `k` of a test window: a gradient that moves with k. */
const rgbOf = (k: number) =>
  Uint8Array.from({ length: W * H * 3 }, (_, i) => (i * 7 + k * 13 + ((i / 3) | 0)) & 0xff);

async function videoOf(count: number): Promise<Buffer> {
  const video = await startVideo({
    width: W,
    height: H,
    frames: count,
    metadata: {},
    signal: new AbortController().signal,
  });
  for (let k = 0; k < count; k++) await video.frame(k, rgbOf(k));
  return video.finish();
}

describe('the frames of a window from the model', () => {
  it('are its list of PNGs, one per frame', async () => {
    const pngs = [0, 1, 2].map((k) => encodePng(rgbOf(k), W, H));
    expect(await framesOf({ files: [...pngs], single: false }, 3)).toEqual(pngs);
  });

  it('are decoded from one lossless video, bit for bit, in order', async () => {
    const frames = await framesOf({ files: [await videoOf(5)], single: true }, 5);
    expect(frames).toHaveLength(5);
    frames.forEach((png, k) => {
      expect(decodeRgb(png)).toEqual({ width: W, height: H, rgb: rgbOf(k) });
    });
  });

  it("fail the attempt when their count is not the window's, and are refused when they are not PNGs", async () => {
    const pngs = [0, 1].map((k) => encodePng(rgbOf(k), W, H));
    await expect(framesOf({ files: pngs, single: false }, 3)).rejects.toThrow(
      /made 2 frame\(s\) for a window of 3/,
    );
    await expect(framesOf({ files: [await videoOf(4)], single: true }, 3)).rejects.toThrow(
      /made 4 frame\(s\) for a window of 3/,
    );
    const refused = framesOf({ files: [pngs[0]!, Buffer.from('GIF89a')], single: false }, 2);
    await expect(refused).rejects.toBeInstanceOf(ModelError);
    await expect(refused).rejects.toMatchObject({ retryable: false });
  });

  it('fail the attempt, saying so, when a video does not decode', async () => {
    await expect(decodeVideo(Buffer.from('not a video at all'), { maxFrames: 3 })).rejects.toThrow(
      /video output does not decode/,
    );
  });
});
