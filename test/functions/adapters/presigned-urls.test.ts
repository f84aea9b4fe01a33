import { createHash } from 'node:crypto';
import { S3Client } from '@aws-sdk/client-s3';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { AssetFiles } from '../../../functions/adapters/asset-files.ts';
import { FrameStore } from '../../../functions/adapters/frame-store.ts';
import { verifyPresigned } from '../../support/sigv4.ts';

// Tampered presigned URLs. The S3 emulator checks no signature (docs/reliability.md), so each URL the
// adapters sign is checked as S3 checks it (test/support/sigv4.ts): the genuine one passes, and a URL
// with anything changed (another tenant's key, a longer life, other content, another method) is refused.
const SECRET = 'wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY';
const s3 = new S3Client({
  region: 'eu-west-1',
  credentials: { accessKeyId: 'AKIDEXAMPLE', secretAccessKey: SECRET },
  requestChecksumCalculation: 'WHEN_REQUIRED',
  responseChecksumValidation: 'WHEN_REQUIRED',
});
const assets = new AssetFiles(s3, 'prod-assets', 900);
const frames = new FrameStore(s3, 'prod-frames', 900);
const bytes = Buffer.from('frame 1001 of the plate');
const content = { sha256: createHash('sha256').update(bytes).digest('hex'), size: bytes.length };
const NOW = new Date('2026-11-30T12:00:00Z');

beforeEach(() => {
  vi.useFakeTimers({ toFake: ['Date'] });
  vi.setSystemTime(NOW);
});
afterEach(() => vi.useRealTimers());

/** The URL with one query parameter set to another value. */
const withParam = (url: string, name: string, value: string) => {
  const u = new URL(url);
  u.searchParams.set(name, value);
  return u.toString();
};

/** A path and query as the bytes they encode, or as written when they are not valid percent-encoding. */
const decoded = (s: string) => {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
};

describe('a presigned upload URL', () => {
  it('passes S3’s check as signed, with the headers it came with, until it expires', async () => {
    const { url, headers } = await assets.presignPut('acme', content);
    expect(verifyPresigned({ method: 'PUT', url, headers }, SECRET, NOW)).toBe('ok');
    expect(verifyPresigned({ method: 'PUT', url, headers }, SECRET, new Date(NOW.getTime() + 901_000))).toBe(
      'expired',
    );
    expect(verifyPresigned({ method: 'PUT', url, headers }, 'another secret', NOW)).toBe('bad-signature');
  });

  it('is refused when it is pointed at another tenant, other content or another bucket', async () => {
    const { url, headers } = await assets.presignPut('acme', content);
    const other = createHash('sha256').update('other').digest('hex');
    for (const tampered of [
      url.replace('/acme/', '/rival/'),
      url.replace(content.sha256, other),
      url.replace('prod-assets.', 'prod-frames.'),
      url.replace(`/acme/sha256/${content.sha256}`, `/acme/sha256/../../rival/sha256/${content.sha256}`),
    ]) {
      expect(tampered).not.toBe(url);
      expect(verifyPresigned({ method: 'PUT', url: tampered, headers }, SECRET, NOW), tampered).toBe(
        'bad-signature',
      );
    }
  });

  it('is refused with a longer life, another date, another method, or other checksum and length headers', async () => {
    const { url, headers } = await assets.presignPut('acme', content);
    const otherSum = createHash('sha256').update('corrupt').digest('base64');
    const cases = [
      { method: 'PUT', url: withParam(url, 'X-Amz-Expires', '604800'), headers },
      { method: 'PUT', url: withParam(url, 'X-Amz-Date', '20261201T120000Z'), headers },
      { method: 'GET', url, headers },
      { method: 'DELETE', url, headers },
      { method: 'PUT', url, headers: { ...headers, 'x-amz-checksum-sha256': otherSum } },
      { method: 'PUT', url, headers: { ...headers, 'content-length': String(content.size * 100) } },
      { method: 'PUT', url, headers: { 'content-length': headers['content-length'] } },
      { method: 'PUT', url: withParam(url, 'X-Amz-SignedHeaders', 'host'), headers },
    ];
    for (const c of cases) expect(verifyPresigned(c, SECRET, NOW), JSON.stringify(c)).not.toBe('ok');
  });

  it('is refused after any one character of its path or query is changed', async () => {
    const { url, headers } = await assets.presignPut('acme', content);
    const u = new URL(url);
    const signed = `${u.pathname}${u.search.replace(/&?X-Amz-Signature=[0-9a-f]+/, '')}`;
    await fc.assert(
      fc.asyncProperty(
        fc.nat({ max: signed.length - 1 }),
        fc.constantFrom(...'abcxyzACXZ0123456789-_./%'),
        async (at, ch) => {
          fc.pre(signed[at] !== ch);
          const changed = `${signed.slice(0, at)}${ch}${signed.slice(at + 1)}`;
          let tampered: string;
          try {
            tampered = `${u.origin}${changed}&X-Amz-Signature=${u.searchParams.get('X-Amz-Signature')}`;
            new URL(tampered);
          } catch {
            return;
          }
          fc.pre(new URL(tampered).toString() !== new URL(url).toString());
          // Another spelling of the same bytes (`%3B` as `%3b`) is the same request, to S3 as to the checker.
          fc.pre(decoded(changed) !== decoded(signed));
          expect(verifyPresigned({ method: 'PUT', url: tampered, headers }, SECRET, NOW)).not.toBe('ok');
        },
      ),
      { numRuns: 500 },
    );
  });
});

describe('a presigned frame download URL', () => {
  it('passes as signed and is refused for another tenant’s frame or a longer life', async () => {
    const { url } = await frames.presignGet('acme/SH010/job_X/SH010.1001.png');
    expect(verifyPresigned({ method: 'GET', url }, SECRET, NOW)).toBe('ok');
    expect(verifyPresigned({ method: 'GET', url: url.replace('/acme/', '/rival/') }, SECRET, NOW)).toBe(
      'bad-signature',
    );
    expect(
      verifyPresigned({ method: 'GET', url: withParam(url, 'X-Amz-Expires', '86400') }, SECRET, NOW),
    ).toBe('bad-signature');
    expect(
      verifyPresigned(
        { method: 'GET', url: withParam(url, 'response-content-disposition', 'inline') },
        SECRET,
        NOW,
      ),
    ).toBe('bad-signature');
    expect(verifyPresigned({ method: 'PUT', url }, SECRET, NOW)).toBe('bad-signature');
  });
});
