import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2 } from 'aws-lambda';
import fc from 'fast-check';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import * as z from 'zod';
import { clearKeyCache, type RouteOptions, route } from '../../../functions/api/http.ts';
import {
  callerOf,
  KEY_CACHE_MS,
  UNKNOWN_KEY_CACHE_MS,
} from '../../../functions/api/middleware/authenticate.ts';
import { MAX_BODY_BYTES, parseJsonBody } from '../../../functions/api/middleware/json-body.ts';
import { hashApiKey, type KeyLookup } from '../../../functions/core/api-keys.ts';
import { FramecastError } from '../../../functions/core/errors.ts';
import type { ApiKeyRecord } from '../../../functions/core/model.ts';
import { lambdaContext } from '../../../local/gateway.ts';

const KEY = `fc_${'a'.repeat(40)}`;
const REVOKED = `fc_${'r'.repeat(40)}`;
const READER = `fc_${'b'.repeat(40)}`;

function keyStore(): KeyLookup & { lookups: number } {
  const records = new Map<string, ApiKeyRecord>([
    [
      hashApiKey(KEY),
      { hash: '', tenant: 'acme', scopes: ['jobs:write', 'jobs:read'], name: 'k', createdAt: '' },
    ],
    [hashApiKey(READER), { hash: '', tenant: 'acme', scopes: ['jobs:read'], name: 'r', createdAt: '' }],
    [
      hashApiKey(REVOKED),
      { hash: '', tenant: 'acme', scopes: ['jobs:write'], name: 'x', createdAt: '', revokedAt: '2026-01-01' },
    ],
  ]);
  const store = {
    lookups: 0,
    async getApiKey(hash: string) {
      store.lookups++;
      return records.get(hash);
    },
  };
  return store;
}

function event(
  init: { body?: string; headers?: Record<string, string>; query?: Record<string, string> } = {},
) {
  return {
    version: '2.0',
    routeKey: 'POST /v1/things',
    rawPath: '/v1/things',
    rawQueryString: '',
    headers: { 'content-type': 'application/json', ...init.headers },
    requestContext: {} as APIGatewayProxyEventV2['requestContext'],
    isBase64Encoded: false,
    ...(init.body !== undefined && { body: init.body }),
    ...(init.query && { queryStringParameters: init.query }),
  } satisfies APIGatewayProxyEventV2;
}

async function call<Q extends z.ZodType | undefined>(
  options: RouteOptions<Q>,
  init: Parameters<typeof event>[0],
  fn: Parameters<typeof route<Q>>[1] = async (req) => ({
    status: 200,
    body: { caller: req.caller, body: req.body },
  }),
) {
  const res = (await route(options, fn)(
    event(init),
    lambdaContext('test'),
  )) as APIGatewayProxyStructuredResultV2;
  return {
    status: res.statusCode,
    headers: res.headers ?? {},
    body: res.body ? JSON.parse(res.body) : undefined,
  };
}

beforeEach(() => clearKeyCache());
afterEach(() => vi.restoreAllMocks());

