import { GetObjectCommand } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AssetResponse } from '../../functions/core/assets.ts';
import type { JobResponse } from '../../functions/core/schemas.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, isFinished } from '../support/api.ts';
import { entry, plateShot, uploadSequence } from '../support/assets.ts';
import { exrInfo, exrPlate, maxDifference, oiio } from '../support/exr.ts';
import { sha256Hex } from '../support/images.ts';

/**
 * EXR plates in, EXR frames out (docs/colour.md), end to end on the local stack with the real reference
 * model: an ACEScg plate made by oiiotool goes through the model at strength 0, which passes its input
 * through bit for bit, so the delivered EXR frames must be the plate again, within the one step of 8-bit
 * sRGB the model's PNGs can hold, and in the plate's colour space.
 */

let stack: LocalStack;
let api: ReturnType<typeof client>;
let asset: AssetResponse;
let plates: Buffer[];

const FRAMES = { start: 1001, end: 1003 };
const SRGB_STEP = 1 / 255;

beforeAll(async () => {
  stack = await startLocalStack();
  api = client(stack.url, await stack.createApiKey('exr'));
  plates = await Promise.all([0, 1, 2].map((i) => exrPlate(64, 64, i)));
  asset = await uploadSequence(
    api,
    'EP101_SH040_PL01_acescg',
    {
      files: plates.map((b, i) => entry(FRAMES.start + i, b)),
      bySha: new Map(plates.map((b) => [sha256Hex(b), b])),
    },
    'exr',
  );
});
afterAll(() => stack?.stop());

async function stored(job: JobResponse, frame: number, ext: string): Promise<Buffer> {
  const { s3, bucket } = stack.app.frameStore;
  const key = `${job.outputPrefix.replace(`s3://${bucket}/`, '')}${job.shot}.${frame}.${ext}`;
  const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
  return Buffer.from(await got.Body!.transformToByteArray());
}

const shot = (extra: Record<string, unknown>) =>
  plateShot(asset.id, { frames: FRAMES, params: { strength: 0 }, ...extra });

describe('an ACEScg EXR plate through the reference model at strength 0', () => {
  it('comes back as half EXR frames in ACEScg, equal to the plate within 8-bit sRGB precision', async () => {
    const created = await api.createJob(shot({ output: { format: 'exr' } }));
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    expect(created.body.output).toEqual({ format: 'exr' });
    const job = await api.waitForJob(created.body.id, isFinished);
    expect(job.status, JSON.stringify(job)).toBe('succeeded');
    for (const [i, plate] of plates.entries()) {
      const frame = await stored(job, FRAMES.start + i, 'exr');
      const info = await exrInfo(frame);
      expect(info).toMatch(/64 x\s+64, 3 channel, half openexr/);
      expect(info).toMatch(/colorSpace: "ACEScg"/);
      expect(info).toMatch(/chromaticities: 0\.713, 0\.293/);
      // The provenance names the EXR plate file the frame was made from.
      expect(info).toContain(`"inputs":{"image":"${sha256Hex(plate)}"}`);
      expect(await maxDifference(plate, frame, 'ACEScg', 'sRGB - Texture')).toBeLessThanOrEqual(SRGB_STEP);
      // Not the neighbouring plate frame: each frame is its own plate's.
      const other = plates[(i + 1) % plates.length]!;
      expect(await maxDifference(other, frame, 'ACEScg', 'sRGB - Texture')).toBeGreaterThan(SRGB_STEP);
    }
    const listed = await api.allFrames(job.id);
    expect(listed.map((f) => f.frame)).toEqual([1001, 1002, 1003]);
  });

  it('gives the model the plate converted to 8-bit sRGB: a PNG job returns exactly that conversion', async () => {
    const created = await api.createJob(shot({}));
    const job = await api.waitForJob(created.body.id, isFinished);
    expect(job.status).toBe('succeeded');
    expect(job.output).toBeUndefined();
    const png = await stored(job, FRAMES.start, 'png');
    const expected = await oiio.plateToModel(plates[0]!);
    expect(await maxDifference(png, expected, 'sRGB - Texture', 'sRGB - Texture')).toBe(0);
  });

  it('refuses a pass or version when the naming template (here the default) has none, naming the field', async () => {
    for (const field of ['pass', 'version'] as const) {
      const res = await api.createJob(shot({ output: { [field]: field === 'pass' ? 'fg' : 2 } }));
      expect(res.status).toBe(400);
      expect(JSON.stringify(res.body)).toContain(`body.output.${field}`);
    }
  });

  it('refuses EXR output on a model with windows, naming the field', async () => {
    const res = await api.createJob(shot({ model: 'reference-window', output: { format: 'exr' } }));
    expect(res.status).toBe(400);
    expect(JSON.stringify(res.body)).toContain('body.output.format');
  });
});
