import type { Queue } from '../adapters/queues.ts';
import type { EventStore } from '../adapters/store/events.ts';
import type { JobStore } from '../adapters/store/jobs.ts';
import { sendWebhook } from '../adapters/webhook-sender.ts';
import type { DeliveryRecord, EndpointRecord, WebhookStore } from '../adapters/webhook-store.ts';
import { decodeCursor, encodeCursor } from '../core/cursor.ts';
import { FramecastError, notFound } from '../core/errors.ts';
import { isEndpointId, isEventId, newEndpointId } from '../core/ids.ts';
import { type EventMessage, encodeEvent } from '../core/messages.ts';
import type { EventRecord, JobRecord } from '../core/model.ts';
import { PUBLISH_TARGET } from '../core/publish.ts';
import {
  type EventType,
  type EventView,
  type WebhookEndpoint,
  WebhookEndpointRequest,
} from '../core/schemas.ts';
import { parse } from '../core/validation.ts';
import { nextAttemptDelay } from '../core/webhooks/schedule.ts';
import { generateSecret, sign } from '../core/webhooks/signing.ts';
import {
  type Lookup,
  requireDeliverableUrl,
  resolveAndCheck,
  type WebhookPolicy,
} from '../core/webhooks/ssrf.ts';
import { logger } from '../logger.ts';
import { tenantJob } from './jobs.ts';

/** Old and new secrets both sign for this long after a rotation. */
export const ROTATION_OVERLAP_MS = 24 * 3600 * 1000;
/** SQS's longest message delay; longer waits hop through the queue. */
const MAX_QUEUE_DELAY_SECONDS = 900;

export interface WebhookServiceDeps {
  readonly jobs: JobStore;
  readonly events: EventStore;
  readonly hooks: WebhookStore;
  readonly eventQueue: Pick<Queue, 'send'>;
  /** Where a delivery's message goes after its last attempt fails. */
  readonly eventDlq: Pick<Queue, 'send'>;
  readonly policy: WebhookPolicy;
  readonly lookup?: Lookup;
  readonly send?: typeof sendWebhook;
  /** Injected in tests: the retry schedule is checked without waiting a day. */
  readonly clock?: () => Date;
  readonly random?: () => number;
  /** The production's trackers (./publishing.ts): targets of their events, retried as webhooks are. */
  readonly publishers?: readonly Publisher[];
}

/** A delivery target that is not a webhook: publishing a job to a tracker (./publishing.ts). */
export interface Publisher {
  /** `publish-<tracker>`: the target id in event messages and delivery records. */
  readonly id: string;
  readonly url: string;
  readonly events: readonly string[];
  publish(event: EventRecord): Promise<Awaited<ReturnType<typeof sendWebhook>>>;
}

interface Target {
  /** "job" for the job's own webhook, or an endpoint id. */
  readonly id: string;
  readonly url: string;
}

const endpointView = (e: EndpointRecord): WebhookEndpoint => ({
  id: e.id,
  url: e.url,
  ...(e.events && { events: [...e.events] }),
  createdAt: e.createdAt,
  disabled: e.disabledAt !== undefined,
  ...(e.disabledAt && { disabledAt: e.disabledAt }),
  ...(e.disabledReason && { disabledReason: e.disabledReason }),
});

/** How long the worker trusts its read of a tenant's endpoints (wantsAny). */
export const LISTENERS_TTL_MS = 10_000;

const subscribed = (events: readonly string[] | undefined, type: string) => !events || events.includes(type);

/**
 * Webhooks for studios and vendors: endpoints, secrets, and delivery of recorded events, signed by the
 * Standard Webhooks specification and retried on the documented schedule.
 */
export class WebhookService {
  private readonly clock: () => Date;
  private readonly random: () => number;
  private readonly send: typeof sendWebhook;

