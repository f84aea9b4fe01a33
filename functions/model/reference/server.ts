import { randomInt, randomUUID } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { isMainThread, parentPort, Worker, workerData } from 'node:worker_threads';
import { encodePng, type Provenance, provenanceText } from '../../core/png.ts';
import { type FrameRequest, renderFrame } from './render.ts';

/**
 * The `reference` model server: the Cog HTTP prediction contract (replicate/cog docs/http.md, and its
 * servers python/cog/server/http.py and crates/coglet/src/transport/http/routes.rs) over the procedural
 * renderer. Local mode and the tests run it where production runs a Cog-packaged image, so the worker
 * talks to both the same way. docs/reference-model.md lists the subset implemented and where it differs.
 */

export const REFERENCE_DESCRIPTION =
  'Framecast reference model: a procedural CPU renderer for local mode and tests; production replaces it with a Cog-packaged image';

export const REFERENCE_VERSION = '1.0.0';

export interface ReferenceModelOptions {
  /** 0 picks a free port. Default 0. */
  port?: number;
  /** Default 127.0.0.1. */
  host?: string;
  /** Predictions that run at once, one render thread each. Default 1, Cog's default. */
  concurrency?: number;
  /** Extra time before the model reports READY, as loading weights would take. Default 0. */
  setupDelayMs?: number;
  /** Extra time per prediction, as a GPU would take. Default 0. */
  renderDelayMs?: number;
  /** Fault injection for tests: predictions for these frame numbers always fail. */
  failFrames?: number[];
  /** `data-url` (Cog's default) or `http`: an URL this server serves at GET /outputs/<id>.png. */
  outputMode?: 'data-url' | 'http';
  /** Finished predictions remembered for idempotent PUTs, newest first. Default 1000. */
  retainPredictions?: number;
}

export interface ReferenceModelStats {
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

export interface ReferenceModel {
  url: string;
  port: number;
  /**
   * Stops the server. In-flight predictions may finish for up to `drainMs` (default 0); the rest are
   * canceled. New predictions are refused with 503 meanwhile.
   */
  close(options?: { drainMs?: number }): Promise<void>;
  stats(): ReferenceModelStats;
}

type Status = 'starting' | 'processing' | 'succeeded' | 'failed' | 'canceled';
type HealthStatus = 'STARTING' | 'READY' | 'BUSY' | 'SETUP_FAILED' | 'DEFUNCT';
const WEBHOOK_EVENTS = ['start', 'output', 'logs', 'completed'] as const;
type WebhookEvent = (typeof WEBHOOK_EVENTS)[number];

interface Prediction {
  id: string;
  input: Record<string, unknown>;
  status: Status;
  output: string | null;
  error: string | null;
  logs: string;
  createdAt: Date;
  startedAt: Date | null;
  completedAt: Date | null;
  webhook?: string;
  webhookEvents: readonly WebhookEvent[];
  /** Where an http-mode output is served: the Host the prediction was requested through. */
  baseUrl: string;
  png?: Buffer;
  cancel?: () => void;
  /** Resolves when the prediction reaches a terminal status. */
  done: Promise<void>;
  finish: () => void;
}

interface Slot {
  worker: Worker;
  /** The prediction holding this slot, from creation until its render thread is idle again. */
  busy: boolean;
  pending?: { resolve: (r: RenderReply) => void; reject: (e: Error) => void };
}

type RenderReply =
  | { id: string; png: Uint8Array; renderMs: number; encodeMs: number }
  | { id: string; error: string };

// Enough for a worker's retries to find their prediction, bounded so a long run does not grow memory.
const RETAIN_PREDICTIONS = 1000;
const RETAIN_BYTES = 256 * 1024 * 1024;
const MAX_BODY_BYTES = 1024 * 1024;
const RENDER_WORKER = 'framecast-reference-render';

// ---- the OpenAPI document: the inputs the worker may send --------------------------------------------

const INPUT_SCHEMA = {
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
      minimum: 0,
      maximum: 4294967295,
      'x-order': 2,
    },
    shot_seed: {
      type: 'integer',
      title: 'Shot Seed',
      description:
        'The seed of the whole shot. When given, it chooses the scene and `seed` only varies the grain, so a shot seeded frame by frame still holds one scene.',
      minimum: 0,
      maximum: 4294967295,
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
    job_id: {
      type: 'string',
      title: 'Job Id',
      description: 'Recorded in the PNG provenance.',
      maxLength: 200,
      'x-order': 7,
    },
    shot: {
      type: 'string',
      title: 'Shot',
      description: 'Recorded in the PNG provenance.',
      maxLength: 200,
      'x-order': 8,
    },
  },
} as const;