describe('authentication', () => {
  it('puts the key holder on the request as the caller', async () => {
    const keys = keyStore();
    const res = await call(
      { scope: 'jobs:write', keys: () => keys },
      { headers: { Authorization: `Bearer ${KEY}` } },
    );
    expect(res.status).toBe(200);
    expect(res.body.caller).toEqual({
      tenant: 'acme',
      scopes: ['jobs:write', 'jobs:read'],
      keyId: hashApiKey(KEY).slice(0, 12),
      keyName: 'k',
    });
  });

  it('answers a missing, unknown or revoked key alike, with 401 and a Bearer challenge', async () => {
    const keys = keyStore();
    for (const headers of [
      {} as Record<string, string>,
      { authorization: `Bearer fc_${'z'.repeat(40)}` },
      { authorization: `Bearer ${REVOKED}` },
    ]) {
      const res = await call({ scope: 'jobs:write', keys: () => keys }, { headers });
      expect(res.status).toBe(401);
      expect(res.headers['www-authenticate']).toBe('Bearer');
      expect(res.body.error).toEqual({
        code: 'unauthorized',
        message: 'missing, unknown or revoked API key',
      });
    }
  });

  it('refuses a key without the route scope with 403, before the body is read', async () => {
    const res = await call(
      { scope: 'jobs:write', keys: () => keyStore() },
      { headers: { authorization: `Bearer ${READER}` }, body: '{not json' },
    );
    expect(res.status).toBe(403);
    expect(res.body.error.message).toContain('jobs:write');
  });

  it('never looks a key up on a public route', async () => {
    const keys = keyStore();
    const res = await call({ keys: () => keys }, { headers: { authorization: 'Bearer nonsense' } });
    expect(res.status).toBe(200);
    expect(res.body.caller).toEqual({ tenant: '', scopes: [] });
    expect(keys.lookups).toBe(0);
  });

  it('looks a key up once per process while it is cached', async () => {
    const keys = keyStore();
    for (let i = 0; i < 3; i++) await callerOf(`Bearer ${KEY}`, keys);
    expect(keys.lookups).toBe(1);
  });

  it('reads any Authorization header without failing in any other way than 401', async () => {
    const keys = keyStore();
    await fc.assert(
      fc.asyncProperty(
        fc.oneof(
          fc.string(),
          fc.string().map((s) => `Bearer ${s}`),
          fc.constant(`Bearer ${KEY} `),
        ),
        async (header) => {
          const outcome = await callerOf(header, keys).then(
            (caller) => caller.tenant,
            (err: unknown) => (err instanceof FramecastError ? err.code : 'other'),
          );
          expect(['acme', 'unauthorized']).toContain(outcome);
        },
      ),
      { numRuns: 300 },
    );
  });
});

/** One key as DynamoDB serves it, a new record on every read, and a way to revoke it. */
function revocable() {
  let revokedAt: string | undefined;
  const keys: KeyLookup = {
    getApiKey: async (hash) =>
      hash === hashApiKey(KEY)
        ? {
            hash,
            tenant: 'acme',
            scopes: ['jobs:write'],
            name: 'k',
            createdAt: '',
            ...(revokedAt && { revokedAt }),
          }
        : undefined,
  };
  return { keys, revoke: () => (revokedAt = '2026-11-30T00:00:00Z') };
}

describe('a revoked key', () => {
  it(`stops working within the key cache time (${KEY_CACHE_MS / 1000} s), and not before the cache says`, async () => {
    const { keys, revoke } = revocable();
    const clock = vi.spyOn(Date, 'now').mockReturnValue(1_000_000);
    expect((await callerOf(`Bearer ${KEY}`, keys)).tenant).toBe('acme');
    revoke();
    clock.mockReturnValue(1_000_000 + KEY_CACHE_MS - 1);
    expect((await callerOf(`Bearer ${KEY}`, keys)).tenant).toBe('acme');
    clock.mockReturnValue(1_000_000 + KEY_CACHE_MS + 1);
    await expect(callerOf(`Bearer ${KEY}`, keys)).rejects.toMatchObject({ code: 'unauthorized' });
    // And it stays refused: the revocation is cached like any answer.
    clock.mockReturnValue(1_000_000 + 2 * KEY_CACHE_MS);
    await expect(callerOf(`Bearer ${KEY}`, keys)).rejects.toMatchObject({ code: 'unauthorized' });
  });

  it('is refused at once after clearKeyCache, which the admin tooling calls in its own process', async () => {
    const { keys, revoke } = revocable();
    await callerOf(`Bearer ${KEY}`, keys);
    revoke();
    await expect(callerOf(`Bearer ${KEY}`, keys)).resolves.toMatchObject({ tenant: 'acme' });
    clearKeyCache();
    await expect(callerOf(`Bearer ${KEY}`, keys)).rejects.toMatchObject({ code: 'unauthorized' });
  });

  it(`a key unknown when tried is accepted once created, within ${UNKNOWN_KEY_CACHE_MS / 1000} s`, async () => {
    const fresh = `fc_${'n'.repeat(40)}`;
    const keys = keyStore();
    const clock = vi.spyOn(Date, 'now').mockReturnValue(5_000_000);
    await expect(callerOf(`Bearer ${fresh}`, keys)).rejects.toMatchObject({ code: 'unauthorized' });
    const lookup = keys.getApiKey.bind(keys);
    keys.getApiKey = async (hash) =>
      hash === hashApiKey(fresh)
        ? { hash, tenant: 'acme', scopes: ['jobs:read'], name: 'n', createdAt: '' }
        : lookup(hash);
    clock.mockReturnValue(5_000_000 + UNKNOWN_KEY_CACHE_MS + 1);
    expect((await callerOf(`Bearer ${fresh}`, keys)).tenant).toBe('acme');
  });
});

