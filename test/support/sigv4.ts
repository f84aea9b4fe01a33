import { createHash, createHmac, timingSafeEqual } from 'node:crypto';

/**
 * What S3 does with a presigned URL before it serves it: recompute the SigV4 query signature from the
 * request as it arrives (method, path, query, the signed headers) and the secret key, and refuse it when
 * the signatures differ or the URL has expired. The S3 emulator of the tests (s3rver) checks no
 * signature at all (docs/reliability.md), so tests of tampered URLs ask this instead: an independent
 * implementation of the published algorithm, sharing no code with the SDK's signer.
 */

const sha256 = (s: string) => createHash('sha256').update(s, 'utf8').digest('hex');
const hmac = (key: Buffer | string, s: string) => createHmac('sha256', key).update(s, 'utf8').digest();
/** RFC 3986 encoding, as SigV4 wants it: everything but unreserved characters. */
const encode = (s: string) =>
  encodeURIComponent(s).replace(/[!'()*]/g, (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`);

export type Verdict = 'ok' | 'bad-signature' | 'expired' | 'malformed';

export function verifyPresigned(
  request: { method: string; url: string; headers?: Readonly<Record<string, string>> },
  secretAccessKey: string,
  now = new Date(),
): Verdict {
  const url = new URL(request.url);
  const q = url.searchParams;
  const signature = q.get('X-Amz-Signature');
  const credential = q.get('X-Amz-Credential');
  const amzDate = q.get('X-Amz-Date');
  const expires = Number(q.get('X-Amz-Expires'));
  const signedHeaders = q.get('X-Amz-SignedHeaders');
  if (q.get('X-Amz-Algorithm') !== 'AWS4-HMAC-SHA256' || !signature || !credential || !amzDate)
    return 'malformed';
  if (!signedHeaders || !Number.isInteger(expires) || !/^\d{8}T\d{6}Z$/.test(amzDate)) return 'malformed';
  const [, date, region, service, terminator] = credential.split('/');
  if (!date || !region || !service || terminator !== 'aws4_request' || !amzDate.startsWith(date))
    return 'malformed';

  const headers: Record<string, string> = { host: url.host };
  for (const [k, v] of Object.entries(request.headers ?? {})) headers[k.toLowerCase()] = v.trim();
  const names = signedHeaders.split(';');
  if (names.some((n) => headers[n] === undefined)) return 'bad-signature';
  const query = [...q.entries()]
    .filter(([k]) => k !== 'X-Amz-Signature')
    .map(([k, v]) => [encode(k), encode(v)] as const)
    .sort(([a, av], [b, bv]) => (a < b ? -1 : a > b ? 1 : av < bv ? -1 : av > bv ? 1 : 0))
    .map(([k, v]) => `${k}=${v}`)
    .join('&');
  // S3 signs the path as sent, each segment encoded once; a segment that does not decode is refused.
  let path: string;
  try {
    path = url.pathname
      .split('/')
      .map((segment) => encode(decodeURIComponent(segment)))
      .join('/');
  } catch {
    return 'malformed';
  }
  const canonical = [
    request.method.toUpperCase(),
    path,
    query,
    ...names.map((n) => `${n}:${headers[n]}`),
    '',
    signedHeaders,
    'UNSIGNED-PAYLOAD',
  ].join('\n');
  const scope = `${date}/${region}/${service}/aws4_request`;
  const toSign = ['AWS4-HMAC-SHA256', amzDate, scope, sha256(canonical)].join('\n');
  const key = hmac(hmac(hmac(hmac(`AWS4${secretAccessKey}`, date), region), service), 'aws4_request');
  const expected = Buffer.from(hmac(key, toSign).toString('hex'));
  const given = Buffer.from(signature);
  if (given.length !== expected.length || !timingSafeEqual(given, expected)) return 'bad-signature';
  const signedAt = Date.parse(
    `${amzDate.slice(0, 4)}-${amzDate.slice(4, 6)}-${amzDate.slice(6, 8)}T${amzDate.slice(9, 11)}:${amzDate.slice(11, 13)}:${amzDate.slice(13, 15)}Z`,
  );
  return now.getTime() > signedAt + expires * 1000 ? 'expired' : 'ok';
}
