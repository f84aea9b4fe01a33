import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { AssetResponse, AssetUploads } from '../../functions/core/assets.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client } from '../support/api.ts';
import { entry, plate, put, uploadAll } from '../support/assets.ts';
import { exrFile, jpegFrame, pngFrame, sha256Hex } from '../support/images.ts';

let stack: LocalStack;

/** A per-file limit small enough to go over in a test: 1 MiB. */
const MAX_FILE_BYTES = 1024 * 1024;

// No worker, no webhooks: these tests are about the asset API and what it keeps in S3 and the table.
beforeAll(async () => {
  stack = await startLocalStack({
    withoutWorker: true,
    withoutWebhooks: true,
    env: { FRAMECAST_ASSET_MAX_FILE_BYTES: String(MAX_FILE_BYTES) },
  });
});
afterAll(() => stack?.stop());

type Api = ReturnType<typeof client>;
interface ErrorBody {
  error: { code: string; message: string; details?: Record<string, unknown> };
}

const tenantOf = async (name: string, scopes?: Parameters<LocalStack['createApiKey']>[1]) =>
  client(stack.url, await stack.createApiKey(name, scopes));

/** The keys stored in the asset bucket under a tenant's prefix. */
async function storedKeys(tenant: string): Promise<string[]> {
  const { s3, bucket } = stack.app.assetFiles;
  const out = await s3.send(new ListObjectsV2Command({ Bucket: bucket, Prefix: `${tenant}/` }));
  return (out.Contents ?? []).map((o) => o.Key!).sort();
}

const create = (api: Api, body: unknown) => api.createAsset<AssetUploads & ErrorBody>(body);
const addFiles = (api: Api, id: string, files: unknown) =>
  api.addAssetFiles<AssetUploads & ErrorBody>(id, { files });
const complete = (api: Api, id: string) => api.completeAsset<AssetResponse & ErrorBody>(id);
const get = (api: Api, id: string) => api.getAsset<AssetResponse & ErrorBody>(id);

