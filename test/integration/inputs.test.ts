import { GetObjectCommand } from '@aws-sdk/client-s3';
import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AssetResponse } from '../../functions/core/assets.ts';
import { readProvenance } from '../../functions/core/png.ts';
import type { JobResponse } from '../../functions/core/schemas.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, isFinished } from '../support/api.ts';
import { plate, plateShot, uploadSequence } from '../support/assets.ts';
import { sha256Hex } from '../support/images.ts';

/**
 * Shots from plates, end to end on the local stack with the real reference model: a plate sequence is
 * uploaded as an asset, a job names it as the model's `image` input, and every output frame is made from
 * its own plate frame.
 */

let stack: LocalStack;
let api: ReturnType<typeof client>;
let platePixels: Buffer[];
let plateSha: string[];
let asset: AssetResponse;

const W = 64;
const H = 64;
const FRAMES = { start: 1001, end: 1024 };

beforeAll(async () => {
  stack = await startLocalStack();
  api = client(stack.url, await stack.createApiKey('plates'));
  const seq = await plate(24, FRAMES.start, 3, [W, H]);
  asset = await uploadSequence(api, 'EP101_SH040_PL01', seq);
  platePixels = await Promise.all(seq.bytes.map((b) => sharp(b).raw().toBuffer()));
  plateSha = seq.bytes.map((b) => sha256Hex(b));
});
afterAll(() => stack?.stop());

const finished = (id: string) => api.waitForJob(id, isFinished);

async function storedFrames(job: JobResponse): Promise<Map<number, Buffer>> {
  const { s3, bucket } = stack.app.frameStore;
  const out = new Map<number, Buffer>();
  for (const f of await api.allFrames(job.id)) {
    const key = `${job.outputPrefix.replace(`s3://${bucket}/`, '')}${job.shot}.${String(f.frame).padStart(4, '0')}.png`;
    const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
    out.set(f.frame, Buffer.from(await got.Body!.transformToByteArray()));
  }
  return out;
}

/** Pearson correlation of two equal-length pixel buffers. */
function correlation(a: Uint8Array, b: Uint8Array): number {
  let sa = 0;
  let sb = 0;
  for (let i = 0; i < a.length; i++) {
    sa += a[i]!;
    sb += b[i]!;
  }
  const [ma, mb] = [sa / a.length, sb / b.length];
  let cov = 0;
  let va = 0;
  let vb = 0;
  for (let i = 0; i < a.length; i++) {
    const [da, db] = [a[i]! - ma, b[i]! - mb];
    cov += da * db;
    va += da * da;
    vb += db * db;
  }
  return cov / Math.sqrt(va * vb);
}

/** Checks every frame: it correlates best with its own plate frame, and its provenance names that file. */
async function expectEachFrameUsedItsPlate(job: JobResponse) {
  const frames = await storedFrames(job);
  expect(frames.size).toBe(24);
  for (const [frame, png] of frames) {
    const pixels = await sharp(png).raw().toBuffer();
    const own = frame - FRAMES.start;
    const scores = platePixels.map((p) => correlation(pixels, p));
    const best = scores.indexOf(Math.max(...scores));
    expect(best, `frame ${frame} looks most like plate frame ${FRAMES.start + best}`).toBe(own);
    expect(scores[own]).toBeGreaterThan(0.5);
    expect(readProvenance(png)?.inputs).toEqual({ image: plateSha[own] });
  }
  const manifest = await stack.app.frameStore.s3.send(
    new GetObjectCommand({
      Bucket: stack.app.frameStore.bucket,
      Key: `${job.outputPrefix.replace(`s3://${stack.app.frameStore.bucket}/`, '')}manifest.json`,
    }),
  );
  const body = JSON.parse(await manifest.Body!.transformToString()) as {
    frames: { frame: number; inputs?: Record<string, string> }[];
  };
  for (const f of body.frames) expect(f.inputs).toEqual({ image: plateSha[f.frame - FRAMES.start] });
  // The audit trail holds the same: the asset bound at creation, each plate file's hash at the end.
  const { records } = await stack.app.auditStore.list('plates', {
    from: '1970-01-01T00:00:00.000Z',
    to: '9999-12-31T00:00:00.000Z',
    limit: 1000,
  });
  const ofJob = records.filter((r) => r.jobId === job.id);
  expect(ofJob.find((r) => r.kind === 'job.created')?.inputs).toEqual({
    image: { asset: asset.id, offset: 0, outside: 'error', frames: FRAMES },
  });
  const outputs = ofJob.filter((r) => r.kind === 'job.finished').flatMap((r) => r.outputs ?? []);
  expect(outputs).toHaveLength(24);
  for (const o of outputs) expect(o.inputs).toEqual({ image: plateSha[o.frame - FRAMES.start] });
}

