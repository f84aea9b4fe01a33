import { once } from 'node:events';
import { connect } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { afterEach, describe, expect, it } from 'vitest';
import type { InputTable } from '../../../../functions/model/cog/inputs.ts';
import type { Predictor, SetupContext } from '../../../../functions/model/cog/predictor.ts';
import {
  type CogServer,
  type CogServerOptions,
  startCogServer,
} from '../../../../functions/model/cog/server.ts';
import { call, health, type Json, put, ready, until, webhookReceiver } from './client.ts';

/**
 * The Cog HTTP contract, on a predictor that echoes its validated input back as a JSON file: what is
 * asserted here holds for any predictor. The reference model's own tests run the real renderer.
 */

const ECHO_INPUTS = {
  prompt: { type: 'string', minLength: 1, required: true },
  frame: { type: 'integer', default: 0, minimum: 0 },
} as const satisfies InputTable;

interface EchoOptions {
  /** Time each prediction takes; a cancel ends the wait. */
  delayMs?: number;
  /** Replaces the setup, which otherwise succeeds at once. */
  setup?: (context: SetupContext) => Promise<string>;
}

function echoPredictor<T extends InputTable>(inputs: T, options: EchoOptions = {}): Predictor<T> {
  return {
    name: 'echo',
    description: 'Echoes its input',
    version: '0.0.1',
    inputs,
    output: { type: 'string', title: 'Output', format: 'uri' },
    setup: options.setup ?? (async () => 'ready'),
    async predict(input, { signal, log }) {
      if (options.delayMs) await sleep(options.delayMs, undefined, { signal });
      log(`echoed ${Object.keys(input).length} input(s)`);
      return {
        contentType: 'application/json',
        extension: 'json',
        bytes: Buffer.from(JSON.stringify(input)),
      };
    },
    close: async () => undefined,
  };
}

const started: CogServer[] = [];

async function start<T extends InputTable>(
  predictor: Predictor<T>,
  options: CogServerOptions = {},
): Promise<CogServer> {
  const server = await startCogServer(predictor, { port: 0, host: '127.0.0.1', ...options });
  started.push(server);
  return server;
}

afterEach(async () => {
  await Promise.all(started.splice(0).map((m) => m.close()));
});

const input = (overrides: Json = {}): Json => ({
  prompt: 'a lighthouse on a rocky coast',
  frame: 1001,
  ...overrides,
});

/** The input the echo predictor was given, read back from its data-URL output. */
function echoed(output: unknown): Json {
  expect(output).toMatch(/^data:application\/json;base64,/);
  const base64 = (output as string).slice('data:application/json;base64,'.length);
  return JSON.parse(Buffer.from(base64, 'base64').toString('utf8')) as Json;
}

describe('setup', () => {
  it('reports SETUP_FAILED with the reason in its setup logs, and refuses predictions with 503', async () => {
    const model = await start(
      echoPredictor(ECHO_INPUTS, {
        setup: async () => {
          throw new Error('weights not found');
        },
      }),
    );
    const h = await until(
      () => health(model),
      (h) => h.status !== 'STARTING',
    );
    expect(h.status).toBe('SETUP_FAILED');
    expect(h.setup).toMatchObject({ status: 'failed', logs: 'setup failed: weights not found\n' });
    const refused = await put(model, 'after-failed-setup', { input: input() });
    expect(refused).toEqual({ status: 503, body: { error: 'Predictor not ready', status: 'failed' } });
  });

  it('turns DEFUNCT for good when the predictor reports itself broken', async () => {
    let context: SetupContext | undefined;
    const model = await start(
      echoPredictor(ECHO_INPUTS, {
        setup: async (c) => {
          context = c;
          return 'ready';
        },
      }),
      { concurrency: 3 },
    );
    await ready(model);
    expect(context?.concurrency).toBe(3);
    context?.defunct('model process died');
    expect(await health(model)).toMatchObject({ status: 'DEFUNCT', error: 'model process died' });
    expect((await put(model, 'after-defunct', { input: input() })).status).toBe(503);
  });
});

