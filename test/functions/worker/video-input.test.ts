import { randomBytes } from 'node:crypto';
import sharp from 'sharp';
import { describe, expect, it } from 'vitest';
import type { AssetFileRecord } from '../../../functions/core/assets.ts';
import type { JobRecord } from '../../../functions/core/model.ts';
import { assetInputs } from '../../../functions/worker/inputs.ts';
import { decodeVideo } from '../../../functions/worker/video.ts';
import { encodeInputVideo, type InputFrame, stagedInputKeys } from '../../../functions/worker/video-input.ts';
import { sha256Hex } from '../../support/images.ts';

const W = 48;
const H = 32;

/** A PNG of noise: every pixel its own, so any loss or shift shows. */
async function noisePng(): Promise<{ png: Buffer; rgb: Buffer }> {
  const rgb = randomBytes(W * H * 3);
  return {
    png: await sharp(rgb, { raw: { width: W, height: H, channels: 3 } })
      .png()
      .toBuffer(),
    rgb,
  };
}

const asFrame = (png: Buffer): InputFrame => ({ sha256: sha256Hex(png), read: async () => png });

async function decodedRgb(video: Uint8Array, frames: number): Promise<Buffer[]> {
  const pngs = await decodeVideo(video, { maxFrames: frames });
  return Promise.all(pngs.map((p) => sharp(p).removeAlpha().raw().toBuffer()));
}

describe('video inputs: encoding', () => {
  it('encodes five frames losslessly: ffmpeg decodes them back bit for bit, in order', async () => {
    const frames = await Promise.all(Array.from({ length: 5 }, noisePng));
    const video = await encodeInputVideo(
      frames.map((f) => asFrame(f.png)),
      'image',
    );
    expect([...video.subarray(0, 4)]).toEqual([0x1a, 0x45, 0xdf, 0xa3]);
    const back = await decodedRgb(video, 5);
    expect(back).toHaveLength(5);
    expect(back.map((rgb, i) => rgb.equals(frames[i]!.rgb))).toEqual([true, true, true, true, true]);
  });

  it('reads a held frame once and repeats it', async () => {
    const [a, b] = await Promise.all([noisePng(), noisePng()]);
    let reads = 0;
    const counted = (png: Buffer): InputFrame => ({
      sha256: sha256Hex(png),
      read: async () => {
        reads++;
        return png;
      },
    });
    const video = await encodeInputVideo([counted(a.png), counted(b.png), counted(b.png), counted(b.png)]);
    expect(reads).toBe(2);
    const back = await decodedRgb(video, 4);
    expect(back.map((rgb) => (rgb.equals(a.rgb) ? 'a' : rgb.equals(b.rgb) ? 'b' : '?'))).toEqual([
      'a',
      'b',
      'b',
      'b',
    ]);
  });

  it('refuses a frame of another size, naming the input', async () => {
    const a = await noisePng();
    const small = await sharp(randomBytes(16 * 16 * 3), { raw: { width: 16, height: 16, channels: 3 } })
      .png()
      .toBuffer();
    await expect(encodeInputVideo([asFrame(a.png), asFrame(small)], 'mask')).rejects.toThrow(
      /input "mask" frame 1 is 16x16, the first is 48x32/,
    );
  });
});

describe('video inputs: staging', () => {
  const specs = { m: { inputs: { image: 'video' as const, mask: 'images' as const } } };
  const job = {
    id: 'job-1',
    tenant: 't1',
    model: 'm',
    prefix: 't1/SH010/job-1/',
    frames: { start: 1, end: 3 },
    inputs: { image: { asset: 'a1' }, mask: { asset: 'a2' } },
  } as unknown as JobRecord;

  it('lists one staged video per prediction and video input, for the job end to remove', () => {
    expect(stagedInputKeys(job, specs)).toEqual([
      't1/SH010/job-1/.inputs/image/1-1.mkv',
      't1/SH010/job-1/.inputs/image/2-2.mkv',
      't1/SH010/job-1/.inputs/image/3-3.mkv',
    ]);
    expect(
      stagedInputKeys({ ...job, inputs: { mask: { asset: 'a2' } } } as unknown as JobRecord, specs),
    ).toEqual([]);
  });

  it('hands one staged URL, reused by a retry, and keeps the plate hashes for provenance', async () => {
    const png = (await noisePng()).png;
    const sha = sha256Hex(png);
    const objects = new Map<string, { body: Uint8Array; hash: string }>();
    let encodes = 0;
    const inputsFor = assetInputs({
      files: async (_asset, frames) =>
        new Map(frames.map((f) => [f, { sha256: sha, size: png.length } as AssetFileRecord])),
      presign: async () => 'https://assets.example/x',
      specs,
      video: {
        read: async () => png,
        staged: async (key) => objects.get(key)?.hash,
        put: async (key, body, _type, hash) => {
          encodes++;
          objects.set(key, { body, hash });
        },
        presign: async (key) => `https://frames.example/${key}`,
      },
    });
    const one = { ...job, inputs: { image: { asset: 'a1' } } } as unknown as JobRecord;
    const first = await inputsFor(one, [2]);
    expect(first.inputs).toEqual({ image: 'https://frames.example/t1/SH010/job-1/.inputs/image/2-2.mkv' });
    expect(first.hashes?.get(2)).toEqual({ image: sha });
    await inputsFor(one, [2]);
    expect(encodes).toBe(1);
  });
});
