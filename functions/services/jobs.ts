import { createHash } from 'node:crypto';
import type { JobStore } from '../adapters/store/jobs.ts';
import type { Caller } from '../core/api-keys.ts';
import type { AssetRecord } from '../core/assets.ts';
import type { Estimate } from '../core/cost.ts';
import { decodeCursor, encodeCursor } from '../core/cursor.ts';
import { FramecastError, invalid, notFound } from '../core/errors.ts';
import { frameCount, frameSeed, jobPrefix, manifestKey, randomSeed } from '../core/frames.ts';
import { isJobId, newJobId } from '../core/ids.ts';
import { firstUncovered } from '../core/inputs.ts';
import type { PlanMessage } from '../core/messages.ts';
import type { EventRecord, JobInputRecord, JobRecord, JobReview, JobWindows } from '../core/model.ts';
import { hasField, NamingError, type NamingTemplate, renderName } from '../core/naming.ts';
import { gateCoversShot, resolveReview } from '../core/review.ts';
import {
  type Actor,
  type FrameResponse,
  type JobRequest,
  type JobResponse,
  type JobStatus,
  jobRequestSchema,
  RejectRequest,
} from '../core/schemas.ts';
import { isTerminalJob } from '../core/state.ts';
import { parse } from '../core/validation.ts';
import { estimateView, toFrameResponse, toJobResponse } from '../core/views.ts';
import { jobWindowSpec } from '../core/windows.ts';
import { logger } from '../logger.ts';
import { countMetric } from '../metrics.ts';
import { APP_METRICS } from '../shared/metrics.ts';
import { type ModelSpec, specOf } from '../shared/models.ts';
import { type Estimator, recordedEstimate } from './estimates.ts';
import { frameLinks } from './frame-links.ts';

/** What the job service needs from the outside; adapters over SDK v3 in the cloud and in local mode. */
export interface JobServiceDeps {
  readonly store: JobStore;
  readonly bucket: string;
  readonly frameLimit: number;
  readonly models: readonly string[];
  /** What the models declare (FRAMECAST_MODEL_SPECS); built-in models need no entry. */
  readonly modelSpecs?: Readonly<Record<string, ModelSpec>>;
  readonly sendPlan: (message: Omit<PlanMessage, 'v'>) => Promise<void>;
  readonly publishEvents: (events: readonly EventRecord[]) => Promise<void>;
  /** A job's newest recorded events: a repeated cancel queues its `job.canceled` again. */
  readonly latestEvents?: (jobId: string) => Promise<readonly EventRecord[]>;
  readonly presign?: (key: string) => Promise<{ url: string; expiresAt: Date }>;
  /** Reads an asset a job names as an input (any tenant's: the service checks the tenant). */
  readonly getAsset?: (id: string) => Promise<AssetRecord | undefined>;
  /** Checks a job's webhook URL before it is accepted; the webhooks service provides it. */
  readonly checkWebhookUrl?: (url: string) => Promise<string | undefined>;
  /** The production's naming template and default pass (docs/colour.md); absent: `<shot>.<frame>.png`. */
  readonly naming?: { readonly template: NamingTemplate; readonly pass: string };
  /** What a job will take (services/estimates.ts); absent: jobs carry no estimate and dry runs are refused. */
  readonly estimator?: Pick<Estimator, 'estimate'>;
  /** Refuses a job its tenant's or the production's budget cannot pay for (services/budgets.ts). */
  readonly checkBudget?: (tenant: string, estimate: Estimate | undefined) => Promise<void>;
}

/** The answer to `POST /v1/jobs?dryRun=true`: what the job would take; nothing is written. */
export interface DryRun {
  readonly dryRun: true;
  readonly model: string;
  readonly frames: number;
  readonly estimate: ReturnType<typeof estimateView>;
}

/** Canonical JSON (sorted keys), so the same request in another key order is the same request. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>)
      .filter(([, v]) => v !== undefined)
      .sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  return JSON.stringify(value);
}

/** A job of this tenant; another tenant's job is "not found", never "forbidden". */
export async function tenantJob(
  store: Pick<JobStore, 'getJob'>,
  tenant: string,
  id: string,
): Promise<JobRecord> {
  const job = isJobId(id) ? await store.getJob(id) : undefined;
  if (!job || job.tenant !== tenant) throw notFound('job');
  return job;
}

