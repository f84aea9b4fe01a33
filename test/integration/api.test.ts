import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashApiKey } from '../../functions/core/api-keys.ts';
import type { JobResponse } from '../../functions/core/schemas.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client } from '../support/api.ts';

let stack: LocalStack;
let api: ReturnType<typeof client>;

// No worker: these tests are about what the API accepts, refuses and writes. Loopback webhooks are
// refused here, as in AWS.
beforeAll(async () => {
  stack = await startLocalStack({ withoutWorker: true, env: { FRAMECAST_WEBHOOK_ALLOW_LOOPBACK: '0' } });
  api = client(stack.url, stack.apiKey);
});
afterAll(() => stack?.stop());

const body = (extra: Record<string, unknown> = {}) => ({
  shot: 'EP101_SH040',
  prompt: 'smoke rolls across the street',
  frames: { start: 1001, end: 1010 },
  ...extra,
});

/** A POST of raw text, for what the typed client would never send: malformed JSON, another media type. */
async function rawPost(apiKey: string, text: string, contentType = 'application/json') {
  const res = await fetch(`${stack.url}/v1/jobs`, {
    method: 'POST',
    headers: { authorization: `Bearer ${apiKey}`, 'content-type': contentType },
    body: text,
  });
  return { status: res.status, body: (await res.json()) as { error: { code: string; message: string } } };
}

async function planBacklog(): Promise<number> {
  const { visible, inFlight } = await stack.app.planQueue.depth();
  return visible + inFlight;
}

describe('bad input', () => {
  it('is refused with a clear error naming the field, and writes nothing', async () => {
    const freshKey = await stack.createApiKey('badinput');
    const fresh = client(stack.url, freshKey);
    const planBefore = await planBacklog();
    const cases: [string, unknown, number, string][] = [
      ['malformed JSON', '{"shot": "A", ', 400, 'body'],
      ['an unknown field', body({ colour: 'red' }), 400, 'body.colour'],
      ['a wrong type', body({ frames: { start: '1', end: 2 } }), 400, 'body.frames.start'],
      [
        'a zero-length range given backwards',
        body({ frames: { start: 10, end: 9 } }),
        400,
        'body.frames.end',
      ],
      ['a negative frame', body({ frames: { start: -5, end: 9 } }), 400, 'body.frames.start'],
      ['more frames than the limit', body({ frames: { start: 0, end: 10_000 } }), 400, 'body.frames.end'],
      ['a width that is not a multiple of 8', body({ width: 1001 }), 400, 'body.width'],
      ['a height out of range', body({ height: 16_384 }), 400, 'body.height'],
      ['a prompt over the limit', body({ prompt: 'x'.repeat(4001) }), 400, 'body.prompt'],
      ['an unknown model', body({ model: 'sdxl-turbo' }), 400, 'model'],
      ['an empty body', undefined, 400, 'body'],
      ['a body over 256 KB', body({ prompt: 'x', negativePrompt: 'n'.repeat(300 * 1024) }), 413, 'body'],
      ['a JSON array', [body()], 400, 'body'],
      [
        'params nested 10,000 deep',
        `{"shot":"A","prompt":"p","frames":{"start":1,"end":1},"params":{"x":${'['.repeat(10_000)}${']'.repeat(10_000)}}}`,
        400,
        'body',
      ],
    ];
    for (const [name, input, status, field] of cases) {
      // Malformed HTTP (text that is no JSON, no body) goes raw; the rest through the typed client.
      const reply =
        typeof input === 'string' || input === undefined
          ? await rawPost(freshKey, input ?? '')
          : await fresh.createJob<{ error: { code: string; message: string } }>(input);
      expect(reply.status, name).toBe(status);
      expect(reply.body.error.code, name).toMatch(/^[a-z_]+$/);
      expect(reply.body.error.message, name).toContain(field);
    }
    const notJson = await rawPost(freshKey, 'shot=A', 'application/x-www-form-urlencoded');
    expect(notJson.status).toBe(415);
    expect((await fresh.listJobs()).body.jobs).toEqual([]);
    expect(await planBacklog()).toBe(planBefore);
  });

  it('refuses bad query parameters naming them', async () => {
    const r = await api.listJobs<{ error: { message: string } }>({ limit: 1000 });
    expect(r.status).toBe(400);
    expect(r.body.error.message).toContain('query.limit');
    const s = await api.listJobs<{ error: { message: string } }>({ status: 'exploded' });
    expect(s.body.error.message).toContain('query.status');
    const c = await api.listJobs<{ error: { message: string } }>({ cursor: 'bm90LWEtY3Vyc29y' });
    expect(c.status).toBe(400);
    expect(c.body.error.message).toContain('cursor');
  });
});

