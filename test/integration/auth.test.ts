import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { SCOPES, type Scope } from '../../functions/core/model.ts';
import type { JobResponse } from '../../functions/core/schemas.ts';
import { ROUTES } from '../../functions/shared/routes.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client } from '../support/api.ts';
import { entry } from '../support/assets.ts';
import { pngFrame } from '../support/images.ts';

// Who may do what: every route of the table refuses a key without its scope, and another tenant's
// jobs, frames, events, assets and webhook endpoints are not found, whatever the route.
let stack: LocalStack;
beforeAll(async () => {
  stack = await startLocalStack({ withoutWorker: true, withoutWebhooks: true });
});
afterAll(() => stack?.stop());

const ID = { job: 'job_01JD0000000000000000000000', asset: 'ast_01JD0000000000000000000000' };
/** A path of the route with every `{name}` filled in from `ids` (a well-formed id of nobody by default). */
const pathOf = (path: string, ids: Record<string, string> = {}) =>
  path.replace(/\{(\w+)\}/g, (_, name: string) => ids[name] ?? ID.job);

describe('scopes', () => {
  const scoped = ROUTES.filter((r) => r.scope !== undefined);

  it('the route table gives every route but the OpenAPI document a scope', () => {
    expect(ROUTES.filter((r) => r.scope === undefined).map((r) => r.path)).toEqual(['/v1/openapi.json']);
    expect(scoped.length).toBeGreaterThan(15);
  });

  it('every route refuses with 403 a key holding every scope but its own, and writes nothing', async () => {
    const keys = new Map<Scope, ReturnType<typeof client>>();
    for (const scope of SCOPES) {
      const others = SCOPES.filter((s) => s !== scope);
      keys.set(scope, client(stack.url, await stack.createApiKey('scopes', others)));
    }
    const before = await stack.app.store.listJobs('scopes', { limit: 10 });
    for (const r of scoped) {
      const api = keys.get(r.scope!)!;
      const res = await api.call<{ error: { code: string; message: string } }>(
        r.method,
        pathOf(r.path),
        r.method === 'POST' ? {} : undefined,
      );
      expect(res.status, `${r.method} ${r.path}`).toBe(403);
      expect(res.body.error.code).toBe('forbidden');
      expect(res.body.error.message).toContain(r.scope);
    }
    expect(await stack.app.store.listJobs('scopes', { limit: 10 })).toEqual(before);
  });

  it('every route lets its own scope through (the answer is about the request, never 401 or 403)', async () => {
    for (const r of scoped) {
      const api = client(stack.url, await stack.createApiKey('own', [r.scope!]));
      const res = await api.call(r.method, pathOf(r.path), r.method === 'POST' ? {} : undefined);
      expect([401, 403], `${r.method} ${r.path}: ${res.status}`).not.toContain(res.status);
      expect(res.status, `${r.method} ${r.path}`).toBeLessThan(500);
    }
  });
});