/** Who a caller is, as recorded on what they decide. */
export const actorOf = (caller: Caller): Actor => ({
  tenant: caller.tenant,
  keyId: caller.keyId ?? 'unknown',
  ...(caller.keyName !== undefined && { keyName: caller.keyName }),
});

const sha256 = (s: string) => createHash('sha256').update(s).digest('hex');
const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

export class JobService {
  private readonly schema;

  constructor(private readonly deps: JobServiceDeps) {
    this.schema = jobRequestSchema(deps.frameLimit);
  }

  /**
   * How the job's frames are delivered and named (docs/colour.md): the format, and the pass and version
   * the production's naming template takes. The version is the request's, or one more than that of the
   * shot's newest job (a re-submit bumps it); two submits racing may take the same one, which only names
   * files under their own job's prefix. Recorded only when it is not the default (PNG, no template fields),
   * so a job reads as jobs did before.
   */
  private async outputOf(tenant: string, request: JobRequest): Promise<JobRecord['output']> {
    const naming = this.deps.naming;
    const format = request.output?.format ?? 'png';
    for (const field of ['pass', 'version'] as const) {
      if (request.output?.[field] !== undefined && !(naming && hasField(naming.template, field))) {
        throw invalid(`body.output.${field}`, `the production's naming template has no {${field}}`);
      }
    }
    const pass =
      naming && hasField(naming.template, 'pass') ? (request.output?.pass ?? naming.pass) : undefined;
    let version: number | undefined;
    if (naming && hasField(naming.template, 'version')) {
      version = request.output?.version;
      if (version === undefined) {
        const { jobs } = await this.deps.store.listJobs(tenant, { shot: request.shot, limit: 1 });
        version = (jobs[0]?.output?.version ?? 0) + 1;
      }
    }
    if (naming) {
      try {
        renderName(naming.template, {
          shot: request.shot,
          frame: request.frames.end,
          ext: format,
          pass,
          version,
        });
      } catch (err) {
        if (err instanceof NamingError) throw invalid('body.output', err.message);
        throw err;
      }
    }
    if (format === 'png' && pass === undefined && version === undefined) return undefined;
    return { format, ...(pass !== undefined && { pass }), ...(version !== undefined && { version }) };
  }

  /**
   * Accepts a shot. Writes the job and queues one plan message: the frames fan out later, so a
   * 10,000-frame shot is accepted as fast as a one-frame shot.
   */
  async create(who: Caller | string, body: unknown, idempotencyKey?: string, now = new Date()) {
    // A caller is recorded as the job's creator (its audit record); a bare tenant is an unnamed caller.
    const caller: Caller = typeof who === 'string' ? { tenant: who, scopes: [] } : who;
    const accepted = await this.accept(caller, body, idempotencyKey, now, false);
    if ('dryRun' in accepted) throw new Error('unreachable: a real create answered a dry run');
    return accepted;
  }

  /**
   * `POST /v1/jobs?dryRun=true`: the request is checked exactly as a job would be (each refusal the same
   * 400), then estimated (GPU seconds, cost, expected start and finish); nothing is written or queued.
   */
  async dryRun(who: Caller | string, body: unknown, now = new Date()): Promise<DryRun> {
    const caller: Caller = typeof who === 'string' ? { tenant: who, scopes: [] } : who;
    const answer = await this.accept(caller, body, undefined, now, true);
    if (!('dryRun' in answer)) throw new Error('unreachable: a dry run made a job');
    return answer;
  }

