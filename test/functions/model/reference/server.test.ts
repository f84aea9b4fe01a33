import { createServer } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import {
  encodePng,
  type Provenance,
  provenanceText,
  readPng,
  readProvenance,
} from '../../../../functions/core/png.ts';
import { renderFrame } from '../../../../functions/model/reference/render.ts';
import {
  REFERENCE_DESCRIPTION,
  type ReferenceModel,
  type ReferenceModelOptions,
  startReferenceModel,
} from '../../../../functions/model/reference/server.ts';

type Json = Record<string, unknown>;

const started: ReferenceModel[] = [];

async function start(options: ReferenceModelOptions = {}): Promise<ReferenceModel> {
  const model = await startReferenceModel({ port: 0, host: '127.0.0.1', ...options });
  started.push(model);
  return model;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((m) => m.close()));
});

async function call(
  url: string,
  method: string,
  body?: unknown,
  headers: Record<string, string> = {},
): Promise<{ status: number; body: Json }> {
  const res = await fetch(url, {
    method,
    headers: { 'content-type': 'application/json', ...headers },
    ...(body !== undefined && { body: typeof body === 'string' ? body : JSON.stringify(body) }),
  });
  return { status: res.status, body: (await res.json()) as Json };
}

const health = async (model: ReferenceModel) => (await call(`${model.url}/health-check`, 'GET')).body;

async function until<T>(probe: () => Promise<T>, ok: (value: T) => boolean, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await probe();
    if (ok(value)) return value;
    if (Date.now() > deadline)
      throw new Error(`condition not met in ${timeoutMs} ms: ${JSON.stringify(value)}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

const ready = (model: ReferenceModel) =>
  until(
    () => health(model),
    (h) => h.status === 'READY',
  );

const input = (overrides: Json = {}): Json => ({
  prompt: 'a lighthouse on a rocky coast at dusk, 灯台',
  seed: 42,
  width: 128,
  height: 72,
  frame: 1001,
  job_id: 'job_01JTEST',
  shot: 'EP101_SH040',
  ...overrides,
});

const put = (model: ReferenceModel, id: string, body: unknown, headers?: Record<string, string>) =>
  call(`${model.url}/predictions/${encodeURIComponent(id)}`, 'PUT', body, headers);

function pngOf(output: unknown): Buffer {
  expect(output).toMatch(/^data:image\/png;base64,/);
  return Buffer.from((output as string).slice('data:image/png;base64,'.length), 'base64');
}

/** A webhook receiver on loopback that records every prediction it is sent. */
async function webhookReceiver() {
  const received: Json[] = [];
  const server = createServer((req, res) => {
    let text = '';
    req.on('data', (d) => {
      text += d;
    });
    req.on('end', () => {
      received.push(JSON.parse(text) as Json);
      res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    url: `http://127.0.0.1:${(server.address() as AddressInfo).port}/hook`,
    received,
    close: () => new Promise<void>((resolve) => server.close(() => resolve())),
  };
}

describe('starting the reference model', () => {
  it('reports STARTING until setup is done, then READY, always with status 200', async () => {
    const model = await start({ setupDelayMs: 600 });
    const res = await fetch(`${model.url}/health-check`);
    expect(res.status).toBe(200);
    const first = (await res.json()) as Json;
    expect(first.status).toBe('STARTING');
    expect(first.setup).toMatchObject({ status: 'starting' });

    const early = await put(model, 'too-early', { input: input() });
    expect(early.status).toBe(503);

    const later = await ready(model);
    expect(later.setup).toMatchObject({ status: 'succeeded', completed_at: expect.any(String) });
    expect((await put(model, 'in-time', { input: input() })).body.status).toBe('succeeded');
  });

  it('says what it is on its root, in its health check and in its OpenAPI document', async () => {
    const model = await start();
    await ready(model);
    const root = await call(`${model.url}/`, 'GET');
    expect(root.body).toMatchObject({
      description: REFERENCE_DESCRIPTION,
      predictions_idempotent_url: '/predictions/{prediction_id}',
    });
    expect(REFERENCE_DESCRIPTION).toMatch(/procedural CPU renderer for local mode and tests/);
    expect(REFERENCE_DESCRIPTION).toMatch(/Cog-packaged image/);
    expect((await health(model)).model).toEqual({ name: 'reference', description: REFERENCE_DESCRIPTION });
    expect((await call(`${model.url}/openapi.json`, 'GET')).body.info).toMatchObject({
      description: REFERENCE_DESCRIPTION,
    });
  });
});