describe('a plate sequence', () => {
  it('is uploaded, completed with its size, and uploaded again: nothing is transferred the second time', async () => {
    const api = await tenantOf('plates');
    const { files, bySha } = await plate(24);
    const first = await create(api, {
      name: 'EP101_SH040_plate',
      format: 'png',
      frames: { start: 1001, end: 1024 },
      files,
    });
    expect(first.status).toBe(201);
    expect(first.headers.get('location')).toBe(`/v1/assets/${first.body.id}`);
    expect(first.body).toMatchObject({
      id: expect.stringMatching(/^ast_[0-9A-Z]{26}$/),
      status: 'uploading',
      files: { total: 24, announced: 24 },
    });
    expect(first.body.uploads).toHaveLength(24);
    expect(first.body.uploads[0]).toMatchObject({
      frame: 1001,
      method: 'PUT',
      headers: { 'x-amz-checksum-sha256': expect.any(String), 'content-length': String(files[0]!.size) },
    });
    const firstBytes = await uploadAll(first.body.uploads, bySha);
    expect(firstBytes).toBe(files.reduce((n, f) => n + f.size, 0));

    const done = await complete(api, first.body.id);
    expect(done.status, JSON.stringify(done.body)).toBe(200);
    expect(done.body).toMatchObject({
      status: 'ready',
      width: 64,
      height: 36,
      completedAt: expect.any(String),
    });
    expect((await get(api, first.body.id)).body).toEqual(done.body);
    // Completing again answers the same, as a retried request would want.
    expect((await complete(api, first.body.id)).body).toEqual(done.body);
    expect(await storedKeys('plates')).toHaveLength(24);

    // The same plate again (a new version of the asset, or another show's use of it): no upload asked.
    const again = await create(api, {
      name: 'EP101_SH040_plate_v2',
      format: 'png',
      frames: { start: 1001, end: 1024 },
      files,
    });
    expect(again.status).toBe(201);
    expect(again.body.uploads).toEqual([]);
    const secondBytes = await uploadAll(again.body.uploads, bySha);
    expect(secondBytes).toBe(0);
    expect((await complete(api, again.body.id)).body).toMatchObject({
      status: 'ready',
      width: 64,
      height: 36,
    });
    expect(await storedKeys('plates')).toHaveLength(24);
  });

  it('refuses a corrupt upload at the storage, and complete names the frame that is missing', async () => {
    const api = await tenantOf('corrupt');
    const { files, bySha, bytes } = await plate(4, 1001, 1);
    const asset = await create(api, {
      name: 'SH050_plate',
      format: 'png',
      frames: { start: 1001, end: 1004 },
      files,
    });
    for (const upload of asset.body.uploads) {
      if (upload.frame === 1003) continue;
      expect((await put(upload, bySha.get(upload.sha256)!)).status).toBe(200);
    }
    // One bit flipped on the way: S3 compares the body with the signed checksum and refuses it.
    const third = asset.body.uploads.find((u) => u.frame === 1003)!;
    const corrupt = Buffer.from(bytes[2]!);
    corrupt[corrupt.length - 20]! ^= 0x01;
    const refused = await put(third, corrupt);
    expect(refused.status).toBe(400);
    expect(refused.text).toContain('BadDigest');

    const incomplete = await complete(api, asset.body.id);
    expect(incomplete.status).toBe(409);
    expect(incomplete.body.error.code).toBe('asset_incomplete');
    expect(incomplete.body.error.message).toMatch(/^frame 1003 is missing/);
    expect(incomplete.body.error.details).toEqual({ missingFrames: [1003], missingCount: 1 });
    expect((await get(api, asset.body.id)).body.status).toBe('uploading');

    // Announcing the frame again gives a fresh URL for it alone; then the asset completes.
    const retry = await addFiles(api, asset.body.id, [files[2]]);
    expect(retry.status).toBe(200);
    expect(retry.body.uploads.map((u) => u.frame)).toEqual([1003]);
    await uploadAll(retry.body.uploads, bySha);
    expect((await complete(api, asset.body.id)).body).toMatchObject({
      status: 'ready',
      files: { announced: 4 },
    });
  });

  it('names every frame never announced when it is completed', async () => {
    const api = await tenantOf('gaps');
    const { files, bySha } = await plate(10, 1, 2);
    const announced = files.filter((f) => ![4, 5, 6, 9].includes(f.frame!));
    const asset = await create(api, {
      name: 'gappy',
      format: 'png',
      frames: { start: 1, end: 10 },
      files: announced,
    });
    await uploadAll(asset.body.uploads, bySha);
    const answer = await complete(api, asset.body.id);
    expect(answer.status).toBe(409);
    expect(answer.body.error.message).toMatch(/^frames 4-6, 9 are missing/);
    expect(answer.body.error.details).toEqual({ missingFrames: [4, 5, 6, 9], missingCount: 4 });
  });

  it('fails, naming the frame, when a file is not of the asset’s format or size', async () => {
    const api = await tenantOf('mixed');
    const { files, bySha } = await plate(3, 1001, 3);
    const jpeg = await jpegFrame(64, 36);
    const wrongFormat = [files[0], entry(1002, jpeg), files[2]];
    const asset = await create(api, {
      name: 'mixed',
      format: 'png',
      frames: { start: 1001, end: 1003 },
      files: wrongFormat,
    });
    await uploadAll(asset.body.uploads, new Map([...bySha, [sha256Hex(jpeg), jpeg]]));
    const refused = await complete(api, asset.body.id);
    expect(refused.status).toBe(422);
    expect(refused.body.error).toMatchObject({
      code: 'asset_invalid',
      message: 'frame 1002: is a JPEG file, not PNG as the asset says',
    });
    expect((await get(api, asset.body.id)).body).toMatchObject({
      status: 'failed',
      error: refused.body.error.message,
    });
    expect((await complete(api, asset.body.id)).status).toBe(422);
    expect((await addFiles(api, asset.body.id, [files[1]])).status).toBe(409);

    const wide = await pngFrame(80, 36, 7);
    const wrongSize = [files[0], files[1], entry(1003, wide)];
    const second = await create(api, {
      name: 'sizes',
      format: 'png',
      frames: { start: 1001, end: 1003 },
      files: wrongSize,
    });
    await uploadAll(second.body.uploads, new Map([...bySha, [sha256Hex(wide), wide]]));
    expect((await complete(api, second.body.id)).body.error.message).toBe(
      'frame 1003: is 80x36, frame 1001 is 64x36; every file of an asset has one size',
    );
  });
});

