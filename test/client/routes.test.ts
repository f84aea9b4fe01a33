import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FramecastClient, ROUTES_BY_METHOD } from '../../client/index.ts';
import { ROUTES } from '../../functions/shared/routes.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';

/** Every route has a client method, and every method's route is in the OpenAPI document the API serves. */

let stack: LocalStack;
let doc: { paths: Record<string, Record<string, unknown>> };

beforeAll(async () => {
  stack = await startLocalStack({ withoutWorker: true, withoutWebhooks: true });
  doc = (await new FramecastClient({ baseUrl: stack.url }).getOpenApi()) as typeof doc;
});
afterAll(() => stack?.stop());

const methods = Object.entries(ROUTES_BY_METHOD).map(([name, [method, path]]) => ({ name, method, path }));

describe('the typed client', () => {
  it('has a method for every route of the route table', () => {
    const covered = new Set(methods.map((m) => `${m.method} ${m.path}`));
    const missing = ROUTES.map((r) => `${r.method} ${r.path}`).filter((r) => !covered.has(r));
    expect(missing).toEqual([]);
  });

  it('has a method for every operation of the served OpenAPI document, at its method and path', () => {
    const operations = Object.entries(doc.paths).flatMap(([path, ops]) =>
      Object.keys(ops)
        .filter((m) => ['get', 'post', 'put', 'delete', 'patch'].includes(m))
        .map((m) => `${m.toUpperCase()} ${path}`),
    );
    expect(operations.length).toBeGreaterThanOrEqual(ROUTES.length);
    expect(methods.map((m) => `${m.method} ${m.path}`).sort()).toEqual(operations.sort());
  });

  it('calls the served API through each kind of method', async () => {
    const api = new FramecastClient({ baseUrl: stack.url, apiKey: stack.apiKey });
    const job = await api.createJob({ shot: 'CLIENT_SH', prompt: 'p', frames: { start: 1, end: 2 } });
    expect(job).toMatchObject({ shot: 'CLIENT_SH', status: 'queued' });
    expect((await api.getJob(job.id)).id).toBe(job.id);
    expect((await api.listJobs({ shot: 'CLIENT_SH' })).jobs.map((j) => j.id)).toContain(job.id);
    expect(await api.allFrames(job.id)).toHaveLength(2);
    expect((await api.cancelJob(job.id)).status).toBe('canceled');
    await expect(api.getJob('job_00000000000000000000000000')).rejects.toMatchObject({
      status: 404,
      code: 'not_found',
    });
    const anonymous = new FramecastClient({ baseUrl: stack.url });
    await expect(anonymous.listJobs()).rejects.toMatchObject({ status: 401 });
  });
});