describe('the OpenAPI document', () => {
  it('declares the inputs the worker may send and a URI output', async () => {
    const model = await start();
    const { body } = await call(`${model.url}/openapi.json`, 'GET');
    const schemas = (body.components as { schemas: Record<string, Json> }).schemas;
    const inputSchema = schemas.Input as { properties: Record<string, Json>; required: string[] };
    expect(Object.keys(inputSchema.properties).sort()).toEqual(
      ['frame', 'height', 'job_id', 'negative_prompt', 'prompt', 'seed', 'shot', 'shot_seed', 'width'].sort(),
    );
    expect(inputSchema.required).toEqual(['prompt']);
    expect(inputSchema.properties.prompt).toMatchObject({ type: 'string' });
    expect(inputSchema.properties.negative_prompt).toMatchObject({ type: 'string' });
    for (const name of ['seed', 'shot_seed', 'frame', 'width', 'height']) {
      expect(inputSchema.properties[name]).toMatchObject({ type: 'integer' });
    }
    expect(inputSchema.properties.width).toMatchObject({ multipleOf: 8 });
    expect(inputSchema.properties.height).toMatchObject({ multipleOf: 8 });
    expect(schemas.Output).toEqual({ type: 'string', title: 'Output', format: 'uri' });
    expect(Object.keys(body.paths as Json)).toEqual(
      expect.arrayContaining([
        '/predictions',
        '/predictions/{prediction_id}',
        '/predictions/{prediction_id}/cancel',
      ]),
    );
  });
});