describe('a still', () => {
  it('is one file without a frame, as a JPEG or an OpenEXR whose size comes from its header', async () => {
    const api = await tenantOf('stills');
    const jpeg = await jpegFrame(320, 180, { metadata: true });
    const exr = exrFile(2048, 858);
    for (const [format, bytes, width, height] of [
      ['jpeg', jpeg, 320, 180],
      ['exr', exr, 2048, 858],
    ] as const) {
      const still = await create(api, {
        name: `look_ref.${format}`,
        format,
        files: [entry(undefined, bytes)],
      });
      expect(still.status).toBe(201);
      expect(still.body.frames).toBeUndefined();
      expect(still.body.uploads).toHaveLength(1);
      expect(still.body.uploads[0]!.frame).toBeUndefined();
      await uploadAll(still.body.uploads, new Map([[sha256Hex(bytes), bytes]]));
      expect((await complete(api, still.body.id)).body).toMatchObject({
        status: 'ready',
        width,
        height,
        files: { total: 1, announced: 1 },
      });
    }
  });
});

describe('hostile asset requests', () => {
  it('change nothing: wrong checksums, sizes over the limit, names with traversal, unknown fields', async () => {
    const api = await tenantOf('hostile');
    const png = await pngFrame(16, 16, 99);
    const good = { name: 'plate', format: 'png', files: [entry(undefined, png)] };
    const cases: [string, unknown, string][] = [
      [
        'a checksum that is not a SHA-256',
        { ...good, files: [{ ...good.files[0], sha256: 'deadbeef' }] },
        'body.files.0.sha256',
      ],
      [
        'a checksum in base64',
        { ...good, files: [{ ...good.files[0], sha256: Buffer.alloc(32).toString('base64') }] },
        'body.files.0.sha256',
      ],
      [
        'a size over the limit',
        { ...good, files: [{ ...good.files[0], size: MAX_FILE_BYTES + 1 }] },
        'body.files.0.size',
      ],
      ['a negative size', { ...good, files: [{ ...good.files[0], size: -1 }] }, 'body.files.0.size'],
      ['a name that climbs out', { ...good, name: '../../other-tenant/plate' }, 'body.name'],
      ['a name with ".."', { ...good, name: '..' }, 'body.name'],
      ['a name with a slash', { ...good, name: 'plates/EP101' }, 'body.name'],
      ['a key of its own', { ...good, files: [{ ...good.files[0], key: '../../x' }] }, 'body.files.0.key'],
      [
        'a frame outside its range',
        { ...good, frames: { start: 1, end: 2 }, files: [{ ...good.files[0], frame: 3 }] },
        'body.files.0.frame',
      ],
      ['a format it is not', { ...good, format: 'svg' }, 'body.format'],
    ];
    for (const [name, body, field] of cases) {
      const r = await create(api, body);
      expect(r.status, name).toBe(400);
      expect(r.body.error.message, name).toMatch(new RegExp(`^${field.replaceAll('.', '\\.')}:`));
    }
    expect((await api.listAssets<{ assets: unknown[] }>()).body.assets).toEqual([]);

    // Bytes that are not the announced content never land, whatever the client claims.
    const claimedBytes = Buffer.from(png);
    claimedBytes[claimedBytes.length - 1]! ^= 0xff;
    const claimed = await create(api, { ...good, files: [entry(undefined, claimedBytes)] });
    const stuffed = await put(claimed.body.uploads[0]!, png);
    expect(stuffed.status).toBe(400);
    expect(await storedKeys('hostile')).toEqual([]);
    expect((await complete(api, claimed.body.id)).status).toBe(409);
  });

  it('see another tenant’s asset as not found, and leave it as it was', async () => {
    const owner = await tenantOf('owner');
    const other = await tenantOf('intruder');
    const { files, bySha } = await plate(2, 1, 5);
    const asset = await create(owner, {
      name: 'secret_plate',
      format: 'png',
      frames: { start: 1, end: 2 },
      files,
    });
    await uploadAll(asset.body.uploads.slice(0, 1), bySha);
    const before = (await get(owner, asset.body.id)).body;
    const id = asset.body.id;
    const attempts = [
      await other.getAsset<ErrorBody>(id),
      await other.addAssetFiles<ErrorBody>(id, { files: [files[1]] }),
      await other.completeAsset<ErrorBody>(id),
      await other.deleteAsset<ErrorBody>(id),
      await other.getAsset<ErrorBody>('ast_00000000000000000000000000'),
      await other.getAsset<ErrorBody>('../../owner'),
    ];
    for (const r of attempts) {
      expect(r.status).toBe(404);
      expect(r.body.error).toMatchObject({ code: 'not_found', message: 'asset was not found' });
    }
    expect((await other.listAssets<{ assets: unknown[] }>()).body.assets).toEqual([]);
    expect((await get(owner, id)).body).toEqual(before);
    expect(await storedKeys('owner')).toHaveLength(1);
    // Content is kept per tenant: the intruder announcing the owner's frame is asked to upload it.
    const probe = await create(other, {
      name: 'probe',
      format: 'png',
      files: [{ ...files[0], frame: undefined }],
    });
    expect(probe.body.uploads).toHaveLength(1);
    expect(await storedKeys('intruder')).toEqual([]);
  });

  it('need the assets scopes', async () => {
    const jobsOnly = await tenantOf('jobs-only', ['jobs:read', 'jobs:write']);
    expect((await jobsOnly.listAssets()).status).toBe(403);
    const reader = await tenantOf('reader', ['assets:read']);
    expect((await reader.listAssets()).status).toBe(200);
    const png = await pngFrame(8, 8);
    expect((await create(reader, { name: 'x', format: 'png', files: [entry(undefined, png)] })).status).toBe(
      403,
    );
  });
});

