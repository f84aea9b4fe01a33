import { randomUUID } from 'node:crypto';
import { resolve } from 'node:path';
import { pathToFileURL } from 'node:url';
import { ListObjectsV2Command } from '@aws-sdk/client-s3';
import { ScanCommand } from '@aws-sdk/lib-dynamodb';
import type { APIGatewayProxyEventV2, APIGatewayProxyStructuredResultV2, Context } from 'aws-lambda';
import fc from 'fast-check';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { clients } from '../../functions/adapters/clients.ts';
import { frameKey } from '../../functions/core/frames.ts';
import { unstorableJson } from '../../functions/core/schemas.ts';
import { ENV } from '../../functions/shared/env.ts';
import { ROUTES, type RouteDefinition } from '../../functions/shared/routes.ts';
import { lambdaContext } from '../../local/gateway.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, eventually } from '../support/api.ts';
import { entry } from '../support/assets.ts';
import { pngFrame } from '../support/images.ts';

/**
 * Hostile input against the real handlers (issue 14, point 6): every route's body, query, path and headers
 * fuzzed with fast-check, over 10,000 cases in all. The handlers are called in-process with API Gateway v2
 * events, as local/gateway.ts calls them, against the emulators. What must hold: only 4xx, never a 5xx;
 * an error body that names its code; no header the request smuggled in; and nothing written (the table's
 * items, both buckets' objects and the queues' messages are counted before and after).
 * Valid requests with hostile text (unicode and control characters in prompts, every legal shot name) are
 * accepted, kept as sent, and make S3 keys under the tenant's own prefix with no traversal.
 */

type Handler = (
  event: APIGatewayProxyEventV2,
  context: Context,
) => Promise<APIGatewayProxyStructuredResultV2>;

let stack: LocalStack;
let key = '';
const handlers = new Map<RouteDefinition, Handler>();
/** Things of another tenant, so well-formed ids reach the stores and must still be 404. */
const theirs = { job: '', asset: '', endpoint: '', event: '', upload: '', png: Buffer.alloc(0) as Buffer };
let cases = 0;

beforeAll(async () => {
  stack = await startLocalStack({ withoutWorker: true, withoutWebhooks: true });
  for (const r of ROUTES) {
    const mod = (await import(pathToFileURL(resolve(r.entry)).href)) as { handler: Handler };
    handlers.set(r, mod.handler);
  }
  key = await stack.createApiKey('fuzz');
  const api = client(stack.url, key);
  // The fuzzing tenant's secret exists before, so reading it writes nothing.
  expect((await api.call('GET', '/v1/webhooks/secret')).status).toBe(200);
  const owner = client(stack.url, await stack.createApiKey('owner'));
  const job = await owner.createJob({ shot: 'SH010', prompt: 'p', frames: { start: 1, end: 2 } });
  theirs.job = job.body.id;
  await owner.cancelJob(theirs.job);
  const events = await owner.call<{ events: { id: string }[] }>('GET', `/v1/jobs/${theirs.job}/events`);
  theirs.event = events.body.events[0]!.id;
  const png = await pngFrame(64, 36, 7);
  const announced = await owner.call<{ id: string; uploads: { url: string }[] }>('POST', '/v1/assets', {
    name: 'plate',
    format: 'png',
    files: [entry(undefined, png)],
  });
  theirs.asset = announced.body.id;
  theirs.upload = announced.body.uploads[0]!.url;
  theirs.png = png;
  theirs.endpoint = (
    await owner.call<{ id: string }>('POST', '/v1/webhooks', { url: 'http://127.0.0.1:9/hook' })
  ).body.id;
}, 60_000);

afterAll(async () => {
  console.log(`hostile input: ${cases} requests, every one answered 4xx (or 2xx when valid), none 5xx`);
  await stack?.stop();
});

// ---- calling a handler -------------------------------------------------------------------------------

interface Request {
  readonly route: RouteDefinition;
  readonly path?: Record<string, string>;
  readonly query?: Record<string, string>;
  readonly headers?: Record<string, string>;
  readonly body?: string;
  readonly base64?: boolean;
  /** Leave out the caller's key (the headers say who calls). */
  readonly anonymous?: boolean;
}