describe('predictions', () => {
  let model: ReferenceModel;
  beforeAll(async () => {
    model = await startReferenceModel({ port: 0 });
    await ready(model);
  });
  afterAll(() => model.close());

  it('answers a synchronous PUT with the frame as a PNG data URL that carries its provenance', async () => {
    const { status, body } = await put(model, 'job_01JTEST-1001-1', {
      input: input({ width: 1024, height: 576 }),
    });
    expect(status).toBe(200);
    expect(body).toMatchObject({
      id: 'job_01JTEST-1001-1',
      status: 'succeeded',
      error: null,
      input: input({ width: 1024, height: 576 }),
    });
    const png = pngOf(body.output);
    expect(readPng(png)).toMatchObject({ width: 1024, height: 576 });
    expect(readProvenance(png)).toEqual({
      generator: 'framecast',
      model: 'reference',
      prompt: 'a lighthouse on a rocky coast at dusk, 灯台',
      seed: 42,
      frame: 1001,
      jobId: 'job_01JTEST',
      shot: 'EP101_SH040',
      width: 1024,
      height: 576,
    });
    expect(readPng(png).text.Software).toBe(REFERENCE_DESCRIPTION);
    expect(body.logs).toMatch(/rendered frame 1001 \(1024x576, seed 42\)/);

    const metrics = body.metrics as { predict_time: number };
    expect(metrics.predict_time).toBeGreaterThan(0);
    const [created, startedAt, completed] = [body.created_at, body.started_at, body.completed_at].map((t) =>
      Date.parse(t as string),
    );
    expect(created).toBeLessThanOrEqual(startedAt!);
    expect(startedAt).toBeLessThanOrEqual(completed!);
  });

  it('renders the same bytes for the same input, the bytes an in-process render gives', async () => {
    const a = await put(model, 'same-a', { input: input() });
    const b = await put(model, 'same-b', { input: input() });
    expect(a.body.output).toBe(b.body.output);

    const p: Provenance = {
      generator: 'framecast',
      model: 'reference',
      prompt: input().prompt as string,
      seed: 42,
      frame: 1001,
      jobId: 'job_01JTEST',
      shot: 'EP101_SH040',
      width: 128,
      height: 72,
    };
    const rgb = renderFrame({
      prompt: p.prompt,
      seed: 42,
      frame: 1001,
      width: 128,
      height: 72,
      negativePrompt: '',
    });
    const expected = encodePng(rgb, 128, 72, { ...provenanceText(p), Software: REFERENCE_DESCRIPTION });
    expect(pngOf(a.body.output).equals(expected)).toBe(true);

    const otherSeed = await put(model, 'other-seed', { input: input({ seed: 43 }) });
    expect(otherSeed.body.output).not.toBe(a.body.output);
  });

  it('creates a prediction with a POST and makes up an id when none is given', async () => {
    const { status, body } = await call(`${model.url}/predictions`, 'POST', { input: input() });
    expect(status).toBe(200);
    expect(body.id).toMatch(/^[0-9a-f]{32}$/);
    expect(body.status).toBe('succeeded');
    const named = await call(`${model.url}/predictions`, 'POST', { id: 'posted', input: input() });
    expect(named.body.id).toBe('posted');
  });

  it('picks a seed when none is given and records it in the logs and the PNG', async () => {
    const { body } = await put(model, 'no-seed', { input: input({ seed: undefined }) });
    const seed = Number(/Using seed: (\d+)/.exec(body.logs as string)?.[1]);
    expect(Number.isInteger(seed)).toBe(true);
    expect(readProvenance(pngOf(body.output))?.seed).toBe(seed);
  });

  it.each([
    ['a missing prompt', { input: input({ prompt: undefined }) }, ['body', 'input', 'prompt'], 'missing'],
    ['a null prompt', { input: input({ prompt: null }) }, ['body', 'input', 'prompt'], 'missing'],
    ['an empty prompt', { input: input({ prompt: '' }) }, ['body', 'input', 'prompt'], 'string_too_short'],
    [
      'a width that is not a multiple of 8',
      { input: input({ width: 100 }) },
      ['body', 'input', 'width'],
      'multiple_of',
    ],
    [
      'a height under 64',
      { input: input({ height: 32 }) },
      ['body', 'input', 'height'],
      'greater_than_equal',
    ],
    ['a negative seed', { input: input({ seed: -1 }) }, ['body', 'input', 'seed'], 'greater_than_equal'],
    ['a seed as a string', { input: input({ seed: '42' }) }, ['body', 'input', 'seed'], 'int_type'],
    ['a fractional frame', { input: input({ frame: 1.5 }) }, ['body', 'input', 'frame'], 'int_type'],
    [
      'an input the model does not declare',
      { input: input({ guidance_scale: 7 }) },
      ['body', 'input', 'guidance_scale'],
      'extra_forbidden',
    ],
    ['an input that is not an object', { input: 'a lighthouse' }, ['body', 'input'], 'dict_type'],
    ['a body that is not JSON', '{"input": ', ['body'], 'json_invalid'],
    ['a body id that differs from the URL', { id: 'other', input: input() }, ['body', 'id'], 'value_error'],
  ])('refuses %s with 422 and a Cog-style detail', async (_, body, loc, type) => {
    const res = await put(model, 'invalid', body);
    expect(res.status).toBe(422);
    expect(res.body.detail).toEqual(
      expect.arrayContaining([expect.objectContaining({ loc, type, msg: expect.any(String) })]),
    );
  });

  it('answers 404 for unknown routes and predictions, 405 for a wrong method', async () => {
    expect((await call(`${model.url}/nothing-here`, 'GET')).status).toBe(404);
    expect((await call(`${model.url}/predictions/never-made/cancel`, 'POST')).status).toBe(404);
    expect((await call(`${model.url}/predictions/%E0%A4%A/cancel`, 'POST')).status).toBe(404);
    expect((await call(`${model.url}/predictions/some-id`, 'GET')).status).toBe(405);
    expect((await call(`${model.url}/health-check`, 'POST', {})).status).toBe(405);
  });
});