describe('Idempotency-Key', () => {
  it('returns the first job for the same key and body, and 422 for another body', async () => {
    const headers = { idempotencyKey: 'shot-040-take-1' };
    const first = await api.createJob(body({ seed: 7 }), headers);
    expect(first.status).toBe(202);
    const again = await api.createJob({ seed: 7, ...body() }, headers);
    expect(again.status).toBe(202);
    expect(again.body.id).toBe(first.body.id);
    expect(again.headers.get('idempotent-replayed')).toBe('true');
    const other = await api.createJob(body({ seed: 8 }), headers);
    expect(other.status).toBe(422);
    expect((other.body as unknown as { error: { code: string; message: string } }).error).toMatchObject({
      code: 'idempotency_mismatch',
    });
  });

  it('makes one job from concurrent requests with one key', async () => {
    const key = client(stack.url, await stack.createApiKey('concurrent'));
    const headers = { idempotencyKey: 'race-1' };
    const replies = await Promise.all(
      Array.from({ length: 8 }, () => key.createJob(body({ shot: 'RACE' }), headers)),
    );
    expect(replies.map((r) => r.status)).toEqual(Array(8).fill(202));
    expect(new Set(replies.map((r) => r.body.id)).size).toBe(1);
    expect((await key.listJobs()).body.jobs).toHaveLength(1);
  });
});

describe('listing jobs', () => {
  it('lists the tenant’s jobs newest first, pages with a cursor, and filters by shot and status', async () => {
    const mine = client(stack.url, await stack.createApiKey('lister'));
    const made: JobResponse[] = [];
    for (const s of ['A', 'B', 'A', 'C', 'A'])
      made.push((await mine.createJob(body({ shot: `SH_${s}` }))).body);
    await mine.cancelJob(made[1]!.id);

    const page1 = await mine.listJobs({ limit: 2 });
    expect(page1.body.jobs.map((j) => j.id)).toEqual([made[4]!.id, made[3]!.id]);
    const page2 = await mine.listJobs({ limit: 2, cursor: page1.body.nextCursor });
    expect(page2.body.jobs.map((j) => j.id)).toEqual([made[2]!.id, made[1]!.id]);
    const page3 = await mine.listJobs({ limit: 2, cursor: page2.body.nextCursor });
    expect(page3.body.jobs.map((j) => j.id)).toEqual([made[0]!.id]);
    expect(page3.body.nextCursor).toBeUndefined();

    const shotA = await mine.listJobs({ shot: 'SH_A' });
    expect(shotA.body.jobs.map((j) => j.id)).toEqual([made[4]!.id, made[2]!.id, made[0]!.id]);
    const canceled = await mine.listJobs({ status: 'canceled' });
    expect(canceled.body.jobs.map((j) => j.id)).toEqual([made[1]!.id]);
  });
});

