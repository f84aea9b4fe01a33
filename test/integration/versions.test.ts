import sharp from 'sharp';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readProvenance } from '../../functions/core/png.ts';
import type { FrameDetail, FrameResponse, JobResponse, Reroll } from '../../functions/core/schemas.ts';
import { createWorker } from '../../functions/worker/create.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, eventually, isFinished } from '../support/api.ts';
import { sha256Hex } from '../support/images.ts';
import { responseValidator } from '../support/openapi.ts';

/**
 * Frame versions on the local stack (docs/architecture.md, "Versions and review"): re-roll, the versions
 * listed with their thumbnails, select, the manifest and the provenance, idempotency, and bad input that
 * changes nothing. The stack runs no worker of its own: each test runs one while frames are to be made, so
 * what is pending stays pending while the test looks.
 */

let stack: LocalStack;
let api: ReturnType<typeof client>;

beforeAll(async () => {
  stack = await startLocalStack({ withoutWorker: true });
  api = client(stack.url, stack.apiKey);
});
afterAll(() => stack?.stop());

async function withWorker<T>(during: () => Promise<T>): Promise<T> {
  const worker = createWorker(stack.app, process.env, { waitSeconds: 1, retryBaseMs: 5 });
  const running = worker.run();
  try {
    return await during();
  } finally {
    worker.stop();
    await running;
  }
}

const bytesOf = async (url: string) => Buffer.from(await (await fetch(url)).arrayBuffer());

const detail = async (id: string, frame: number) => {
  const r = await api.call<FrameDetail>('GET', `/v1/jobs/${id}/frames/${frame}`);
  expect(r.status).toBe(200);
  return r.body;
};

async function eventsOf(id: string) {
  const r = await api.call<{ events: { type: string; data: Record<string, unknown> }[] }>(
    'GET',
    `/v1/jobs/${id}/events?limit=500`,
  );
  return r.body.events;
}

async function manifestOf(job: JobResponse) {
  const key = `${job.outputPrefix.replace(/^s3:\/\/[^/]+\//, '')}manifest.json`;
  const bytes = await stack.app.frameStore.getFile(key);
  return JSON.parse(Buffer.from(bytes!).toString('utf8')) as {
    frames: {
      frame: number;
      sha256: string;
      version?: number;
      versions?: { version: number; seed: number }[];
    }[];
  };
}

/** Waits until the frame's newest version has finished, with a worker running. */
const finished = (id: string, frame: number) =>
  eventually(async () => {
    const d = await detail(id, frame);
    const last = d.versions[d.versions.length - 1]!;
    return last.status === 'succeeded' || last.status === 'failed' ? d : undefined;
  }, `frame ${frame} of ${id} re-rolled`);