async function invoke(req: Request) {
  cases++;
  const r = req.route;
  const names = [...r.path.matchAll(/\{(\w+)\}/g)].map((m) => m[1]!);
  const path = Object.fromEntries(names.map((n) => [n, req.path?.[n] ?? theirs.job]));
  // As the gateway sees it: a path that cannot be percent-encoded (a lone surrogate) goes through as it is.
  const encode = (s: string) => {
    try {
      return encodeURIComponent(s);
    } catch {
      return s;
    }
  };
  const rawPath = r.path.replace(/\{(\w+)\}/g, (_, n: string) => encode(path[n]!));
  const headers: Record<string, string> = {
    ...(!req.anonymous && { authorization: `Bearer ${key}` }),
    ...(req.body !== undefined && { 'content-type': 'application/json' }),
    ...req.headers,
  };
  const event: APIGatewayProxyEventV2 = {
    version: '2.0',
    routeKey: `${r.method} ${r.path}`,
    rawPath,
    rawQueryString: new URLSearchParams(req.query ?? {}).toString(),
    headers,
    ...(req.query && Object.keys(req.query).length > 0 && { queryStringParameters: req.query }),
    ...(names.length > 0 && { pathParameters: path }),
    requestContext: {
      http: {
        method: r.method,
        path: rawPath,
        protocol: 'HTTP/1.1',
        sourceIp: '127.0.0.1',
        userAgent: 'fuzz',
      },
      requestId: randomUUID(),
    } as APIGatewayProxyEventV2['requestContext'],
    ...(req.body !== undefined && { body: req.base64 ? Buffer.from(req.body).toString('base64') : req.body }),
    isBase64Encoded: req.base64 ?? false,
  };
  const res = await handlers.get(r)!(event, lambdaContext(r.entry));
  const status = res.statusCode ?? 0;
  let body: { error?: { code?: unknown; message?: unknown } } | undefined;
  try {
    body = res.body ? JSON.parse(res.body) : undefined;
  } catch {
    body = undefined;
  }
  // No header the request smuggled in: header names are the handler's own, values hold no line break.
  for (const [name, value] of Object.entries(res.headers ?? {})) {
    expect(name).toMatch(/^[a-z-]+$/);
    expect(String(value)).not.toMatch(/[\r\n\0]/);
  }
  return { status, body, headers: res.headers ?? {} };
}

/** A refusal: a 4xx whose body names a code and a message. */
function expectRefused(res: Awaited<ReturnType<typeof invoke>>, what: string) {
  expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBeGreaterThanOrEqual(400);
  expect(res.status, `${what}: ${JSON.stringify(res.body)}`).toBeLessThan(500);
  expect(res.body?.error?.code, what).toMatch(/^[a-z_]+$/);
  expect(typeof res.body?.error?.message, what).toBe('string');
}

// ---- what was written --------------------------------------------------------------------------------

async function countObjects(bucket: string): Promise<number> {
  let n = 0;
  let token: string | undefined;
  do {
    const page = await clients().s3.send(
      new ListObjectsV2Command({ Bucket: bucket, ContinuationToken: token }),
    );
    n += page.KeyCount ?? 0;
    token = page.NextContinuationToken;
  } while (token);
  return n;
}

async function written() {
  let items = 0;
  let start: Record<string, unknown> | undefined;
  do {
    const page = await clients().dynamo.send(
      new ScanCommand({ TableName: stack.env[ENV.table], Select: 'COUNT', ExclusiveStartKey: start }),
    );
    items += page.Count ?? 0;
    start = page.LastEvaluatedKey;
  } while (start);
  const depth = async (q: { depth(): Promise<{ visible: number; inFlight: number }> }) => {
    const d = await q.depth();
    return d.visible + d.inFlight;
  };
  return {
    items,
    frames: await countObjects(stack.env[ENV.bucket]!),
    assets: await countObjects(stack.env[ENV.assetBucket]!),
    plans: await depth(stack.app.planQueue),
    events: await depth(stack.app.eventQueue),
  };
}

/** Runs `fuzz`, then checks that it wrote nothing anywhere. */
async function writesNothing(fuzz: () => Promise<void>) {
  const before = await written();
  await fuzz();
  expect(await written()).toEqual(before);
}

// ---- hostile values ----------------------------------------------------------------------------------

