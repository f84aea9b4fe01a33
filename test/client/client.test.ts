import { describe, expect, it } from 'vitest';
import {
  FramecastApiError,
  FramecastClient,
  FramecastNetworkError,
  retryAfterMs,
} from '../../client/index.ts';

/** The client's transport against a scripted fetch: retries, back-off, Retry-After, idempotency, errors. */

interface Seen {
  method: string;
  url: string;
  headers: Record<string, string>;
  body?: string;
}

function scripted(answers: (Response | Error)[]) {
  const seen: Seen[] = [];
  const sleeps: number[] = [];
  const fetch = (async (url: string, init: RequestInit) => {
    seen.push({
      method: init.method ?? 'GET',
      url,
      headers: init.headers as Record<string, string>,
      ...(typeof init.body === 'string' && { body: init.body }),
    });
    const next = answers.shift();
    if (!next) throw new Error('no more answers');
    if (next instanceof Error) throw next;
    return next;
  }) as unknown as typeof globalThis.fetch;
  const api = new FramecastClient({
    baseUrl: 'http://api.test/',
    apiKey: 'fc_test',
    fetch,
    sleep: async (ms) => {
      sleeps.push(ms);
    },
  });
  return { api, seen, sleeps };
}

const json = (status: number, body: unknown, headers: Record<string, string> = {}) =>
  new Response(JSON.stringify(body), { status, headers: { 'content-type': 'application/json', ...headers } });
const job = { id: 'job_1', status: 'queued' };