describe('predictions', () => {
  it('creates a prediction with a POST and makes up an id when none is given', async () => {
    const model = await start(echoPredictor(ECHO_INPUTS));
    await ready(model);
    const { status, body } = await call(`${model.url}/predictions`, 'POST', { input: input() });
    expect(status).toBe(200);
    expect(body.id).toMatch(/^[0-9a-f]{32}$/);
    expect(body.status).toBe('succeeded');
    const named = await call(`${model.url}/predictions`, 'POST', { id: 'posted', input: input() });
    expect(named.body.id).toBe('posted');
  });

  it('hands the predictor the validated input with its defaults, and keeps its log lines', async () => {
    const model = await start(echoPredictor(ECHO_INPUTS));
    await ready(model);
    const { body } = await put(model, 'defaults', { input: { prompt: 'a lighthouse' } });
    expect(body).toMatchObject({ status: 'succeeded', input: { prompt: 'a lighthouse' } });
    expect(echoed(body.output)).toEqual({ prompt: 'a lighthouse', frame: 0 });
    expect(body.logs).toBe('echoed 2 input(s)\n');
  });

  it('fails a prediction whose predictor throws, with the error as data and status 200', async () => {
    const failing = {
      ...echoPredictor(ECHO_INPUTS),
      predict: async () => Promise.reject(new Error('out of memory')),
    };
    const model = await start(failing);
    await ready(model);
    const { status, body } = await put(model, 'fails', { input: input() });
    expect(status).toBe(200);
    expect(body).toMatchObject({ status: 'failed', output: null, error: 'out of memory' });
    expect(model.stats()).toMatchObject({ predictions: 1, failed: 1 });
  });

  it.each([
    ['a body that is not JSON', '{"input": ', ['body'], 'json_invalid'],
    ['a body id that differs from the URL', { id: 'other', input: input() }, ['body', 'id'], 'value_error'],
  ])('refuses %s with 422 and a Cog-style detail', async (_, body, loc, type) => {
    const model = await start(echoPredictor(ECHO_INPUTS));
    await ready(model);
    const res = await put(model, 'invalid', body);
    expect(res.status).toBe(422);
    expect(res.body.detail).toEqual(
      expect.arrayContaining([expect.objectContaining({ loc, type, msg: expect.any(String) })]),
    );
  });

  it('refuses a body over its limit with 413', async () => {
    const model = await start(echoPredictor(ECHO_INPUTS), { maxBodyBytes: 1000 });
    await ready(model);
    const res = await put(model, 'too-large', { input: input({ prompt: 'x'.repeat(2000) }) });
    expect(res).toEqual({ status: 413, body: { detail: 'Request body too large' } });
  });

  it('answers 404 for unknown routes and predictions, 405 for a wrong method', async () => {
    const model = await start(echoPredictor(ECHO_INPUTS));
    await ready(model);
    expect((await call(`${model.url}/nothing-here`, 'GET')).status).toBe(404);
    expect((await call(`${model.url}/predictions/never-made/cancel`, 'POST')).status).toBe(404);
    expect((await call(`${model.url}/predictions/%E0%A4%A/cancel`, 'POST')).status).toBe(404);
    expect((await call(`${model.url}/predictions/some-id`, 'GET')).status).toBe(405);
    expect((await call(`${model.url}/health-check`, 'POST', {})).status).toBe(405);
  });

  it('serves an output file over http, under its own extension and content type, when asked to', async () => {
    const model = await start(echoPredictor(ECHO_INPUTS), { outputMode: 'http' });
    await ready(model);
    const { body } = await put(model, 'job:1', { input: input() });
    expect(body.output).toBe(`${model.url}/outputs/job%3A1.json`);
    const res = await fetch(body.output as string);
    expect(res.headers.get('content-type')).toBe('application/json');
    expect(await res.json()).toEqual(input());
    expect((await fetch(`${model.url}/outputs/job%3A1.png`)).status).toBe(404);
  });
});