const shot = (extra: Record<string, unknown> = {}) => plateShot(asset.id, extra);

describe('a job with a plate', () => {
  it('makes every output frame from its own plate frame, and its provenance names that file', async () => {
    const created = await api.createJob(shot());
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    expect(created.body.inputs).toEqual({ image: { asset: asset.id, offset: 0, outside: 'error' } });
    const job = await finished(created.body.id);
    expect(job.status).toBe('succeeded');
    await expectEachFrameUsedItsPlate(job);
  });

  it('does the same on a model with windows, where one prediction takes the window its plate frames', async () => {
    const created = await api.createJob(shot({ model: 'reference-window' }));
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    const job = await finished(created.body.id);
    expect(job.status).toBe('succeeded');
    await expectEachFrameUsedItsPlate(job);
  });
});

describe('a job naming inputs it cannot have', () => {
  const refusals: [string, () => Promise<Record<string, unknown>>, string, RegExp][] = [
    [
      'an input the model does not declare',
      async () => shot({ inputs: { depth: { asset: asset.id } } }),
      'body.inputs.depth',
      /does not take an input "depth"/,
    ],
    [
      'a frame the plate does not cover',
      async () => shot({ frames: { start: 1001, end: 1030 } }),
      'body.inputs.image',
      /frame 1025 is not covered/,
    ],
    [
      'a plate of another size',
      async () => shot({ width: 128, height: 72 }),
      'body.inputs.image.asset',
      /is 64x64; the job is 128x72/,
    ],
    [
      'an asset that is not ready',
      async () => {
        const pending = await api.createAsset<{ id: string }>({
          name: 'not_done',
          format: 'png',
          files: [{ sha256: 'a'.repeat(64), size: 10 }],
        });
        return shot({ inputs: { image: { asset: pending.body.id } } });
      },
      'body.inputs.image.asset',
      /uploading, not ready/,
    ],
    [
      "another tenant's asset",
      async () => {
        const other = client(stack.url, await stack.createApiKey('other-studio'));
        const theirs = await uploadSequence(other, 'THEIR_PLATE', await plate(2, FRAMES.start, 9, [W, H]));
        return shot({ frames: { start: 1001, end: 1002 }, inputs: { image: { asset: theirs.id } } });
      },
      'body.inputs.image.asset',
      /was not found/,
    ],
  ];

  it.each(refusals)(
    'refuses %s with a 400 naming the field, and writes nothing',
    async (_what, body, field, message) => {
      const before = (await api.listJobs()).body.jobs.length;
      const res = await api.createJob<{
        error: { code: string; message: string; details?: { field?: string } };
      }>(await body());
      expect(res.status).toBe(400);
      expect(res.body.error.message).toMatch(new RegExp(`^${field.replaceAll('.', '\\.')}: `));
      expect(res.body.error.message).toMatch(message);
      expect((await api.listJobs()).body.jobs.length).toBe(before);
    },
  );

  it('holds the nearest plate frame when asked to, for frames the plate does not cover', async () => {
    const created = await api.createJob(
      shot({ frames: { start: 1023, end: 1026 }, inputs: { image: { asset: asset.id, outside: 'hold' } } }),
    );
    expect(created.status, JSON.stringify(created.body)).toBe(202);
    const job = await finished(created.body.id);
    expect(job.status).toBe('succeeded');
    const frames = await api.allFrames(job.id);
    expect(frames.map((f) => f.frame)).toEqual([1023, 1024, 1025, 1026]);
  });
});