const NASTY = [
  '..',
  '.',
  '../../etc/passwd',
  '..%2f..%2fowner',
  '%2e%2e%2f',
  'owner/SH010',
  '/',
  '\\..\\..',
  '\0',
  '\r\nx-injected: 1',
  'a\nb',
  '__proto__',
  'constructor',
  'prototype',
  '\u202egnp.exe',
  '\uFEFF',
  '\uD800',
  'Ω≈ç√∫',
  '🎬🎞️',
  'ＳＨ０１０',
  'x'.repeat(70_000),
  `\${jndi:ldap://x}`,
  "'; DROP TABLE jobs; --",
  '<script>alert(1)</script>',
  'job_01JD0000000000000000000000',
  'ast_01JD0000000000000000000000',
  'evt_01JD0000000000000000000000',
  'job_01jd0000000000000000000000',
];
const controlChars = fc
  .array(fc.integer({ min: 0, max: 31 }), { minLength: 1, maxLength: 8 })
  .map((cs) => String.fromCharCode(...cs));
const hostileString = fc.oneof(
  fc.constantFrom(...NASTY),
  fc.string({ unit: 'grapheme', maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 80 }),
  controlChars,
  fc.tuple(fc.constantFrom(...NASTY), fc.string({ maxLength: 10 })).map(([a, b]) => a + b),
);
const protoKey = fc.constantFrom('__proto__', 'constructor', 'prototype', 'toString', 'hasOwnProperty');
/** JSON text an attacker would send: any JSON, prototype keys, deep nesting, big strings, broken JSON. */
const hostileJsonText = fc.oneof(
  fc.json({ maxDepth: 4 }),
  fc
    .tuple(protoKey, fc.jsonValue({ maxDepth: 2 }))
    .map(([k, v]) => `{${JSON.stringify(k)}:${JSON.stringify(v)},"isAdmin":true}`),
  fc.tuple(protoKey, protoKey).map(([a, b]) => `{"${a}":{"${b}":{"polluted":"yes"}}}`),
  fc.integer({ min: 33, max: 5_000 }).map((n) => `${'['.repeat(n)}${']'.repeat(n)}`),
  fc.integer({ min: 33, max: 2_000 }).map((n) => `${'{"a":'.repeat(n)}1${'}'.repeat(n)}`),
  fc.integer({ min: 256 * 1024, max: 300 * 1024 }).map((n) => JSON.stringify({ prompt: 'x'.repeat(n) })),
  fc.string({ maxLength: 200 }),
  fc.constantFrom('', ' ', 'null', '{', '{"a":}', '\uFEFF{}', '[]', '""', '0', 'true', '{"a":1}{"b":2}'),
);

const byPath = (method: string, path: string) => ROUTES.find((r) => r.method === method && r.path === path)!;

// ---- the properties ----------------------------------------------------------------------------------

describe('hostile bodies', () => {
  // Routes that create from a body: any body the schema does not accept is refused and writes nothing.
  const creating = [byPath('POST', '/v1/jobs'), byPath('POST', '/v1/assets'), byPath('POST', '/v1/webhooks')];
  const valid: Record<string, Record<string, unknown>> = {
    '/v1/jobs': { shot: 'SH010', prompt: 'p', frames: { start: 1, end: 2 } },
    '/v1/assets': { name: 'plate', format: 'png', files: [{ sha256: 'a'.repeat(64), size: 10 }] },
    '/v1/webhooks': { url: 'http://127.0.0.1:9/hook' },
  };

  it('any hostile JSON text to a creating route is a 4xx, and nothing is written', async () => {
    await writesNothing(() =>
      fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...creating),
          hostileJsonText,
          fc.boolean(),
          async (route, text, b64) => {
            const res = await invoke({ route, body: text, base64: b64 });
            expectRefused(res, `${route.path} ${text.slice(0, 80)}`);
          },
        ),
        { numRuns: 2_500 },
      ),
    );
    // Nothing a body said reached the prototype of every object in this process.
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    expect(({} as Record<string, unknown>).isAdmin).toBeUndefined();
  });

  it('a valid body with one hostile field added, replaced or mistyped is a 4xx naming it, and nothing is written', async () => {
    const mutation = fc.oneof(
      // An unknown field, prototype keys included: strict schemas refuse it.
      fc
        .tuple(fc.oneof(protoKey, hostileString), fc.jsonValue({ maxDepth: 2 }))
        .map(([k, v]) => (body: Record<string, unknown>) => {
          // A generated string may spell a field the body has ("name"): the body's own value would win
          // (JSON's last duplicate does), so it is made unknown instead.
          const key = Object.hasOwn(body, k) ? `${k}_unknown` : k;
          return `{${JSON.stringify(key)}:${JSON.stringify(v)},${JSON.stringify(body).slice(1)}`;
        }),
      // A known field of the wrong type or out of range.
      fc
        .tuple(
          fc.constantFrom('shot', 'frames', 'name', 'format', 'files', 'url'),
          fc.oneof(
            fc.constantFrom(null, -1, 1e308, [], {}, true, '', ' '),
            fc.constantFrom('..', '.', '../x', 'a/b', '\0', 'x'.repeat(200)),
          ),
        )
        .map(
          ([field, value]) =>
            (body: Record<string, unknown>) =>
              field in body ? JSON.stringify({ ...body, [field]: value }) : `{"${field}":1}`,
        ),
    );
    await writesNothing(() =>
      fc.assert(
        fc.asyncProperty(fc.constantFrom(...creating), mutation, async (route, mutate) => {
          const text = mutate(valid[route.path]!);
          const res = await invoke({ route, body: text });
          expectRefused(res, `${route.path} ${text.slice(0, 120)}`);
          expect(res.status).toBe(400);
        }),
        { numRuns: 1_500 },
      ),
    );
  });

  it('any body to a route that takes none, on another tenant’s things, is a 4xx and changes nothing', async () => {
    const routes = ROUTES.filter((r) => r.method !== 'GET' && r.path.includes('{'));
    await writesNothing(() =>
      fc.assert(
        fc.asyncProperty(fc.constantFrom(...routes), hostileJsonText, async (route, text) => {
          const id = route.path.startsWith('/v1/assets')
            ? theirs.asset
            : route.path.startsWith('/v1/events')
              ? theirs.event
              : route.path.startsWith('/v1/webhooks')
                ? theirs.endpoint
                : theirs.job;
          const res = await invoke({ route, path: { id }, body: text });
          expectRefused(res, `${route.method} ${route.path}`);
        }),
        { numRuns: 1_000 },
      ),
    );
  });
});