type PropertySchema = {
  type: 'string' | 'integer';
  default?: string | number;
  minLength?: number;
  maxLength?: number;
  minimum?: number;
  maximum?: number;
  multipleOf?: number;
};

const STATUS_ENUM = ['starting', 'processing', 'succeeded', 'canceled', 'failed'] as const;

export const OPENAPI_DOCUMENT = {
  openapi: '3.0.2',
  info: { title: 'Cog', version: '0.1.0', description: REFERENCE_DESCRIPTION },
  paths: {
    '/': { get: { summary: 'Root', operationId: 'root__get' } },
    '/health-check': { get: { summary: 'Healthcheck', operationId: 'healthcheck_health_check_get' } },
    '/predictions': {
      post: {
        summary: 'Predict',
        description: 'Run a single prediction on the model',
        operationId: 'predict_predictions_post',
        requestBody: {
          content: { 'application/json': { schema: { $ref: '#/components/schemas/PredictionRequest' } } },
        },
        responses: predictionResponses(),
      },
    },
    '/predictions/{prediction_id}': {
      put: {
        summary: 'Predict Idempotent',
        description: 'Run a single prediction on the model (idempotent creation).',
        operationId: 'predict_idempotent_predictions__prediction_id__put',
        parameters: [
          {
            name: 'prediction_id',
            in: 'path',
            required: true,
            schema: { type: 'string', title: 'Prediction ID' },
          },
        ],
        requestBody: {
          required: true,
          content: { 'application/json': { schema: { $ref: '#/components/schemas/PredictionRequest' } } },
        },
        responses: predictionResponses(),
      },
    },
    '/predictions/{prediction_id}/cancel': {
      post: {
        summary: 'Cancel',
        description: 'Cancel a running prediction',
        operationId: 'cancel_predictions__prediction_id__cancel_post',
        parameters: [
          {
            name: 'prediction_id',
            in: 'path',
            required: true,
            schema: { type: 'string', title: 'Prediction ID' },
          },
        ],
        responses: { '200': { description: 'Successful Response' }, '404': { description: 'Not running' } },
      },
    },
  },
  components: {
    schemas: {
      Input: INPUT_SCHEMA,
      Output: { type: 'string', title: 'Output', format: 'uri' },
      Status: { type: 'string', title: 'Status', enum: STATUS_ENUM, description: 'An enumeration.' },
      WebhookEvent: { type: 'string', title: 'WebhookEvent', enum: WEBHOOK_EVENTS },
      PredictionRequest: {
        type: 'object',
        title: 'PredictionRequest',
        properties: {
          id: { type: 'string', title: 'Id' },
          input: { $ref: '#/components/schemas/Input' },
          created_at: { type: 'string', title: 'Created At', format: 'date-time' },
          webhook: { type: 'string', title: 'Webhook', format: 'uri', minLength: 1, maxLength: 65536 },
          webhook_events_filter: {
            type: 'array',
            items: { $ref: '#/components/schemas/WebhookEvent' },
            default: WEBHOOK_EVENTS,
          },
        },
      },
      PredictionResponse: {
        type: 'object',
        title: 'PredictionResponse',
        properties: {
          id: { type: 'string', title: 'Id' },
          input: { $ref: '#/components/schemas/Input' },
          output: { $ref: '#/components/schemas/Output' },
          status: { $ref: '#/components/schemas/Status' },
          error: { type: 'string', title: 'Error' },
          logs: { type: 'string', title: 'Logs', default: '' },
          created_at: { type: 'string', title: 'Created At', format: 'date-time' },
          started_at: { type: 'string', title: 'Started At', format: 'date-time' },
          completed_at: { type: 'string', title: 'Completed At', format: 'date-time' },
          metrics: { type: 'object', title: 'Metrics' },
        },
      },
      ValidationError: {
        type: 'object',
        title: 'ValidationError',
        required: ['loc', 'msg', 'type'],
        properties: {
          loc: {
            type: 'array',
            title: 'Location',
            items: { anyOf: [{ type: 'string' }, { type: 'integer' }] },
          },
          msg: { type: 'string', title: 'Message' },
          type: { type: 'string', title: 'Error Type' },
        },
      },
      HTTPValidationError: {
        type: 'object',
        title: 'HTTPValidationError',
        properties: {
          detail: { type: 'array', title: 'Detail', items: { $ref: '#/components/schemas/ValidationError' } },
        },
      },
    },
  },
} as const;