  private async accept(
    caller: Caller,
    body: unknown,
    idempotencyKey: string | undefined,
    now: Date,
    dryRun: boolean,
  ): Promise<DryRun | { job: JobResponse; created: boolean }> {
    const tenant = caller.tenant;
    if (idempotencyKey !== undefined && !IDEMPOTENCY_KEY.test(idempotencyKey)) {
      throw invalid('Idempotency-Key', 'must be 1 to 255 visible ASCII characters');
    }
    if (body === undefined) throw invalid('body', 'a JSON job request is required');
    const request: JobRequest = parse(this.schema, body);
    if (!this.deps.models.includes(request.model)) {
      throw invalid(
        'body.model',
        `unknown model "${request.model}"; this stack runs: ${this.deps.models.join(', ')}`,
      );
    }
    if (request.startBy !== undefined && Date.parse(request.startBy) <= now.getTime()) {
      throw invalid('body.startBy', 'must be in the future');
    }
    const window = this.windowsOf(request);
    if (window && request.output?.format === 'exr') {
      // A window's context and cross-fades read the stored frames back as the model's PNGs.
      throw invalid('body.output.format', 'exr is not available for a model with windows yet; ask for png');
    }
    const review = this.reviewOf(request, window);
    const inputs = await this.inputsOf(tenant, request);
    const output = await this.outputOf(tenant, request);
    if (request.webhook && this.deps.checkWebhookUrl) {
      const reason = await this.deps.checkWebhookUrl(request.webhook.url);
      if (reason) throw invalid('body.webhook.url', reason);
    }
    const estimate = await this.deps.estimator?.estimate(request, now);
    if (dryRun) {
      if (!estimate) throw new FramecastError('unavailable', 'estimates are not configured on this stack');
      return {
        dryRun: true,
        model: request.model,
        frames: frameCount(request.frames),
        estimate: estimateView(estimate),
      };
    }
    await this.deps.checkBudget?.(tenant, estimate);
    const id = newJobId(now.getTime());
    const job: JobRecord = {
      id,
      tenant,
      shot: request.shot,
      status: 'queued',
      prompt: request.prompt,
      ...(request.negativePrompt !== undefined && { negativePrompt: request.negativePrompt }),
      model: request.model,
      width: request.width,
      height: request.height,
      frames: request.frames,
      seed: request.seed ?? randomSeed(),
      seedMode: request.seedMode,
      ...(request.params !== undefined && { params: request.params }),
      priority: request.priority,
      ...(request.startBy !== undefined && { startBy: new Date(request.startBy).toISOString() }),
      ...(request.webhook !== undefined && { webhook: request.webhook }),
      succeeded: 0,
      failed: 0,
      canceled: 0,
      failedFrames: [],
      ...(inputs && { inputs }),
      ...(window && { window }),
      ...(review && { review }),
      // Thumbnails cost a PUT a frame: made where someone looks at the frames before delivery.
      thumbnails: request.thumbnails ?? review !== undefined,
      ...(output && { output }),
      ...(estimate && { estimate: recordedEstimate(estimate) }),
      createdAt: now.toISOString(),
      createdBy: actorOf(caller),
      bucket: this.deps.bucket,
      prefix: jobPrefix(tenant, request.shot, id),
      requestHash: sha256(canonicalJson(body)),
    };
    const keyHash = idempotencyKey === undefined ? undefined : sha256(idempotencyKey);
    const { job: stored, created } = await this.deps.store.createJob(job, keyHash, now);
    // A replayed request whose first attempt never reached the plan queue queues it now (fan-out is idempotent).
    if (created || (stored.status === 'queued' && stored.plannedUpTo === undefined)) {
      try {
        await this.deps.sendPlan({ jobId: stored.id, tenant });
      } catch (err) {
        logger.error('plan queue send failed', { jobId: stored.id, error: err as Error });
        // No job is visible without its plan: the new job is taken back, and the studio simply retries.
        // If even that fails (the table is down too), the job stays, and a retry with the key queues it.
        const discarded =
          created && (await this.deps.store.discardUnplannedJob(stored, keyHash).catch(() => false));
        if (discarded) {
          throw new FramecastError('unavailable', 'the job could not be queued and was not accepted; retry');
        }
        throw new FramecastError(
          'unavailable',
          'the job was recorded but could not be queued; retry with the same Idempotency-Key',
          { jobId: stored.id },
        );
      }
    }
    if (created) countMetric(APP_METRICS.jobsSubmitted);
    return { job: toJobResponse(stored), created };
  }

  /**
   * The windows a job on a video model is made of, from what the model declares and what the job asks;
   * undefined for a model that makes one frame per prediction, which refuses the window fields.
   */
  private windowsOf(request: JobRequest): JobWindows | undefined {
    const declared = specOf(this.deps.modelSpecs ?? {}, request.model).frames;
    if (!declared) {
      const field = request.windowMode !== undefined ? 'windowMode' : request.window ? 'window' : undefined;
      if (field) {
        throw invalid(
          `body.${field}`,
          `model "${request.model}" makes one frame per prediction and has no windows`,
        );
      }
      return undefined;
    }
    const planned = jobWindowSpec(declared, request.window);
    if (!planned.ok) throw invalid(`body.window.${planned.field}`, planned.message);
    return { ...planned.spec, mode: request.windowMode ?? 'chained' };
  }

