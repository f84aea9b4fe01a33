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
import { call, health, type Json, put, ready, until } from '../cog/client.ts';

const started: ReferenceModel[] = [];

async function start(options: ReferenceModelOptions = {}): Promise<ReferenceModel> {
  const model = await startReferenceModel({ port: 0, host: '127.0.0.1', ...options });
  started.push(model);
  return model;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((m) => m.close()));
});

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

/** The frame of a one-frame prediction: the output is a list (Cog `list[Path]`) of one PNG data URL. */
function pngOf(output: unknown): Buffer {
  expect(output).toEqual([expect.stringMatching(/^data:image\/png;base64,/)]);
  return Buffer.from((output as string[])[0]!.slice('data:image/png;base64,'.length), 'base64');
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
  it('declares the inputs the worker may send and a list of URIs as its output', async () => {
    const model = await start();
    const { body } = await call(`${model.url}/openapi.json`, 'GET');
    const schemas = (body.components as { schemas: Record<string, Json> }).schemas;
    const inputSchema = schemas.Input as { properties: Record<string, Json>; required: string[] };
    expect(Object.keys(inputSchema.properties)).toEqual([
      ...['prompt', 'negative_prompt', 'seed', 'shot_seed', 'width', 'height', 'frame', 'job_id', 'shot'],
      ...['image', 'mask', 'strength', 'start_frame', 'num_frames', 'context'],
    ]);
    expect(inputSchema.required).toEqual(['prompt']);
    expect(inputSchema.properties.prompt).toMatchObject({ type: 'string' });
    expect(inputSchema.properties.negative_prompt).toMatchObject({ type: 'string' });
    for (const name of ['seed', 'shot_seed', 'frame', 'width', 'height']) {
      expect(inputSchema.properties[name]).toMatchObject({ type: 'integer' });
    }
    expect(inputSchema.properties.width).toMatchObject({ multipleOf: 8 });
    expect(inputSchema.properties.height).toMatchObject({ multipleOf: 8 });
    expect(schemas.Output).toEqual({
      type: 'array',
      title: 'Output',
      items: { type: 'string', format: 'uri' },
    });
    expect(Object.keys(body.paths as Json)).toEqual(
      expect.arrayContaining([
        '/predictions',
        '/predictions/{prediction_id}',
        '/predictions/{prediction_id}/cancel',
      ]),
    );
  });

  it('writes each input as it always has: title, bounds and default, in x-order', async () => {
    const model = await start();
    const { body } = await call(`${model.url}/openapi.json`, 'GET');
    const declared = (body.components as { schemas: Record<string, Json> }).schemas.Input!;
    // The inputs of plates and windows come after these (their own test below), which keep their places.
    const properties = Object.fromEntries(
      Object.entries(declared.properties as Json).filter(
        ([, p]) => (p as { 'x-order': number })['x-order'] < 9,
      ),
    );
    const inputSchema = { ...declared, properties };
    const uint32 = { minimum: 0, maximum: 4294967295 };
    const provenance = 'Recorded in the PNG provenance.';
    // Compared as JSON text, so the order of keys counts too.
    expect(JSON.stringify(inputSchema)).toBe(
      JSON.stringify({
        type: 'object',
        title: 'Input',
        required: ['prompt'],
        properties: {
          prompt: {
            type: 'string',
            title: 'Prompt',
            description:
              'What the frame shows. Words like night, sunset, desert, snow, forest or ocean steer the palette.',
            minLength: 1,
            maxLength: 4000,
            'x-order': 0,
          },
          negative_prompt: {
            type: 'string',
            title: 'Negative Prompt',
            description: 'What to avoid; shifts the colours slightly.',
            default: '',
            maxLength: 4000,
            'x-order': 1,
          },
          seed: {
            type: 'integer',
            title: 'Seed',
            description: 'Chooses the scene. Random when absent (then written to the logs).',
            ...uint32,
            'x-order': 2,
          },
          shot_seed: {
            type: 'integer',
            title: 'Shot Seed',
            description:
              'The seed of the whole shot. When given, it chooses the scene and `seed` only varies the grain, so a shot seeded frame by frame still holds one scene.',
            ...uint32,
            'x-order': 3,
          },
          width: {
            type: 'integer',
            title: 'Width',
            default: 1024,
            minimum: 64,
            maximum: 8192,
            multipleOf: 8,
            'x-order': 4,
          },
          height: {
            type: 'integer',
            title: 'Height',
            default: 576,
            minimum: 64,
            maximum: 8192,
            multipleOf: 8,
            'x-order': 5,
          },
          frame: {
            type: 'integer',
            title: 'Frame',
            description: 'Frame number in the shot: the time of the frame (camera drift, moving clouds).',
            default: 0,
            minimum: 0,
            maximum: 9999999,
            'x-order': 6,
          },
          job_id: { type: 'string', title: 'Job Id', description: provenance, maxLength: 200, 'x-order': 7 },
          shot: { type: 'string', title: 'Shot', description: provenance, maxLength: 200, 'x-order': 8 },
        },
      }),
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
    expect(a.body.output).toEqual(b.body.output);

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
    expect(otherSeed.body.output).not.toEqual(a.body.output);
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
  ])('refuses %s with 422 and a Cog-style detail', async (_, body, loc, type) => {
    const res = await put(model, 'invalid', body);
    expect(res.status).toBe(422);
    expect(res.body.detail).toEqual(
      expect.arrayContaining([expect.objectContaining({ loc, type, msg: expect.any(String) })]),
    );
  });
});

describe('render threads', () => {
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
    expect(body.output).toEqual([`${model.url}/outputs/${encodeURIComponent(id)}/0.png`]);
    const res = await fetch((body.output as string[])[0]!);
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

describe('failures and cancellation', () => {
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
});
