/**
 * A client of the Cog HTTP prediction contract (github.com/replicate/cog, docs/http.md), the contract of
 * thousands of packaged models: the worker talks to the model container in its task through this alone.
 */

import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
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
  /** For the health check, the schema and output downloads; predictions go over node:http (`send`). */
  readonly fetch?: typeof fetch;
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
  readonly body: AsyncIterable<Uint8Array>;
  text(): Promise<string>;
  /** Drops the rest of the body (and the connection with it). */
  cancel(): void;
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

export class CogClient {
  private declared: Set<string> | undefined;
  private readonly fetch: typeof fetch;
  /** One kept-alive connection per slot to the model, reused prediction after prediction. */
  private readonly agent: HttpAgent;
  readonly url: string;

  constructor(private readonly options: CogClientOptions) {
    this.url = options.url.replace(/\/+$/, '');
    this.fetch = options.fetch ?? globalThis.fetch;
    this.agent = this.url.startsWith('https:')
      ? new HttpsAgent({ keepAlive: true })
      : new HttpAgent({ keepAlive: true });
  }

  /**
   * One prediction request, over node:http rather than fetch: the worker's prediction loop is the model's
   * idle time, and fetch's web streams (its request body an async iterator, its answer a ReadableStream)
   * cost about 1.5 ms a prediction on a shared core against well under 1 ms here. The body is sent with
   * the headers in one write, on a kept-alive connection with Nagle off (Node's default for a request).
   */
  private send(id: string, body: string, signal: AbortSignal, onSent?: () => void): Promise<Answer> {
    const url = `${this.url}/predictions/${encodeURIComponent(id)}`;
    const request = url.startsWith('https:') ? httpsRequest : httpRequest;
    return new Promise((resolve, reject) => {
      const req = request(
        url,
        {
          method: 'PUT',
          agent: this.agent,
          signal,
          headers: { 'content-type': 'application/json', 'content-length': Buffer.byteLength(body) },
        },
        (res: IncomingMessage) => {
          // A connection lost mid-answer fails the read of the body (readAnswer), not the process.
          res.on('error', () => undefined);
          resolve({
            status: res.statusCode ?? 0,
            body: res,
            async text() {
              const parts: Buffer[] = [];
              for await (const part of res) parts.push(part as Buffer);
              return Buffer.concat(parts).toString('utf8');
            },
            cancel: () => res.destroy(),
          });
        },
      );
      // `on`, not `once`: the request may fail again after its answer began (rejecting then is a no-op).
      req.on('error', reject);
      // Written whole to the connection: what follows is the model's.
      if (onSent) req.once('finish', onSent);
      req.end(body);
    });
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
          await this.loadDeclaredInputs();
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
    const { output, predictTime } = await this.run(id, input, signal, options.onSent);
    return {
      png: await this.readOutput(Array.isArray(output) ? output[0] : output, signal),
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
  ): Promise<{ output: unknown; predictTime?: number }> {
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
        res.cancel();
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
