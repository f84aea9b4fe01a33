import { describe, expect, it } from 'vitest';
import { contentSecurityPolicy, fileOf, servePage } from '../../../functions/review/serve.ts';

const files = new Map<string, Uint8Array>([
  ['index.html', new TextEncoder().encode('<!doctype html><title>x</title>')],
  ['app.js', new TextEncoder().encode('console.log(1)')],
  ['style.css', new TextEncoder().encode('body{}')],
]);
const serve = servePage(files, { sources: 'https:' });
const get = (rawPath: string, headers: Record<string, string> = {}) => serve({ rawPath, headers });

describe('the review page server', () => {
  it('serves index.html at / with a strict Content-Security-Policy', () => {
    const res = get('/');
    expect(res.statusCode).toBe(200);
    expect(res.headers['content-type']).toBe('text/html; charset=utf-8');
    expect(Buffer.from(res.body!, 'base64').toString()).toContain('<title>x</title>');
    const csp = res.headers['content-security-policy']!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    expect(csp).toContain("frame-ancestors 'none'");
    expect(csp).not.toContain('unsafe');
    expect(res.headers['referrer-policy']).toBe('no-referrer');
    expect(res.headers['set-cookie']).toBeUndefined();
  });

  it('serves the other files under /review/ with their types', () => {
    expect(get('/review/app.js').headers['content-type']).toBe('text/javascript; charset=utf-8');
    expect(get('/review/style.css').headers['content-type']).toBe('text/css; charset=utf-8');
    expect(Buffer.from(get('/review/app.js').body!, 'base64').toString()).toBe('console.log(1)');
  });

  it('answers 404 for names it does not hold and for paths that are not plain names', () => {
    for (const path of [
      '/review/missing.js',
      '/review/../index.html',
      '/review/.env',
      '/x',
      '/review/a/b.js',
    ])
      expect(get(path).statusCode, path).toBe(404);
    expect(fileOf('/review/%2e%2e')).toBeUndefined();
  });

  it('answers 304 to a browser that already has the file', () => {
    const first = get('/review/app.js');
    const again = get('/review/app.js', { 'if-none-match': first.headers.etag! });
    expect(again.statusCode).toBe(304);
    expect(again.body).toBeUndefined();
    expect(get('/review/style.css', { 'if-none-match': first.headers.etag! }).statusCode).toBe(200);
  });

  it('lets the page reach the API and images only at the sources it is given', () => {
    const csp = contentSecurityPolicy('http://127.0.0.1:* https:');
    expect(csp).toContain("connect-src 'self' http://127.0.0.1:* https:");
    expect(csp).toContain("img-src 'self' data: blob: http://127.0.0.1:* https:");
  });
});
