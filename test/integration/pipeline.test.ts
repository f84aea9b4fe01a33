import { createHash } from 'node:crypto';
import { GetObjectCommand, ListObjectsV2Command } from '@aws-sdk/client-s3';
import { PNG } from 'pngjs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readPng, readProvenance } from '../../functions/core/png.ts';
import type { JobResponse } from '../../functions/core/schemas.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, isFinished } from '../support/api.ts';

let stack: LocalStack;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  stack = await startLocalStack({ worker: { retryBaseMs: 10 } });
  api = client(stack.url, stack.apiKey);
});
afterAll(() => stack?.stop());

const shot = (frames: { start: number; end: number }, extra: Record<string, unknown> = {}) => ({
  shot: 'EP101_SH040',
  prompt: 'a building collapses in slow motion, dust and debris at dusk',
  frames,
  seed: 1234,
  width: 160,
  height: 96,
  ...extra,
});

async function download(url: string): Promise<Buffer> {
  const res = await fetch(url);
  expect(res.status).toBe(200);
  return Buffer.from(await res.arrayBuffer());
}

async function pixelsOf(jobId: string): Promise<Map<number, Buffer>> {
  const frames = await api.allFrames(jobId);
  const out = new Map<number, Buffer>();
  for (const f of frames) out.set(f.frame, PNG.sync.read(await download(f.url!)).data);
  return out;
}

