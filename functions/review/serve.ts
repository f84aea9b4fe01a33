import { createHash } from 'node:crypto';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';

/**
 * Serves the review page's static files (`GET /` and `GET /review/{file}`). The page holds no data and
 * needs no secret to load: every API call it makes carries the API key the user pastes into it. What keeps
 * that key safe is in these headers: a strict Content-Security-Policy (scripts only from this origin, no
 * inline script, no framing, no forms), no cookies, and no referrer.
 */

const TYPES: Record<string, string> = {
  html: 'text/html; charset=utf-8',
  js: 'text/javascript; charset=utf-8',
  css: 'text/css; charset=utf-8',
  map: 'application/json',
  png: 'image/png',
  svg: 'image/svg+xml',
};

export interface PageOptions {
  /**
   * Where the page may call the API and load images from, beside its own origin: the API may be on another
   * origin, and frames come from presigned S3 URLs. `https:` in AWS; local mode adds its loopback origins.
   */
  readonly sources: string;
}

/** The Content-Security-Policy of the page: nothing runs or loads that this list does not name. */
export function contentSecurityPolicy(sources: string): string {
  return [
    "default-src 'none'",
    "script-src 'self'",
    "style-src 'self'",
    `img-src 'self' data: blob: ${sources}`,
    `connect-src 'self' ${sources}`,
    "base-uri 'none'",
    "form-action 'none'",
    "frame-ancestors 'none'",
  ].join('; ');
}

type Result = APIGatewayProxyStructuredResultV2 & { statusCode: number; headers: Record<string, string> };

/** A handler over the page's files: `/` is index.html, `/review/<name>` the others; anything else 404. */
export function servePage(files: ReadonlyMap<string, Uint8Array>, options: PageOptions) {
  const etags = new Map([...files].map(([name, body]) => [name, etagOf(body)]));
  const common = {
    'x-content-type-options': 'nosniff',
    'referrer-policy': 'no-referrer',
    'x-frame-options': 'DENY',
    'content-security-policy': contentSecurityPolicy(options.sources),
  };
  return (event: Pick<APIGatewayProxyEventV2, 'rawPath' | 'headers'>): Result => {
    const name = fileOf(event.rawPath);
    const body = name === undefined ? undefined : files.get(name);
    if (name === undefined || body === undefined)
      return {
        statusCode: 404,
        headers: { ...common, 'content-type': 'text/plain; charset=utf-8' },
        body: 'not found',
      };
    const etag = etags.get(name)!;
    // The names carry no content hash, so browsers revalidate every time; an unchanged file is a 304.
    const headers = {
      ...common,
      'content-type': TYPES[name.split('.').pop() ?? ''] ?? 'application/octet-stream',
      'cache-control': 'no-cache',
      etag,
    };
    if (event.headers?.['if-none-match'] === etag) return { statusCode: 304, headers };
    return {
      statusCode: 200,
      headers,
      body: Buffer.from(body).toString('base64'),
      isBase64Encoded: true,
    };
  };
}

/** The file a path names, or undefined: only plain names directly under /review/ are files. */
export function fileOf(path: string): string | undefined {
  if (path === '/' || path === '' || path === '/index.html') return 'index.html';
  const m = /^\/review\/([A-Za-z0-9_-][A-Za-z0-9_.-]*)$/.exec(path);
  return m?.[1];
}

function etagOf(body: Uint8Array): string {
  return `"${createHash('sha256').update(body).digest('base64url').slice(0, 22)}"`;
}
