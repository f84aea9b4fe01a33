import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, describe, expect, it, vi } from 'vitest';
import { readProvenance } from '../../functions/core/png.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { pixelsOf } from '../functions/model/reference/frames.ts';
import { client, eventually, isFinished } from '../support/api.ts';
import { plate, plateShot, uploadSequence } from '../support/assets.ts';
import { sha256Hex } from '../support/images.ts';

/**
 * A model that declares its plate as a video, end to end on the local stack: the worker encodes each
 * window's plate frames into one lossless video, the reference model decodes it, and the shot comes out
 * pixel for pixel as the same job whose model takes the plate as a list of images.
 */

const W = 64;
const H = 64;
const FRAMES = { start: 1001, end: 1024 };
const WINDOWS = { window: 49, overlap: 8, lengths: '4n+1' };

let stack: LocalStack | undefined;
afterAll(() => stack?.stop());

interface Shot {
  readonly pixels: Map<number, Buffer>;
  readonly inputs: Map<number, Record<string, string> | undefined>;
  readonly staged: string[];
  readonly left: string[];
}

/** Runs the plate job on a fresh stack whose reference-window declares `image` as `kind`. */
async function runShot(kind: 'video' | 'images', plateSha: string[]): Promise<Shot> {
  stack = await startLocalStack({
    env: {
      FRAMECAST_MODEL_SPECS: JSON.stringify({
        'reference-window': { inputs: { image: kind }, frames: WINDOWS },
      }),
    },
  });
  try {
    const api = client(stack.url, await stack.createApiKey(`plates-${kind}`));
    const seq = await plate(24, FRAMES.start, 3, [W, H]);
    expect(seq.bytes.map((b) => sha256Hex(b))).toEqual(plateSha);
    const asset = await uploadSequence(api, 'EP101_SH040_PL01', seq);
    const { frameStore } = stack.app;
    const put = vi.spyOn(frameStore, 'putFile');
    const created = await api.createJob(plateShot(asset.id, { model: 'reference-window' }));
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    const job = await api.waitForJob(created.body.id, isFinished);
    expect(job.status).toBe('succeeded');
    const staged = put.mock.calls.filter((c) => c[2] === 'video/x-matroska').map((c) => c[0]);
    put.mockRestore();
    const { s3, bucket } = frameStore;
    const prefix = job.outputPrefix.replace(`s3://${bucket}/`, '');
    const pixels = new Map<number, Buffer>();
    const inputs = new Map<number, Record<string, string> | undefined>();
    for (const f of await api.allFrames(job.id)) {
      const key = `${prefix}${job.shot}.${String(f.frame).padStart(4, '0')}.png`;
      const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
      const png = Buffer.from(await got.Body!.transformToByteArray());
      pixels.set(f.frame, Buffer.from(await pixelsOf(png)));
      inputs.set(f.frame, readProvenance(png)?.inputs);
    }
    // The job's end removes the videos it staged.
    const left = await eventually(
      async () => {
        const listed = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: prefix }));
        const keys = (listed.Contents ?? []).map((o) => o.Key!).filter((k) => k.includes('.inputs/'));
        return keys.length === 0 ? keys : undefined;
      },
      'the staged input videos to go',
      10_000,
    ).catch(() => ['still there']);
    return { pixels, inputs, staged, left };
  } finally {
    await stack.stop();
    stack = undefined;
  }
}

describe('a plate handed to the model as a video', () => {
  it('makes the same frames as the plate as a list of images, each naming its plate file', async () => {
    const seq = await plate(24, FRAMES.start, 3, [W, H]);
    const plateSha = seq.bytes.map((b) => sha256Hex(b));
    const video = await runShot('video', plateSha);
    const images = await runShot('images', plateSha);

    // One window of 25 frames (24 fitted to 4n+1): one video staged, then removed.
    expect(video.staged).toHaveLength(1);
    expect(video.staged[0]).toMatch(/\.inputs\/image\/1001-1025\.mkv$/);
    expect(video.left).toEqual([]);
    expect(images.staged).toEqual([]);

    expect(video.pixels.size).toBe(24);
    for (const [frame, px] of video.pixels) {
      expect(px.equals(images.pixels.get(frame)!), `frame ${frame}`).toBe(true);
      expect(video.inputs.get(frame)).toEqual({ image: plateSha[frame - FRAMES.start] });
    }
  }, 180_000);
});