describe('comparing keys', () => {
  it('never compares the presented key: the store is asked for its SHA-256 alone', async () => {
    const asked: string[] = [];
    const keys: KeyLookup = {
      async getApiKey(hash) {
        asked.push(hash);
        return undefined;
      },
    };
    await fc.assert(
      fc.asyncProperty(fc.stringMatching(/^[A-Za-z0-9_-]{16,128}$/), async (secret) => {
        clearKeyCache();
        asked.length = 0;
        await callerOf(`Bearer fc_${secret}`, keys).catch(() => undefined);
        expect(asked).toEqual([hashApiKey(`fc_${secret}`)]);
        expect(asked[0]).not.toContain(secret);
      }),
      { numRuns: 200 },
    );
  });
});

describe('the JSON body', () => {
  const open = { keys: () => keyStore() };

  it('is parsed onto the request', async () => {
    const res = await call(open, { body: '{"shot":"SH010","frames":[1,2]}' });
    expect(res.body.body).toEqual({ shot: 'SH010', frames: [1, 2] });
  });

  it('over the size limit is a 413 naming the body', async () => {
    const res = await call(open, { body: JSON.stringify({ p: 'x'.repeat(MAX_BODY_BYTES) }) });
    expect(res.status).toBe(413);
    expect(res.body.error.details).toEqual({ field: 'body' });
  });

  it('of another media type is a 415 naming content-type', async () => {
    const res = await call(open, {
      body: 'a=b',
      headers: { 'content-type': 'application/x-www-form-urlencoded' },
    });
    expect(res.status).toBe(415);
    expect(res.body.error.details).toEqual({ field: 'content-type' });
  });

  it('that is not JSON, or nested deeper than 32 levels, is a 400 naming the body', async () => {
    expect((await call(open, { body: '{"a":' })).body.error.code).toBe('invalid_json');
    const deep = await call(open, { body: `${'['.repeat(40)}${']'.repeat(40)}` });
    expect(deep.status).toBe(400);
    expect(deep.body.error.message).toContain('deeper than 32');
  });

  it('holding __proto__, constructor or prototype as a key anywhere is a 400 naming where', async () => {
    for (const [text, field] of [
      ['{"__proto__":{"isAdmin":true}}', 'body.__proto__'],
      ['{"params":{"x":[{"constructor":{"prototype":{"p":1}}}]}}', 'body.params.x.0.constructor'],
      ['{"a":{"prototype":1}}', 'body.a.prototype'],
    ] as const) {
      const res = await call(open, { body: text });
      expect(res.status, text).toBe(400);
      expect(res.body.error.details).toEqual({ field });
      expect(res.body.error.message).toBe(`${field}: is a reserved key name`);
    }
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
    // As values they are ordinary text.
    expect((await call(open, { body: '{"prompt":"__proto__ constructor"}' })).status).toBe(200);
  });

  it('never fails on any input in any other way than a FramecastError', () => {
    fc.assert(
      fc.property(
        fc.oneof(fc.string(), fc.json(), fc.string({ unit: 'binary' })),
        fc.boolean(),
        (body, base64) => {
          const e = event({ body: base64 ? Buffer.from(body).toString('base64') : body });
          try {
            const parsed = parseJsonBody({ ...e, isBase64Encoded: base64 });
            expect(parsed === undefined || JSON.stringify(parsed) !== undefined).toBe(true);
          } catch (err) {
            expect(err).toBeInstanceOf(FramecastError);
          }
        },
      ),
      { numRuns: 500 },
    );
  });

  it('gives back any JSON value within the depth limit as it was sent', () => {
    // Keys named __proto__, constructor or prototype are refused by design (docs/reliability.md).
    const reserved = /"(__proto__|constructor|prototype)":/;
    const values = fc.jsonValue({ maxDepth: 8 }).filter((v) => !reserved.test(JSON.stringify(v)));
    fc.assert(
      fc.property(values, (value) => {
        expect(parseJsonBody(event({ body: JSON.stringify(value) }))).toEqual(
          JSON.parse(JSON.stringify(value)),
        );
      }),
    );
  });
});