function predictionResponses() {
  return {
    '200': {
      description: 'Successful Response',
      content: { 'application/json': { schema: { $ref: '#/components/schemas/PredictionResponse' } } },
    },
    '202': { description: 'Accepted: created asynchronously, or already running with this id' },
    '409': { description: 'Every prediction slot is busy' },
    '422': {
      description: 'Validation Error',
      content: { 'application/json': { schema: { $ref: '#/components/schemas/HTTPValidationError' } } },
    },
    '503': { description: 'Setup has not finished, or the server is shutting down' },
  };
}

// ---- input validation, from the schema above ------------------------------------------------------------

interface ValidationIssue {
  loc: (string | number)[];
  msg: string;
  type: string;
}

interface ReferenceInput {
  prompt: string;
  negativePrompt: string;
  seed: number | undefined;
  shotSeed: number | undefined;
  width: number;
  height: number;
  frame: number;
  jobId: string | undefined;
  shot: string | undefined;
}

/** Checks `input` against INPUT_SCHEMA the way Cog does: declared types and bounds, unknown fields refused. */
function validateInput(input: unknown): { value: ReferenceInput } | { issues: ValidationIssue[] } {
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    return { issues: [{ loc: ['body', 'input'], msg: 'Input should be an object', type: 'dict_type' }] };
  }
  const raw = input as Record<string, unknown>;
  const properties = INPUT_SCHEMA.properties as Record<string, PropertySchema>;
  const issues: ValidationIssue[] = [];
  const values: Record<string, unknown> = {};
  for (const field of INPUT_SCHEMA.required) {
    if (raw[field] === undefined || raw[field] === null) {
      issues.push({ loc: ['body', 'input', field], msg: 'Field required', type: 'missing' });
    }
  }
  for (const [field, value] of Object.entries(raw)) {
    const schema = properties[field];
    const loc = ['body', 'input', field];
    if (!schema) {
      issues.push({ loc, msg: `Unexpected field '${field}'`, type: 'extra_forbidden' });
      continue;
    }
    if (value === undefined || value === null) continue;
    const problem = schemaProblem(schema, value);
    if (problem) issues.push({ loc, ...problem });
    else values[field] = value;
  }
  for (const [field, schema] of Object.entries(properties)) {
    if (values[field] === undefined && schema.default !== undefined) values[field] = schema.default;
  }
  if (issues.length > 0) return { issues };
  return {
    value: {
      prompt: values.prompt as string,
      negativePrompt: values.negative_prompt as string,
      seed: values.seed as number | undefined,
      shotSeed: values.shot_seed as number | undefined,
      width: values.width as number,
      height: values.height as number,
      frame: values.frame as number,
      jobId: values.job_id as string | undefined,
      shot: values.shot as string | undefined,
    },
  };
}