  /**
   * A review gate's frames, each in the job's range; a gate that makes the whole shot (with windows: whose
   * windows cover it) is refused, since nothing would be left to wait for review.
   */
  private reviewOf(request: JobRequest, window: JobWindows | undefined): JobReview | undefined {
    if (!request.review) return undefined;
    const resolved = resolveReview(request.review, request.frames);
    if (!resolved.ok) throw invalid(resolved.field, resolved.message);
    const review: JobReview = {
      frames: resolved.frames,
      ...(request.review.every !== undefined && { every: request.review.every }),
    };
    if (gateCoversShot({ frames: request.frames, ...(window && { window }), review })) {
      throw invalid(
        'body.review',
        window
          ? 'the windows of the review frames make the whole shot; nothing would wait for review'
          : 'names every frame of the shot; nothing would wait for review',
      );
    }
    return review;
  }

  /**
   * The job's inputs, each checked against what the model declares and what the asset holds: an input
   * the model does not take, an asset that is not this tenant's or not ready, a size other than the job's,
   * or (with `outside: error`) a frame the sequence does not cover is a 400 naming the field, and nothing
   * is written. Frames a fitted last window makes past the shot hold the sequence's last frame.
   */
  private async inputsOf(
    tenant: string,
    request: JobRequest,
  ): Promise<Record<string, JobInputRecord> | undefined> {
    if (!request.inputs) return undefined;
    const declared = specOf(this.deps.modelSpecs ?? {}, request.model).inputs;
    const out: Record<string, JobInputRecord> = {};
    for (const [name, input] of Object.entries(request.inputs)) {
      const field = `body.inputs.${name}`;
      if (!(name in declared)) {
        const takes = Object.keys(declared);
        throw invalid(
          field,
          `model "${request.model}" does not take an input "${name}"${takes.length > 0 ? `; it takes: ${takes.join(', ')}` : '; it takes none'}`,
        );
      }
      const asset = this.deps.getAsset ? await this.deps.getAsset(input.asset) : undefined;
      if (!asset || asset.tenant !== tenant || asset.status === 'deleting')
        throw invalid(`${field}.asset`, `asset ${input.asset} was not found`);
      if (asset.status !== 'ready')
        throw invalid(
          `${field}.asset`,
          `asset ${input.asset} is ${asset.status}, not ready; complete it first`,
        );
      if (asset.width !== request.width || asset.height !== request.height) {
        throw invalid(
          `${field}.asset`,
          `asset ${input.asset} is ${asset.width}x${asset.height}; the job is ${request.width}x${request.height}`,
        );
      }
      const uncovered = firstUncovered(request.frames, input, asset);
      if (uncovered !== undefined) {
        throw invalid(
          field,
          `frame ${uncovered} is not covered: asset ${input.asset} holds frames ${asset.frames!.start}-${asset.frames!.end} and output frame ${uncovered} takes its frame ${uncovered + input.offset} (set offset, or outside: "hold")`,
        );
      }
      out[name] = { ...input, ...(asset.frames && { frames: asset.frames }) };
    }
    return out;
  }

  async get(tenant: string, id: string): Promise<JobRecord> {
    return tenantJob(this.deps.store, tenant, id);
  }

  async list(tenant: string, q: { shot?: string; status?: JobStatus; limit: number; cursor?: string }) {
    const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
    const { jobs, last } = await this.deps.store.listJobs(tenant, {
      limit: q.limit,
      ...(q.shot !== undefined && { shot: q.shot }),
      ...(q.status !== undefined && { status: q.status }),
      ...(after !== undefined && { after }),
    });
    return { jobs: jobs.map(toJobResponse), ...(last && { nextCursor: encodeCursor(last) }) };
  }