describe('shared content', () => {
  it('is removed with the last asset that holds it', async () => {
    const api = await tenantOf('sharing');
    const { files, bySha, bytes } = await plate(3, 1, 6);
    const shot = await create(api, { name: 'shot', format: 'png', frames: { start: 1, end: 3 }, files });
    await uploadAll(shot.body.uploads, bySha);
    const ref = await create(api, { name: 'ref', format: 'png', files: [entry(undefined, bytes[1]!)] });
    expect(ref.body.uploads).toEqual([]); // frame 2 is held already
    expect((await complete(api, shot.body.id)).status).toBe(200);
    expect((await complete(api, ref.body.id)).status).toBe(200);
    const key = (bytes: Buffer) => `sharing/sha256/${sha256Hex(bytes)}`;

    expect((await api.deleteAsset(shot.body.id)).status).toBe(204);
    expect(await storedKeys('sharing')).toEqual([key(bytes[1]!)]);
    expect((await get(api, shot.body.id)).status).toBe(404);
    expect((await api.deleteAsset(shot.body.id)).status).toBe(404);
    expect((await get(api, ref.body.id)).body.status).toBe('ready');

    expect((await api.deleteAsset(ref.body.id)).status).toBe(204);
    expect(await storedKeys('sharing')).toEqual([]);
    // Gone content is asked for again.
    const back = await create(api, { name: 'back', format: 'png', files: [entry(undefined, bytes[0]!)] });
    expect(back.body.uploads).toHaveLength(1);
  });

  it('is never removed while an asset is announced with it: the announce waits for the removal, then asks for an upload', async () => {
    const api = await tenantOf('racing');
    const png = await pngFrame(16, 16, 42);
    const sha = sha256Hex(png);
    const first = await create(api, { name: 'first', format: 'png', files: [entry(undefined, png)] });
    await uploadAll(first.body.uploads, new Map([[sha, png]]));
    const store = stack.app.assetStore;

    // A delete of the last holder, stopped after its claim and before it removes the object.
    const token = await store.markDeleting(first.body.id);
    const claimed = await store.releaseContents('racing', first.body.id, [sha], token!);
    expect(claimed).toEqual([sha]);
    const started = Date.now();
    const announcing = create(api, { name: 'second', format: 'png', files: [entry(undefined, png)] });
    await new Promise((resolve) => setTimeout(resolve, 400));
    expect(await storedKeys('racing')).toEqual([`racing/sha256/${sha}`]); // the announce has not answered
    await stack.app.assetFiles.deleteMany('racing', claimed);
    await store.dropClaimed('racing', claimed);
    const second = await announcing;
    expect(second.status).toBe(201);
    expect(Date.now() - started).toBeGreaterThanOrEqual(400);
    expect(second.body.uploads).toHaveLength(1); // it saw the content gone, and asks for it

    // The interrupted delete, repeated, finishes without touching the content the new asset holds.
    await uploadAll(second.body.uploads, new Map([[sha, png]]));
    expect((await api.deleteAsset(first.body.id)).status).toBe(204);
    expect(await storedKeys('racing')).toEqual([`racing/sha256/${sha}`]);
    expect((await complete(api, second.body.id)).body.status).toBe('ready');
  });
});

