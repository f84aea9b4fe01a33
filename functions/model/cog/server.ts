import { randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { type InputOf, type InputTable, validateInput } from './inputs.ts';
import { openApiDocument, WEBHOOK_EVENTS, type WebhookEvent } from './openapi.ts';
import type { OutputFile, Predictor } from './predictor.ts';

/**
 * A server of the Cog HTTP prediction contract (replicate/cog docs/http.md, and its servers
 * python/cog/server/http.py and crates/coglet/src/transport/http/routes.rs) for any predictor: health,
 * the OpenAPI document, predictions created idempotently by id, slots, cancellation, webhooks and
 * shutdown. It knows nothing of what the predictor computes. docs/reference-model.md lists the subset
 * implemented and where it differs from Cog.
 */

export interface CogServerOptions {
  /** 0 picks a free port. Default 0. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Predictions that run at once (Cog's COG_MAX_CONCURRENCY). Default 1, Cog's default. */
  concurrency?: number;
  /** Extra time before the model reports READY, as loading weights would take. Default 0. */
  setupDelayMs?: number;
  /** `data-url` (Cog's default) or `http`: an URL this server serves at GET /outputs/<id>.<extension>. */
  outputMode?: 'data-url' | 'http';
  /** Finished predictions remembered for idempotent PUTs, newest first. Default 1000. */
  retainPredictions?: number;
  /** The most output bytes those remembered predictions may hold. Default 256 MiB. */
  retainBytes?: number;
  /** The largest request body accepted; a larger one is a 413. Default 1 MiB. */
  maxBodyBytes?: number;
}

export interface CogServerStats {
  /** Predictions started; a PUT answered from an existing prediction does not count. */
  predictions: number;
  succeeded: number;
  failed: number;
  canceled: number;
  /** Requests refused with 409 because every slot was busy. */
  rejectedBusy: number;
  running: number;
  /** Finished predictions kept for idempotent PUTs. */
  retained: number;
}

export interface CogServer {
  url: string;
  port: number;
  /**
   * Stops the server. In-flight predictions may finish for up to `drainMs` (default 0); the rest are
   * canceled. New predictions are refused with 503 meanwhile.
   */
  close(options?: { drainMs?: number }): Promise<void>;
  stats(): CogServerStats;
}

type Status = 'starting' | 'processing' | 'succeeded' | 'failed' | 'canceled';
type HealthStatus = 'STARTING' | 'READY' | 'BUSY' | 'SETUP_FAILED' | 'DEFUNCT';

interface Prediction {
  id: string;
  input: Record<string, unknown>;
  status: Status;
  /** A URL per file: one string for a single file, a list for a list of files. */
  output: string | string[] | null;
  error: string | null;
  logs: string;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  /** `metrics.predict_time`, s, from the monotonic clock: Cog gives it to the microsecond. */
  predictTime?: number;
  /** performance.now() as it was created and as it started: the predict time's start. */
  createdClock: number;
  startedClock?: number;
  webhook?: string;
  webhookEvents: readonly WebhookEvent[];
  /** Where an http-mode output is served: the Host the prediction was requested through. */
  baseUrl: string;
  /** What the predictor returned, kept for `/outputs/` and counted against the retained bytes. */
  files?: OutputFile | readonly OutputFile[];
  /** Aborted on cancel: tells the predictor to stop waiting. */
  abort: AbortController;
  /** Resolves when the prediction reaches a terminal status. */
  done: Promise<void>;
  finish: () => void;
}

// Enough for a worker's retries to find their prediction, bounded so a long run does not grow memory.
const RETAIN_PREDICTIONS = 1000;
const RETAIN_BYTES = 256 * 1024 * 1024;
const MAX_BODY_BYTES = 1024 * 1024;

// No parameter properties here: Node 22+ loads these files with type stripping alone, which only erases
// syntax (checked with tsc --erasableSyntaxOnly).
class HttpError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, body: unknown) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** Starts a Cog server for `predictor`; resolves once it listens (it reports STARTING until setup is done). */
export async function startCogServer<T extends InputTable>(
  predictor: Predictor<T>,
  options: CogServerOptions = {},
): Promise<CogServer> {
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new RangeError('concurrency must be an integer from 1 to 64');
  }
  const outputMode = options.outputMode ?? 'data-url';
  const retainPredictions = options.retainPredictions ?? RETAIN_PREDICTIONS;
  const retainBytes = options.retainBytes ?? RETAIN_BYTES;
  const maxBodyBytes = options.maxBodyBytes ?? MAX_BODY_BYTES;
  const document = openApiDocument(predictor);

  const running = new Map<string, Prediction>();
  const finished = new Map<string, Prediction>();
  let retainedBytes = 0;
  const counts = { predictions: 0, succeeded: 0, failed: 0, canceled: 0, rejectedBusy: 0 };
  /** Slots held, each from a prediction's creation until its predictor call has returned. */
  let busySlots = 0;
  let closing = false;
  let defunct: string | undefined;

  const setup = {
    startedAt: new Date(),
    completedAt: undefined as Date | undefined,
    status: 'starting' as 'starting' | 'succeeded' | 'failed',
    logs: '',
  };

  const health = (): HealthStatus => {
    if (defunct) return 'DEFUNCT';
    if (setup.status === 'starting') return 'STARTING';
    if (setup.status === 'failed') return 'SETUP_FAILED';
    return busySlots < concurrency ? 'READY' : 'BUSY';
  };

  const setupDone = (async () => {
    try {
      const [logs] = await Promise.all([
        predictor.setup({
          concurrency,
          // Cog reports a model process that died as DEFUNCT: the container needs replacing, not retrying.
          defunct: (reason) => {
            if (!closing) defunct = reason;
          },
        }),
        sleep(options.setupDelayMs ?? 0),
      ]);
      setup.logs += `${predictor.description}\n${logs}\n`;
      setup.status = 'succeeded';
    } catch (err) {
      setup.logs += `setup failed: ${(err as Error).message}\n`;
      setup.status = 'failed';
    } finally {
      setup.completedAt = new Date();
    }
  })();

  // ---- predictions ----

  function forget(id: string): void {
    retainedBytes -= bytesOf(finished.get(id)?.files);
    finished.delete(id);
  }

  function retain(p: Prediction): void {
    running.delete(p.id);
    forget(p.id);
    finished.set(p.id, p);
    retainedBytes += bytesOf(p.files);
    for (const id of finished.keys()) {
      if (finished.size <= retainPredictions && retainedBytes <= retainBytes) break;
      forget(id);
    }
  }

  function complete(p: Prediction, status: 'succeeded' | 'failed' | 'canceled', error?: string): void {
    if (p.completedAt) return;
    p.status = status;
    p.completedAt = new Date();
    p.predictTime = (performance.now() - (p.startedClock ?? p.createdClock)) / 1000;
    if (error !== undefined) p.error = error;
    counts[status]++;
    retain(p);
    p.finish();
    sendWebhook(p, 'completed');
  }

  async function run(p: Prediction, input: InputOf<T>): Promise<void> {
    try {
      if (p.completedAt) return; // canceled before it started
      sendWebhook(p, 'start'); // Cog sends it while the status is still `starting`
      p.status = 'processing';
      p.startedAt = new Date();
      p.startedClock = performance.now();
      const files = await predictor.predict(input, {
        signal: p.abort.signal,
        // A canceled prediction's record is final: a predictor finishing late adds nothing to it.
        log: (line) => {
          if (!p.completedAt) p.logs += `${line}\n`;
        },
      });
      if (p.completedAt) return; // canceled while predicting
      p.files = files;
      const urlOf = (file: OutputFile, index?: number) =>
        outputMode === 'http'
          ? `${p.baseUrl}/outputs/${encodeURIComponent(p.id)}${index === undefined ? '' : `/${index}`}.${file.extension}`
          : `data:${file.contentType};base64,${file.bytes.toString('base64')}`;
      p.output = isList(files) ? files.map((file, index) => urlOf(file, index)) : urlOf(files);
      complete(p, 'succeeded');
    } catch (err) {
      complete(p, 'failed', (err as Error).message);
    } finally {
      busySlots--;
    }
  }

  function sendWebhook(p: Prediction, event: WebhookEvent): void {
    if (!p.webhook || !p.webhookEvents.includes(event)) return;
    // Best effort, as in Cog: a webhook receiver that is down does not fail the prediction.
    fetch(p.webhook, {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(view(p)),
      signal: AbortSignal.timeout(10_000),
    }).catch(() => undefined);
  }

  /**
   * Creates and starts a prediction, or throws the HttpError Cog would answer with. `respondAsync`: the
   * client is answered at once, with the prediction as created.
   */
  function create(
    id: string,
    body: Record<string, unknown>,
    baseUrl: string,
    respondAsync: boolean,
  ): Prediction {
    if (closing) throw new HttpError(503, { error: 'Server is shutting down', status: 'failed' });
    if (setup.status !== 'succeeded' || defunct) {
      throw new HttpError(503, { error: 'Predictor not ready', status: 'failed' });
    }
    const checked = validateInput(predictor.inputs, body.input ?? {});
    if ('issues' in checked) throw new HttpError(422, { detail: checked.issues });
    const between = predictor.check?.(checked.value) ?? [];
    if (between.length > 0) throw new HttpError(422, { detail: between });
    const webhook = typeof body.webhook === 'string' ? body.webhook : undefined;
    const filter: readonly WebhookEvent[] = Array.isArray(body.webhook_events_filter)
      ? WEBHOOK_EVENTS.filter((e) => (body.webhook_events_filter as unknown[]).includes(e))
      : WEBHOOK_EVENTS;
    if (busySlots >= concurrency) {
      counts.rejectedBusy++;
      // Both shapes: Python Cog answered {detail}, coglet answers {error, status}. Clients key on the 409.
      throw new HttpError(409, {
        detail: 'Already running a prediction',
        error: 'At capacity - all prediction slots busy',
        status: 'failed',
      });
    }
    busySlots++;
    let finish!: () => void;
    const done = new Promise<void>((resolve) => {
      finish = resolve;
    });
    const p: Prediction = {
      id,
      input: (body.input ?? {}) as Record<string, unknown>,
      status: 'starting',
      output: null,
      error: null,
      logs: '',
      createdAt: new Date(),
      createdClock: performance.now(),
      startedAt: null,
      completedAt: null,
      ...(webhook !== undefined && { webhook }),
      webhookEvents: filter,
      baseUrl,
      abort: new AbortController(),
      done,
      finish,
    };
    forget(id);
    running.set(id, p);
    counts.predictions++;
    // An asynchronous answer is written first, so it shows the prediction `starting`, as Cog's does. A
    // client waiting for the outcome sees nothing before it: the predictor starts now, not a turn later
    // behind whatever else the process has queued (measured at 0.3 to 4 ms a prediction, all idle model).
    if (respondAsync) setImmediate(() => void run(p, checked.value));
    else void run(p, checked.value);
    return p;
  }

  function cancel(id: string): boolean {
    const p = running.get(id);
    if (!p) return false;
    p.abort.abort();
    p.logs += 'canceled\n';
    complete(p, 'canceled');
    return true;
  }

  // ---- HTTP ----

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://cog.invalid');
    const path = url.pathname.replace(/\/+$/, '') || '/';
    const method = req.method ?? 'GET';
    // http-mode outputs are addressed the way the client reached this server.
    const baseUrl = `http://${req.headers.host ?? listening}`;
    const respondAsync = String(req.headers.prefer ?? '')
      .split(/\s*[,;]\s*/)
      .includes('respond-async');

    if (path === '/') {
      if (method !== 'GET') return methodNotAllowed(res);
      return send(res, 200, {
        model: predictor.name,
        description: predictor.description,
        version: predictor.version,
        openapi_url: '/openapi.json',
        healthcheck_url: '/health-check',
        predictions_url: '/predictions',
        predictions_idempotent_url: '/predictions/{prediction_id}',
        predictions_cancel_url: '/predictions/{prediction_id}/cancel',
      });
    }
    if (path === '/health-check') {
      if (method !== 'GET') return methodNotAllowed(res);
      return send(res, 200, {
        status: health(),
        setup: {
          started_at: setup.startedAt.toISOString(),
          ...(setup.completedAt && { completed_at: setup.completedAt.toISOString() }),
          status: setup.status,
          logs: setup.logs,
        },
        // Cog names its own server's versions here; this server names the predictor's.
        version: { [`framecast_${predictor.name}`]: predictor.version },
        model: { name: predictor.name, description: predictor.description },
        slots: { total: concurrency, busy: busySlots },
        ...(defunct && { error: defunct }),
      });
    }
    if (path === '/openapi.json') {
      if (method !== 'GET') return methodNotAllowed(res);
      return send(res, 200, document);
    }
    // One file at /outputs/<id>.<ext>, the files of a list at /outputs/<id>/<index>.<ext>.
    const output = /^\/outputs\/([^/]+?)(?:\/(\d+))?\.([^/.]+)$/.exec(path);
    if (output) {
      if (method !== 'GET') return methodNotAllowed(res);
      const [, id, index, extension] = output;
      const file = servedFile(finished.get(pathId(id!))?.files, index);
      if (!file || file.extension !== extension || outputMode !== 'http') {
        return send(res, 404, { detail: 'Not Found' });
      }
      res.writeHead(200, { 'content-type': file.contentType, 'content-length': file.bytes.length });
      res.end(file.bytes);
      return;
    }
    const cancelMatch = /^\/predictions\/([^/]+)\/cancel$/.exec(path);
    if (cancelMatch) {
      if (method !== 'POST') return methodNotAllowed(res);
      return send(res, cancel(pathId(cancelMatch[1]!)) ? 200 : 404, {});
    }
    if (path === '/predictions') {
      if (method !== 'POST') return methodNotAllowed(res);
      const body = await readBody(req, maxBodyBytes);
      const id = typeof body.id === 'string' && body.id !== '' ? body.id : randomUUID().replaceAll('-', '');
      if (running.has(id)) throw new HttpError(409, { detail: `Prediction ${id} is already running` });
      return answer(res, create(id, body, baseUrl, respondAsync), respondAsync);
    }
    const idMatch = /^\/predictions\/([^/]+)$/.exec(path);
    if (idMatch) {
      if (method !== 'PUT') return methodNotAllowed(res);
      const id = pathId(idMatch[1]!);
      const body = await readBody(req, maxBodyBytes);
      if (body.id !== undefined && body.id !== null && body.id !== id) {
        throw new HttpError(422, {
          detail: [
            {
              loc: ['body', 'id'],
              msg: 'prediction ID must match the ID supplied in the URL',
              type: 'value_error',
            },
          ],
        });
      }
      // Idempotent creation: a retry never starts a second prediction. Cog answers 202 with the state of a
      // running one; this server also remembers finished ones (Cog forgets them) and answers with the result.
      const existing = running.get(id);
      if (existing) return send(res, 202, view(existing));
      const done = finished.get(id);
      if (done) return send(res, 200, view(done));
      return answer(res, create(id, body, baseUrl, respondAsync), respondAsync);
    }
    return send(res, 404, { detail: 'Not Found' });
  }

  async function answer(res: ServerResponse, p: Prediction, respondAsync: boolean): Promise<void> {
    if (respondAsync) return send(res, 202, view(p));
    await p.done;
    send(res, 200, view(p));
  }

  let listening = '';
  // A connection's requests are handled one after the other, each once the answer before it is written,
  // as uvicorn (Cog's server) does and HTTP/1.1 asks of requests that are not safe (RFC 9112, 9.3.2): a
  // prediction pipelined behind a running one waits for its slot instead of being refused 409. One still
  // waiting when its connection closes (the client died) is dropped, as uvicorn drops a closed
  // connection's pipeline: nobody is left to read its answer, and it would hold a slot for nothing.
  const queues = new WeakMap<object, Promise<void>>();
  const server = createServer((req, res) => {
    const run = () => {
      if (req.socket.destroyed) return Promise.resolve();
      const answered = new Promise<void>((resolve) => {
        res.once('finish', resolve);
        res.once('close', resolve);
      });
      handle(req, res).catch((err: unknown) => {
        if (err instanceof HttpError) return send(res, err.status, err.body);
        send(res, 500, { detail: 'Internal Server Error' });
      });
      return answered;
    };
    const before = queues.get(req.socket);
    const mine = before ? before.then(run) : run();
    queues.set(req.socket, mine);
  });
  // A synchronous prediction can take as long as the predictor; do not cut it off at Node's default.
  server.requestTimeout = 0;

  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port ?? 0, options.host ?? '127.0.0.1', () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  listening = `${shownHost}:${address.port}`;

  return {
    url: `http://${listening}`,
    port: address.port,
    stats: () => ({ ...counts, running: running.size, retained: finished.size }),
    async close({ drainMs = 0 } = {}) {
      if (closing) return;
      closing = true;
      await setupDone;
      if (drainMs > 0 && running.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          Promise.all([...running.values()].map((p) => p.done)),
          new Promise((resolve) => {
            timer = setTimeout(resolve, drainMs);
          }),
        ]);
        clearTimeout(timer);
      }
      for (const id of [...running.keys()]) cancel(id);
      await predictor.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

