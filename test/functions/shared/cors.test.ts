import { describe, expect, it } from 'vitest';
import { allowedOrigin, corsHeaders } from '../../../functions/shared/cors.ts';
import { parseConfig } from '../../../lib/config.ts';

describe('the CORS policy', () => {
  it('allows only the configured origins, or any with *', () => {
    const allowed = ['https://review.studio.example'];
    expect(allowedOrigin(allowed, 'https://review.studio.example')).toBe('https://review.studio.example');
    expect(allowedOrigin(allowed, 'https://evil.example')).toBeUndefined();
    expect(allowedOrigin(allowed, undefined)).toBeUndefined();
    expect(allowedOrigin([], 'https://review.studio.example')).toBeUndefined();
    expect(allowedOrigin(['*'], 'https://anything.example')).toBe('*');
  });

  it('answers a preflight with the methods and the Bearer and Idempotency-Key headers, and nothing to a stranger', () => {
    expect(corsHeaders(['https://a.example'], 'https://a.example', true)).toEqual({
      'access-control-allow-origin': 'https://a.example',
      vary: 'origin',
      'access-control-allow-methods': 'GET, POST, DELETE, OPTIONS',
      'access-control-allow-headers': 'authorization, content-type, idempotency-key',
      'access-control-max-age': '3600',
    });
    expect(corsHeaders(['https://a.example'], 'https://b.example', true)).toEqual({});
    const plain = corsHeaders(['*'], 'https://b.example');
    expect(plain['access-control-expose-headers']).toContain('idempotent-replayed');
    expect(plain).not.toHaveProperty('access-control-allow-credentials');
  });

  it('refuses a production config whose CORS origin is not an origin', () => {
    expect(() => parseConfig('demo', { api: { corsOrigins: ['review.studio.example/path'] } })).toThrow(
      /corsOrigins/,
    );
    expect(
      parseConfig('demo', { api: { corsOrigins: ['https://review.studio.example'] } }).api.corsOrigins,
    ).toEqual(['https://review.studio.example']);
    expect(parseConfig('demo', {}).api.corsOrigins).toEqual([]);
  });
});