describe('re-rolling a frame', () => {
  let job: JobResponse;
  const frames = new Map<number, FrameResponse>();

  beforeAll(async () => {
    const created = await api.createJob({
      shot: 'VERSIONS_SH',
      prompt: 'a lighthouse in a storm',
      frames: { start: 1, end: 3 },
      seed: 11,
      width: 512,
      height: 288,
      // No review gate: thumbnails of the first generation are asked for (a gated job has them by default).
      thumbnails: true,
    });
    job = await withWorker(() => api.waitForJob(created.body.id, isFinished));
    expect(job.status).toBe('succeeded');
    for (const f of await api.allFrames(job.id)) frames.set(f.frame, f);
  });

  it('lists the first generation as version 1, selected, with a small WebP thumbnail 256 px wide', async () => {
    const f2 = frames.get(2)!;
    expect(f2).toMatchObject({ version: 1, status: 'succeeded' });
    const d = await detail(job.id, 2);
    expect(d.unit).toEqual({ start: 2, end: 2 });
    expect(d.versions).toHaveLength(1);
    expect(d.versions[0]).toMatchObject({ version: 1, selected: true, seed: 12, sha256: f2.sha256 });
    for (const url of [f2.thumbnailUrl!, d.versions[0]!.thumbnailUrl!]) {
      const thumb = await bytesOf(url);
      expect(thumb.subarray(0, 4).toString()).toBe('RIFF');
      expect(thumb.subarray(8, 12).toString()).toBe('WEBP');
      expect(thumb.byteLength).toBeLessThan(16 * 1024);
      const meta = await sharp(thumb).metadata();
      expect(meta).toMatchObject({ format: 'webp', width: 256, height: 144 });
    }
  });

  it('makes a new version with its seed and params, idempotently, keeping the sequence on version 1 until a select', async () => {
    const body = { seed: 99, params: { strength: 0.5 } };
    const first = await api.call<Reroll>('POST', `/v1/jobs/${job.id}/frames/2/retry`, body, {
      'idempotency-key': 'reroll-2',
    });
    expect(first.status).toBe(202);
    expect(first.body).toMatchObject({
      jobId: job.id,
      frame: 2,
      version: 2,
      status: 'pending',
      seed: 99,
      params: { strength: 0.5 },
      unit: { start: 2, end: 2 },
    });
    const replay = await api.call<Reroll>('POST', `/v1/jobs/${job.id}/frames/2/retry`, body, {
      'idempotency-key': 'reroll-2',
    });
    expect(replay.status).toBe(202);
    expect(replay.headers.get('idempotent-replayed')).toBe('true');
    expect(replay.body.version).toBe(2);
    const mismatch = await api.call(
      'POST',
      `/v1/jobs/${job.id}/frames/2/retry`,
      { seed: 5 },
      {
        'idempotency-key': 'reroll-2',
      },
    );
    expect(mismatch.status).toBe(422);
    // A second re-roll while the first is not made yet is refused.
    const busy = await api.call<{ error: { code: string; message: string } }>(
      'POST',
      `/v1/jobs/${job.id}/frames/2/retry`,
      {},
    );
    expect(busy.status).toBe(409);
    expect(busy.body.error.message).toMatch(/not finished/);
    expect((await api.getJob(job.id)).body.rerolls).toBe(1);
    expect((await detail(job.id, 2)).versions.map((v) => [v.version, v.status])).toEqual([
      [1, 'succeeded'],
      [2, 'pending'],
    ]);

    const made = await withWorker(() => finished(job.id, 2));
    const [v1, v2] = made.versions;
    expect(v1).toMatchObject({ version: 1, selected: true, sha256: frames.get(2)!.sha256 });
    expect(v2).toMatchObject({ version: 2, status: 'succeeded', selected: false, seed: 99, attempts: 1 });
    expect(v2!.params).toEqual({ strength: 0.5 });
    expect(v2!.sha256).not.toBe(v1!.sha256);
    expect(v2!.key).toMatch(/\/versions\/VERSIONS_SH\.v002\.0002\.png$/);
    expect(v2!.requestedBy).toMatchObject({ tenant: 'dev' });
    const png = await bytesOf(v2!.url!);
    expect(sha256Hex(png)).toBe(v2!.sha256);
    expect(readProvenance(png)).toMatchObject({
      version: 2,
      seed: 99,
      frame: 2,
      params: { strength: 0.5 },
    });
    // The sequence name still holds version 1.
    const listed = (await api.allFrames(job.id)).find((f) => f.frame === 2)!;
    expect(listed).toMatchObject({ version: 1, sha256: v1!.sha256 });
    expect(sha256Hex(await bytesOf(listed.url!))).toBe(v1!.sha256);
    const thumb = await sharp(await bytesOf(v2!.thumbnailUrl!)).metadata();
    expect(thumb).toMatchObject({ format: 'webp', width: 256 });

    const rerolled = (await eventsOf(job.id)).filter((e) => e.type === 'frame.rerolled');
    expect(rerolled).toHaveLength(1);
    expect(rerolled[0]!.data).toMatchObject({
      id: job.id,
      frame: 2,
      version: { version: 2, status: 'succeeded', seed: 99, frames: [{ frame: 2, sha256: v2!.sha256 }] },
    });
    expect((await api.getJob(job.id)).body.rerolls).toBe(1);
  });

  it('points the sequence name at the version selected, and records it in the manifest', async () => {
    const before = await detail(job.id, 2);
    const v2 = before.versions[1]!;
    const selected = await api.call<FrameDetail>('POST', `/v1/jobs/${job.id}/frames/2/select`, {
      version: 2,
    });
    expect(selected.status).toBe(200);
    expect(selected.body).toMatchObject({ version: 2, sha256: v2.sha256, seed: 99 });
    expect(selected.body.versions.map((v) => v.selected)).toEqual([false, true]);
    const listed = (await api.allFrames(job.id)).find((f) => f.frame === 2)!;
    expect(listed).toMatchObject({ version: 2, sha256: v2.sha256 });
    expect(sha256Hex(await bytesOf(listed.url!))).toBe(v2.sha256);
    expect(await bytesOf(listed.thumbnailUrl!)).toEqual(await bytesOf(v2.thumbnailUrl!));
    // The neighbours are untouched.
    expect((await api.allFrames(job.id)).find((f) => f.frame === 1)).toMatchObject({
      version: 1,
      sha256: frames.get(1)!.sha256,
    });

    const manifest = await manifestOf(job);
    const entry = manifest.frames.find((f) => f.frame === 2)!;
    expect(entry).toMatchObject({ version: 2, sha256: v2.sha256 });
    expect(entry.versions?.map((v) => [v.version, v.seed])).toEqual([
      [1, 12],
      [2, 99],
    ]);

    // Back to version 1: its bytes were kept under its version key.
    const back = await api.call<FrameDetail>('POST', `/v1/jobs/${job.id}/frames/2/select`, { version: 1 });
    expect(back.status).toBe(200);
    expect(back.body).toMatchObject({ version: 1, sha256: frames.get(2)!.sha256, seed: 12 });
    const again = (await api.allFrames(job.id)).find((f) => f.frame === 2)!;
    expect(sha256Hex(await bytesOf(again.url!))).toBe(frames.get(2)!.sha256);
    expect((await manifestOf(job)).frames.find((f) => f.frame === 2)).toMatchObject({ version: 1 });
  });

  it('answers bad input with a clear 4xx naming what is wrong, and changes nothing', async () => {
    const before = await detail(job.id, 2);
    const rerolls = (await api.getJob(job.id)).body.rerolls;
    const cases: [string, string, unknown, number, string | undefined][] = [
      ['GET', `/v1/jobs/${job.id}/frames/99`, undefined, 404, 'frame'],
      ['GET', `/v1/jobs/${job.id}/frames/two`, undefined, 400, 'frame'],
      ['POST', `/v1/jobs/${job.id}/frames/99/retry`, {}, 404, 'frame'],
      ['POST', `/v1/jobs/${job.id}/frames/2/retry`, { seed: -1 }, 400, 'body.seed'],
      ['POST', `/v1/jobs/${job.id}/frames/2/retry`, { seeds: 1 }, 400, 'body.seeds'],
      ['POST', `/v1/jobs/${job.id}/frames/2/select`, { version: 7 }, 404, 'body.version'],
      ['POST', `/v1/jobs/${job.id}/frames/2/select`, { version: 'two' }, 400, 'body.version'],
      ['POST', `/v1/jobs/${job.id}/frames/2/select`, {}, 400, 'body.version'],
      ['POST', `/v1/jobs/${job.id}/frames/99/select`, { version: 1 }, 404, 'frame'],
      ['POST', '/v1/jobs/job_00000000000000000000000000/frames/2/retry', {}, 404, undefined],
    ];
    for (const [method, path, body, status, field] of cases) {
      const r = await api.call<{ error: { code: string; message: string; details?: { field?: string } } }>(
        method,
        path,
        body,
      );
      expect(r.status, `${method} ${path} ${JSON.stringify(body)}`).toBe(status);
      expect(r.body.error.message.length).toBeGreaterThan(0);
      if (field) expect(r.body.error.details?.field, path).toBe(field);
    }
    const reader = client(stack.url, await stack.createApiKey('dev', ['jobs:read']));
    expect((await reader.call('POST', `/v1/jobs/${job.id}/frames/2/retry`, {})).status).toBe(403);
    const other = client(stack.url, await stack.createApiKey('someone-else'));
    expect((await other.call('GET', `/v1/jobs/${job.id}/frames/2`)).status).toBe(404);
    expect(await detail(job.id, 2)).toMatchObject({ version: before.version, sha256: before.sha256 });
    expect((await detail(job.id, 2)).versions).toHaveLength(before.versions.length);
    expect((await api.getJob(job.id)).body.rerolls).toBe(rerolls);
  });

  it('answers the new routes as the OpenAPI document it serves says', async () => {
    const doc = await client(stack.url).call<Parameters<typeof responseValidator>[0]>(
      'GET',
      '/v1/openapi.json',
    );
    const check = responseValidator(doc.body);
    const base = `/v1/jobs/${job.id}`;
    const cases: [string, string, string, unknown, number][] = [
      ['GET', `${base}/frames/2`, '/v1/jobs/{id}/frames/{frame}', undefined, 200],
      ['GET', `${base}/frames?limit=3`, '/v1/jobs/{id}/frames', undefined, 200],
      ['GET', base, '/v1/jobs/{id}', undefined, 200],
      ['POST', `${base}/frames/2/select`, '/v1/jobs/{id}/frames/{frame}/select', { version: 1 }, 200],
      ['POST', `${base}/frames/2/select`, '/v1/jobs/{id}/frames/{frame}/select', { version: 9 }, 404],
      ['POST', `${base}/frames/99/retry`, '/v1/jobs/{id}/frames/{frame}/retry', {}, 404],
      ['POST', `${base}/frames/3/retry`, '/v1/jobs/{id}/frames/{frame}/retry', { seed: 5 }, 202],
      ['POST', `${base}/frames/3/retry`, '/v1/jobs/{id}/frames/{frame}/retry', {}, 409],
      ['POST', `${base}/approve`, '/v1/jobs/{id}/approve', undefined, 409],
      ['POST', `${base}/reject`, '/v1/jobs/{id}/reject', {}, 409],
    ];
    for (const [method, path, route, body, status] of cases) {
      const r = await api.call(method, path, body);
      expect(r.status, `${method} ${path}`).toBe(status);
      expect(check(method, route, r.status, r.body), `${method} ${path} ${r.status}`).toEqual([]);
    }
    expect((await detail(job.id, 3)).versions.map((v) => v.status)).toEqual(['succeeded', 'pending']);
  });

  it('refuses to re-roll a frame that is still pending, with 409 naming its status', async () => {
    const created = await api.createJob({
      shot: 'PENDING_SH',
      prompt: 'p',
      frames: { start: 1, end: 2 },
      width: 64,
      height: 64,
    });
    const r = await api.call<{ error: { message: string; details: { status: string } } }>(
      'POST',
      `/v1/jobs/${created.body.id}/frames/1/retry`,
      {},
    );
    expect(r.status).toBe(409);
    expect(r.body.error.details.status).toBe('pending');
    expect(r.body.error.message).toMatch(/frame 1 is pending/);
    expect((await api.getJob(created.body.id)).body.rerolls).toBe(0);
    expect((await api.cancelJob(created.body.id)).status).toBe(200);
  });
});

