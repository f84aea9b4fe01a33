import type * as z from 'zod';
import type {
  AssetFrame,
  AssetList,
  AssetResponse,
  AssetUpload,
  AssetUploads,
} from '../functions/core/assets.ts';
import type {
  AuditList,
  BudgetRequest,
  BudgetView,
  DryRunResponse,
  EventList,
  EventView,
  FrameDetail,
  FrameList,
  FrameResponse,
  FrameVersion,
  JobList,
  JobRequestInput,
  JobResponse,
  JobStatus,
  Redelivery,
  Reroll,
  RerollRequest,
  UsageReport,
  WebhookEndpoint,
  WebhookEndpointList,
  WebhookEndpointRequest,
  WebhookSecret,
} from '../functions/core/schemas.ts';

/**
 * The typed Framecast client: fetch only (Node 20 and browsers), one method per route of the HTTP API.
 * Its types come from the zod schemas the handlers validate with, imported as types only, so a bundle of
 * this file carries no zod and no AWS SDK. `ROUTES_BY_METHOD` is checked against the route table and the
 * served OpenAPI document by test/client/routes.test.ts: a route without a method fails it.
 */

export type {
  AssetFrame,
  AssetResponse as Asset,
  AssetUpload,
  AssetUploads,
  BudgetView,
  DryRunResponse as JobEstimate,
  EventView as Event,
  FrameDetail,
  FrameResponse as Frame,
  FrameVersion,
  JobRequestInput as JobRequest,
  JobResponse as Job,
  JobStatus,
  Reroll,
  UsageReport,
  WebhookEndpoint,
};
export type JobListPage = z.output<typeof JobList>;
export type FrameListPage = z.output<typeof FrameList>;
export type EventListPage = z.output<typeof EventList>;
export type AssetListPage = z.output<typeof AssetList>;
export type RerollInput = z.input<typeof RerollRequest>;
export type WebhookEndpointInput = z.input<typeof WebhookEndpointRequest>;
export type WebhookEndpointListPage = z.output<typeof WebhookEndpointList>;
export type WebhookSigningSecret = z.output<typeof WebhookSecret>;
export type RedeliveryResult = z.output<typeof Redelivery>;
export type AuditPage = z.output<typeof AuditList>;
export type AuditRecord = AuditPage['records'][number];
export type AuditQuery = { from?: string; to?: string; tenant?: string; limit?: number; cursor?: string };
export type BudgetInput = z.input<typeof BudgetRequest>;
export type AssetFileInput = { frame?: number; sha256: string; size: number };
export type AssetRequest = {
  name: string;
  format: 'png' | 'jpeg' | 'exr';
  frames?: { start: number; end: number };
  files: AssetFileInput[];
};

type HttpMethod = 'GET' | 'POST' | 'PUT' | 'DELETE';

/** Each client method's route: the method and path as the route table and the OpenAPI document name them. */
export const ROUTES_BY_METHOD = {
  createJob: ['POST', '/v1/jobs'],
  listJobs: ['GET', '/v1/jobs'],
  getJob: ['GET', '/v1/jobs/{id}'],
  listFrames: ['GET', '/v1/jobs/{id}/frames'],
  getFrame: ['GET', '/v1/jobs/{id}/frames/{frame}'],
  rerollFrame: ['POST', '/v1/jobs/{id}/frames/{frame}/retry'],
  selectFrameVersion: ['POST', '/v1/jobs/{id}/frames/{frame}/select'],
  approveJob: ['POST', '/v1/jobs/{id}/approve'],
  rejectJob: ['POST', '/v1/jobs/{id}/reject'],
  cancelJob: ['POST', '/v1/jobs/{id}/cancel'],
  listEvents: ['GET', '/v1/jobs/{id}/events'],
  redeliverEvent: ['POST', '/v1/events/{id}/redeliver'],
  createWebhook: ['POST', '/v1/webhooks'],
  listWebhooks: ['GET', '/v1/webhooks'],
  deleteWebhook: ['DELETE', '/v1/webhooks/{id}'],
  getWebhookSecret: ['GET', '/v1/webhooks/secret'],
  rotateWebhookSecret: ['POST', '/v1/webhooks/secret/rotate'],
  createAsset: ['POST', '/v1/assets'],
  listAssets: ['GET', '/v1/assets'],
  getAsset: ['GET', '/v1/assets/{id}'],
  getAssetFrame: ['GET', '/v1/assets/{id}/frames/{frame}'],
  addAssetFiles: ['POST', '/v1/assets/{id}/files'],
  completeAsset: ['POST', '/v1/assets/{id}/complete'],
  deleteAsset: ['DELETE', '/v1/assets/{id}'],
  listAudit: ['GET', '/v1/audit'],
  getOpenApi: ['GET', '/v1/openapi.json'],
  getUsage: ['GET', '/v1/usage'],
  setBudget: ['PUT', '/v1/budgets/{tenant}'],
} as const satisfies Record<string, readonly [HttpMethod, string]>;
type RouteName = keyof typeof ROUTES_BY_METHOD;

