import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ROUTES_BY_METHOD } from '../../client/index.ts';
import type { AssetUploads } from '../../functions/core/assets.ts';
import { type LocalStack, startLocalStack } from '../../local/stack.ts';
import { client, isFinished, type Reply } from '../support/api.ts';
import { pngFrame, sha256Hex } from '../support/images.ts';
import { responseValidator } from '../support/openapi.ts';
import { startReceiver } from '../support/receiver.ts';

let stack: LocalStack;
let api: ReturnType<typeof client>;
let check: ReturnType<typeof responseValidator>;

beforeAll(async () => {
  stack = await startLocalStack({ worker: { retryBaseMs: 5 }, referenceModel: { failFrames: [3] } });
  api = client(stack.url, stack.apiKey);
  const doc = await client(stack.url).getOpenApi<Parameters<typeof responseValidator>[0]>();
  check = responseValidator(doc.body);
});
afterAll(() => stack?.stop());

describe('every response', () => {
  it('matches the OpenAPI document the API serves', async () => {
    const receiver = await startReceiver();
    const seen: string[] = [];
    const expectValid = async (
      method: string,
      path: string,
      route: string,
      body?: unknown,
      headers?: Record<string, string>,
    ) => {
      // The typed client's method of the route, with the path's parameters and query, as a studio calls it.
      const [name] = Object.entries(ROUTES_BY_METHOD).find(([, [m, t]]) => m === method && t === route)!;
      const url = new URL(path, stack.url);
      const pattern = new RegExp(`^${route.replace(/\{\w+\}/g, '([^/]+)')}$`);
      const params = pattern.exec(url.pathname)!.slice(1).map(decodeURIComponent);
      const query = Object.fromEntries(url.searchParams);
      const key = headers?.['idempotency-key'];
      const args: unknown[] = [...params];
      if (body !== undefined) args.push(body, ...(key ? [{ idempotencyKey: key }] : []));
      else if (url.search) args.push(query);
      const r = await (api[name as keyof typeof api] as (...a: unknown[]) => Promise<Reply>)(...args);
      expect(check(method, route, r.status, r.body), `${method} ${path} ${r.status}`).toEqual([]);
      seen.push(`${method} ${route} ${r.status}`);
      return r;
    };
    try {
      const endpoint = await expectValid('POST', '/v1/webhooks', '/v1/webhooks', { url: receiver.url });
      const job = await expectValid('POST', '/v1/jobs', '/v1/jobs', {
        shot: 'OAS_SH',
        prompt: 'p',
        frames: { start: 1, end: 4 },
        width: 64,
        height: 64,
        params: {},
        webhook: { url: receiver.url, events: ['job.failed'] },
      });
      const id = (job.body as { id: string }).id;
      await api.waitForJob(id, isFinished);
      await expectValid('GET', `/v1/jobs/${id}`, '/v1/jobs/{id}');
      await expectValid('GET', '/v1/jobs?limit=5', '/v1/jobs');
      await expectValid('GET', `/v1/jobs/${id}/frames`, '/v1/jobs/{id}/frames');
      const events = await expectValid('GET', `/v1/jobs/${id}/events`, '/v1/jobs/{id}/events');
      const eventId = (events.body as { events: { id: string }[] }).events[0]!.id;
      await expectValid('POST', `/v1/events/${eventId}/redeliver`, '/v1/events/{id}/redeliver');
      await expectValid('POST', `/v1/jobs/${id}/cancel`, '/v1/jobs/{id}/cancel'); // 409: finished
      await expectValid('GET', '/v1/webhooks', '/v1/webhooks');
      await expectValid('GET', '/v1/webhooks/secret', '/v1/webhooks/secret');
      await expectValid('POST', '/v1/webhooks/secret/rotate', '/v1/webhooks/secret/rotate');
      await expectValid(
        'DELETE',
        `/v1/webhooks/${(endpoint.body as { id: string }).id}`,
        '/v1/webhooks/{id}',
      );
      await expectValid('GET', '/v1/jobs/job_00000000000000000000000000', '/v1/jobs/{id}'); // 404
      await expectValid('POST', '/v1/jobs', '/v1/jobs', { shot: '' }); // 400
      await expectValid(
        'POST',
        '/v1/jobs',
        '/v1/jobs',
        { shot: 'A', prompt: 'p', frames: { start: 1, end: 1 } },
        { 'idempotency-key': 'k' },
      );
      await expectValid(
        'POST',
        '/v1/jobs',
        '/v1/jobs',
        { shot: 'B', prompt: 'p', frames: { start: 1, end: 1 } },
        { 'idempotency-key': 'k' },
      ); // 422
      // Assets: announce, a 409 naming what is missing, upload, complete, read, list, delete.
      const png = await pngFrame(16, 16, 1);
      const file = { sha256: sha256Hex(png), size: png.length };
      const asset = await expectValid('POST', '/v1/assets', '/v1/assets', {
        name: 'oas_still',
        format: 'png',
        files: [file],
      });
      const assetId = (asset.body as AssetUploads).id;
      await expectValid('POST', `/v1/assets/${assetId}/complete`, '/v1/assets/{id}/complete'); // 409
      const again = await expectValid('POST', `/v1/assets/${assetId}/files`, '/v1/assets/{id}/files', {
        files: [file],
      });
      const upload = (again.body as AssetUploads).uploads[0]!;
      expect((await fetch(upload.url, { method: 'PUT', headers: upload.headers, body: png })).status).toBe(
        200,
      );
      await expectValid('POST', `/v1/assets/${assetId}/complete`, '/v1/assets/{id}/complete');
      await expectValid('POST', `/v1/assets/${assetId}/files`, '/v1/assets/{id}/files', { files: [file] }); // 409
      await expectValid('GET', `/v1/assets/${assetId}`, '/v1/assets/{id}');
      await expectValid('GET', '/v1/assets?limit=5', '/v1/assets');
      await expectValid('POST', '/v1/assets', '/v1/assets', { name: '../x', format: 'png', files: [file] }); // 400
      const misnamed = await expectValid('POST', '/v1/assets', '/v1/assets', {
        name: 'oas_not_a_jpeg',
        format: 'jpeg',
        files: [file],
      });
      const misnamedId = (misnamed.body as AssetUploads).id;
      await expectValid('POST', `/v1/assets/${misnamedId}/complete`, '/v1/assets/{id}/complete'); // 422
      await expectValid('DELETE', `/v1/assets/${assetId}`, '/v1/assets/{id}');
      await expectValid('GET', `/v1/assets/${assetId}`, '/v1/assets/{id}'); // 404
      // The validator is not vacuous: a body that is not a job fails it.
      expect(check('GET', '/v1/jobs/{id}', 200, { id: 1, status: 'exploded' }).length).toBeGreaterThan(0);
      const anonymous = await client(stack.url).listJobs();
      expect(check('GET', '/v1/jobs', anonymous.status, anonymous.body)).toEqual([]);
      expect(seen).toEqual(
        expect.arrayContaining([
          'POST /v1/jobs 202',
          'POST /v1/jobs 400',
          'POST /v1/jobs 422',
          'GET /v1/jobs/{id} 404',
          'POST /v1/assets 201',
          'POST /v1/assets 400',
          'POST /v1/assets/{id}/complete 409',
          'POST /v1/assets/{id}/complete 200',
          'POST /v1/assets/{id}/complete 422',
          'POST /v1/assets/{id}/files 200',
          'POST /v1/assets/{id}/files 409',
          'GET /v1/assets 200',
          'GET /v1/assets/{id} 200',
          'GET /v1/assets/{id} 404',
          'DELETE /v1/assets/{id} 204',
        ]),
      );
    } finally {
      await receiver.close();
    }
  });
});
