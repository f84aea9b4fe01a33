/**
 * A client of the Cog HTTP prediction contract (github.com/replicate/cog, docs/http.md), the contract of
 * thousands of packaged models: the worker talks to the model container in its task through this alone.
 */

// undici's Client and its request, without undici's index: importing that makes undici the process's
// global dispatcher, so that Node's own fetch (health checks, uploads, every other client) would go
// through this copy of undici rather than the one Node carries. Types: ./undici.d.ts.
import type { Client } from 'undici';
import requestOn from 'undici/lib/api/api-request.js';
import Connection from 'undici/lib/dispatcher/client.js';
import { CogResponseError, HandedFile, readCogJson } from './cog-response.ts';

export class ModelError extends Error {
  constructor(
    message: string,
    /** False when asking again cannot help (the model refused the input). */
    readonly retryable = true,
  ) {
    super(message);
    this.name = 'ModelError';
  }
}

export interface Prediction {
  readonly png: Uint8Array;
  /** The model's own time, seconds (`metrics.predict_time`). */
  readonly predictTime?: number;
  /**
   * How long the model's slot was this prediction's, ms: from its request, or, pipelined behind another,
   * from that one's answer, to its own answer; its share of the GPU, queueing excluded. Never less than
   * the model's own `predict_time`: two answers read together (the worker busy when the first came)
   * would otherwise give the second next to nothing.
   */
  readonly slotMs: number;
}

/** A prediction's every output file, in order: a list (Cog `list[Path]`) or one file. */
export interface FilesPrediction {
  readonly files: Uint8Array[];
  /** True when the model answered one file rather than a list (a video model's `Path`). */
  readonly single: boolean;
  readonly predictTime?: number;
}

/** A prediction whose files were handed on one at a time (`CogClient.predictEach`): how many there were. */
export interface HandedPrediction {
  readonly count: number;
  readonly single: boolean;
  readonly predictTime?: number;
}

/** Takes one output file, at its place in the output; the next is not read until it resolves. */
export type OnFile = (file: Uint8Array, index: number) => Promise<void>;

export interface CogClientOptions {
  readonly url: string;
  /** Gives up on one prediction after this long, 409 waits included. */
  readonly predictionTimeoutMs?: number;
  /** Largest output accepted, so a broken model cannot exhaust the worker's memory. */
  readonly maxOutputBytes?: number;
  /**
   * Called when the model answers 409 (every slot busy), before asking again; by default a short wait.
   * The worker waits for one of its own predictions to end instead (worker.ts).
   */
  readonly onBusy?: () => Promise<void>;
  /** For the health check, the schema and output downloads; predictions go over undici (`send`). */
  readonly fetch?: typeof fetch;
  /** The model's prediction slots: one connection each (default 1). `setSlots` changes it later. */
  readonly slots?: number;
  /**
   * Whether each slot's next prediction request may wait on its connection, pipelined behind the one the
   * model is running (default true): see `send`.
   */
  readonly pipelining?: boolean;
}

export interface PredictOptions {
  /**
   * Called each time the prediction request has been written to the model's connection: the model has
   * its work, so the caller may turn to its own (the worker stores the frame before).
   */
  readonly onSent?: () => void;
}

/** A prediction request's answer: its status and its body as it streams in. */
interface Answer {
  readonly status: number;
  /** The slot's time this request had: see `Prediction.slotMs`. */
  readonly slotMs: number;
  readonly body: AsyncIterable<Uint8Array>;
  text(): Promise<string>;
  /** Drops the rest of the body (and the connection with it). */
  cancel(): void;
  /** Reads a short body to its end and forgets it, keeping the connection (a 409's). */
  discard(): Promise<void>;
}

interface CogPrediction {
  status?: string;
  output?: unknown;
  error?: string | null;
  metrics?: { predict_time?: number };
}

const sleep = (ms: number, signal?: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal?.addEventListener(
      'abort',
      () => {
        clearTimeout(t);
        resolve();
      },
      { once: true },
    );
  });

/** The inputs Framecast knows how to fill; each is sent only if the model declares it. */
export interface FrameInput {
  readonly prompt: string;
  readonly negative_prompt?: string;
  readonly seed: number;
  /** The job's seed: models that declare it keep one scene across a shot seeded frame by frame. */
  readonly shot_seed: number;
  readonly width: number;
  readonly height: number;
  readonly frame: number;
  /** A window: its first frame, its length, and in chained mode the frames it continues (URLs, in order). */
  readonly start_frame?: number;
  readonly num_frames?: number;
  readonly context?: readonly string[];
  readonly job_id: string;
  readonly shot: string;
  /** Many Cog image models default to webp or jpg; frames are PNG. */
  readonly output_format?: 'png';
  readonly num_outputs?: 1;
}