describe('inputs', () => {
  const WINDOWED = {
    ...ECHO_INPUTS,
    window: {
      type: 'string',
      description: 'Which part of the frame to render.',
      enum: ['full', 'tile'],
      default: 'full',
    },
  } as const satisfies InputTable;

  it('validates an input one more declaration adds and passes it through, with no change to the server', async () => {
    const plain = await start(echoPredictor(ECHO_INPUTS));
    const windowed = await start(echoPredictor(WINDOWED));
    await Promise.all([ready(plain), ready(windowed)]);

    const refused = await put(plain, 'window', { input: input({ window: 'tile' }) });
    expect(refused.status).toBe(422);
    expect(refused.body.detail).toEqual([
      { loc: ['body', 'input', 'window'], msg: "Unexpected field 'window'", type: 'extra_forbidden' },
    ]);

    const { body } = await call(`${windowed.url}/openapi.json`, 'GET');
    const inputSchema = (body.components as { schemas: { Input: { properties: Json } } }).schemas.Input;
    expect(inputSchema.properties.window).toEqual({
      type: 'string',
      title: 'Window',
      description: 'Which part of the frame to render.',
      enum: ['full', 'tile'],
      default: 'full',
      'x-order': 2,
    });

    const tile = await put(windowed, 'tile', { input: input({ window: 'tile' }) });
    expect(echoed(tile.body.output)).toEqual({ ...input(), window: 'tile' });
    const byDefault = await put(windowed, 'by-default', { input: input() });
    expect(echoed(byDefault.body.output)).toEqual({ ...input(), window: 'full' });
    const wrong = await put(windowed, 'wrong', { input: input({ window: 'side' }) });
    expect(wrong.status).toBe(422);
    expect(wrong.body.detail).toEqual([
      { loc: ['body', 'input', 'window'], msg: "Input should be 'full' or 'tile'", type: 'enum' },
    ]);
  });
});

describe('list outputs and checks between inputs', () => {
  const COUNTED = {
    ...ECHO_INPUTS,
    count: { type: 'integer', default: 1, minimum: 1, maximum: 4 },
    names: { type: 'array', items: { type: 'string' } },
  } as const satisfies InputTable;

  /** Returns `count` files, one per frame from `frame` (Cog's `-> list[Path]`), each naming its frame. */
  function listPredictor(): Predictor<typeof COUNTED> {
    return {
      ...echoPredictor(COUNTED),
      output: { type: 'array', title: 'Output', items: { type: 'string', format: 'uri' } },
      check: (input) =>
        input.names && input.names.length !== input.count
          ? [
              {
                loc: ['body', 'input', 'names'],
                msg: `Value error, names has ${input.names.length} items, count is ${input.count}`,
                type: 'value_error',
              },
            ]
          : [],
      async predict(input) {
        return Array.from({ length: input.count }, (_, i) => ({
          contentType: 'application/json',
          extension: 'json',
          bytes: Buffer.from(JSON.stringify({ frame: input.frame + i, name: input.names?.[i] })),
        }));
      },
    };
  }

  it('sends a list of files as a list of data URLs, in order', async () => {
    const model = await start(listPredictor());
    await ready(model);
    const { body } = await put(model, 'three', { input: input({ count: 3 }) });
    expect(body.status).toBe('succeeded');
    expect((body.output as unknown[]).map(echoed)).toEqual([
      { frame: 1001 },
      { frame: 1002 },
      { frame: 1003 },
    ]);
    const document = await call(`${model.url}/openapi.json`, 'GET');
    expect((document.body.components as { schemas: Json }).schemas).toMatchObject({
      Output: { type: 'array', items: { type: 'string', format: 'uri' } },
    });
  });

  it('serves each file of a list over http at its index, and only there', async () => {
    const model = await start(listPredictor(), { outputMode: 'http' });
    await ready(model);
    const { body } = await put(model, 'job:2', { input: input({ count: 2 }) });
    expect(body.output).toEqual([
      `${model.url}/outputs/job%3A2/0.json`,
      `${model.url}/outputs/job%3A2/1.json`,
    ]);
    expect(await (await fetch(`${model.url}/outputs/job%3A2/1.json`)).json()).toEqual({ frame: 1002 });
    for (const missing of ['job%3A2.json', 'job%3A2/2.json', 'job%3A2/0.png']) {
      expect((await fetch(`${model.url}/outputs/${missing}`)).status).toBe(404);
    }
  });

  it('answers 422 with the issues the predictor finds between inputs, before anything starts', async () => {
    const model = await start(listPredictor());
    await ready(model);
    const res = await put(model, 'mismatch', { input: input({ count: 2, names: ['a', 'b', 'c'] }) });
    expect(res).toEqual({
      status: 422,
      body: {
        detail: [
          {
            loc: ['body', 'input', 'names'],
            msg: 'Value error, names has 3 items, count is 2',
            type: 'value_error',
          },
        ],
      },
    });
    expect(model.stats().predictions).toBe(0);
    const fine = await put(model, 'matching', { input: input({ count: 2, names: ['a', 'b'] }) });
    expect((fine.body.output as unknown[]).map(echoed)).toEqual([
      { frame: 1001, name: 'a' },
      { frame: 1002, name: 'b' },
    ]);
  });
});

