import { describe, expect, it } from 'vitest';
import { modelIdentity } from '../../../functions/worker/model-image.ts';

const digest = `sha256:${'ab'.repeat(32)}`;
const metadata = (body: unknown, status = 200) =>
  (async () => new Response(JSON.stringify(body), { status })) as unknown as typeof fetch;

describe('the model identity the audit trail records', () => {
  it('takes the digest a pinned reference carries, without asking ECS', async () => {
    const image = `registry.example/sdxl@${digest}`;
    const fail = (async () => {
      throw new Error('not asked');
    }) as unknown as typeof fetch;
    expect(
      await modelIdentity({ name: 'sdxl', image, metadataUri: 'http://169.254.170.2/v4/x', fetch: fail }),
    ).toEqual({ name: 'sdxl', image, digest });
  });

  it('reads the model container’s ImageID from the ECS task metadata (v4) for a tag', async () => {
    const fetch = metadata({
      Containers: [
        { Name: 'worker', Image: 'worker:1', ImageID: `sha256:${'cd'.repeat(32)}` },
        { Name: 'model', Image: 'sdxl:1', ImageID: digest },
      ],
    });
    const found = await modelIdentity({
      name: 'sdxl',
      image: 'sdxl:1',
      metadataUri: 'http://meta/v4/x',
      fetch,
    });
    expect(found).toEqual({ name: 'sdxl', image: 'sdxl:1', digest });
  });

  it('records digest null where there is no registry digest: no ECS, an endpoint that fails, or no such container', async () => {
    expect(await modelIdentity({ name: 'reference', image: 'framecast/reference-model' })).toEqual({
      name: 'reference',
      image: 'framecast/reference-model',
      digest: null,
    });
    for (const fetch of [
      metadata({}, 500),
      metadata({ Containers: [{ Name: 'worker' }] }),
      metadata('nonsense'),
    ]) {
      expect(
        (await modelIdentity({ name: 'm', image: 'm:1', metadataUri: 'http://meta', fetch })).digest,
      ).toBeNull();
    }
  });
});
