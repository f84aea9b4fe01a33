import { createHash } from 'node:crypto';
import { HeadObjectCommand, S3Client, S3ServiceException } from '@aws-sdk/client-s3';
import { mockClient } from 'aws-sdk-client-mock';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AssetFiles } from '../../../functions/adapters/asset-files.ts';

// Presigning is local computation: a client pointed at real S3 shows the URL AWS would get. It is made
// as adapters/clients.ts makes it.
const s3 = new S3Client({
  region: 'eu-west-1',
  credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: 'secret' },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
const files = new AssetFiles(s3, 'prod-assets', 900);

const bytes = Buffer.from('frame 1001 of the plate');
const hex = createHash('sha256').update(bytes).digest('hex');
const base64 = createHash('sha256').update(bytes).digest('base64');
const EMPTY_BODY_SHA256 = createHash('sha256').update('').digest('base64');
const content = { sha256: hex, size: bytes.length };

describe('presigned upload URLs', () => {
  beforeEach(() => {
    vi.useFakeTimers({ toFake: ['Date'] });
    vi.setSystemTime(new Date('2026-11-30T12:00:00Z'));
  });
  afterEach(() => vi.useRealTimers());

  it('put the content at <tenant>/sha256/<hex> in the asset bucket', async () => {
    const { url } = await files.presignPut('acme', content);
    expect(new URL(url).hostname).toBe('prod-assets.s3.eu-west-1.amazonaws.com');
    expect(new URL(url).pathname).toBe(`/acme/sha256/${hex}`);
  });

  it('sign the checksum and the length as headers, which the upload must send exactly', async () => {
    const { url, headers } = await files.presignPut('acme', content);
    const signed = new URL(url).searchParams.get('X-Amz-SignedHeaders')?.split(';');
    expect(signed).toEqual(expect.arrayContaining(['content-length', 'host', 'x-amz-checksum-sha256']));
    expect(headers).toEqual({ 'x-amz-checksum-sha256': base64, 'content-length': String(bytes.length) });
  });

  it('carry no checksum in the query: not the content’s, and not that of an empty body', async () => {
    const { url } = await files.presignPut('acme', content);
    const query = [...new URL(url).searchParams.entries()];
    expect(query.filter(([k]) => /checksum/i.test(k))).toEqual([]);
    expect(url).not.toContain(encodeURIComponent(EMPTY_BODY_SHA256));
    expect(url).not.toContain(encodeURIComponent(base64));
  });

  it('are signed over the length: a URL for another size differs only in its signature', async () => {
    const url = async (size: number) => new URL((await files.presignPut('acme', { ...content, size })).url);
    const [a, b] = [await url(content.size), await url(content.size + 1)];
    expect(b.searchParams.get('X-Amz-Signature')).not.toBe(a.searchParams.get('X-Amz-Signature'));
    a.searchParams.delete('X-Amz-Signature');
    b.searchParams.delete('X-Amz-Signature');
    expect(b.toString()).toBe(a.toString());
  });

  it('never outlive the configured bound, whatever is asked', async () => {
    const { url, expiresAt } = await files.presignPut('acme', content, 7 * 24 * 3600);
    expect(new URL(url).searchParams.get('X-Amz-Expires')).toBe('900');
    expect(expiresAt.getTime() - Date.now()).toBe(900_000);
  });
});

describe('whether content is held', () => {
  const mocked = mockClient(S3Client);
  const held = new AssetFiles(new S3Client({ region: 'eu-west-1' }), 'prod-assets');
  afterEach(() => mocked.reset());

  it('asks S3 for the stored checksum of the content’s key', async () => {
    mocked.on(HeadObjectCommand).resolves({ ContentLength: bytes.length, ChecksumSHA256: base64 });
    expect(await held.holds('acme', content)).toBe(true);
    expect(mocked.commandCalls(HeadObjectCommand)[0]?.args[0].input).toEqual({
      Bucket: 'prod-assets',
      Key: `acme/sha256/${hex}`,
      ChecksumMode: 'ENABLED',
    });
  });

  it.each([
    ['missing', () => mocked.on(HeadObjectCommand).rejects(notFound())],
    [
      'of another size',
      () => mocked.on(HeadObjectCommand).resolves({ ContentLength: 3, ChecksumSHA256: base64 }),
    ],
    [
      'stored with another checksum',
      () =>
        mocked
          .on(HeadObjectCommand)
          .resolves({ ContentLength: bytes.length, ChecksumSHA256: EMPTY_BODY_SHA256 }),
    ],
    [
      'stored without a checksum (not through an upload URL)',
      () => mocked.on(HeadObjectCommand).resolves({ ContentLength: bytes.length }),
    ],
  ])('is false for content %s, which is then uploaded again', async (_name, arrange) => {
    arrange();
    expect(await held.holds('acme', content)).toBe(false);
  });

  it('lets any other error through: a refused HEAD is no reason to ask for an upload', async () => {
    mocked.on(HeadObjectCommand).rejects(
      new S3ServiceException({
        name: 'AccessDenied',
        $fault: 'client',
        $metadata: { httpStatusCode: 403 },
      }),
    );
    await expect(held.holds('acme', content)).rejects.toThrow();
  });
});

function notFound() {
  return new S3ServiceException({ name: 'NotFound', $fault: 'client', $metadata: { httpStatusCode: 404 } });
}