describe('hostile paths', () => {
  it('any id in any route’s path is a 4xx (404 for a well-formed id of nobody or of another tenant)', async () => {
    const routes = ROUTES.filter((r) => r.path.includes('{'));
    const id = fc.oneof(
      hostileString,
      fc.constantFrom(theirs.job, theirs.asset, theirs.event, theirs.endpoint),
      fc.stringMatching(/^(job|ast|evt|whk)_[0-9A-Z]{26}$/),
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 2000 }),
    );
    await writesNothing(() =>
      fc.assert(
        fc.asyncProperty(fc.constantFrom(...routes), id, async (route, value) => {
          const body = route.method === 'POST' ? '{}' : undefined;
          const res = await invoke({ route, path: { id: value }, ...(body !== undefined && { body }) });
          expectRefused(res, `${route.method} ${route.path} id=${JSON.stringify(value.slice(0, 60))}`);
        }),
        { numRuns: 1_500 },
      ),
    );
  });
});

describe('hostile query strings', () => {
  it('any query to any route is answered without a 5xx, and writes nothing', async () => {
    const reads = ROUTES.filter((r) => r.method === 'GET' && r.path !== '/v1/webhooks/secret');
    const name = fc.oneof(
      fc.constantFrom('limit', 'cursor', 'shot', 'status', 'after', '__proto__', 'constructor'),
      hostileString,
    );
    const value = fc.oneof(
      hostileString,
      fc.constantFrom(
        '0',
        '-1',
        '1e309',
        'NaN',
        '100000',
        '1.5',
        ' 5',
        '0x10',
        'succeeded',
        'queued,running',
      ),
      fc.base64String({ maxLength: 200 }),
      fc.string({ minLength: 1, maxLength: 40 }).map((s) => Buffer.from(s).toString('base64url')),
    );
    await writesNothing(() =>
      fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...reads),
          fc.dictionary(name, value, { maxKeys: 4 }),
          async (route, query) => {
            const res = await invoke({ route, query, path: { id: theirs.job } });
            expect(res.status, `${route.path}?${JSON.stringify(query).slice(0, 200)}`).toBeLessThan(500);
            if (res.status >= 400) expectRefused(res, route.path);
          },
        ),
        { numRuns: 2_000 },
      ),
    );
  });
});