describe('slots and idempotency', () => {
  it('answers 409 for a new prediction while every slot is busy, and reports BUSY meanwhile', async () => {
    const model = await start({ renderDelayMs: 500 });
    await ready(model);
    const first = await put(model, 'first', { input: input() }, { prefer: 'respond-async' });
    expect(first.status).toBe(202);
    expect((await health(model)).status).toBe('BUSY');

    const second = await put(model, 'second', { input: input() });
    expect(second.status).toBe(409);
    expect(second.body).toMatchObject({ status: 'failed', error: expect.stringMatching(/slots busy/) });
    expect((await call(`${model.url}/predictions`, 'POST', { input: input() })).status).toBe(409);
    expect(model.stats()).toMatchObject({ predictions: 1, rejectedBusy: 2, running: 1 });

    await ready(model);
    expect((await put(model, 'second', { input: input() })).body.status).toBe('succeeded');
  });

  it('never starts a second render for a repeated PUT with the same id', async () => {
    const model = await start({ renderDelayMs: 400 });
    await ready(model);
    const id = 'job_01JTEST:1001:1';
    const original = put(model, id, { input: input() });
    await until(
      () => health(model),
      (h) => h.status === 'BUSY',
    );

    // While it runs, a retry gets the running prediction's state (202), as Cog answers.
    const retry = await put(model, id, { input: input() });
    expect(retry.status).toBe(202);
    expect(retry.body).toMatchObject({ id, status: 'processing', output: null });

    const done = await original;
    expect(done.status).toBe(200);
    expect(done.body.status).toBe('succeeded');

    // Once it finished, a retry gets its result (this server remembers finished predictions).
    const after = await put(model, id, { input: input() });
    expect(after.status).toBe(200);
    expect(after.body.output).toBe(done.body.output);
    expect(model.stats()).toMatchObject({ predictions: 1, succeeded: 1 });
  });

  it('runs as many predictions at once as its concurrency', async () => {
    const model = await start({ concurrency: 2, renderDelayMs: 400 });
    await ready(model);
    const runs = [put(model, 'a', { input: input() }), put(model, 'b', { input: input({ frame: 1002 }) })];
    await until(
      () => health(model),
      (h) => h.status === 'BUSY',
    );
    expect((await put(model, 'c', { input: input() })).status).toBe(409);
    const results = await Promise.all(runs);
    expect(results.map((r) => r.body.status)).toEqual(['succeeded', 'succeeded']);
    // Both ran at once: BUSY (every slot taken) was seen while the two were in flight.
    expect(model.stats().rejectedBusy).toBe(1);
    expect((await health(model)).slots).toEqual({ total: 2, busy: 0 });
  });

  it('remembers only the most recent finished predictions', async () => {
    const model = await start({ retainPredictions: 2 });
    await ready(model);
    for (const id of ['p1', 'p2', 'p3']) await put(model, id, { input: input() });
    expect(model.stats()).toMatchObject({ predictions: 3, retained: 2 });
    await put(model, 'p3', { input: input() });
    expect(model.stats().predictions).toBe(3);
    await put(model, 'p1', { input: input() });
    expect(model.stats().predictions).toBe(4);
  });

  it('keeps answering health checks while a large frame renders', async () => {
    const model = await start();
    await ready(model);
    const big = put(model, 'big', { input: input({ width: 2048, height: 1152 }) });
    await until(
      () => health(model),
      (h) => h.status === 'BUSY',
    );
    const during = await health(model);
    // Answered while the render was still under way: rendering does not block the server.
    const stillRendering = model.stats().running;
    expect((await big).body.status).toBe('succeeded');
    expect(during.status).toBe('BUSY');
    expect(stillRendering).toBe(1);
  });
});