describe('FramecastClient', () => {
  it('sends the key, a JSON body and a fresh Idempotency-Key on a create', async () => {
    const { api, seen } = scripted([json(202, job), json(202, job)]);
    await api.createJob({ shot: 'S', prompt: 'p', frames: { start: 1, end: 2 } });
    await api.createJob({ shot: 'S', prompt: 'p', frames: { start: 1, end: 2 } });
    expect(seen[0]).toMatchObject({
      method: 'POST',
      url: 'http://api.test/v1/jobs',
      headers: { authorization: 'Bearer fc_test', 'content-type': 'application/json' },
    });
    expect(JSON.parse(seen[0]!.body!)).toEqual({ shot: 'S', prompt: 'p', frames: { start: 1, end: 2 } });
    const keys = seen.map((s) => s.headers['idempotency-key']);
    expect(keys[0]).toMatch(/^[0-9a-f-]{36}$/);
    expect(keys[1]).not.toBe(keys[0]);
  });

  it('retries 429 and 5xx with the same Idempotency-Key, honouring Retry-After', async () => {
    const { api, seen, sleeps } = scripted([
      json(429, { error: { code: 'throttled', message: 'slow down' } }, { 'retry-after': '2' }),
      json(503, { error: { code: 'unavailable', message: 'x' } }),
      new TypeError('fetch failed'),
      json(202, job),
    ]);
    await expect(api.createJob({ shot: 'S', prompt: 'p', frames: { start: 1, end: 1 } })).resolves.toEqual(
      job,
    );
    expect(seen).toHaveLength(4);
    expect(new Set(seen.map((s) => s.headers['idempotency-key'])).size).toBe(1);
    expect(sleeps[0]).toBe(2000);
    // Full jitter: a wait between 0 and base * 2^(n-1).
    expect(sleeps[1]).toBeGreaterThanOrEqual(0);
    expect(sleeps[1]).toBeLessThanOrEqual(400);
    expect(sleeps[2]).toBeLessThanOrEqual(800);
  });

  it('retries a GET answered 500, as any 5xx', async () => {
    const { api, seen } = scripted([
      json(500, { error: { code: 'internal', message: 'internal error' } }),
      json(200, job),
    ]);
    await expect(api.getJob('job_1')).resolves.toEqual(job);
    expect(seen).toHaveLength(2);
  });

  it('gives up after 5 attempts with the last answer as a typed error', async () => {
    const { api, seen } = scripted(
      Array.from({ length: 5 }, () => json(502, { error: { code: 'bad_gateway', message: 'upstream' } })),
    );
    const err = await api.getJob('job_1').catch((e: unknown) => e);
    expect(seen).toHaveLength(5);
    expect(err).toBeInstanceOf(FramecastApiError);
    expect(err).toMatchObject({ status: 502, code: 'bad_gateway', message: 'upstream' });
  });

  it('re-rolls with a fresh Idempotency-Key retried alike, retries a select, and never an approve', async () => {
    const reroll = { jobId: 'job_1', frame: 7, version: 2, status: 'pending' };
    const { api, seen } = scripted([
      json(503, { error: { code: 'unavailable', message: 'retry' } }),
      json(202, reroll),
      json(503, { error: { code: 'unavailable', message: 'retry' } }),
      json(200, { frame: 7, versions: [] }),
      json(503, { error: { code: 'unavailable', message: 'retry' } }),
    ]);
    expect(await api.rerollFrame('job_1', 7, { seed: 9 })).toEqual(reroll);
    expect(seen.map((s) => s.url)).toEqual([
      'http://api.test/v1/jobs/job_1/frames/7/retry',
      'http://api.test/v1/jobs/job_1/frames/7/retry',
    ]);
    expect(seen[0]!.headers['idempotency-key']).toMatch(/^[0-9a-f-]{36}$/);
    expect(seen[1]!.headers['idempotency-key']).toBe(seen[0]!.headers['idempotency-key']);
    expect(JSON.parse(seen[1]!.body!)).toEqual({ seed: 9 });
    await api.selectFrameVersion('job_1', 7, 2);
    expect(seen.slice(2).map((s) => [s.url, s.body])).toEqual([
      ['http://api.test/v1/jobs/job_1/frames/7/select', '{"version":2}'],
      ['http://api.test/v1/jobs/job_1/frames/7/select', '{"version":2}'],
    ]);
    await expect(api.approveJob('job_1')).rejects.toMatchObject({ status: 503 });
    expect(seen).toHaveLength(5);
  });

  it('never retries a POST without an Idempotency-Key', async () => {
    const { api, seen } = scripted([json(503, { error: { code: 'unavailable', message: 'x' } })]);
    await expect(api.cancelJob('job_1')).rejects.toMatchObject({ status: 503 });
    expect(seen).toHaveLength(1);
    // A create the API does not deduplicate carries a key but is not repeated either.
    const hook = scripted([json(503, { error: { code: 'unavailable', message: 'x' } })]);
    await expect(hook.api.createWebhook({ url: 'https://example.com/h' })).rejects.toMatchObject({
      status: 503,
    });
    expect(hook.seen).toHaveLength(1);
    expect(hook.seen[0]!.headers['idempotency-key']).toBeDefined();
    const net = scripted([new TypeError('fetch failed')]);
    await expect(net.api.redeliverEvent('evt_1')).rejects.toBeInstanceOf(FramecastNetworkError);
    expect(net.seen).toHaveLength(1);
  });

  it('does not retry other errors and carries code, message and details', async () => {
    const { api, seen } = scripted([
      json(400, {
        error: { code: 'validation_failed', message: 'body.shot: required', details: { field: 'shot' } },
      }),
    ]);
    const err = (await api.createJob({} as never).catch((e: unknown) => e)) as FramecastApiError;
    expect(seen).toHaveLength(1);
    expect(err).toMatchObject({
      status: 400,
      code: 'validation_failed',
      message: 'body.shot: required',
      details: { field: 'shot' },
    });
  });

  it('builds paths and queries', async () => {
    const { api, seen } = scripted([json(200, { jobs: [] }), new Response(null, { status: 204 })]);
    await api.listJobs({ shot: 'EP101', status: 'running', limit: 5 });
    await api.deleteWebhook('wh/1');
    expect(seen.map((s) => `${s.method} ${s.url}`)).toEqual([
      'GET http://api.test/v1/jobs?shot=EP101&status=running&limit=5',
      'DELETE http://api.test/v1/webhooks/wh%2F1',
    ]);
  });

  it('reads Retry-After as seconds or a date', () => {
    expect(retryAfterMs('3')).toBe(3000);
    expect(retryAfterMs(new Date(10_000).toUTCString(), 4000)).toBe(6000);
    expect(retryAfterMs(null)).toBeUndefined();
    expect(retryAfterMs('soon')).toBeUndefined();
  });
});