const isList = (files: OutputFile | readonly OutputFile[] | undefined): files is readonly OutputFile[] =>
  Array.isArray(files);

/** The file an `/outputs/` path names: a list's files only by index, a single file only without one. */
function servedFile(files: OutputFile | readonly OutputFile[] | undefined, index: string | undefined) {
  if (!isList(files)) return index === undefined ? files : undefined;
  return index === undefined ? undefined : files[Number(index)];
}

const bytesOf = (files: OutputFile | readonly OutputFile[] | undefined): number =>
  files === undefined
    ? 0
    : isList(files)
      ? files.reduce((sum, file) => sum + file.bytes.length, 0)
      : files.bytes.length;

function view(p: Prediction): Record<string, unknown> {
  return {
    id: p.id,
    input: p.input,
    output: p.output,
    status: p.status,
    error: p.error,
    logs: p.logs,
    created_at: p.createdAt.toISOString(),
    started_at: p.startedAt?.toISOString() ?? null,
    completed_at: p.completedAt?.toISOString() ?? null,
    ...(p.predictTime !== undefined && {
      metrics: { predict_time: p.predictTime },
    }),
    ...(p.webhook !== undefined && { webhook: p.webhook, webhook_events_filter: p.webhookEvents }),
  };
}

function send(res: ServerResponse, status: number, body: unknown): void {
  if (res.headersSent) return;
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text) });
  res.end(text);
}

const methodNotAllowed = (res: ServerResponse) => send(res, 405, { detail: 'Method Not Allowed' });

function pathId(segment: string): string {
  try {
    return decodeURIComponent(segment);
  } catch {
    throw new HttpError(404, { detail: 'Not Found' });
  }
}

async function readBody(req: IncomingMessage, maxBytes: number): Promise<Record<string, unknown>> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of req) {
    size += (part as Buffer).length;
    if (size > maxBytes) throw new HttpError(413, { detail: 'Request body too large' });
    parts.push(part as Buffer);
  }
  const text = Buffer.concat(parts).toString('utf8');
  // Cog accepts an empty body as a prediction with empty input.
  if (text.trim() === '') return {};
  let body: unknown;
  try {
    body = JSON.parse(text);
  } catch {
    throw new HttpError(422, { detail: [{ loc: ['body'], msg: 'JSON decode error', type: 'json_invalid' }] });
  }
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    throw new HttpError(422, {
      detail: [{ loc: ['body'], msg: 'Input should be an object', type: 'dict_type' }],
    });
  }
  return body as Record<string, unknown>;
}