  /**
   * Releases a job awaiting review: the frames its gate held back are queued (one plan message). Repeated
   * once the job runs again, it answers the job and queues the plan if the first approve could not.
   */
  async approve(caller: Caller, id: string, now = new Date()) {
    await this.get(caller.tenant, id);
    const { job, event } = await this.deps.store.approveJob(id, actorOf(caller), now);
    if (event) await this.deps.publishEvents([event]);
    if (job.status === 'running' && job.plannedUpTo === undefined) {
      try {
        await this.deps.sendPlan({ jobId: job.id, tenant: job.tenant });
      } catch (err) {
        logger.error('plan queue send failed', { jobId: job.id, error: err as Error });
        throw new FramecastError(
          'unavailable',
          'the job was approved but could not be queued; approve again',
          {
            jobId: job.id,
          },
        );
      }
    } else if (!event) {
      throw new FramecastError('conflict', `job is ${job.status}; it was approved already`, {
        status: job.status,
      });
    }
    return toJobResponse(job);
  }

  /** Cancels a job awaiting review, recording who rejected it, when and why. */
  async reject(caller: Caller, id: string, body: unknown, now = new Date()) {
    const { reason } = parse(RejectRequest, body ?? {});
    await this.get(caller.tenant, id);
    const { job, event } = await this.deps.store.rejectJob(id, actorOf(caller), reason, now);
    await this.deps.publishEvents([event]);
    await this.deps.store.cancelWaitingFrames(job);
    return toJobResponse(job);
  }

  /**
   * Cancels the job and queues its `job.canceled` event. When the queue refuses, the cancel is recorded
   * and the studio gets a 503; its retry finds the job canceled and queues the recorded event again
   * (the webhook sender's delivery claims make a second copy harmless), so the event is never lost.
   */
  async cancel(who: Caller | string, id: string, now = new Date()) {
    const tenant = typeof who === 'string' ? who : who.tenant;
    const before = await this.get(tenant, id);
    const by = typeof who === 'string' ? undefined : actorOf(who);
    const { job, event } = await this.deps.store.cancelJob(id, now, by);
    const announce =
      event ??
      (job.status === 'canceled' && this.deps.latestEvents
        ? (await this.deps.latestEvents(id)).find((e) => e.type === 'job.canceled')
        : undefined);
    if (announce) {
      try {
        await this.deps.publishEvents([announce]);
      } catch (err) {
        logger.error('event queue send failed', { jobId: id, error: err as Error });
        throw new FramecastError(
          'unavailable',
          'the job is canceled but its job.canceled event could not be queued yet; retry the cancel',
          { jobId: id },
        );
      }
    }
    if (event && before.status === 'awaiting_review') await this.deps.store.cancelWaitingFrames(job);
    return toJobResponse(job);
  }

  /**
   * A page of a job's frames in frame order. Frames no worker has taken yet are `pending`
   * (or `canceled`, once the job is); stored frames carry a presigned download URL.
   */
  async frames(tenant: string, id: string, q: { limit: number; cursor?: string }) {
    const job = await this.get(tenant, id);
    const from = q.cursor === undefined ? job.frames.start : Number(decodeCursor(q.cursor));
    if (!Number.isInteger(from) || from < job.frames.start)
      throw invalid('cursor', 'is not a cursor of this listing');
    const to = Math.min(job.frames.end, from + q.limit - 1);
    const stored = from > to ? [] : await this.deps.store.listFrames(id, from, to);
    const byNumber = new Map(stored.map((f) => [f.frame, f]));
    const frames: FrameResponse[] = [];
    for (let n = from; n <= to; n++) {
      const record = byNumber.get(n);
      if (!record) {
        const status =
          job.status === 'canceled' || job.status === 'failed' ? 'canceled' : job.held ? 'held' : 'pending';
        frames.push({
          frame: n,
          status,
          seed: frameSeed(job.seed, job.seedMode, n, job.frames.start),
          attempts: 0,
        });
        continue;
      }
      const view = toFrameResponse(record);
      if (record.status === 'succeeded' && record.key && this.deps.presign) {
        frames.push({
          ...view,
          ...(await frameLinks(this.deps.presign, job, record, this.deps.naming?.template)),
        });
      } else {
        frames.push(view);
      }
    }
    // The manifest is written as the job ends: a download verifies against it (bin/cli/transfer.ts).
    const manifest =
      isTerminalJob(job.status) && this.deps.presign
        ? await this.deps.presign(manifestKey(tenant, job.shot, job.id))
        : undefined;
    return {
      frames,
      ...(to < job.frames.end && { nextCursor: encodeCursor(String(to + 1)) }),
      ...(manifest && { manifest: { url: manifest.url, expiresAt: manifest.expiresAt.toISOString() } }),
    };
  }
}