describe('outputs', () => {
  it('serves the frame over http when asked to, at an URL the prediction names', async () => {
    const model = await start({ outputMode: 'http' });
    await ready(model);
    const id = 'job_01JTEST:1001:1';
    const { body } = await put(model, id, { input: input() });
    expect(body.output).toBe(`${model.url}/outputs/${encodeURIComponent(id)}.png`);
    const res = await fetch(body.output as string);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toBe('image/png');
    const png = Buffer.from(await res.arrayBuffer());
    expect(readProvenance(png)).toMatchObject({
      model: 'reference',
      seed: 42,
      frame: 1001,
      jobId: 'job_01JTEST',
    });
    expect((await fetch(`${model.url}/outputs/unknown.png`)).status).toBe(404);
  });
});

describe('failures, asynchronous predictions and cancellation', () => {
  it('fails every prediction for a frame listed in failFrames', async () => {
    const model = await start({ failFrames: [1013] });
    await ready(model);
    for (const id of ['attempt-1', 'attempt-2']) {
      const { status, body } = await put(model, id, { input: input({ frame: 1013 }) });
      expect(status).toBe(200);
      expect(body).toMatchObject({
        status: 'failed',
        output: null,
        error: expect.stringMatching(/failFrames/),
      });
      expect((body.metrics as Json).predict_time).toEqual(expect.any(Number));
    }
    expect((await put(model, 'other-frame', { input: input({ frame: 1014 }) })).body.status).toBe(
      'succeeded',
    );
    expect(model.stats()).toMatchObject({ predictions: 3, failed: 2, succeeded: 1 });
  });

  it('answers Prefer: respond-async with 202 at once and reports by webhook', async () => {
    const model = await start({ renderDelayMs: 200 });
    const hook = await webhookReceiver();
    try {
      await ready(model);
      const res = await put(
        model,
        'async-1',
        { input: input(), webhook: hook.url },
        { prefer: 'respond-async' },
      );
      // Answered before the prediction finished.
      expect(model.stats().succeeded).toBe(0);
      expect(res.status).toBe(202);
      expect(res.body).toMatchObject({ id: 'async-1', status: 'starting', output: null });

      await until(
        async () => hook.received.length,
        (n) => n >= 2,
      );
      expect(hook.received.map((p) => p.status)).toEqual(['starting', 'succeeded']);
      expect(readProvenance(pngOf(hook.received[1]!.output))?.frame).toBe(1001);

      const filtered = await put(
        model,
        'async-2',
        { input: input(), webhook: hook.url, webhook_events_filter: ['completed'] },
        { prefer: 'respond-async' },
      );
      expect(filtered.status).toBe(202);
      await until(
        async () => hook.received.length,
        (n) => n >= 3,
      );
      await new Promise((resolve) => setTimeout(resolve, 100));
      expect(hook.received.slice(2).map((p) => [p.id, p.status])).toEqual([['async-2', 'succeeded']]);
    } finally {
      await hook.close();
    }
  });

  it('cancels a running prediction and frees its slot', async () => {
    const model = await start({ renderDelayMs: 5000 });
    await ready(model);
    const waiting = put(model, 'to-cancel', { input: input() });
    await until(
      () => health(model),
      (h) => h.status === 'BUSY',
    );

    const cancel = await call(`${model.url}/predictions/to-cancel/cancel`, 'POST');
    expect(cancel).toEqual({ status: 200, body: {} });
    expect((await waiting).body).toMatchObject({ status: 'canceled', output: null });
    expect((await health(model)).status).toBe('READY');
    expect((await call(`${model.url}/predictions/to-cancel/cancel`, 'POST')).status).toBe(404);
    expect((await put(model, 'to-cancel', { input: input() })).body.status).toBe('canceled');
    expect(model.stats()).toMatchObject({ predictions: 1, canceled: 1 });
  });

  it('lets running predictions finish when closed with a drain time, and refuses new ones', async () => {
    const model = await startReferenceModel({ port: 0, renderDelayMs: 300 });
    await ready(model);
    const running = put(model, 'draining', { input: input() });
    await until(
      () => health(model),
      (h) => h.status === 'BUSY',
    );
    const closed = model.close({ drainMs: 5000 });
    expect((await put(model, 'late', { input: input() })).status).toBe(503);
    expect((await running).body.status).toBe('succeeded');
    await closed;
    await expect(fetch(`${model.url}/health-check`)).rejects.toThrow();
  });
});