/** One connection to the model, for one of its slots, and the prediction requests on it now. */
interface Lane {
  readonly connection: Client;
  /** Requests sent (or queued) on it and not yet answered in full. */
  inFlight: number;
  /** Whether the last request answered on it ran (2xx): one pipelined behind it then found the slot free. */
  lastRan: boolean;
  /** When its last answer came (performance.now()): the slot was free from then for the request behind. */
  answeredAt: number;
}

/** Requests a lane holds at most when pipelining: the one the model runs and the next, waiting. */
const PIPELINE_DEPTH = 2;

export class CogClient {
  private declared: Set<string> | undefined;
  private readonly fetch: typeof fetch;
  /** One kept-alive connection per slot to the model, reused prediction after prediction. */
  private readonly lanes: Lane[] = [];
  private slots: number;
  private pipelined: boolean;
  readonly url: string;
  /** The model URL's origin, for the connections, and its path, if any (a model behind a proxy's prefix). */
  private readonly origin: string;
  private readonly basePath: string;

  constructor(private readonly options: CogClientOptions) {
    this.url = options.url.replace(/\/+$/, '');
    const url = new URL(this.url);
    this.origin = url.origin;
    this.basePath = url.pathname.replace(/\/+$/, '');
    this.fetch = options.fetch ?? globalThis.fetch;
    this.slots = Math.max(1, options.slots ?? 1);
    this.pipelined = options.pipelining ?? true;
  }

  /** The model's slots as now known (a 409 confirmed by the health check can lower them). */
  setSlots(slots: number): void {
    this.slots = Math.max(1, slots);
  }

  /** Whether requests are pipelined; false once the model refused one that waited behind another. */
  get pipelining(): boolean {
    return this.pipelined;
  }

  /**
   * The connection for the next request, among the slots' own: one with nothing on it, else one whose
   * only request the model is running (the new one waits behind it), else the least loaded (undici holds
   * the request until the connection has room).
   */
  private lane(): Lane {
    for (let i = this.lanes.length; i < this.slots; i++) {
      this.lanes.push({
        connection: new Connection(this.origin, {
          pipelining: this.pipelined ? PIPELINE_DEPTH : 1,
        }),
        inFlight: 0,
        lastRan: false,
        answeredAt: 0,
      });
    }
    const usable = this.lanes.slice(0, this.slots);
    return usable.reduce((best, lane) => (lane.inFlight < best.inFlight ? lane : best));
  }

  /**
   * One prediction request. Each slot has its connection, and the next request for a slot is sent while
   * the model still runs the one before (HTTP/1.1 pipelining): it waits in the model's socket and starts
   * the moment the slot frees, without the round trip of an answer read and a request written (about
   * 1.3 ms a prediction here: docs/performance.md). HTTP/1.1 has a server answer pipelined requests in
   * order and run those that are not safe (a PUT) one after the other (RFC 9112, 9.3.2); Cog's servers
   * (uvicorn, which queues a connection's pipelined requests until the answer before is written, and
   * coglet's hyper) do. A server that runs them side by side answers the second 409 while the first
   * runs: pipelining is then turned off for good, and the request asked again.
   */
  private async send(id: string, body: string, signal: AbortSignal, onSent?: () => void): Promise<Answer> {
    const lane = this.lane();
    const behind = lane.inFlight > 0;
    const sentAt = performance.now();
    lane.inFlight++;
    let settled = false;
    const done = () => {
      if (settled) return;
      settled = true;
      lane.inFlight--;
    };
    const asked = requestOn.call(lane.connection, {
      path: `${this.basePath}/predictions/${encodeURIComponent(id)}`,
      method: 'PUT',
      headers: { 'content-type': 'application/json' },
      body,
      signal,
      // PUT with the prediction's id: sent again, it joins its prediction rather than start another.
      idempotent: true,
      blocking: false,
    });
    // undici writes a request at once on a connection with room: the model has its work.
    onSent?.();
    let res: Awaited<typeof asked>;
    try {
      res = await asked;
    } catch (err) {
      done();
      lane.lastRan = false;
      throw err;
    }
    const status = res.statusCode;
    const ran = status >= 200 && status <= 299;
    const answeredAt = performance.now();
    // Answers come in order: the one before this on the lane was answered by now.
    const slotMs = answeredAt - (behind ? Math.max(sentAt, lane.answeredAt) : sentAt);
    lane.answeredAt = answeredAt;
    res.body.once('close', done);
    res.body.once('error', () => undefined);
    if (status === 409 && behind && lane.lastRan && this.pipelined) this.stopPipelining();
    lane.lastRan = ran;
    return {
      status,
      slotMs,
      body: res.body,
      text: () => res.body.text(),
      cancel: () => {
        res.body.destroy();
        done();
      },
      // Past undici's limit (128 KiB) the body is dropped with its connection instead.
      discard: () => res.body.dump().catch(() => undefined),
    };
  }