describe('a 48-frame shot', () => {
  let job: JobResponse;

  beforeAll(async () => {
    const created = await api.createJob(shot({ start: 1001, end: 1048 }));
    expect(created.status).toBe(202);
    expect(created.body).toMatchObject({ status: 'queued', shot: 'EP101_SH040', seed: 1234 });
    expect(created.body.id).toMatch(/^job_[0-9A-Z]{26}$/);
    job = await api.waitForJob(created.body.id, isFinished, 120_000);
  });

  it('succeeds with every frame counted once', () => {
    expect(job.status).toBe('succeeded');
    expect(job.frames).toEqual({ start: 1001, end: 1048, total: 48, succeeded: 48, failed: 0, canceled: 0 });
    expect(job.startedAt).toBeDefined();
    expect(job.finishedAt).toBeDefined();
    expect(job.outputPrefix).toBe(`s3://${stack.env.FRAMECAST_BUCKET}/dev/EP101_SH040/${job.id}/`);
  });

  it('stores 48 distinct, valid PNGs named as a frame sequence, with their provenance', async () => {
    const frames = await api.allFrames(job.id);
    expect(frames.map((f) => f.frame)).toEqual(Array.from({ length: 48 }, (_, i) => 1001 + i));
    const hashes = new Set<string>();
    for (const f of frames) {
      expect(f).toMatchObject({ status: 'succeeded', seed: 1234 + (f.frame - 1001), attempts: 1 });
      expect(f.key).toBe(`dev/EP101_SH040/${job.id}/EP101_SH040.${f.frame}.png`);
      const png = await download(f.url!);
      expect(createHash('sha256').update(png).digest('hex')).toBe(f.sha256);
      expect(readPng(png)).toMatchObject({ width: 160, height: 96 });
      expect(readProvenance(png)).toMatchObject({
        model: 'reference',
        seed: f.seed,
        frame: f.frame,
        jobId: job.id,
      });
      hashes.add(f.sha256!);
    }
    expect(hashes.size).toBe(48);

    const listed = await stack.app.frameStore.s3.send(
      new ListObjectsV2Command({ Bucket: stack.env.FRAMECAST_BUCKET, Prefix: `dev/EP101_SH040/${job.id}/` }),
    );
    // Each frame and the manifest; no thumbnails: the job has no review gate and did not ask for them
    // (docs/performance.md, "Cost").
    expect(job.thumbnails).toBe(false);
    expect(listed.Contents?.map((o) => o.Key).sort()).toEqual(
      [
        ...frames.map((f) => f.key!),
        `dev/EP101_SH040/${job.id}/manifest.json`,
        // The OpenTimelineIO clip of the sequence (docs/colour.md).
        `dev/EP101_SH040/${job.id}/EP101_SH040.otio`,
      ].sort(),
    );
  });

  it('writes a manifest that lists every frame with its sha256, seed and the model', async () => {
    const obj = await stack.app.frameStore.s3.send(
      new GetObjectCommand({
        Bucket: stack.env.FRAMECAST_BUCKET,
        Key: `dev/EP101_SH040/${job.id}/manifest.json`,
      }),
    );
    const manifest = JSON.parse(await obj.Body!.transformToString()) as {
      request: { prompt: string; seed: number };
      model: { name: string; image: string };
      frames: { frame: number; file: string; sha256: string; seed: number; size: number }[];
    };
    const frames = await api.allFrames(job.id);
    expect(manifest.request).toMatchObject({ prompt: job.prompt, seed: 1234 });
    expect(manifest.model.name).toBe('reference');
    expect(manifest.frames).toHaveLength(48);
    for (const [i, f] of frames.entries()) {
      expect(manifest.frames[i]).toMatchObject({
        frame: f.frame,
        file: `EP101_SH040.${f.frame}.png`,
        sha256: f.sha256,
        seed: f.seed,
        size: f.size,
      });
    }
  });

  it('gives the same pixels for the same shot and seed, and other pixels for another seed', async () => {
    const again = await api.createJob(shot({ start: 1001, end: 1004 }));
    const other = await api.createJob(shot({ start: 1001, end: 1004 }, { seed: 99 }));
    await api.waitForJob(again.body.id, (j) => j.status === 'succeeded', 60_000);
    await api.waitForJob(other.body.id, (j) => j.status === 'succeeded', 60_000);
    const [first, second, third] = await Promise.all([
      pixelsOf(job.id),
      pixelsOf(again.body.id),
      pixelsOf(other.body.id),
    ]);
    for (const n of [1001, 1002, 1003, 1004]) {
      expect(second.get(n)!.equals(first.get(n)!)).toBe(true);
      expect(third.get(n)!.equals(first.get(n)!)).toBe(false);
    }
  });

  it('moves smoothly from frame to frame, like a shot, though each frame has its own seed', async () => {
    const pixels = await pixelsOf(job.id);
    const mad = (a: Buffer, b: Buffer) => {
      let sum = 0;
      for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
      return sum / a.length;
    };
    const step = mad(pixels.get(1001)!, pixels.get(1002)!);
    const second = mad(pixels.get(1001)!, pixels.get(1025)!);
    expect(step).toBeGreaterThan(0);
    expect(second).toBeGreaterThan(step * 2);
  });

  it('hands out presigned URLs that expire and carry no checksum parameters', async () => {
    const [frame] = (await api.listFrames(job.id, { limit: 1 })).body.frames;
    const url = new URL(frame!.url!);
    expect(Number(url.searchParams.get('X-Amz-Expires'))).toBeGreaterThan(0);
    expect(Number(url.searchParams.get('X-Amz-Expires'))).toBeLessThanOrEqual(3600);
    expect([...url.searchParams.keys()].some((k) => k.toLowerCase().startsWith('x-amz-checksum'))).toBe(
      false,
    );
    expect(url.searchParams.get('response-content-disposition')).toContain('EP101_SH040.1001.png');
    expect(Date.parse(frame!.urlExpiresAt!)).toBeGreaterThan(Date.now());
  });

  it('pages frames with a cursor', async () => {
    const first = await api.listFrames(job.id, { limit: 20 });
    expect(first.body.frames.map((f) => f.frame)).toEqual(Array.from({ length: 20 }, (_, i) => 1001 + i));
    const second = await api.listFrames(job.id, { limit: 20, cursor: first.body.nextCursor });
    expect(second.body.frames[0]!.frame).toBe(1021);
    const third = await api.listFrames(job.id, { limit: 20, cursor: second.body.nextCursor });
    expect(third.body.frames.map((f) => f.frame)).toEqual(Array.from({ length: 8 }, (_, i) => 1041 + i));
    expect(third.body.nextCursor).toBeUndefined();
  });

  it('records the events a webhook will carry, in order', async () => {
    const events = await stack.app.events.listEvents(job.id);
    const types = events.map((e) => e.type);
    expect(types[0]).toBe('job.started');
    expect(types.at(-1)).toBe('job.succeeded');
    expect(types.filter((t) => t === 'frame.succeeded')).toHaveLength(48);
    const frameEvents = events.filter((e) => e.type === 'frame.succeeded');
    expect(new Set(frameEvents.map((e) => (e.data.frame as { frame: number }).frame)).size).toBe(48);
  });
});

describe('a 10,000-frame shot', () => {
  it('is accepted with one plan message and fans out in the background', async () => {
    const created = await api.createJob(shot({ start: 1, end: 10_000 }, { shot: 'BIG_SH010' }));
    expect(created.status).toBe(202);
    expect(created.body.frames.total).toBe(10_000);
    const canceled = await api.cancelJob(created.body.id);
    expect(canceled.status).toBe(200);
    expect(canceled.body.status).toBe('canceled');
    const { frames } = canceled.body;
    expect(frames.succeeded + frames.failed + frames.canceled).toBe(10_000);
  });
});
