import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { MAX_BODY_BYTES } from '../../functions/api/http.ts';
import type { AssetResponse, AssetUploads } from '../../functions/core/assets.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client } from '../support/api.ts';

/**
 * An asset at the scale of a long plate: 10,000 files announced in pages, each under the API's body
 * limit. Moved here from test/integration/assets.test.ts, where it took about half a minute of
 * `npm test`'s five (the rest of the asset API is tested there).
 */

let stack: LocalStack;

beforeAll(async () => {
  stack = await startLocalStack({ withoutWorker: true, withoutWebhooks: true });
});
afterAll(() => stack?.stop());

const tenantOf = async (name: string) => client(stack.url, await stack.createApiKey(name));

describe('a 10,000-frame sequence', () => {
  it('is announced in pages, no body over the API limit, and the asset lists 10,000 files', async () => {
    const api = await tenantOf('long');
    const files = Array.from({ length: 10_000 }, (_, i) => ({
      frame: i + 1,
      sha256: randomBytes(32).toString('hex'),
      size: 500_000 + i,
    }));
    const pages = Array.from({ length: 10 }, (_, p) => files.slice(p * 1000, (p + 1) * 1000));
    const first = {
      name: 'EP101_SH999_plate',
      format: 'exr',
      frames: { start: 1, end: 10_000 },
      files: pages[0],
    };
    const bodies = [JSON.stringify(first), ...pages.slice(1).map((files) => JSON.stringify({ files }))];
    for (const body of bodies) expect(Buffer.byteLength(body)).toBeLessThan(MAX_BODY_BYTES);

    const created = await api.createAsset<AssetUploads>(JSON.parse(bodies[0]!));
    expect(created.status).toBe(201);
    expect(created.body.uploads).toHaveLength(1000);
    expect(created.body.files).toEqual({ total: 10_000, announced: 1000 });
    for (const body of bodies.slice(1)) {
      const page = await api.addAssetFiles<AssetUploads>(created.body.id, JSON.parse(body));
      expect(page.status).toBe(200);
      expect(page.body.uploads).toHaveLength(1000); // this page's files only
    }
    expect((await api.getAsset<AssetResponse>(created.body.id)).body.files).toEqual({
      total: 10_000,
      announced: 10_000,
    });
  }, 180_000);
});