function schemaProblem(schema: PropertySchema, value: unknown): Omit<ValidationIssue, 'loc'> | undefined {
  if (schema.type === 'string') {
    if (typeof value !== 'string') return { msg: 'Input should be a valid string', type: 'string_type' };
    if (schema.minLength !== undefined && value.length < schema.minLength) {
      return { msg: `String should have at least ${schema.minLength} character`, type: 'string_too_short' };
    }
    if (schema.maxLength !== undefined && value.length > schema.maxLength) {
      return { msg: `String should have at most ${schema.maxLength} characters`, type: 'string_too_long' };
    }
    return undefined;
  }
  if (typeof value !== 'number' || !Number.isInteger(value)) {
    return { msg: 'Input should be a valid integer', type: 'int_type' };
  }
  if (schema.minimum !== undefined && value < schema.minimum) {
    return { msg: `Input should be greater than or equal to ${schema.minimum}`, type: 'greater_than_equal' };
  }
  if (schema.maximum !== undefined && value > schema.maximum) {
    return { msg: `Input should be less than or equal to ${schema.maximum}`, type: 'less_than_equal' };
  }
  if (schema.multipleOf !== undefined && value % schema.multipleOf !== 0) {
    return { msg: `Input should be a multiple of ${schema.multipleOf}`, type: 'multiple_of' };
  }
  return undefined;
}

// ---- the server -----------------------------------------------------------------------------------------

// No parameter properties here or in anything a render thread imports: Node 22+ loads these files with type
// stripping alone, which only erases syntax (checked with tsc --erasableSyntaxOnly).
class HttpError extends Error {
  readonly status: number;
  readonly body: unknown;
  constructor(status: number, body: unknown) {
    super(`HTTP ${status}`);
    this.status = status;
    this.body = body;
  }
}