/** An answer of the API that is not a success: its status and the API's `{error: {code, message, details}}`. */
export class FramecastApiError extends Error {
  override readonly name = 'FramecastApiError';
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
    readonly details?: unknown,
    readonly requestId?: string,
  ) {
    super(message);
  }
}

/** The API could not be reached (after the retries). */
export class FramecastNetworkError extends Error {
  override readonly name = 'FramecastNetworkError';
}

export interface RetryOptions {
  /** Attempts in all, the first included. @default 5 */
  readonly attempts?: number;
  /** Base of the exponential back-off; each wait is a random time up to base * 2^n ("full jitter"). @default 200 */
  readonly baseMs?: number;
  /** Longest wait between attempts, Retry-After included. @default 20000 */
  readonly maxMs?: number;
}

export interface ClientOptions {
  /** The API's address, e.g. https://abc.execute-api.us-east-1.amazonaws.com or http://127.0.0.1:4000 */
  readonly baseUrl: string;
  readonly apiKey?: string;
  readonly retry?: RetryOptions;
  /** Another fetch (tests, instrumentation). @default globalThis.fetch */
  readonly fetch?: typeof fetch;
  /** Waits between attempts (tests make it instant). */
  readonly sleep?: (ms: number) => Promise<void>;
  /** Send a fresh Idempotency-Key on every create that is not given one. @default true */
  readonly idempotencyKeys?: boolean;
}

export interface RequestOptions {
  /** For creates: this Idempotency-Key instead of a fresh one. */
  readonly idempotencyKey?: string;
  readonly signal?: AbortSignal;
}

/**
 * Throttling and every 5xx: a 500 too, since the API answers one for a fault of a dependency (a DynamoDB
 * or S3 hiccup past the SDK's own retries) as well as for a bug; only requests safe to repeat are retried.
 */
const RETRY_STATUSES = new Set([429, 500, 502, 503, 504]);
/**
 * Creates whose Idempotency-Key the API honours (same key and body: the first answer), so a create whose
 * answer was lost may be sent again. The others get a key too, for when the API honours it, but no retry:
 * a second webhook endpoint or asset would be made.
 */
const KEYED_CREATES: ReadonlySet<RouteName> = new Set(['createJob', 'rerollFrame']);
const sleepFor = (ms: number) => new Promise<void>((ok) => setTimeout(ok, ms));