describe('the validated query', () => {
  const query = z.object({ limit: z.coerce.number().int().min(1).max(100).default(20) }).strict();

  it('reaches the handler as the schema parsed it', async () => {
    const res = await call({ query, keys: () => keyStore() }, { query: { limit: '7' } }, async (req) => ({
      status: 200,
      body: req.query,
    }));
    expect(res.body).toEqual({ limit: 7 });
  });

  it('is a 400 naming the field when it does not parse, and the handler never runs', async () => {
    const handler = vi.fn();
    const res = await call({ query, keys: () => keyStore() }, { query: { limit: '0' } }, handler);
    expect(res.status).toBe(400);
    expect(res.body.error.message).toMatch(/^query\.limit/);
    expect(handler).not.toHaveBeenCalled();
  });
});

describe('the error mapper', () => {
  it('answers an unexpected error with a 500 naming a request id and nothing internal', async () => {
    const res = await call({ keys: () => keyStore() }, {}, async () => {
      throw new Error('connect ECONNREFUSED 10.0.0.7:8000 table arn:aws:dynamodb:secret');
    });
    expect(res.status).toBe(500);
    expect(res.body.error.code).toBe('internal');
    expect(JSON.stringify(res.body)).not.toMatch(/ECONNREFUSED|arn:|10\.0\.0\.7/);
    expect(res.body.error.details.requestId).toEqual(expect.any(String));
  });

  it('keeps a domain error code and status', async () => {
    const res = await call({ keys: () => keyStore() }, {}, async () => {
      throw new FramecastError('conflict', 'job has already succeeded');
    });
    expect(res).toMatchObject({
      status: 409,
      body: { error: { code: 'conflict', message: 'job has already succeeded' } },
    });
  });
});

describe('metrics', () => {
  it('are published once at the end of a request that counted some', async () => {
    vi.stubEnv('POWERTOOLS_METRICS_DISABLED', 'false');
    vi.resetModules();
    const lines: string[] = [];
    vi.spyOn(process.stdout, 'write').mockImplementation((chunk: string | Uint8Array) => {
      lines.push(String(chunk));
      return true;
    });
    const http = await import('../../../functions/api/http.ts');
    const { countMetric } = await import('../../../functions/metrics.ts');
    const handler = http.route({ keys: () => keyStore() }, async () => {
      countMetric('JobsSubmitted');
      countMetric('JobsSubmitted');
      return { status: 200, body: {} };
    });
    await handler(event(), lambdaContext('test'));
    const emf = lines
      .filter((l) => l.includes('"_aws"'))
      .map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(emf).toHaveLength(1);
    // Two counts in one request: one EMF line holding both values, which CloudWatch sums.
    expect(emf[0]).toMatchObject({ JobsSubmitted: [1, 1] });
    lines.length = 0;
    await http.route({ keys: () => keyStore() }, async () => ({ status: 200, body: {} }))(
      event(),
      lambdaContext('t'),
    );
    expect(lines.filter((l) => l.includes('"_aws"') || l.includes('No application metrics'))).toEqual([]);
    vi.unstubAllEnvs();
  });
});