  /** The model ran a pipelined request beside the one before it: from now on one request a connection. */
  private stopPipelining(): void {
    this.pipelined = false;
    for (const lane of this.lanes) lane.connection.pipelining = 1;
  }

  /** Opens each slot's connection (with a health check), so that the first prediction does not wait for it. */
  private async connect(): Promise<void> {
    this.lane();
    await Promise.all(
      this.lanes.map(async ({ connection }) => {
        try {
          const res = await requestOn.call(connection, {
            path: `${this.basePath}/health-check`,
            method: 'GET',
          });
          await res.body.dump();
        } catch {
          // The first prediction connects instead.
        }
      }),
    );
  }

  /** Closes the model's connections (requests on them fail); the client opens new ones if asked again. */
  async close(): Promise<void> {
    const lanes = this.lanes.splice(0);
    await Promise.all(lanes.map((lane) => lane.connection.destroy().catch(() => undefined)));
  }

  /**
   * Waits until `GET /health-check` says READY (or BUSY: set up, slots taken). It always answers 200;
   * the state is in the body. SETUP_FAILED and DEFUNCT are final.
   */
  async waitUntilReady(timeoutMs = 15 * 60_000, signal?: AbortSignal): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    let last = 'unreachable';
    while (Date.now() < deadline && !signal?.aborted) {
      try {
        const res = await this.fetch(`${this.url}/health-check`, { signal: AbortSignal.timeout(5000) });
        const body = (await res.json()) as { status?: string };
        last = body.status ?? 'unknown';
        if (last === 'READY' || last === 'BUSY') {
          await Promise.all([this.loadDeclaredInputs(), this.connect()]);
          return;
        }
        if (last === 'SETUP_FAILED' || last === 'DEFUNCT') throw new ModelError(`model is ${last}`, false);
      } catch (err) {
        if (err instanceof ModelError) throw err;
        last = 'unreachable';
      }
      // Often: each poll missed after the model is set up is the GPU's idle time.
      await sleep(100, signal);
    }
    throw new ModelError(`model at ${this.url} not ready within ${timeoutMs} ms (last state: ${last})`);
  }

  /**
   * Asks the model to stop prediction `id` (`POST /predictions/{id}/cancel`): its request then answers
   * `canceled`, and its slot frees. False when the model does not know the id (ended, or never started)
   * or cannot be reached: the prediction then runs to its end, and its caller drops the answer.
   */
  async cancel(id: string): Promise<boolean> {
    try {
      const res = await this.fetch(`${this.url}/predictions/${encodeURIComponent(id)}/cancel`, {
        method: 'POST',
        signal: AbortSignal.timeout(5000),
      });
      await res.body?.cancel().catch(() => undefined);
      return res.ok;
    } catch {
      return false;
    }
  }

  /** The model's state as `GET /health-check` gives it (READY, BUSY, STARTING, ...), or 'unreachable'. */
  async health(): Promise<string> {
    try {
      const res = await this.fetch(`${this.url}/health-check`, { signal: AbortSignal.timeout(2000) });
      const body = (await res.json()) as { status?: string };
      return body.status ?? 'unknown';
    } catch {
      return 'unreachable';
    }
  }

  /** The model's declared inputs, from its OpenAPI schema; unknown means "send everything". */
  private async loadDeclaredInputs(): Promise<void> {
    try {
      const res = await this.fetch(`${this.url}/openapi.json`, { signal: AbortSignal.timeout(5000) });
      if (!res.ok) return;
      const doc = (await res.json()) as { components?: { schemas?: { Input?: { properties?: object } } } };
      const props = doc.components?.schemas?.Input?.properties;
      if (props) this.declared = new Set(Object.keys(props));
    } catch {
      // A model without a schema gets every input; it may ignore what it does not know.
    }
  }

  /** Framecast's inputs the model declares, plus the job's own `params` as they are. */
  inputFor(frame: FrameInput, params: Record<string, unknown> = {}): Record<string, unknown> {
    const input: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(frame)) {
      if (v !== undefined && (!this.declared || this.declared.has(k))) input[k] = v;
    }
    return { ...input, ...params };
  }

  /**
   * Runs one prediction with `PUT /predictions/{id}`. The id comes from job, frame and attempt, so a
   * retried request (after a timeout, say) never starts a second prediction: Cog answers a PUT for an id
   * it is already running with that prediction's state. 409 means every slot is busy: wait and ask again.
   */
  async predict(
    id: string,
    input: Record<string, unknown>,
    signal?: AbortSignal,
    options: PredictOptions = {},
  ): Promise<Prediction> {
    const { output, predictTime, slotMs } = await this.run(id, input, signal, options.onSent);
    return {
      png: await this.readOutput(Array.isArray(output) ? output[0] : output, signal),
      slotMs: Math.max(slotMs, (predictTime ?? 0) * 1000),
      ...(predictTime !== undefined && { predictTime }),
    };
  }

  /**
   * Runs one prediction and reads every file it outputs, in order: a window's frames as a list, or a
   * video as one file. Held whole: `predictEach` hands them on one at a time instead.
   */
  async predictFiles(
    id: string,
    input: Record<string, unknown>,
    signal?: AbortSignal,
  ): Promise<FilesPrediction> {
    const files: Uint8Array[] = [];
    const out = await this.predictEach(
      id,
      input,
      async (file, index) => {
        files[index] = file;
      },
      signal,
    );
    // An answer polled before the last may have had more files: the last one's are the prediction's.
    files.length = out.count;
    return {
      files,
      single: out.single,
      ...(out.predictTime !== undefined && { predictTime: out.predictTime }),
    };
  }

  /**
   * Runs one prediction and hands each file it outputs to `onFile`, one at a time: a data URL as soon as
   * it is decoded from the answer, which is not read further until `onFile` resolves (so a slow taker
   * holds the model's answer back, not the worker's memory), an http URL downloaded once the answer is
   * read, one after the other. Files are handed before the prediction's outcome is known (Cog's JSON may
   * put `status` after `output`), and a polled answer may hand some again: only this call's success says
   * they are the model's answer, so what `onFile` does with them must be harmless until then.
   */
  async predictEach(
    id: string,
    input: Record<string, unknown>,
    onFile: OnFile,
    signal?: AbortSignal,
  ): Promise<HandedPrediction> {
    const { output, predictTime } = await this.run(id, input, signal, undefined, onFile);
    const list = Array.isArray(output) ? (output as unknown[]) : [output];
    if (list.length === 0) throw new ModelError('model gave an empty list of files');
    for (const [i, value] of list.entries()) {
      if (value instanceof HandedFile) continue;
      await onFile(await this.readOutput(value, signal), i);
    }
    return {
      count: list.length,
      single: !Array.isArray(output),
      ...(predictTime !== undefined && { predictTime }),
    };
  }

  /** PUT until the prediction has an outcome; its raw output and the model's own time. */
  private async run(
    id: string,
    input: Record<string, unknown>,
    signal?: AbortSignal,
    onSent?: () => void,
    /** Takes each data URL file as it is decoded (`predictEach`); otherwise they are in the output. */
    onFile?: OnFile,
  ): Promise<{ output: unknown; predictTime?: number; slotMs: number }> {
    const deadline = Date.now() + (this.options.predictionTimeoutMs ?? 10 * 60_000);
    let wait = 100;
    for (;;) {
      if (signal?.aborted) throw new ModelError('prediction aborted');
      if (Date.now() > deadline) throw new ModelError(`prediction ${id} timed out`);
      let res: Answer;
      try {
        res = await this.send(
          id,
          JSON.stringify({ id, input }),
          signal
            ? AbortSignal.any([signal, AbortSignal.timeout(deadline - Date.now())])
            : AbortSignal.timeout(deadline - Date.now()),
          onSent,
        );
      } catch (err) {
        // The connection dropped: ask again with the same id, which cannot start a second prediction.
        if (signal?.aborted) throw new ModelError('prediction aborted');
        await sleep(wait, signal);
        wait = Math.min(wait * 2, 2000);
        if (Date.now() > deadline) throw new ModelError(`prediction ${id} failed: ${(err as Error).message}`);
        continue;
      }
      if (res.status === 409) {
        await res.discard();
        if (this.options.onBusy) await this.options.onBusy();
        else await sleep(wait, signal);
        // Short: a slot frees when a prediction ends, and a prediction is not much shorter than this.
        wait = Math.min(wait * 2, 250);
        continue;
      }
      if (res.status === 422 || res.status === 400) {
        throw new ModelError(`model refused the input: ${(await res.text()).slice(0, 500)}`, false);
      }
      if (res.status < 200 || res.status > 299) {
        throw new ModelError(`model answered ${res.status}: ${(await res.text()).slice(0, 200)}`);
      }
      // Read as it streams in: a data URL output is decoded on the way, never held whole as text.
      const body = (await this.readAnswer(res, onFile)) as CogPrediction;
      switch (body.status) {
        case 'succeeded':
          return {
            output: body.output,
            slotMs: res.slotMs,
            ...(typeof body.metrics?.predict_time === 'number' && { predictTime: body.metrics.predict_time }),
          };
        case 'failed':
          throw new ModelError(`model failed: ${body.error ?? 'no error given'}`);
        case 'canceled':
          throw new ModelError('prediction was canceled');
        default:
          // starting / processing: the prediction is running; asking again with its id is a poll.
          await sleep(Math.max(wait, 250), signal);
      }
    }
  }

  private get maxOutputBytes(): number {
    return this.options.maxOutputBytes ?? 512 * 1024 * 1024;
  }

  /** A prediction's answer, its data URL outputs decoded into bytes as they stream in (./cog-response.ts). */
  private async readAnswer(res: Answer, onFile?: OnFile): Promise<unknown> {
    try {
      return await readCogJson(res.body, { maxBytes: this.maxOutputBytes, ...(onFile && { onFile }) });
    } catch (err) {
      res.cancel();
      if (err instanceof CogResponseError) throw new ModelError(err.message);
      throw err;
    }
  }

  /** A file output: bytes decoded from a data URL as the answer streamed in, a data URL, or an http(s) URL to fetch. */
  private async readOutput(value: unknown, signal?: AbortSignal): Promise<Uint8Array> {
    const max = this.maxOutputBytes;
    if (value instanceof Uint8Array) {
      if (value.byteLength > max) throw new ModelError('output too large');
      return value;
    }
    if (typeof value !== 'string') throw new ModelError('model gave no file output');
    if (value.startsWith('data:')) {
      const comma = value.indexOf(',');
      if (comma < 0) throw new ModelError('malformed data URL output');
      const meta = value.slice(5, comma);
      const payload = value.slice(comma + 1);
      const bytes = meta.endsWith(';base64')
        ? Buffer.from(payload, 'base64')
        : Buffer.from(decodeURIComponent(payload), 'latin1');
      if (bytes.byteLength > max) throw new ModelError('output too large');
      return bytes;
    }
    if (/^https?:\/\//i.test(value)) {
      // Plain http only from the model's own origin (the container beside the worker): an output URL
      // must not turn the worker into a way to reach the task's metadata or the VPC.
      if (!value.toLowerCase().startsWith('https://') && new URL(value).origin !== new URL(this.url).origin) {
        throw new ModelError(
          `output URL is neither https nor on the model's own origin: ${new URL(value).origin}`,
        );
      }
      const res = await this.fetch(value, {
        signal: signal
          ? AbortSignal.any([signal, AbortSignal.timeout(120_000)])
          : AbortSignal.timeout(120_000),
      });
      if (!res.ok) throw new ModelError(`output download answered ${res.status}`);
      const declared = Number(res.headers.get('content-length') ?? '0');
      if (declared > max) throw new ModelError('output too large');
      return readBody(res, declared, max);
    }
    throw new ModelError('output is neither a data URL nor an http URL');
  }
}

/**
 * A downloaded file's bytes, read into one buffer of its declared length as they arrive (no second copy
 * of the file); without a length, in pieces joined at the end.
 */
async function readBody(res: Response, declared: number, max: number): Promise<Uint8Array> {
  const body = res.body as unknown as AsyncIterable<Uint8Array> | null;
  if (!body) return new Uint8Array(0);
  const into = declared > 0 ? Buffer.allocUnsafe(declared) : undefined;
  const pieces: Uint8Array[] = [];
  let length = 0;
  for await (const chunk of body) {
    if (length + chunk.byteLength > (into ? declared : max)) {
      await res.body?.cancel().catch(() => undefined);
      throw new ModelError(into ? 'output longer than its content-length' : 'output too large');
    }
    if (into) into.set(chunk, length);
    else pieces.push(chunk);
    length += chunk.byteLength;
  }
  if (into) {
    if (length !== declared) throw new ModelError('output shorter than its content-length');
    return into;
  }
  return Buffer.concat(pieces, length);
}
