import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  credentialsOf,
  publishAttempt,
  publishSequence,
  secretsManager,
} from '../../../functions/adapters/trackers.ts';
import {
  type PublishedSequence,
  type PublisherConfig,
  PublishersSchema,
} from '../../../functions/core/publish.ts';
import { CREDENTIALS, publisherConfigs, SHOT, startTrackers } from '../../support/trackers.ts';

/** Publishing to each tracker against a stand-in that holds every request to its documented shape. */

let trackers: Awaited<ReturnType<typeof startTrackers>>;
let configs: PublisherConfig[];
beforeAll(async () => {
  trackers = await startTrackers();
  configs = PublishersSchema.parse(publisherConfigs(trackers.url));
});
afterAll(() => trackers?.close());

const sequence: PublishedSequence = {
  shot: SHOT,
  name: 'EP101_SH040_comp_v003',
  version: 3,
  path: 's3://frames/acme/EP101_SH040/job_1/EP101_SH040_comp_v003.%04d.exr',
  pattern: 'EP101_SH040_comp_v003.%04d.exr',
  extension: 'exr',
  padding: 4,
  first: 1001,
  last: 1048,
  description: 'Framecast job_1',
  jobId: 'job_1',
};
const config = (tracker: string) => configs.find((c) => c.tracker === tracker)!;

describe('publishing a sequence', () => {
  it('to ShotGrid: signs in, finds the shot, creates its Version and PublishedFile with the %04d path', async () => {
    await publishSequence(config('shotgrid'), sequence, CREDENTIALS.shotgrid);
    expect(trackers.refusals).toEqual([]);
    const [version] = trackers.published.shotgrid.versions;
    expect(version).toMatchObject({
      code: 'EP101_SH040_comp_v003',
      sg_path_to_frames: sequence.path,
      sg_first_frame: 1001,
      sg_last_frame: 1048,
      frame_range: '1001-1048',
    });
    expect(trackers.published.shotgrid.publishedFiles[0]).toMatchObject({
      code: 'EP101_SH040_comp_v003.%04d.exr',
      version: { type: 'Version', id: version!.id },
      version_number: 3,
      path: { url: sequence.path },
    });
  });

  it('to ftrack: one asset per shot and name, a version with its sequence component in the location', async () => {
    await publishSequence(config('ftrack'), sequence, CREDENTIALS.ftrack);
    await publishSequence(
      config('ftrack'),
      { ...sequence, name: 'EP101_SH040_comp_v004', version: 4 },
      CREDENTIALS.ftrack,
    );
    expect(trackers.refusals).toEqual([]);
    const types = trackers.published.ftrack.creates.map((c) => c.entity_type);
    expect(types).toEqual([
      'Asset',
      'AssetVersion',
      'SequenceComponent',
      'ComponentLocation',
      'AssetVersion',
      'SequenceComponent',
      'ComponentLocation',
    ]);
    expect(trackers.published.ftrack.creates[3]!.entity_data.resource_identifier).toBe(
      `${sequence.path} [1001-1048]`,
    );
  });

  it('to Kitsu: signs in, finds the shot and adds an output file of the sequence', async () => {
    await publishSequence(config('kitsu'), sequence, CREDENTIALS.kitsu);
    expect(trackers.refusals).toEqual([]);
    expect(trackers.published.kitsu.outputFiles[0]).toMatchObject({
      entity: 'kshot-1',
      revision: 3,
      representation: 'exr',
      nb_elements: 48,
    });
  });

  it.each(['shotgrid', 'ftrack', 'kitsu'] as const)(
    'to %s with wrong credentials fails the attempt with the status and a reason naming the tracker',
    async (tracker) => {
      const wrong = Object.fromEntries(Object.keys(CREDENTIALS[tracker]).map((k) => [k, 'wrong']));
      const result = await publishAttempt(config(tracker), sequence, async () => wrong);
      expect(result).toMatchObject({ ok: false, status: 401 });
      expect(result.error).toMatch(new RegExp(`^${tracker}: `));
    },
  );

  it('of a shot the tracker does not have fails saying so', async () => {
    const result = await publishAttempt(
      config('shotgrid'),
      { ...sequence, shot: 'NOPE' },
      async () => CREDENTIALS.shotgrid,
    );
    expect(result.ok).toBe(false);
    expect(result.error).toMatch(/find shot NOPE/);
  });

  it('refuses credentials of the wrong shape before any request', async () => {
    const result = await publishAttempt(config('kitsu'), sequence, async () => ({ user: 'x' }));
    expect(result.ok).toBe(false);
    expect(result.status).toBeUndefined();
  });
});

describe('credentials', () => {
  it('come from the local setting when it names the tracker, otherwise from the secret, read once', async () => {
    let reads = 0;
    const of = credentialsOf({ kitsu: CREDENTIALS.kitsu }, async (id) => {
      reads++;
      return { id };
    });
    expect(await of(config('kitsu'))()).toEqual(CREDENTIALS.kitsu);
    expect(await of(config('shotgrid'))()).toEqual({ id: 'shotgrid' });
    await of(config('shotgrid'))();
    expect(reads).toBe(1);
  });

  it('are read from Secrets Manager with a SigV4-signed GetSecretValue', async () => {
    const seen: { headers: Record<string, unknown>; body: string }[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        seen.push({ headers: req.headers, body });
        res.writeHead(200, { 'content-type': 'application/x-amz-json-1.1' });
        res.end(JSON.stringify({ Name: 'sg', SecretString: JSON.stringify(CREDENTIALS.shotgrid) }));
      });
    });
    await new Promise<void>((r) => server.listen(0, '127.0.0.1', r));
    try {
      process.env.AWS_ACCESS_KEY_ID ??= 'S3RVER';
      process.env.AWS_SECRET_ACCESS_KEY ??= 'S3RVER';
      const read = secretsManager('us-east-1', `http://127.0.0.1:${(server.address() as AddressInfo).port}`);
      expect(await read('arn:aws:secretsmanager:us-east-1:123456789012:secret:sg-AbCdEf')).toEqual(
        CREDENTIALS.shotgrid,
      );
      expect(seen[0]!.headers['x-amz-target']).toBe('secretsmanager.GetSecretValue');
      expect(String(seen[0]!.headers.authorization)).toMatch(
        /^AWS4-HMAC-SHA256 Credential=\w+\/\d{8}\/us-east-1\/secretsmanager\/aws4_request/,
      );
      expect(JSON.parse(seen[0]!.body)).toEqual({
        SecretId: 'arn:aws:secretsmanager:us-east-1:123456789012:secret:sg-AbCdEf',
      });
    } finally {
      server.close();
    }
  });
});