/** Retry-After in milliseconds: delta seconds or an HTTP date; undefined when absent or unreadable. */
export function retryAfterMs(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

type Query = Record<string, string | number | undefined>;

export class FramecastClient {
  readonly baseUrl: string;
  readonly #apiKey: string | undefined;
  readonly #fetch: typeof fetch;
  readonly #sleep: (ms: number) => Promise<void>;
  readonly #attempts: number;
  readonly #baseMs: number;
  readonly #maxMs: number;
  readonly #idempotencyKeys: boolean;

  constructor(options: ClientOptions) {
    this.baseUrl = options.baseUrl.replace(/\/+$/, '');
    this.#apiKey = options.apiKey;
    this.#fetch = options.fetch ?? ((...args) => globalThis.fetch(...args));
    this.#sleep = options.sleep ?? sleepFor;
    this.#attempts = Math.max(1, options.retry?.attempts ?? 5);
    this.#baseMs = options.retry?.baseMs ?? 200;
    this.#maxMs = options.retry?.maxMs ?? 20_000;
    this.#idempotencyKeys = options.idempotencyKeys ?? true;
  }

  // ---- jobs ---------------------------------------------------------------------------------------------

  /** `POST /v1/jobs`: 202 with the job. A fresh Idempotency-Key is sent unless one is given. */
  createJob(body: JobRequestInput, options?: RequestOptions): Promise<JobResponse> {
    return this.#call('createJob', {}, { body, create: true, ...options });
  }
  /**
   * `POST /v1/jobs?dryRun=true`: what the job would take (GPU seconds, cost, expected start and finish),
   * checked as a job would be; nothing is written, so it is safe to repeat.
   */
  estimateJob(body: JobRequestInput): Promise<DryRunResponse> {
    return this.#call('createJob', {}, { body, query: { dryRun: 'true' }, retrySafe: true });
  }
  listJobs(query: { shot?: string; status?: JobStatus; limit?: number; cursor?: string } = {}) {
    return this.#call<JobListPage>('listJobs', {}, { query });
  }
  getJob(id: string): Promise<JobResponse> {
    return this.#call('getJob', { id });
  }
  listFrames(id: string, query: { limit?: number; cursor?: string } = {}): Promise<FrameListPage> {
    return this.#call('listFrames', { id }, { query });
  }
  cancelJob(id: string): Promise<JobResponse> {
    return this.#call('cancelJob', { id });
  }
  /** `GET /v1/jobs/{id}/frames/{frame}`: one frame with every version. */
  getFrame(id: string, frame: number): Promise<FrameDetail> {
    return this.#call('getFrame', { id, frame: String(frame) });
  }
  /**
   * `POST /v1/jobs/{id}/frames/{frame}/retry`: 202 with the new version, made in the background (for a
   * model with windows, of the frame's window). A fresh Idempotency-Key is sent unless one is given.
   */
  rerollFrame(id: string, frame: number, body: RerollInput = {}, options?: RequestOptions): Promise<Reroll> {
    return this.#call('rerollFrame', { id, frame: String(frame) }, { body, create: true, ...options });
  }
  /** Points the sequence name at `version`; selecting the selected version again changes nothing. */
  selectFrameVersion(id: string, frame: number, version: number): Promise<FrameDetail> {
    return this.#call(
      'selectFrameVersion',
      { id, frame: String(frame) },
      { body: { version }, retrySafe: true },
    );
  }
  /** Releases the rest of a job awaiting review. */
  approveJob(id: string): Promise<JobResponse> {
    return this.#call('approveJob', { id });
  }
  /** Cancels a job awaiting review, with the reason on record. */
  rejectJob(id: string, body: { reason?: string } = {}): Promise<JobResponse> {
    return this.#call('rejectJob', { id }, { body });
  }
  listEvents(id: string, query: { limit?: number; cursor?: string } = {}): Promise<EventListPage> {
    return this.#call('listEvents', { id }, { query });
  }
  redeliverEvent(id: string): Promise<RedeliveryResult> {
    return this.#call('redeliverEvent', { id });
  }

  // ---- webhooks -----------------------------------------------------------------------------------------

  createWebhook(body: WebhookEndpointInput, options?: RequestOptions): Promise<WebhookEndpoint> {
    return this.#call('createWebhook', {}, { body, create: true, ...options });
  }
  listWebhooks(): Promise<WebhookEndpointListPage> {
    return this.#call('listWebhooks', {});
  }
  deleteWebhook(id: string): Promise<void> {
    return this.#call('deleteWebhook', { id });
  }
  getWebhookSecret(): Promise<WebhookSigningSecret> {
    return this.#call('getWebhookSecret', {});
  }
  rotateWebhookSecret(): Promise<WebhookSigningSecret> {
    return this.#call('rotateWebhookSecret', {});
  }

  // ---- assets -------------------------------------------------------------------------------------------

  createAsset(body: AssetRequest, options?: RequestOptions): Promise<AssetUploads> {
    return this.#call('createAsset', {}, { body, create: true, ...options });
  }
  listAssets(query: { status?: AssetResponse['status']; limit?: number; cursor?: string } = {}) {
    return this.#call<AssetListPage>('listAssets', {}, { query });
  }
  getAsset(id: string): Promise<AssetResponse> {
    return this.#call('getAsset', { id });
  }
  /** The file of one frame of a ready asset (a still's for any frame), with a download URL. */
  getAssetFrame(id: string, frame: number): Promise<AssetFrame> {
    return this.#call('getAssetFrame', { id, frame: String(frame) });
  }
  /** More files of a sequence, or the same again for fresh upload URLs (no state changes: retried). */
  addAssetFiles(id: string, body: { files: AssetFileInput[] }): Promise<AssetUploads> {
    return this.#call('addAssetFiles', { id }, { body, retrySafe: true });
  }
  /** Checks the files and makes the asset ready; repeating it is harmless, so it is retried. */
  completeAsset(id: string): Promise<AssetResponse> {
    return this.#call('completeAsset', { id }, { retrySafe: true });
  }
  deleteAsset(id: string): Promise<void> {
    return this.#call('deleteAsset', { id });
  }

  getOpenApi(): Promise<Record<string, unknown>> {
    return this.#call('getOpenApi', {});
  }

  // ---- money --------------------------------------------------------------------------------------------

  /** `GET /v1/usage`: spend of the days from..to (UTC, default this month), by day, tenant, shot or model. */
  getUsage(
    query: { from?: string; to?: string; groupBy?: UsageReport['groupBy']; tenant?: string } = {},
  ): Promise<UsageReport> {
    return this.#call('getUsage', {}, { query });
  }

  /**
   * `PUT /v1/budgets/{tenant}` (a key with the admin scope): the tenant's monthly budget; at `stopPercent`
   * new jobs are refused (402) and unstarted frames held, and raising it lets them resume.
   */
  setBudget(tenant: string, body: BudgetInput): Promise<BudgetView> {
    return this.#call('setBudget', { tenant }, { body });
  }

  // ---- helpers over the routes --------------------------------------------------------------------------

  /** Every frame of a job, in order, page by page. */
  async allFrames(id: string): Promise<FrameResponse[]> {
    const out: FrameResponse[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.listFrames(id, { limit: 1000, ...(cursor && { cursor }) });
      out.push(...page.frames);
      cursor = page.nextCursor;
    } while (cursor);
    return out;
  }

  /** Every event of a job, in order. */
  async allEvents(id: string): Promise<EventView[]> {
    const out: EventView[] = [];
    let cursor: string | undefined;
    do {
      const page = await this.listEvents(id, { limit: 500, ...(cursor && { cursor }) });
      out.push(...page.events);
      cursor = page.nextCursor;
    } while (cursor);
    return out;
  }

  /**
   * Polls the job until it has finished (succeeded, failed or canceled), or with `untilReview` until it
   * awaits review; `onUpdate` sees every poll.
   */
  async waitForJob(
    id: string,
    options: {
      intervalMs?: number;
      onUpdate?: (job: JobResponse) => void;
      signal?: AbortSignal;
      /** Also stop when the job waits for review (awaiting_review). */
      untilReview?: boolean;
    } = {},
  ): Promise<JobResponse> {
    for (;;) {
      options.signal?.throwIfAborted();
      const job = await this.getJob(id);
      options.onUpdate?.(job);
      if (job.status === 'succeeded' || job.status === 'failed' || job.status === 'canceled') return job;
      if (options.untilReview && job.status === 'awaiting_review') return job;
      await this.#sleep(options.intervalMs ?? 500);
    }
  }

  /** PUTs one file to an upload URL of `createAsset`/`addAssetFiles` with exactly the headers signed into it. */
  async upload(upload: AssetUpload, body: Uint8Array | Blob): Promise<void> {
    // Browsers set content-length themselves and refuse it as a header; Node's fetch sets it from the body.
    const { 'content-length': _length, ...headers } = upload.headers;
    // A PUT of the same bytes to the same key is idempotent: S3's 500, 503 (SlowDown) and network errors are retried.
    let res: Response;
    for (let attempt = 1; ; attempt++) {
      try {
        res = await this.#fetch(upload.url, {
          method: upload.method,
          headers,
          body: body as NonNullable<RequestInit['body']>,
        });
        if (![500, 503].includes(res.status) || attempt >= this.#attempts) break;
        await res.body?.cancel().catch(() => undefined);
      } catch (err) {
        if (attempt >= this.#attempts)
          throw new FramecastNetworkError(`PUT upload of ${upload.sha256}: ${(err as Error).message}`, {
            cause: err,
          });
      }
      await this.#sleep(this.#backoff(attempt));
    }
    if (!res.ok) {
      const text = await res.text();
      const code = /<Code>([^<]+)<\/Code>/.exec(text)?.[1] ?? 'upload_failed';
      throw new FramecastApiError(
        res.status,
        code,
        `upload of ${upload.sha256} answered ${res.status}`,
        text,
      );
    }
  }

  // ---- audit --------------------------------------------------------------------------------------------

  /** `GET /v1/audit`: a page of the tenant's generation records, oldest first. */
  listAudit(query: AuditQuery = {}): Promise<AuditPage> {
    return this.#call('listAudit', {}, { query: { ...query, format: 'json' } });
  }

  /** `GET /v1/audit?format=csv`: a page of the records as RFC 4180 CSV, and the cursor of the next page. */
  exportAuditCsv(query: AuditQuery = {}): Promise<{ csv: string; nextCursor?: string }> {
    return this.#call('listAudit', {}, { query: { ...query, format: 'csv' }, accept: 'text/csv', raw: true });
  }

  // ---- transport ----------------------------------------------------------------------------------------

  async #call<T>(
    name: RouteName,
    params: Record<string, string>,
    options: {
      query?: Query;
      body?: unknown;
      create?: boolean;
      retrySafe?: boolean;
      idempotencyKey?: string;
      signal?: AbortSignal;
      /** What to ask for instead of JSON. */
      accept?: string;
      /** Answer the body as text and the next page's cursor from its header (the audit CSV). */
      raw?: boolean;
    } = {},
  ): Promise<T> {
    const [method, template] = ROUTES_BY_METHOD[name];
    const path = template.replace(/\{(\w+)\}/g, (_, p: string) => encodeURIComponent(params[p] ?? ''));
    const search = new URLSearchParams();
    for (const [k, v] of Object.entries(options.query ?? {})) if (v !== undefined) search.set(k, String(v));
    const url = `${this.baseUrl}${path}${search.size > 0 ? `?${search}` : ''}`;
    const headers: Record<string, string> = { accept: options.accept ?? 'application/json' };
    if (this.#apiKey) headers.authorization = `Bearer ${this.#apiKey}`;
    if (options.body !== undefined) headers['content-type'] = 'application/json';
    const idempotencyKey =
      options.idempotencyKey ?? (options.create && this.#idempotencyKeys ? randomKey() : undefined);
    if (idempotencyKey) headers['idempotency-key'] = idempotencyKey;
    // A POST is repeated only when the API can tell a repeat from a new request by its Idempotency-Key, or
    // when repeating it changes nothing. Creates the API does not deduplicate yet carry a key, unretried.
    const retryable =
      method !== 'POST' ||
      options.retrySafe === true ||
      (idempotencyKey !== undefined && KEYED_CREATES.has(name));

    for (let attempt = 1; ; attempt++) {
      const last = !retryable || attempt >= this.#attempts;
      let res: Response;
      try {
        res = await this.#fetch(url, {
          method,
          headers,
          ...(options.body !== undefined && { body: JSON.stringify(options.body) }),
          ...(options.signal && { signal: options.signal }),
        });
      } catch (err) {
        if ((err as Error).name === 'AbortError' || last)
          throw new FramecastNetworkError(`${method} ${url}: ${(err as Error).message}`, { cause: err });
        await this.#sleep(this.#backoff(attempt));
        continue;
      }
      if (RETRY_STATUSES.has(res.status) && !last) {
        await res.body?.cancel().catch(() => undefined);
        const after = retryAfterMs(res.headers.get('retry-after'));
        await this.#sleep(Math.min(this.#maxMs, after ?? this.#backoff(attempt)));
        continue;
      }
      const text = await res.text();
      if (options.raw && res.ok) {
        const nextCursor = res.headers.get('next-cursor');
        return { csv: text, ...(nextCursor && { nextCursor }) } as T;
      }
      let parsed: unknown;
      try {
        parsed = text ? JSON.parse(text) : undefined;
      } catch {
        parsed = text;
      }
      if (res.ok) return parsed as T;
      const error = (parsed as { error?: { code?: string; message?: string; details?: unknown } })?.error;
      const details = error?.details;
      const requestId =
        res.headers.get('x-amzn-requestid') ??
        res.headers.get('x-request-id') ??
        (details as { requestId?: string } | undefined)?.requestId ??
        undefined;
      throw new FramecastApiError(
        res.status,
        error?.code ?? `http_${res.status}`,
        error?.message ?? (text.slice(0, 200) || res.statusText),
        details,
        requestId,
      );
    }
  }

  /** Full jitter: a random wait up to base * 2^(attempt-1), at most maxMs. */
  #backoff(attempt: number): number {
    return Math.random() * Math.min(this.#maxMs, this.#baseMs * 2 ** (attempt - 1));
  }
}

function randomKey(): string {
  return globalThis.crypto.randomUUID();
}