describe('hostile headers', () => {
  const scoped = ROUTES.filter((r) => r.scope !== undefined);
  const authorization = fc.oneof(
    hostileString,
    hostileString.map((s) => `Bearer ${s}`),
    fc.stringMatching(/^[A-Za-z0-9_-]{16,128}$/).map((s) => `Bearer fc_${s}`),
    fc.constantFrom('Bearer', 'Bearer ', 'Basic Zm9vOmJhcg==', 'bearer fc_', `Bearer fc_${'a'.repeat(129)}`),
    fc
      .tuple(fc.constantFrom('\r\n', '\n', '\0', ' , ', '\t'), fc.string({ maxLength: 20 }))
      .map(([sep, s]) => `Bearer fc_notakey00000000000${sep}${s}`),
  );

  it('any Authorization that is not a live key is a 401 on every scoped route, and writes nothing', async () => {
    await writesNothing(() =>
      fc.assert(
        fc.asyncProperty(
          fc.constantFrom(...scoped),
          authorization,
          fc.dictionary(
            fc.constantFrom(
              'x-forwarded-for',
              'host',
              'content-type',
              'idempotency-key',
              'x-amz-date',
              'cookie',
            ),
            hostileString,
            { maxKeys: 3 },
          ),
          async (route, auth, extra) => {
            const res = await invoke({
              route,
              anonymous: true,
              headers: { ...extra, authorization: auth },
              ...(route.method === 'POST' && {
                body: JSON.stringify({ shot: 'SH010', prompt: 'p', frames: { start: 1, end: 1 } }),
              }),
            });
            expectRefused(res, `${route.path} ${JSON.stringify(auth).slice(0, 80)}`);
            expect(res.status).toBe(401);
            expect(res.headers['www-authenticate']).toBe('Bearer');
          },
        ),
        { numRuns: 1_000 },
      ),
    );
  });

  it('a hostile Idempotency-Key or content type with a valid key is a 4xx naming the header, and writes nothing', async () => {
    const create = byPath('POST', '/v1/jobs');
    const idempotencyKey = fc.oneof(
      fc.constant(''),
      fc.string({ minLength: 256, maxLength: 300 }).filter((s) => /^[\x21-\x7e]+$/.test(s)),
      fc
        .tuple(
          fc.string({ maxLength: 10 }),
          fc.constantFrom('\r\n', '\n', ' ', '\0', 'é', '🎬', '\x7f'),
          fc.string({ maxLength: 10 }),
        )
        .map((p) => p.join('')),
    );
    const contentType = fc.oneof(
      fc.constantFrom(
        'text/plain',
        'application/x-www-form-urlencoded',
        'multipart/form-data; boundary=x',
        'application/xml',
        'text/json',
      ),
      hostileString.filter((s) => !/^application\/(.+\+)?json\b/i.test(s) && s !== ''),
    );
    const body = JSON.stringify({ shot: 'SH010', prompt: 'p', frames: { start: 1, end: 1 } });
    await writesNothing(() =>
      fc.assert(
        fc.asyncProperty(
          fc.oneof(
            idempotencyKey.map((k) => ({ 'idempotency-key': k })),
            contentType.map((t) => ({ 'content-type': t })),
          ),
          async (headers) => {
            const res = await invoke({ route: create, headers, body });
            expectRefused(res, JSON.stringify(headers).slice(0, 100));
            const field = 'idempotency-key' in headers ? 'Idempotency-Key' : 'content-type';
            expect(String(res.body?.error?.message)).toContain(field);
          },
        ),
        { numRuns: 800 },
      ),
    );
  });
});

/** Whether a parsed JSON value holds a reserved key name at any depth (JSON.parse makes `__proto__` an own key). */
const hasReservedKey = (v: unknown): boolean =>
  typeof v === 'object' &&
  v !== null &&
  Object.keys(v).some(
    (k) =>
      ['__proto__', 'constructor', 'prototype'].includes(k) ||
      hasReservedKey((v as Record<string, unknown>)[k]),
  );