  constructor(private readonly deps: WebhookServiceDeps) {
    this.clock = deps.clock ?? (() => new Date());
    this.random = deps.random ?? Math.random;
    this.send = deps.send ?? sendWebhook;
  }

  // ---- management -------------------------------------------------------------------------------------

  /** The reason a URL cannot receive webhooks, or undefined when it can (checked again at delivery). */
  async checkUrl(url: string): Promise<string | undefined> {
    const checked = await resolveAndCheck(url, this.deps.policy, this.deps.lookup);
    return checked.ok ? undefined : checked.reason;
  }

  async createEndpoint(tenant: string, body: unknown): Promise<WebhookEndpoint> {
    const request = parse(WebhookEndpointRequest, body);
    await requireDeliverableUrl('body.url', request.url, this.deps.policy, this.deps.lookup);
    const existing = await this.deps.hooks.listEndpoints(tenant);
    if (existing.length >= 20)
      throw new FramecastError('conflict', 'a tenant may register at most 20 webhook endpoints');
    const endpoint: EndpointRecord = {
      id: newEndpointId(),
      tenant,
      url: request.url,
      ...(request.events && { events: request.events }),
      createdAt: this.clock().toISOString(),
    };
    await this.deps.hooks.putEndpoint(endpoint);
    return endpointView(endpoint);
  }

  async listEndpoints(tenant: string): Promise<{ endpoints: WebhookEndpoint[] }> {
    return { endpoints: (await this.deps.hooks.listEndpoints(tenant)).map(endpointView) };
  }

  async deleteEndpoint(tenant: string, id: string): Promise<void> {
    if (!isEndpointId(id) || !(await this.deps.hooks.deleteEndpoint(tenant, id))) {
      throw notFound('webhook endpoint');
    }
  }

  async secret(tenant: string): Promise<{ secret: string }> {
    const stored =
      (await this.deps.hooks.getSecrets(tenant)) ??
      (await this.deps.hooks.createSecrets(tenant, generateSecret()));
    return { secret: stored.current };
  }

  async rotateSecret(tenant: string): Promise<{ secret: string; previousExpiresAt: string }> {
    const { secret: was } = await this.secret(tenant);
    const next = generateSecret();
    const now = this.clock();
    const until = new Date(now.getTime() + ROTATION_OVERLAP_MS);
    if (!(await this.deps.hooks.rotateSecrets(tenant, was, next, until, now))) {
      throw new FramecastError(
        'conflict',
        'the secret was rotated at the same moment by another request; read it again',
      );
    }
    return { secret: next, previousExpiresAt: until.toISOString() };
  }

  /** The secrets that sign now: the current one, and the previous one during its overlap. */
  private async signingSecrets(tenant: string, now: Date): Promise<string[]> {
    const stored =
      (await this.deps.hooks.getSecrets(tenant)) ??
      (await this.deps.hooks.createSecrets(tenant, generateSecret()));
    const secrets = [stored.current];
    if (stored.previous && stored.previousExpiresAt && Date.parse(stored.previousExpiresAt) > now.getTime()) {
      secrets.push(stored.previous);
    }
    return secrets;
  }

  // ---- events and replay ------------------------------------------------------------------------------

  async listJobEvents(tenant: string, jobId: string, q: { limit: number; cursor?: string }) {
    await tenantJob(this.deps.jobs, tenant, jobId);
    const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
    const events = await this.deps.events.listEvents(jobId, q.limit, after);
    const views: EventView[] = [];
    // Ten at a time: a page of 500 events must not open 500 requests at once.
    for (let i = 0; i < events.length; i += 10) {
      const slice = events.slice(i, i + 10);
      const deliveries = await Promise.all(slice.map((e) => this.deps.hooks.listDeliveries(e.id)));
      for (const [n, e] of slice.entries()) views.push(this.eventView(e, deliveries[n] ?? []));
    }
    const last = events.at(-1);
    return { events: views, ...(events.length === q.limit && last && { nextCursor: encodeCursor(last.id) }) };
  }