describe('slots and idempotency', () => {
  it('answers 409 for a new prediction while every slot is busy, and reports BUSY meanwhile', async () => {
    const model = await start(echoPredictor(ECHO_INPUTS, { delayMs: 500 }));
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

  it("runs a connection's pipelined predictions one after the other, and drops those left when it closes", async () => {
    const model = await start(echoPredictor(ECHO_INPUTS, { delayMs: 300 }));
    await ready(model);
    const { port } = new URL(model.url);
    const request = (id: string) => {
      const body = JSON.stringify({ input: input() });
      return `PUT /predictions/${id} HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n\r\n${body}`;
    };
    const socket = connect(Number(port), '127.0.0.1');
    await once(socket, 'connect');
    let answers = '';
    socket.on('data', (d: Buffer) => {
      answers += d.toString('latin1');
    });
    // Three at once on one connection: the second and third wait, none is refused.
    socket.write(request('a') + request('b') + request('c'));
    await until(
      async () => (answers.match(/HTTP\/1\.1 200/g) ?? []).length,
      (n) => n === 1,
    );
    expect(answers).not.toMatch(/ 409 /);
    expect(model.stats()).toMatchObject({ predictions: 2, running: 1, rejectedBusy: 0 });
    // The client goes while 'b' runs: 'c', still waiting on the connection, is never started.
    socket.destroy();
    await until(
      async () => model.stats().running,
      (n) => n === 0,
    );
    await sleep(400);
    expect(model.stats()).toMatchObject({ predictions: 2, running: 0, rejectedBusy: 0 });
  });

  it('never starts a second prediction for a repeated PUT with the same id', async () => {
    const model = await start(echoPredictor(ECHO_INPUTS, { delayMs: 400 }));
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

  it('remembers only the most recent finished predictions', async () => {
    const model = await start(echoPredictor(ECHO_INPUTS), { retainPredictions: 2 });
    await ready(model);
    for (const id of ['p1', 'p2', 'p3']) await put(model, id, { input: input() });
    expect(model.stats()).toMatchObject({ predictions: 3, retained: 2 });
    await put(model, 'p3', { input: input() });
    expect(model.stats().predictions).toBe(3);
    await put(model, 'p1', { input: input() });
    expect(model.stats().predictions).toBe(4);
  });

  it('forgets the oldest finished predictions once their outputs pass the byte limit', async () => {
    const outputBytes = Buffer.byteLength(JSON.stringify(input()));
    const model = await start(echoPredictor(ECHO_INPUTS), { retainBytes: 2 * outputBytes });
    await ready(model);
    for (const id of ['b1', 'b2', 'b3']) await put(model, id, { input: input() });
    expect(model.stats()).toMatchObject({ predictions: 3, retained: 2 });
    await put(model, 'b1', { input: input() });
    expect(model.stats().predictions).toBe(4);
  });
});

describe('asynchronous predictions, cancellation and shutdown', () => {
  it('starts a prediction asked synchronously at once and still announces it as starting', async () => {
    let runningWhenPredicted: number | undefined;
    const echo = echoPredictor(ECHO_INPUTS);
    const model = await start({
      ...echo,
      predict(input, context) {
        // The server counts it running while the client waits for the outcome.
        runningWhenPredicted = model.stats().running;
        return echo.predict(input, context);
      },
    });
    const hook = await webhookReceiver();
    try {
      await ready(model);
      const res = await put(model, 'sync-1', { input: input(), webhook: hook.url });
      expect(res.status).toBe(200);
      expect(res.body).toMatchObject({ id: 'sync-1', status: 'succeeded' });
      expect(runningWhenPredicted).toBe(1);
      const body = res.body as { started_at: string; completed_at: string; created_at: string };
      expect(Date.parse(body.started_at)).toBeGreaterThanOrEqual(Date.parse(body.created_at));
      expect(Date.parse(body.completed_at)).toBeGreaterThanOrEqual(Date.parse(body.started_at));
      await until(
        async () => hook.received.length,
        (n) => n >= 2,
      );
      expect(hook.received.map((p) => p.status)).toEqual(['starting', 'succeeded']);
    } finally {
      await hook.close();
    }
  });

  it('answers Prefer: respond-async with 202 at once and reports by webhook', async () => {
    const model = await start(echoPredictor(ECHO_INPUTS, { delayMs: 200 }));
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
      expect(echoed(hook.received[1]!.output).frame).toBe(1001);

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

  it('aborts the predictor on cancel, holds the slot until it returns, and keeps nothing it sends late', async () => {
    let release!: () => void;
    const released = new Promise<void>((resolve) => {
      release = resolve;
    });
    let signal: AbortSignal | undefined;
    const stubborn: Predictor<typeof ECHO_INPUTS> = {
      ...echoPredictor(ECHO_INPUTS),
      // Like a render already on its thread: it cannot stop, it only finishes.
      async predict(_, context) {
        signal = context.signal;
        await released;
        context.log('finished after all');
        return { contentType: 'text/plain', extension: 'txt', bytes: Buffer.from('late') };
      },
    };
    const model = await start(stubborn);
    await ready(model);
    const waiting = put(model, 'to-cancel', { input: input() });
    await until(
      () => health(model),
      (h) => h.status === 'BUSY',
    );

    const cancel = await call(`${model.url}/predictions/to-cancel/cancel`, 'POST');
    expect(cancel).toEqual({ status: 200, body: {} });
    expect(signal?.aborted).toBe(true);
    expect((await waiting).body).toMatchObject({ status: 'canceled', output: null, logs: 'canceled\n' });
    expect((await health(model)).status).toBe('BUSY');
    expect((await call(`${model.url}/predictions/to-cancel/cancel`, 'POST')).status).toBe(404);

    release();
    await ready(model);
    expect((await put(model, 'to-cancel', { input: input() })).body).toMatchObject({
      status: 'canceled',
      output: null,
      logs: 'canceled\n',
    });
    expect(model.stats()).toMatchObject({ predictions: 1, canceled: 1, succeeded: 0 });
  });

  it('lets running predictions finish when closed with a drain time, and refuses new ones', async () => {
    const model = await startCogServer(echoPredictor(ECHO_INPUTS, { delayMs: 300 }), { port: 0 });
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