describe('a job without thumbnails (the default without a review gate)', () => {
  it('stores one object a frame and shows the frame itself, but gives a re-roll its thumbnail', async () => {
    const created = await api.createJob({
      shot: 'NO_THUMBS',
      prompt: 'a lighthouse at dawn',
      frames: { start: 1, end: 2 },
      seed: 3,
      width: 64,
      height: 64,
    });
    expect(created.body.thumbnails).toBe(false);
    const job = await withWorker(() => api.waitForJob(created.body.id, isFinished));
    expect(job.status).toBe('succeeded');
    const prefix = job.outputPrefix.replace(/^s3:\/\/[^/]+\//, '');
    const listed = await api.allFrames(job.id);
    // No thumbnail was made, and none is offered: the frame's own URL is what the review page shows.
    for (const f of listed) {
      expect(f.url).toBeDefined();
      expect(f.thumbnailUrl).toBeUndefined();
      expect(
        await stack.app.frameStore.metadataOf(
          `${prefix}thumbnails/NO_THUMBS.${String(f.frame).padStart(4, '0')}.webp`,
        ),
      ).toBeUndefined();
    }
    expect((await detail(job.id, 1)).versions[0]!.thumbnailUrl).toBeUndefined();

    expect((await api.call('POST', `/v1/jobs/${job.id}/frames/1/retry`, { seed: 8 })).status).toBe(202);
    const made = await withWorker(() => finished(job.id, 1));
    const [v1, v2] = made.versions;
    expect(v1!.thumbnailUrl).toBeUndefined();
    expect(v2).toMatchObject({ version: 2, status: 'succeeded' });
    const thumb = await sharp(await bytesOf(v2!.thumbnailUrl!)).metadata();
    expect(thumb).toMatchObject({ format: 'webp', width: 64 });
    // Selected, the re-roll's thumbnail is the frame's.
    await api.call('POST', `/v1/jobs/${job.id}/frames/1/select`, { version: 2 });
    const after = (await api.allFrames(job.id)).find((f) => f.frame === 1)!;
    expect(await bytesOf(after.thumbnailUrl!)).toEqual(await bytesOf(v2!.thumbnailUrl!));
  });
});

describe('re-rolling a frame of a model with windows', () => {
  it('makes its window again from the stored context, and a select moves the whole window', async () => {
    // Window 17, overlap 4 over frames 1-30: window 0 owns 1-17, window 1 (14-30) owns 18-30.
    const created = await api.createJob({
      shot: 'WIN_VERSIONS',
      prompt: 'a wave breaks on a pier',
      model: 'reference-window',
      frames: { start: 1, end: 30 },
      window: { size: 17, overlap: 4 },
      seed: 3,
      width: 64,
      height: 64,
    });
    const job = await withWorker(() => api.waitForJob(created.body.id, isFinished, 120_000));
    expect(job.status).toBe('succeeded');
    const first = new Map((await api.allFrames(job.id)).map((f) => [f.frame, f]));

    const reroll = await api.call<Reroll>('POST', `/v1/jobs/${job.id}/frames/20/retry`, { seed: 500 });
    expect(reroll.status).toBe(202);
    expect(reroll.body).toMatchObject({ version: 2, unit: { start: 18, end: 30, window: 1 }, seed: 500 });
    const made = await withWorker(() => finished(job.id, 25));
    expect(made.unit).toEqual({ start: 18, end: 30, window: 1 });
    const v2 = made.versions[1]!;
    expect(v2).toMatchObject({ version: 2, status: 'succeeded' });
    expect(v2.sha256).not.toBe(first.get(25)!.sha256);
    const provenance = readProvenance(await bytesOf(v2.url!));
    expect(provenance).toMatchObject({
      version: 2,
      frame: 25,
      window: { index: 1, start: 14, end: 30, seed: 500 },
    });
    // Chained: the window was given window 0's stored frames 14-17 as context.
    expect(provenance?.window?.context).toEqual(
      [14, 15, 16, 17].map((f) => ({ frame: f, sha256: first.get(f)!.sha256 })),
    );
    const rerolled = (await eventsOf(job.id)).filter((e) => e.type === 'frame.rerolled');
    expect(rerolled).toHaveLength(1);
    expect((rerolled[0]!.data.version as { frames: unknown[] }).frames).toHaveLength(13);

    const selected = await api.call<FrameDetail>('POST', `/v1/jobs/${job.id}/frames/18/select`, {
      version: 2,
    });
    expect(selected.status).toBe(200);
    const after = new Map((await api.allFrames(job.id)).map((f) => [f.frame, f]));
    for (let f = 1; f <= 30; f++) {
      if (f <= 17) expect(after.get(f)!.sha256, `frame ${f}`).toBe(first.get(f)!.sha256);
      else {
        expect(after.get(f)!.version, `frame ${f}`).toBe(2);
        expect(after.get(f)!.sha256, `frame ${f}`).not.toBe(first.get(f)!.sha256);
      }
    }
    expect((await api.getJob(job.id)).body.rerolls).toBe(1);
  });
});