  private eventView(e: EventRecord, deliveries: DeliveryRecord[]): EventView {
    return {
      id: e.id,
      type: e.type,
      timestamp: e.timestamp,
      data: e.data,
      deliveries: deliveries.map((d) => ({
        target: d.target,
        url: d.url,
        status: d.status,
        attempts: d.attempts.map((a) => ({ ...a })),
        ...(d.nextAttemptAt && { nextAttemptAt: d.nextAttemptAt }),
      })),
    };
  }

  /** Sends an event again to each of its current targets: one attempt each, listed with the others. */
  async redeliver(tenant: string, eventId: string): Promise<{ event: string; targets: string[] }> {
    const event = isEventId(eventId) ? await this.deps.events.getEvent(eventId) : undefined;
    if (!event || event.tenant !== tenant) throw notFound('event');
    const targets = await this.targetsOf(event);
    if (targets.length === 0)
      throw new FramecastError('conflict', 'the event has no webhook target to deliver to');
    for (const target of targets) {
      const delivery = await this.deps.hooks.getDelivery(event.id, target.id);
      await this.deps.eventQueue.send(
        encodeEvent({
          eventId: event.id,
          jobId: event.jobId,
          tenant: event.tenant,
          endpoint: target.id,
          attempt: (delivery?.attemptCount ?? 0) + 1,
          manual: true,
        }),
      );
    }
    return { event: event.id, targets: targets.map((t) => t.id) };
  }

  private readonly listeners = new Map<string, { at: number; endpoints: Promise<EndpointRecord[]> }>();

  /**
   * Whether the job's own webhook or any enabled endpoint of its tenant takes one of `types`. Asked by
   * the worker for every chunk, so the tenant's endpoints are read at most once per LISTENERS_TTL_MS:
   * an endpoint added while a job runs hears its frame events from at most that much later.
   */
  async wantsAny(job: JobRecord, types: readonly EventType[], now = Date.now()): Promise<boolean> {
    if (job.webhook && types.some((t) => subscribed(job.webhook?.events, t))) return true;
    let cached = this.listeners.get(job.tenant);
    if (!cached || now - cached.at > LISTENERS_TTL_MS) {
      const endpoints = this.deps.hooks.listEndpoints(job.tenant);
      endpoints.catch(() => this.listeners.delete(job.tenant));
      cached = { at: now, endpoints };
      this.listeners.set(job.tenant, cached);
    }
    const endpoints = await cached.endpoints;
    return endpoints.some((e) => !e.disabledAt && types.some((t) => subscribed(e.events, t)));
  }

  // ---- delivery ---------------------------------------------------------------------------------------

  /** The job's own webhook and the tenant's endpoints that take this event's type. */
  private async targetsOf(event: EventRecord, only?: string): Promise<Target[]> {
    const targets: Target[] = [];
    if (only === undefined || only === 'job') {
      const job = await this.deps.jobs.getJob(event.jobId);
      if (job?.webhook && subscribed(job.webhook.events, event.type))
        targets.push({ id: 'job', url: job.webhook.url });
    }
    for (const p of this.deps.publishers ?? []) {
      if ((only === undefined || only === p.id) && p.events.includes(event.type))
        targets.push({ id: p.id, url: p.url });
    }
    if (only !== 'job' && !PUBLISH_TARGET.test(only ?? '')) {
      const endpoints =
        only === undefined
          ? await this.deps.hooks.listEndpoints(event.tenant)
          : [await this.deps.hooks.getEndpoint(event.tenant, only)].filter(
              (e): e is EndpointRecord => e !== undefined,
            );
      for (const e of endpoints) {
        if (!e.disabledAt && subscribed(e.events, event.type)) targets.push({ id: e.id, url: e.url });
      }
    }
    return targets;
  }

