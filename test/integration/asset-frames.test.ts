import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AssetFrame, AssetResponse } from '../../functions/core/assets.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client } from '../support/api.ts';
import { entry, plate, put, uploadSequence } from '../support/assets.ts';
import { pngFrame, sha256Hex } from '../support/images.ts';

/**
 * `GET /v1/assets/{id}/frames/{frame}`: the download URL of one frame of a plate, as the review page
 * shows a render beside the plate frame it was made from.
 */

let stack: LocalStack;
let api: ReturnType<typeof client>;
let seq: Awaited<ReturnType<typeof plate>>;
let asset: AssetResponse;

beforeAll(async () => {
  stack = await startLocalStack({ withoutWorker: true });
  api = client(stack.url, await stack.createApiKey('plates'));
  seq = await plate(4, 1001, 5);
  asset = await uploadSequence(api, 'EP101_SH040_PL01', seq);
});
afterAll(() => stack?.stop());

const frameOf = (id: string, frame: number | string, as = api) =>
  as.call<AssetFrame & { error?: { code: string; message: string } }>(
    'GET',
    `/v1/assets/${id}/frames/${frame}`,
  );

describe('an asset frame', () => {
  it('gives the file of a plate frame with a URL that downloads exactly its bytes', async () => {
    const res = await frameOf(asset.id, 1003);
    expect(res.status).toBe(200);
    expect(res.body).toMatchObject({
      asset: asset.id,
      frame: 1003,
      sha256: seq.files[2]!.sha256,
      size: seq.files[2]!.size,
    });
    const bytes = Buffer.from(await (await fetch(res.body.url)).arrayBuffer());
    expect(sha256Hex(bytes)).toBe(seq.files[2]!.sha256);
    expect(Date.parse(res.body.urlExpiresAt)).toBeGreaterThan(Date.now());
  });

  it('gives a still for any frame, as a job input does', async () => {
    const still = await pngFrame(64, 36, 99);
    const created = await api.call<{ id: string; uploads: Parameters<typeof put>[0][] }>(
      'POST',
      '/v1/assets',
      {
        name: 'reference',
        format: 'png',
        files: [entry(undefined, still)],
      },
    );
    for (const upload of created.body.uploads) expect((await put(upload, still)).status).toBe(200);
    expect((await api.call('POST', `/v1/assets/${created.body.id}/complete`)).status).toBe(200);
    const res = await frameOf(created.body.id, 1042);
    expect(res.status).toBe(200);
    expect(res.body.frame).toBeUndefined();
    expect(res.body.sha256).toBe(sha256Hex(still));
  });

  it('refuses a frame outside the sequence, a path that is not a frame, an asset not ready and another tenant', async () => {
    const outside = await frameOf(asset.id, 1005);
    expect([outside.status, outside.body.error?.code]).toEqual([404, 'not_found']);
    expect(outside.body.error?.message).toContain('1001-1004');
    expect((await frameOf(asset.id, 'first')).status).toBe(400);
    expect((await frameOf(asset.id, '-1')).status).toBe(400);

    const uploading = await api.call<{ id: string }>('POST', '/v1/assets', {
      name: 'half',
      format: 'png',
      frames: { start: 1, end: 1 },
      files: [seq.files[0]!].map((f) => ({ ...f, frame: 1 })),
    });
    const early = await frameOf(uploading.body.id, 1);
    expect([early.status, early.body.error?.code]).toEqual([409, 'conflict']);

    const other = client(stack.url, await stack.createApiKey('another'));
    expect((await frameOf(asset.id, 1003, other)).status).toBe(404);
    const jobsOnly = client(stack.url, await stack.createApiKey('plates', ['jobs:read']));
    expect((await frameOf(asset.id, 1003, jobsOnly)).status).toBe(403);
  });
});
