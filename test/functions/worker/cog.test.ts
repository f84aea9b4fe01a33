import { createServer, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { afterEach, describe, expect, it } from 'vitest';
import { readPng, readProvenance } from '../../../functions/core/png.ts';
import { type ReferenceModel, startReferenceModel } from '../../../functions/model/reference/server.ts';
import { CogClient, ModelError } from '../../../functions/worker/cog.ts';

// The Cog client against a real Cog-contract server (the reference model), plus a server of our own
// for contract corners the reference model does not show (a model that declares fewer inputs).
let models: ReferenceModel[] = [];
afterEach(async () => {
  await Promise.all(models.map((m) => m.close()));
  models = [];
});
const start = async (options: Parameters<typeof startReferenceModel>[0] = {}) => {
  const m = await startReferenceModel({ port: 0, ...options });
  models.push(m);
  return m;
};
const input = (frame: number) => ({
  prompt: 'fog over a bridge',
  seed: 7,
  shot_seed: 7,
  width: 64,
  height: 64,
  frame,
  job_id: 'job_T',
  shot: 'SH',
});

describe('the Cog client', () => {
  it('waits until the model is READY, then predicts and decodes a data URL output', async () => {
    const model = await start({ setupDelayMs: 300 });
    const cog = new CogClient({ url: model.url });
    await cog.waitUntilReady(10_000);
    const out = await cog.predict('job_T-1-1', cog.inputFor(input(1)));
    expect(readPng(out.png)).toMatchObject({ width: 64, height: 64 });
    expect(readProvenance(out.png)).toMatchObject({ frame: 1, seed: 7 });
    expect(out.predictTime).toBeGreaterThan(0);
  });

  it('downloads an http URL output', async () => {
    const model = await start({ outputMode: 'http' });
    const cog = new CogClient({ url: model.url });
    await cog.waitUntilReady(10_000);
    const out = await cog.predict('job_T-2-1', cog.inputFor(input(2)));
    expect(readPng(out.png).width).toBe(64);
  });

  it('waits out 409 when every slot is busy, and both predictions succeed', async () => {
    const model = await start({ concurrency: 1, renderDelayMs: 200 });
    // Set for two slots, the client sends both at once over two connections: the model has one.
    const cog = new CogClient({ url: model.url, slots: 2 });
    await cog.waitUntilReady(10_000);
    const [a, b] = await Promise.all([
      cog.predict('job_T-3-1', input(3)),
      cog.predict('job_T-4-1', input(4)),
    ]);
    expect(readProvenance(a.png)?.frame).toBe(3);
    expect(readProvenance(b.png)?.frame).toBe(4);
    expect(model.stats().rejectedBusy).toBeGreaterThan(0);
    expect(model.stats().predictions).toBe(2);
  });

  it('never starts a second prediction when the same id is sent again', async () => {
    const model = await start({ renderDelayMs: 200 });
    const cog = new CogClient({ url: model.url });
    await cog.waitUntilReady(10_000);
    await Promise.all([cog.predict('job_T-5-1', input(5)), cog.predict('job_T-5-1', input(5))]);
    await cog.predict('job_T-5-1', input(5));
    expect(model.stats().predictions).toBe(1);
  });

  it('reports a failed prediction as retryable, and refused input as final', async () => {
    const model = await start({ failFrames: [9] });
    const cog = new CogClient({ url: model.url });
    await cog.waitUntilReady(10_000);
    const failed = await cog.predict('job_T-9-1', input(9)).catch((e: unknown) => e);
    expect(failed).toBeInstanceOf(ModelError);
    expect((failed as ModelError).retryable).toBe(true);
    const refused = await cog.predict('job_T-10-1', { ...input(10), width: 65 }).catch((e: unknown) => e);
    expect(refused).toBeInstanceOf(ModelError);
    expect((refused as ModelError).retryable).toBe(false);
  });

  it('sends only the inputs a model declares, and the job’s params as they are', async () => {
    const seen: unknown[] = [];
    const server = createServer((req, res) => {
      let body = '';
      req.on('data', (c) => (body += c));
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (req.url === '/health-check') return res.end(JSON.stringify({ status: 'READY' }));
        if (req.url === '/openapi.json') {
          return res.end(
            JSON.stringify({ components: { schemas: { Input: { properties: { prompt: {}, seed: {} } } } } }),
          );
        }
        seen.push((JSON.parse(body) as { input: unknown }).input);
        const png = readPngFixture();
        res.end(
          JSON.stringify({ status: 'succeeded', output: `data:image/png;base64,${png.toString('base64')}` }),
        );
      });
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    try {
      const cog = new CogClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
      await cog.waitUntilReady(5_000);
      await cog.predict('x-1-1', cog.inputFor(input(1), { guidance_scale: 7.5 }));
      expect(seen).toEqual([{ prompt: 'fog over a bridge', seed: 7, guidance_scale: 7.5 }]);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('tells when a prediction request is sent, before the model answers it', async () => {
    const model = await start({ renderDelayMs: 200 });
    const cog = new CogClient({ url: model.url });
    await cog.waitUntilReady(10_000);
    const events: string[] = [];
    const predicted = cog
      .predict('job_T-2-1', cog.inputFor(input(2)), undefined, { onSent: () => events.push('sent') })
      .then(() => events.push('answered'));
    await predicted;
    expect(events).toEqual(['sent', 'answered']);
  });

  it("sends a slot's next prediction while the model runs the one before: it waits on the connection, never refused", async () => {
    const model = await start({ concurrency: 1, renderDelayMs: 150 });
    const cog = new CogClient({ url: model.url });
    await cog.waitUntilReady(10_000);
    const events: string[] = [];
    const ask = (frame: number) =>
      cog
        .predict(`job_T-${frame}-1`, cog.inputFor(input(frame)), undefined, {
          onSent: () => events.push(`sent ${frame}`),
        })
        .then((out) => {
          events.push(`answered ${frame}`);
          return out;
        });
    const [a, b] = await Promise.all([ask(5), ask(6)]);
    expect(readProvenance(a.png)?.frame).toBe(5);
    expect(readProvenance(b.png)?.frame).toBe(6);
    // Both requests out before the first answer; the model ran them one after the other, refusing none.
    expect(events).toEqual(['sent 5', 'sent 6', 'answered 5', 'answered 6']);
    expect(model.stats()).toMatchObject({ predictions: 2, rejectedBusy: 0 });
    expect(cog.pipelining).toBe(true);
  });

  it('stops pipelining when the model runs a pipelined request beside the one before, and loses nothing', async () => {
    // A one-slot server that takes each request as it comes, as a bare Node server does: the pipelined
    // request is refused 409 while the first runs.
    const png = readPngFixture();
    let busy = false;
    const answered: number[] = [];
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (req.url === '/health-check') return res.end(JSON.stringify({ status: busy ? 'BUSY' : 'READY' }));
        if (req.url === '/openapi.json') return res.writeHead(404).end();
        if (busy) {
          answered.push(409);
          return res.writeHead(409).end(JSON.stringify({ detail: 'Already running a prediction' }));
        }
        busy = true;
        setTimeout(() => {
          busy = false;
          answered.push(200);
          res.end(
            JSON.stringify({
              status: 'succeeded',
              output: `data:image/png;base64,${png.toString('base64')}`,
              metrics: { predict_time: 0.1 },
            }),
          );
        }, 100);
      });
    });
    const cog = new CogClient({ url: await listening(server) });
    try {
      await cog.waitUntilReady(5_000);
      const made = await Promise.all([1, 2, 3].map((f) => cog.predict(`p-${f}-1`, input(f))));
      expect(made).toHaveLength(3);
      // One refusal turned pipelining off; every prediction then ran once.
      expect(answered.filter((s) => s === 409).length).toBeGreaterThanOrEqual(1);
      expect(answered.filter((s) => s === 200)).toHaveLength(3);
      expect(cog.pipelining).toBe(false);
    } finally {
      await cog.close();
      server.closeAllConnections();
      server.close();
    }
  });

  it('keeps the path of a model URL behind a prefix', async () => {
    const png = readPngFixture();
    const urls: string[] = [];
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        urls.push(`${req.method} ${req.url}`);
        res.setHeader('content-type', 'application/json');
        if (req.url === '/m/health-check') return res.end(JSON.stringify({ status: 'READY' }));
        if (req.url === '/m/predictions/x-1-1')
          return res.end(
            JSON.stringify({
              status: 'succeeded',
              output: `data:image/png;base64,${png.toString('base64')}`,
            }),
          );
        res.writeHead(404).end('{}');
      });
    });
    const cog = new CogClient({ url: `${await listening(server)}/m/` });
    try {
      await cog.waitUntilReady(5_000);
      const out = await cog.predict('x-1-1', input(1));
      expect(readPng(out.png).width).toBeGreaterThan(0);
      expect(urls).toContain('PUT /m/predictions/x-1-1');
      expect(urls.filter((u) => !u.startsWith('GET /m/') && !u.startsWith('PUT /m/'))).toEqual([]);
    } finally {
      await cog.close();
      server.closeAllConnections();
      server.close();
    }
  });

  it('sends successive predictions over one kept-alive connection', async () => {
    let connections = 0;
    const png = readPngFixture();
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.setHeader('content-type', 'application/json');
        if (req.url === '/health-check') return res.end(JSON.stringify({ status: 'READY' }));
        if (req.url === '/openapi.json') return res.writeHead(404).end();
        res.end(
          JSON.stringify({
            status: 'succeeded',
            output: `data:image/png;base64,${png.toString('base64')}`,
            metrics: { predict_time: 0.01 },
          }),
        );
      });
    });
    server.on('connection', () => connections++);
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    try {
      const cog = new CogClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
      const before = connections;
      for (const frame of [1, 2, 3]) {
        const out = await cog.predict(`k-${frame}-1`, cog.inputFor(input(frame)));
        expect(Buffer.from(out.png).equals(png)).toBe(true);
        expect(out.predictTime).toBe(0.01);
      }
      expect(connections - before).toBe(1);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('fails a prediction whose answer is cut off, and goes on with the next', async () => {
    let cut = true;
    const png = readPngFixture();
    const answer = JSON.stringify({
      status: 'succeeded',
      output: `data:image/png;base64,${png.toString('base64')}`,
    });
    const server = createServer((req, res) => {
      req.resume();
      req.on('end', () => {
        res.writeHead(200, { 'content-type': 'application/json', 'content-length': answer.length });
        if (!cut) return res.end(answer);
        // Half the answer, then the connection goes.
        res.write(answer.slice(0, answer.length / 2), () => res.socket?.destroy());
      });
    });
    await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
    try {
      const cog = new CogClient({ url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` });
      await expect(cog.predict('c-1-1', cog.inputFor(input(1)))).rejects.toThrow();
      cut = false;
      const out = await cog.predict('c-1-2', cog.inputFor(input(1)));
      expect(Buffer.from(out.png).equals(png)).toBe(true);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('gives up on a model that never becomes ready', async () => {
    const cog = new CogClient({ url: 'http://127.0.0.1:9' });
    await expect(cog.waitUntilReady(600)).rejects.toThrow(/not ready/);
  });

  it('reads every file of a window, from data URLs or http URLs, and one file as a single output', async () => {
    for (const outputMode of ['data-url', 'http'] as const) {
      const model = await start({ outputMode });
      const cog = new CogClient({ url: model.url });
      await cog.waitUntilReady(10_000);
      const window = { ...input(10), start_frame: 10, num_frames: 3 };
      const out = await cog.predictFiles(`job_T-w0-1-${outputMode}`, cog.inputFor(window));
      expect(out.single).toBe(false);
      expect(out.files.map((png) => readProvenance(png)?.frame)).toEqual([10, 11, 12]);
    }
    const video = await start({ output: 'video' });
    const cog = new CogClient({ url: video.url });
    await cog.waitUntilReady(10_000);
    const out = await cog.predictFiles('job_T-w0-1-video', { ...input(10), start_frame: 10, num_frames: 3 });
    expect(out.single).toBe(true);
    expect(out.files).toHaveLength(1);
  });

  it('hands a window its files one at a time, in order, and reads no more of the answer until each is taken', async () => {
    // Three files of 8 MB: more than the connection buffers between the model and the worker hold.
    const files = [0, 1, 2].map((i) => Buffer.alloc(8 * 1024 * 1024, i + 1));
    let sentWhole = false;
    let sent = () => {};
    const allSent = new Promise<void>((resolve) => {
      sent = resolve;
    });
    const server = answering((res) => {
      // The status after the output, as Cog's JSON may put it.
      const answer = `{"output":[${files.map((f) => `"data:image/png;base64,${f.toString('base64')}"`).join(',')}],"status":"succeeded","metrics":{"predict_time":2}}`;
      res.end(answer, () => {
        sentWhole = true;
        sent();
      });
    });
    const cog = new CogClient({ url: await listening(server) });
    try {
      const handed: number[] = [];
      let taking = 0;
      let wholeDuringFirst: boolean | undefined;
      const out = await cog.predictEach('s-w0-1', cog.inputFor(input(1)), async (file, index) => {
        taking++;
        expect(taking).toBe(1);
        expect(Buffer.from(file).equals(files[index]!)).toBe(true);
        if (index === 0) {
          await new Promise((r) => setTimeout(r, 300));
          wholeDuringFirst = sentWhole;
        }
        handed.push(index);
        taking--;
      });
      expect(handed).toEqual([0, 1, 2]);
      expect(out).toEqual({ count: 3, single: false, predictTime: 2 });
      // While the first file was being taken, the model could not send the rest: nothing read it.
      expect(wholeDuringFirst).toBe(false);
      await allSent;
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('hands the files of a failed prediction on as they come, and the call fails after them', async () => {
    const png = readPngFixture();
    const server = answering((res) =>
      res.end(
        JSON.stringify({
          output: [png, png].map((f) => `data:image/png;base64,${f.toString('base64')}`),
          status: 'failed',
          error: 'CUDA out of memory',
        }),
      ),
    );
    const cog = new CogClient({ url: await listening(server) });
    try {
      const handed: number[] = [];
      const failed = await cog
        .predictEach('f-w0-1', cog.inputFor(input(1)), async (_file, index) => {
          handed.push(index);
        })
        .catch((e: unknown) => e);
      expect(handed).toEqual([0, 1]);
      expect(failed).toBeInstanceOf(ModelError);
      expect((failed as ModelError).message).toMatch(/CUDA out of memory/);
      expect((failed as ModelError).retryable).toBe(true);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('fails a prediction whose answer is cut off after some of its files were handed on', async () => {
    const png = readPngFixture();
    const file = `"data:image/png;base64,${png.toString('base64')}"`;
    const server = answering((res) => {
      const head = `{"output":[${file},`;
      const answer = `${head}${file}],"status":"succeeded"}`;
      // The first file and half the second, then, once the worker has read them, the connection goes.
      res.writeHead(200, { 'content-length': answer.length });
      res.write(answer.slice(0, head.length + file.length / 2), () =>
        setTimeout(() => res.socket?.destroy(), 100),
      );
    });
    const cog = new CogClient({ url: await listening(server) });
    try {
      const handed: number[] = [];
      const cut = cog.predictEach('cut-w0-1', cog.inputFor(input(1)), async (_file, index) => {
        handed.push(index);
      });
      await expect(cut).rejects.toThrow();
      expect(handed).toEqual([0]);
    } finally {
      server.closeAllConnections();
      server.close();
    }
  });

  it('hands files on through 409s and retried ids alike, from data URLs and http URLs, one prediction per id', async () => {
    for (const outputMode of ['data-url', 'http'] as const) {
      const model = await start({ outputMode, concurrency: 1, renderDelayMs: 100 });
      const cog = new CogClient({ url: model.url, slots: 2 });
      await cog.waitUntilReady(10_000);
      const window = (start: number) => ({ ...input(start), start_frame: start, num_frames: 3 });
      const handed: string[] = [];
      const take = (id: string) => async (file: Uint8Array, index: number) => {
        handed.push(`${id}:${index}:${readProvenance(file)?.frame}`);
      };
      // Two windows at once on one slot (409 for one of them), and the first asked again by its id.
      const [a, b] = await Promise.all([
        cog.predictEach('job_T-w0-1', cog.inputFor(window(10)), take('a')),
        cog.predictEach('job_T-w1-1', cog.inputFor(window(20)), take('b')),
      ]);
      await cog.predictEach('job_T-w0-1', cog.inputFor(window(10)), take('a'));
      expect(a.count + b.count).toBe(6);
      expect(handed.filter((h) => h.startsWith('b:'))).toEqual(['b:0:20', 'b:1:21', 'b:2:22']);
      expect(handed.filter((h) => h.startsWith('a:'))).toEqual([
        'a:0:10',
        'a:1:11',
        'a:2:12',
        'a:0:10',
        'a:1:11',
        'a:2:12',
      ]);
      expect(model.stats().rejectedBusy).toBeGreaterThan(0);
      expect(model.stats().predictions).toBe(2);
    }
  });
});

/** A model of our own that answers every prediction with `answer`. */
function answering(answer: (res: ServerResponse) => void) {
  return createServer((req, res) => {
    req.resume();
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.url === '/health-check') return res.end(JSON.stringify({ status: 'READY' }));
      if (req.url === '/openapi.json') return res.writeHead(404).end();
      answer(res);
    });
  });
}

async function listening(server: ReturnType<typeof createServer>): Promise<string> {
  await new Promise<void>((ok) => server.listen(0, '127.0.0.1', ok));
  return `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
}

function readPngFixture(): Buffer {
  // A 1x1 PNG, enough for the client, which does not judge pixels.
  return Buffer.from(
    'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAIAAACQd1PeAAAADElEQVR4nGP4z8AAAAMBAQDJ/pLvAAAAAElFTkSuQmCC',
    'base64',
  );
}