describe('a delete cut short', () => {
  it('is finished by repeating it, at once: the repeat takes up the claims of the first attempt', async () => {
    const api = await tenantOf('interrupted');
    const { files, bySha } = await plate(3, 1, 8);
    const asset = await create(api, { name: 'shot', format: 'png', frames: { start: 1, end: 3 }, files });
    await uploadAll(asset.body.uploads, bySha);
    // The first attempt dies after claiming the contents, before deleting anything from S3.
    const store = stack.app.assetStore;
    const token = await store.markDeleting(asset.body.id);
    expect(await store.releaseContents('interrupted', asset.body.id, [...bySha.keys()], token!)).toHaveLength(
      3,
    );
    expect((await get(api, asset.body.id)).status).toBe(404);
    expect(await storedKeys('interrupted')).toHaveLength(3);

    expect((await api.deleteAsset(asset.body.id)).status).toBe(204);
    expect(await storedKeys('interrupted')).toEqual([]);
    expect((await api.deleteAsset(asset.body.id)).status).toBe(404);
  });
});

describe('the asset listing', () => {
  it('lists the tenant’s assets newest first, pages with a cursor, and filters by status', async () => {
    const api = await tenantOf('lister');
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const png = await pngFrame(8, 8, 100 + i);
      const r = await create(api, { name: `asset_${i}`, format: 'png', files: [entry(undefined, png)] });
      if (i === 1) {
        await uploadAll(r.body.uploads, new Map([[sha256Hex(png), png]]));
        await complete(api, r.body.id);
      }
      ids.push(r.body.id);
    }
    const seen: string[] = [];
    let cursor: string | undefined;
    do {
      const page = await api.listAssets<{ assets: AssetResponse[]; nextCursor?: string }>({
        limit: 2,
        cursor,
      });
      expect(page.status).toBe(200);
      seen.push(...page.body.assets.map((a) => a.id));
      cursor = page.body.nextCursor;
    } while (cursor);
    expect(seen).toEqual([...ids].reverse());
    const ready = await api.listAssets<{ assets: AssetResponse[] }>({ status: 'ready' });
    expect(ready.body.assets.map((a) => a.id)).toEqual([ids[1]]);
    expect((await api.listAssets({ cursor: 'bm90IGEgY3Vyc29y' })).status).toBe(400);
  });
});