describe('hostile text in valid requests', () => {
  it('prompts and shot names with any unicode and control characters are kept as sent, and their S3 keys stay in the tenant’s prefix', async () => {
    const create = byPath('POST', '/v1/jobs');
    const get = byPath('GET', '/v1/jobs/{id}');
    const shot = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/);
    const prompt = fc.oneof(
      fc.string({ unit: 'grapheme', minLength: 1, maxLength: 200 }),
      fc.string({ unit: 'binary', minLength: 1, maxLength: 200 }),
      fc.tuple(controlChars, fc.string({ maxLength: 20 })).map(([a, b]) => a + b),
      fc.constantFrom(...NASTY.filter((s) => s.length <= 4000)),
    );
    const frameBacklog = async () => {
      const d = await stack.app.frameQueueFor('reference').depth();
      return d.visible + d.inFlight;
    };
    const framesBefore = await frameBacklog();
    const before = await written();
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(shot, prompt, fc.jsonValue({ maxDepth: 2 }), async (shotName, text, extra) => {
        // Keys as hostile as values, short of the reserved names (refused: test/functions/api/middleware.test.ts).
        const params = `{"x":${JSON.stringify(extra)},${JSON.stringify(text)}:${JSON.stringify(text)}}`;
        const body = `{"shot":${JSON.stringify(shotName)},"prompt":${JSON.stringify(text)},"negativePrompt":${JSON.stringify(text)},"frames":{"start":1,"end":1},"params":${params}}`;
        const res = await invoke({ route: create, body });
        const onlyDots = /^\.+$/.test(shotName);
        // The only refusals, each naming its field: a shot of dots, a prompt with C0 control characters
        // (tab and line breaks aside: they would reach the model and the PNG's text chunks) or of
        // white space alone, and params
        // with a reserved key name or what the table cannot hold (an empty key, a number past 2^53).
        const control =
          [...text].some((c) => c.charCodeAt(0) < 32 && !'\t\n\r'.includes(c)) || text.trim() === '';
        const reserved =
          hasReservedKey(JSON.parse(params)) || unstorableJson(JSON.parse(params)) !== undefined;
        if (res.status !== 202) {
          expectRefused(res, `${shotName} ${JSON.stringify(text).slice(0, 60)}`);
          expect(onlyDots || control || reserved, JSON.stringify(res.body)).toBe(true);
          const fields = [onlyDots && 'body.shot', control && 'body.prompt', reserved && 'body.params'];
          const named = String(res.body?.error?.message).split(':')[0]!;
          expect(
            fields.some((f) => f && named.startsWith(f)),
            named,
          ).toBe(true);
          return;
        }
        expect(control || reserved).toBe(false);
        expect(onlyDots).toBe(false);
        accepted++;
        const job = res.body as unknown as { id: string; shot: string; outputPrefix: string };
        const read = await invoke({ route: get, path: { id: job.id } });
        expect(read.status).toBe(200);
        const stored = await stack.app.store.getJob(job.id);
        expect(stored?.prompt).toBe(JSON.parse(JSON.stringify(text)));
        expect(stored?.negativePrompt).toBe(stored?.prompt);
        expect(stored?.params).toEqual(JSON.parse(params));
        // The keys of its frames: under fuzz/, one segment per part, no traversal, nothing to escape.
        const k = frameKey('fuzz', job.shot, job.id, 1001);
        expect(k.startsWith(`fuzz/${shotName}/${job.id}/`)).toBe(true);
        expect(k.split('/')).toHaveLength(4);
        expect(k.split('/').some((segment) => segment === '.' || segment === '..' || segment === '')).toBe(
          false,
        );
        expect(k).toMatch(/^[A-Za-z0-9_.\-/]+$/);
        expect(job.outputPrefix).toMatch(
          new RegExp(`^s3://[^/]+/fuzz/${shotName.replace(/\./g, '\\.')}/${job.id}/$`),
        );
      }),
      { numRuns: 400 },
    );
    expect(({} as Record<string, unknown>).polluted).toBeUndefined();
    // Each accepted job wrote its job item and its audit record (job.created), and nothing else ...
    const after = await written();
    expect(after.items - before.items).toBe(2 * accepted);
    // ... and its plan, which the fan-out turned into exactly one chunk message each (one frame a job).
    await eventually(
      async () => ((await frameBacklog()) - framesBefore === accepted ? true : undefined),
      'one chunk message per accepted job',
    );
    expect(after.frames).toBe(before.frames);
    expect(accepted).toBeGreaterThan(50);
  });
});

describe('tenants sharing content', () => {
  it('the same file announced by two tenants is stored under two keys, each in its tenant’s prefix', async () => {
    const res = await invoke({
      route: byPath('POST', '/v1/assets'),
      body: JSON.stringify({ name: 'same_plate', format: 'png', files: [entry(undefined, theirs.png)] }),
    });
    expect(res.status).toBe(201);
    // The object key, path-style here (the bucket first) as on the emulator.
    const keyOf = (url: string) =>
      new URL(url).pathname.replace(`/${stack.env[ENV.assetBucket]}/`, '/').slice(1).split('/');
    const mine = keyOf((res.body as unknown as { uploads: { url: string }[] }).uploads[0]!.url);
    const other = keyOf(theirs.upload);
    expect(mine[0]).toBe('fuzz');
    expect(other[0]).toBe('owner');
    expect(mine.slice(1)).toEqual(other.slice(1));
  });
});

describe('the count', () => {
  it('fuzzed over 10,000 requests in all', () => {
    expect(cases).toBeGreaterThanOrEqual(10_000);
  });
});