  /**
   * Handles one event-queue message: the first delivery of an event to every target, or one retry
   * (or redelivery) to one target. Targets are sent to concurrently and each waits at most the
   * timeout, so a slow endpoint delays nobody else; its retries are messages of their own.
   */
  async deliver(message: EventMessage): Promise<void> {
    const now = this.clock();
    if (message.notBefore) {
      const wait = Date.parse(message.notBefore) - now.getTime();
      if (wait > 1000) {
        await this.deps.eventQueue.send(
          encodeEvent(message),
          Math.min(MAX_QUEUE_DELAY_SECONDS, Math.ceil(wait / 1000)),
        );
        return;
      }
    }
    const event = await this.deps.events.getEvent(message.eventId);
    if (!event) return;
    const targets = await this.targetsOf(event, message.endpoint);
    await Promise.all(
      targets.map((t) => this.attempt(event, t, message.attempt ?? 1, message.manual === true)),
    );
  }

  private async sendSigned(event: EventRecord, target: Target, now: Date) {
    const body = JSON.stringify({ type: event.type, timestamp: event.timestamp, data: event.data });
    const headers = sign({
      id: event.id,
      timestamp: Math.floor(now.getTime() / 1000),
      body,
      secrets: await this.signingSecrets(event.tenant, now),
    });
    return this.send({
      url: target.url,
      headers,
      body,
      policy: this.deps.policy,
      ...(this.deps.lookup && { lookup: this.deps.lookup }),
    });
  }

  private async attempt(event: EventRecord, target: Target, attempt: number, manual: boolean): Promise<void> {
    const { hooks } = this.deps;
    // A duplicated message, or a retry a redelivery overtook: the claim lets one of them send.
    const now = this.clock();
    if (!(await hooks.claimAttempt(event.id, target.id, target.url, attempt, manual, now))) return;
    const publisher = this.deps.publishers?.find((p) => p.id === target.id);
    const result = publisher ? await publisher.publish(event) : await this.sendSigned(event, target, now);
    const record = {
      attempt,
      at: now.toISOString(),
      latencyMs: Math.round(result.latencyMs),
      ...(result.status !== undefined && { status: result.status }),
      ...(result.error !== undefined && { error: result.error }),
      ...(manual && { manual }),
    };
    if (result.ok) {
      await hooks.recordAttempt(event.id, target.id, record, 'succeeded');
      return;
    }
    if (result.disable) {
      // 410 Gone: the receiver asks for no more; a registered endpoint is disabled for every event.
      if (target.id !== 'job' && !publisher)
        await hooks.disableEndpoint(event.tenant, target.id, 'receiver answered 410 Gone', now);
      await hooks.recordAttempt(event.id, target.id, record, 'failed');
      return;
    }
    const delay = manual ? undefined : nextAttemptDelay(attempt, this.random, result.retryAfterSeconds);
    const retry: Omit<EventMessage, 'v'> = {
      eventId: event.id,
      jobId: event.jobId,
      tenant: event.tenant,
      endpoint: target.id,
      attempt: attempt + 1,
    };
    if (delay === undefined) {
      await hooks.recordAttempt(event.id, target.id, record, 'failed');
      if (!manual) {
        logger.warn('webhook delivery failed for good', { eventId: event.id, target: target.id, attempt });
        // The dead letter names the next attempt: redriven once the receiver is back, it makes that attempt.
        // Naming this one, the redrive would find its claim taken and its attempt recorded, and send nothing.
        await this.deps.eventDlq.send(encodeEvent(retry));
      }
      return;
    }
    const next = new Date(now.getTime() + delay * 1000);
    await hooks.recordAttempt(event.id, target.id, record, 'retrying', next);
    await this.deps.eventQueue.send(
      encodeEvent({ ...retry, notBefore: next.toISOString() }),
      Math.min(MAX_QUEUE_DELAY_SECONDS, Math.ceil(delay)),
    );
  }
}