describe('API keys and tenants', () => {
  it('answers unknown, malformed and revoked keys with one and the same 401', async () => {
    const revoked = await stack.createApiKey('revoked');
    await stack.app.apiKeys.revokeApiKey(hashApiKey(revoked));
    const replies = await Promise.all([
      client(stack.url, `fc_${'A'.repeat(43)}`).listJobs(),
      client(stack.url, 'not-a-key').listJobs(),
      client(stack.url).listJobs(),
      client(stack.url, revoked).listJobs(),
    ]);
    for (const r of replies) {
      expect(r.status).toBe(401);
      expect(r.body).toEqual(replies[0]!.body);
    }
  });

  it('stores keys only as SHA-256 hashes', async () => {
    const key = await stack.createApiKey('hashed');
    expect(await stack.app.apiKeys.getApiKey(hashApiKey(key))).toMatchObject({ tenant: 'hashed' });
    expect(JSON.stringify(await stack.app.apiKeys.getApiKey(hashApiKey(key)))).not.toContain(key);
  });

  it('refuses a key without the scope a route needs', async () => {
    const reader = client(stack.url, await stack.createApiKey('reader', ['jobs:read']));
    const r = await reader.createJob(body());
    expect(r.status).toBe(403);
    expect((await reader.listJobs()).status).toBe(200);
  });

  it('hides one tenant’s jobs from another: 404, never 403', async () => {
    const a = client(stack.url, await stack.createApiKey('studio-a'));
    const b = client(stack.url, await stack.createApiKey('studio-b'));
    const job = (await a.createJob(body())).body;
    for (const r of [await b.getJob(job.id), await b.listFrames(job.id), await b.cancelJob(job.id)]) {
      expect(r.status).toBe(404);
      expect((r.body as unknown as { error: { code: string } }).error.code).toBe('not_found');
    }
    expect((await b.listJobs()).body.jobs).toEqual([]);
    expect((await a.getJob(job.id)).body.status).toBe('queued');
    expect((await b.getJob('job_nonsense')).status).toBe(404);
  });
});

describe('webhook URLs', () => {
  const hostile: [string, RegExp][] = [
    ['http://hooks.example.com/x', /not https/],
    ['https://127.0.0.1/x', /loopback/],
    ['https://localhost/x', /loopback|internal|qualified/],
    ['https://2130706433/x', /loopback/],
    ['https://0177.0.0.1/x', /loopback/],
    ['https://0x7f000001/x', /loopback/],
    ['https://127.1/x', /loopback/],
    ['https://10.0.0.8/x', /private/],
    ['https://172.16.4.4/x', /private/],
    ['https://172.31.255.1/x', /private/],
    ['https://192.168.1.1/x', /private/],
    ['https://100.64.0.1/x', /shared/],
    ['https://169.254.169.254/latest/meta-data/', /link-local/],
    ['https://0.0.0.0/x', /unspecified/],
    ['https://224.0.0.1/x', /multicast/],
    ['https://255.255.255.255/x', /broadcast/],
    ['https://[::1]/x', /loopback/],
    ['https://[::]/x', /unspecified/],
    ['https://[fc00::1]/x', /unique-local/],
    ['https://[fd12:3456::1]/x', /unique-local/],
    ['https://[fe80::1]/x', /link-local/],
    ['https://[::ffff:127.0.0.1]/x', /loopback/],
    ['https://[::ffff:a9fe:a9fe]/x', /link-local/],
    ['https://[64:ff9b::a9fe:a9fe]/x', /link-local/],
    ['https://[2002:7f00:1::]/x', /loopback/],
    ['https://user:pass@hooks.example.com/x', /credentials/],
    ['ftp://hooks.example.com/x', /not https/],
    ['https://metadata/computeMetadata/v1/', /qualified|internal/],
    ['not a url', /valid URL/],
  ];

  it.each(hostile)(
    'refuses %s at registration with a 400 naming the field and the reason',
    async (url, reason) => {
      const r = await api.createWebhook<{
        error: { code: string; message: string; details: { field: string } };
      }>({ url });
      expect(r.status).toBe(400);
      expect(r.body.error.details.field).toBe('body.url');
      expect(r.body.error.message).toMatch(reason);
    },
  );

  it('refuses a hostile job webhook too, and creates no job', async () => {
    const fresh = client(stack.url, await stack.createApiKey('ssrf'));
    const r = await fresh.createJob(body({ webhook: { url: 'https://169.254.169.254/latest' } }));
    expect(r.status).toBe(400);
    expect((r.body as unknown as { error: { message: string } }).error.message).toMatch(
      /^body\.webhook\.url: link-local/,
    );
    expect((await fresh.listJobs()).body.jobs).toEqual([]);
  });
});

describe('the OpenAPI document', () => {
  it('is served without a key and describes every route', async () => {
    const r = await client(stack.url).getOpenApi<{
      openapi: string;
      paths: Record<string, Record<string, unknown>>;
    }>();
    expect(r.status).toBe(200);
    expect(r.body.openapi).toBe('3.1.0');
    const { ROUTES } = await import('../../functions/shared/routes.ts');
    for (const route of ROUTES)
      expect(r.body.paths[route.path]?.[route.method.toLowerCase()], route.path).toBeDefined();
  });
});