describe('tenants', () => {
  it("walks every route with tenant B's key over tenant A's things and gets 404 each time", async () => {
    const a = client(stack.url, await stack.createApiKey('tenant-a'));
    const b = client(stack.url, await stack.createApiKey('tenant-b'));

    // Tenant A: a webhook endpoint, a job canceled (so it has frames and an event), an asset uploading.
    const hook = await a.call<{ id: string }>('POST', '/v1/webhooks', { url: 'http://127.0.0.1:9/hook' });
    expect(hook.status).toBe(201);
    const job = await a.createJob({ shot: 'SH010', prompt: 'a', frames: { start: 1, end: 3 } });
    expect(job.status).toBe(202);
    expect((await a.cancelJob(job.body.id)).status).toBe(200);
    const events = await a.call<{ events: { id: string }[] }>('GET', `/v1/jobs/${job.body.id}/events`);
    const eventId = events.body.events[0]?.id;
    expect(eventId).toMatch(/^evt_/);
    const png = await pngFrame(64, 36, 1);
    const asset = await a.call<{ id: string }>('POST', '/v1/assets', {
      name: 'plate',
      format: 'png',
      files: [entry(undefined, png)],
    });
    expect(asset.status).toBe(201);
    const secretA = (await a.call<{ secret: string }>('GET', '/v1/webhooks/secret')).body.secret;
    const eventBacklog = async () => {
      const { visible, inFlight } = await stack.app.eventQueue.depth();
      return visible + inFlight;
    };
    const backlog = await eventBacklog();

    const ids: Record<string, Record<string, string>> = {
      '/v1/events/{id}/redeliver': { id: eventId! },
      '/v1/webhooks/{id}': { id: hook.body.id },
    };
    const bodies: Record<string, unknown> = {
      'POST /v1/assets/{id}/files': { files: [entry(undefined, png)] },
      'POST /v1/jobs/{id}/frames/{frame}/select': { version: 1 },
      'POST /v1/jobs/{id}/frames/{frame}/retry': {},
      'POST /v1/jobs/{id}/reject': {},
    };
    const walked: string[] = [];
    // Admin routes (budgets) name a tenant, not a thing of one: a tenant's key is refused them with 403.
    for (const r of ROUTES.filter((route) => route.path.includes('{') && route.scope !== 'admin')) {
      const path = pathOf(
        r.path,
        ids[r.path] ?? {
          id: r.path.startsWith('/v1/assets') ? asset.body.id : job.body.id,
          // A frame A's job (and A's still asset) really has: only the tenant is wrong.
          frame: String(job.body.frames.start),
        },
      );
      const res = await b.call<{ error: { code: string } }>(r.method, path, bodies[`${r.method} ${r.path}`]);
      expect(res.status, `${r.method} ${path}`).toBe(404);
      expect(res.body.error.code).toBe('not_found');
      walked.push(`${r.method} ${r.path}`);
    }
    expect(walked).toEqual(
      expect.arrayContaining([
        'GET /v1/jobs/{id}',
        'GET /v1/jobs/{id}/frames',
        'GET /v1/jobs/{id}/frames/{frame}',
        'POST /v1/jobs/{id}/frames/{frame}/retry',
        'POST /v1/jobs/{id}/frames/{frame}/select',
        'POST /v1/jobs/{id}/approve',
        'POST /v1/jobs/{id}/reject',
        'GET /v1/jobs/{id}/events',
        'POST /v1/jobs/{id}/cancel',
        'POST /v1/events/{id}/redeliver',
        'DELETE /v1/webhooks/{id}',
        'GET /v1/assets/{id}',
        'GET /v1/assets/{id}/frames/{frame}',
        'POST /v1/assets/{id}/files',
        'POST /v1/assets/{id}/complete',
        'DELETE /v1/assets/{id}',
      ]),
    );

    // B's listings hold none of A's things, and B's webhook secret is its own.
    expect((await b.listJobs()).body.jobs).toEqual([]);
    expect((await b.listJobs({ shot: 'SH010' })).body.jobs).toEqual([]);
    expect((await b.call<{ assets: unknown[] }>('GET', '/v1/assets')).body.assets).toEqual([]);
    expect((await b.call<{ endpoints: unknown[] }>('GET', '/v1/webhooks')).body.endpoints).toEqual([]);
    expect((await b.call<{ secret: string }>('GET', '/v1/webhooks/secret')).body.secret).not.toBe(secretA);

    // And nothing of A's changed: the walk wrote nothing and queued no redelivery.
    expect((await a.getJob(job.body.id)).body.status).toBe('canceled');
    expect((await a.call<{ status: string }>('GET', `/v1/assets/${asset.body.id}`)).body.status).toBe(
      'uploading',
    );
    expect((await a.call<{ endpoints: { id: string }[] }>('GET', '/v1/webhooks')).body.endpoints).toEqual([
      expect.objectContaining({ id: hook.body.id }),
    ]);
    expect(await eventBacklog()).toBe(backlog);
    const listed: JobResponse[] = (await a.listJobs()).body.jobs;
    expect(listed.map((j) => j.id)).toEqual([job.body.id]);
  });
});