/** Starts the reference model server; resolves once it listens (it reports STARTING until setup is done). */
export async function startReferenceModel(options: ReferenceModelOptions = {}): Promise<ReferenceModel> {
  const concurrency = options.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64) {
    throw new RangeError('concurrency must be an integer from 1 to 64');
  }
  const renderDelayMs = options.renderDelayMs ?? 0;
  const failFrames = new Set(options.failFrames ?? []);
  const outputMode = options.outputMode ?? 'data-url';
  const retainPredictions = options.retainPredictions ?? RETAIN_PREDICTIONS;

  const running = new Map<string, Prediction>();
  const finished = new Map<string, Prediction>();
  let retainedBytes = 0;
  const counts = { predictions: 0, succeeded: 0, failed: 0, canceled: 0, rejectedBusy: 0 };
  const slots: Slot[] = [];
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
    return slots.some((s) => !s.busy) ? 'READY' : 'BUSY';
  };

  // ---- render threads ----

  function onWorkerLost(slot: Slot, error: Error): void {
    if (closing) return;
    // Cog reports a model process that died as DEFUNCT: the container needs replacing, not retrying.
    defunct = `render thread failed: ${error.message}`;
    slot.pending?.reject(error);
    slot.pending = undefined;
  }

  async function startSlot(): Promise<Slot> {
    const worker = spawnRenderWorker();
    const slot: Slot = { worker, busy: false };
    await new Promise<void>((resolve, reject) => {
      const onReady = (m: unknown) => {
        settle();
        (m as { ready?: boolean }).ready ? resolve() : reject(new Error('unexpected first message'));
      };
      const onError = (err: Error) => {
        settle();
        reject(err);
      };
      const onExit = (code: number) => onError(new Error(`render thread exited with code ${code}`));
      // Only our own listeners come off: Worker keeps internal ones that removeAllListeners would break.
      const settle = () => {
        worker.off('message', onReady);
        worker.off('error', onError);
        worker.off('exit', onExit);
      };
      worker.on('message', onReady);
      worker.on('error', onError);
      worker.on('exit', onExit);
    });
    worker.on('message', (reply: RenderReply) => {
      const pending = slot.pending;
      slot.pending = undefined;
      pending?.resolve(reply);
    });
    worker.on('error', (err) => onWorkerLost(slot, err));
    worker.on('exit', (code) => onWorkerLost(slot, new Error(`exited with code ${code}`)));
    return slot;
  }

  const render = (slot: Slot, id: string, request: FrameRequest, text: Record<string, string>) =>
    new Promise<RenderReply>((resolve, reject) => {
      if (defunct) return reject(new Error(defunct));
      slot.pending = { resolve, reject };
      slot.worker.postMessage({ id, request, text });
    });

  const setupDone = (async () => {
    try {
      const started = Date.now();
      const [ready] = await Promise.all([
        Promise.all(Array.from({ length: concurrency }, () => startSlot())),
        sleep(options.setupDelayMs ?? 0),
      ]);
      slots.push(...ready);
      setup.logs += `${REFERENCE_DESCRIPTION}\nstarted ${concurrency} render thread(s) in ${Date.now() - started} ms\n`;
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
    retainedBytes -= finished.get(id)?.png?.length ?? 0;
    finished.delete(id);
  }

  function retain(p: Prediction): void {
    running.delete(p.id);
    forget(p.id);
    finished.set(p.id, p);
    retainedBytes += p.png?.length ?? 0;
    for (const id of finished.keys()) {
      if (finished.size <= retainPredictions && retainedBytes <= RETAIN_BYTES) break;
      forget(id);
    }
  }

  function complete(p: Prediction, status: 'succeeded' | 'failed' | 'canceled', error?: string): void {
    if (p.completedAt) return;
    p.status = status;
    p.completedAt = new Date();
    if (error !== undefined) p.error = error;
    counts[status]++;
    retain(p);
    p.finish();
    sendWebhook(p, 'completed');
  }

  async function run(p: Prediction, slot: Slot, input: ReferenceInput): Promise<void> {
    if (p.completedAt) {
      slot.busy = false; // canceled before it started
      return;
    }
    sendWebhook(p, 'start'); // Cog sends it while the status is still `starting`
    p.status = 'processing';
    p.startedAt = new Date();
    try {
      const seed = input.seed ?? randomInt(0, 2 ** 32);
      if (input.seed === undefined) p.logs += `Using seed: ${seed}\n`;
      if (renderDelayMs > 0) {
        const aborted = await cancellableSleep(renderDelayMs, p);
        if (aborted) return;
      }
      if (p.completedAt) return;
      if (failFrames.has(input.frame)) {
        p.logs += `frame ${input.frame} is configured to fail\n`;
        complete(p, 'failed', `injected failure: frame ${input.frame} is in failFrames`);
        return;
      }
      const provenance: Provenance = {
        generator: 'framecast',
        model: 'reference',
        prompt: input.prompt,
        ...(input.negativePrompt && { negativePrompt: input.negativePrompt }),
        seed,
        frame: input.frame,
        jobId: input.jobId ?? '',
        ...(input.shot !== undefined && { shot: input.shot }),
        width: input.width,
        height: input.height,
      };
      const text = { ...provenanceText(provenance), Software: REFERENCE_DESCRIPTION };
      const request: FrameRequest = {
        prompt: input.prompt,
        negativePrompt: input.negativePrompt,
        seed,
        ...(input.shotSeed !== undefined && { shotSeed: input.shotSeed }),
        frame: input.frame,
        width: input.width,
        height: input.height,
      };
      const reply = await render(slot, p.id, request, text);
      if (p.completedAt) return; // canceled while rendering
      if ('error' in reply) {
        complete(p, 'failed', reply.error);
        return;
      }
      const png = Buffer.from(reply.png.buffer, reply.png.byteOffset, reply.png.byteLength);
      p.png = png;
      p.output =
        outputMode === 'http'
          ? `${p.baseUrl}/outputs/${encodeURIComponent(p.id)}.png`
          : `data:image/png;base64,${png.toString('base64')}`;
      p.logs += `rendered frame ${input.frame} (${input.width}x${input.height}, seed ${seed}) in ${Math.round(reply.renderMs)} ms, encoded in ${Math.round(reply.encodeMs)} ms\n`;
      complete(p, 'succeeded');
    } catch (err) {
      complete(p, 'failed', (err as Error).message);
    } finally {
      slot.busy = false;
    }
  }

  function cancellableSleep(ms: number, p: Prediction): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        p.cancel = undefined;
        resolve(false);
      }, ms);
      p.cancel = () => {
        clearTimeout(timer);
        resolve(true);
      };
    });
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

  /** Creates and starts a prediction, or throws the HttpError Cog would answer with. */
  function create(id: string, body: Record<string, unknown>, baseUrl: string): Prediction {
    if (closing) throw new HttpError(503, { error: 'Server is shutting down', status: 'failed' });
    if (setup.status !== 'succeeded' || defunct) {
      throw new HttpError(503, { error: 'Predictor not ready', status: 'failed' });
    }
    const checked = validateInput(body.input ?? {});
    if ('issues' in checked) throw new HttpError(422, { detail: checked.issues });
    const webhook = typeof body.webhook === 'string' ? body.webhook : undefined;
    const filter: readonly WebhookEvent[] = Array.isArray(body.webhook_events_filter)
      ? WEBHOOK_EVENTS.filter((e) => (body.webhook_events_filter as unknown[]).includes(e))
      : WEBHOOK_EVENTS;
    const slot = slots.find((s) => !s.busy);
    if (!slot) {
      counts.rejectedBusy++;
      // Both shapes: Python Cog answered {detail}, coglet answers {error, status}. Clients key on the 409.
      throw new HttpError(409, {
        detail: 'Already running a prediction',
        error: 'At capacity - all prediction slots busy',
        status: 'failed',
      });
    }
    slot.busy = true;
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
      startedAt: null,
      completedAt: null,
      ...(webhook !== undefined && { webhook }),
      webhookEvents: filter,
      baseUrl,
      done,
      finish,
    };
    forget(id);
    running.set(id, p);
    counts.predictions++;
    // Started on the next turn, so an asynchronous answer shows the prediction `starting`, as Cog's does.
    setImmediate(() => void run(p, slot, checked.value));
    return p;
  }

  function cancel(id: string): boolean {
    const p = running.get(id);
    if (!p) return false;
    p.cancel?.();
    p.logs += 'canceled\n';
    complete(p, 'canceled');
    return true;
  }

  // ---- HTTP ----

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://reference.invalid');
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
        model: 'reference',
        description: REFERENCE_DESCRIPTION,
        version: REFERENCE_VERSION,
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
        version: { framecast_reference: REFERENCE_VERSION },
        model: { name: 'reference', description: REFERENCE_DESCRIPTION },
        slots: { total: concurrency, busy: slots.filter((s) => s.busy).length },
        ...(defunct && { error: defunct }),
      });
    }
    if (path === '/openapi.json') {
      if (method !== 'GET') return methodNotAllowed(res);
      return send(res, 200, OPENAPI_DOCUMENT);
    }
    const output = /^\/outputs\/([^/]+)\.png$/.exec(path);
    if (output) {
      if (method !== 'GET') return methodNotAllowed(res);
      const png = finished.get(pathId(output[1]!))?.png;
      if (!png || outputMode !== 'http') return send(res, 404, { detail: 'Not Found' });
      res.writeHead(200, { 'content-type': 'image/png', 'content-length': png.length });
      res.end(png);
      return;
    }
    const cancelMatch = /^\/predictions\/([^/]+)\/cancel$/.exec(path);
    if (cancelMatch) {
      if (method !== 'POST') return methodNotAllowed(res);
      return send(res, cancel(pathId(cancelMatch[1]!)) ? 200 : 404, {});
    }
    if (path === '/predictions') {
      if (method !== 'POST') return methodNotAllowed(res);
      const body = await readBody(req);
      const id = typeof body.id === 'string' && body.id !== '' ? body.id : randomUUID().replaceAll('-', '');
      if (running.has(id)) throw new HttpError(409, { detail: `Prediction ${id} is already running` });
      return answer(res, create(id, body, baseUrl), respondAsync);
    }
    const idMatch = /^\/predictions\/([^/]+)$/.exec(path);
    if (idMatch) {
      if (method !== 'PUT') return methodNotAllowed(res);
      const id = pathId(idMatch[1]!);
      const body = await readBody(req);
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
      return answer(res, create(id, body, baseUrl), respondAsync);
    }
    return send(res, 404, { detail: 'Not Found' });
  }

  async function answer(res: ServerResponse, p: Prediction, respondAsync: boolean): Promise<void> {
    if (respondAsync) return send(res, 202, view(p));
    await p.done;
    send(res, 200, view(p));
  }

  let listening = '';
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      if (err instanceof HttpError) return send(res, err.status, err.body);
      send(res, 500, { detail: 'Internal Server Error' });
    });
  });
  // A synchronous prediction can take as long as its render; do not cut it off at Node's default.
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
      await Promise.all(slots.map((s) => s.worker.terminate()));
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}

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
    ...(p.completedAt && {
      metrics: { predict_time: (p.completedAt.getTime() - (p.startedAt ?? p.createdAt).getTime()) / 1000 },
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

async function readBody(req: IncomingMessage): Promise<Record<string, unknown>> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const part of req) {
    size += (part as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, { detail: 'Request body too large' });
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

const sleep = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

// ---- the render thread ----------------------------------------------------------------------------------

/**
 * One render thread per slot keeps rendering (CPU-bound, synchronous) off the event loop, so health checks
 * answer BUSY instead of hanging, and slots really run in parallel. The thread runs this very module.
 */
function spawnRenderWorker(): Worker {
  const self = new URL(import.meta.url);
  const data = { role: RENDER_WORKER };
  const canImportSelf =
    !self.pathname.endsWith('.ts') || Boolean((process.features as { typescript?: unknown }).typescript);
  if (canImportSelf) return new Worker(self, { workerData: data });
  // Running from TypeScript sources on a Node without type stripping (Node 20, vitest): the thread first
  // registers tsx, the dev-time loader, then imports this module. A bundled or Node 24 build never gets here.
  const tsx = import.meta.resolve('tsx/esm/api');
  const bootstrap = `import(${JSON.stringify(tsx)}).then((api) => { api.register(); return import(${JSON.stringify(self.href)}); });`;
  return new Worker(bootstrap, { eval: true, workerData: data });
}

function serveRenders(port: NonNullable<typeof parentPort>): void {
  // Warm the JIT on a small frame so the first prediction is not the slow one.
  renderFrame({ prompt: 'warm-up', seed: 0, frame: 0, width: 64, height: 64 });
  port.on('message', (m: { id: string; request: FrameRequest; text: Record<string, string> }) => {
    try {
      const t0 = performance.now();
      const rgb = renderFrame(m.request);
      const t1 = performance.now();
      const png = encodePng(rgb, m.request.width, m.request.height, m.text);
      const t2 = performance.now();
      port.postMessage({ id: m.id, png, renderMs: t1 - t0, encodeMs: t2 - t1 } satisfies RenderReply);
    } catch (err) {
      port.postMessage({ id: m.id, error: (err as Error).message } satisfies RenderReply);
    }
  });
  port.postMessage({ ready: true });
}

if (!isMainThread && parentPort && (workerData as { role?: string } | null)?.role === RENDER_WORKER) {
  serveRenders(parentPort);
}
