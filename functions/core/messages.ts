import * as z from 'zod';
import { ENDPOINT_ID, EVENT_ID, JOB_ID, TENANT } from './ids.ts';
import { PUBLISH_TARGET } from './publish.ts';

/**
 * The queue messages, one schema each: what a producer may send and what a consumer accepts.
 *
 * Every message carries its version `v`, and each schema is a union discriminated on it, so a v2 is
 * added beside v1 and consumers read both while producers move over. A message whose `v` this code does
 * not read is refused, like any malformed message, and goes to its queue's DLQ (docs/architecture.md,
 * "Queue messages").
 *
 * Unknown fields are stripped, not refused: during a rolling deploy a new producer may already add an
 * optional field that the consumers still running do not know, and they must go on working; a change
 * that old consumers would misread takes a new version instead.
 */

const JobId = z.string().regex(JOB_ID, 'must be a job id');
const EventId = z.string().regex(EVENT_ID, 'must be an event id');
const Tenant = z.string().regex(TENANT, 'must be a tenant');
const Frame = z.int().min(0, 'must be 0 or more');

/** "Queue the frames of this job": one per accepted job on the plan queue, and its continuations. */
const PlanV1 = z.object({ v: z.literal(1), jobId: JobId, tenant: Tenant });

/** A chunk of one job's frames, generated together, on the frame queue of the job's model. */
const ChunkV1 = z.object({
  v: z.literal(1),
  jobId: JobId,
  tenant: Tenant,
  frames: z.array(Frame).min(1, 'must name a frame').readonly(),
});

/**
 * One window of a job on a model with windows (docs/architecture.md, "Windows"), on the frame queue of
 * the job's model beside chunks: one prediction makes the window's frames. The window is planned from the
 * job's record, so the message names only its index.
 */
const WindowV1 = z.object({
  v: z.literal(1),
  jobId: JobId,
  tenant: Tenant,
  window: z.int().min(0, 'must be 0 or more').max(1_000_000, 'must be at most 1000000'),
});

/**
 * A re-roll (docs/architecture.md, "Versions and review"): version 2 of the chunk and window messages
 * carries the version to make, its seed and its params. A new version rather than an optional field: a
 * worker that read it as v1 would find the frames finished and drop the re-roll as a duplicate.
 */
const Reroll = z.object({
  version: z.int().min(2, 'must be 2 or more (1 is the first generation)').max(9999),
  seed: z.int().min(0).max(0xffff_ffff),
  params: z.record(z.string(), z.unknown()).optional(),
});
const ChunkV2 = ChunkV1.extend({
  v: z.literal(2),
  frames: z.array(Frame).length(1, 'must name the one frame re-rolled').readonly(),
  reroll: Reroll,
});
const WindowV2 = WindowV1.extend({ v: z.literal(2), reroll: Reroll });

/**
 * A dead letter (docs/reliability.md, "Poison and redrive"): frames that failed every attempt, put on the
 * frame queue's DLQ by the worker that recorded them failed. Redriven once the fault is fixed, it reopens
 * them: they are made again and the job finishes. A new version rather than a field: a worker that read
 * it as v1 would find the frames finished and drop it as a duplicate; one that cannot read v3 refuses it,
 * and it goes back to the DLQ to wait.
 */
const DeadLetter = z.object({
  /** Why the frames failed: the last attempt's error. */
  reason: z.string().max(1000),
  /** When they were recorded failed (ISO 8601). */
  at: z.iso.datetime('must be an ISO 8601 time'),
});
const ChunkV3 = ChunkV1.extend({ v: z.literal(3), deadLetter: DeadLetter });
/** A chained window that failed every attempt: redriven, it reopens the window and the chain goes on. */
const WindowV3 = WindowV1.extend({ v: z.literal(3), deadLetter: DeadLetter });

/** An event to deliver, on the event queue (the event itself is read from the table). */
const EventV1 = z.object({
  v: z.literal(1),
  eventId: EventId,
  jobId: JobId,
  tenant: Tenant,
  /** Set when one target is meant (a redelivery or a retry): the job's own URL or an endpoint id. */
  endpoint: z
    .union(
      [z.literal('job'), z.string().regex(ENDPOINT_ID), z.string().regex(PUBLISH_TARGET)],
      'must be "job", an endpoint id or a publish target',
    )
    .optional(),
  /** The attempt this message makes (1 when absent). */
  attempt: z.int().min(1, 'must be 1 or more').optional(),
  /** Not before this time (ISO 8601): retries hours away hop through the queue's 15-minute delays. */
  notBefore: z.iso.datetime('must be an ISO 8601 time').optional(),
  /** A redelivery a person asked for: one attempt, made even if the event was delivered. */
  manual: z.boolean().optional(),
});

export const planMessageSchema = z.discriminatedUnion('v', [PlanV1]);
export const chunkMessageSchema = z.discriminatedUnion('v', [ChunkV1, ChunkV2, ChunkV3]);
export const windowMessageSchema = z.discriminatedUnion('v', [WindowV1, WindowV2, WindowV3]);
export const eventMessageSchema = z.discriminatedUnion('v', [EventV1]);

export type PlanMessage = Readonly<z.output<typeof planMessageSchema>>;
export type ChunkMessage = Readonly<z.output<typeof chunkMessageSchema>>;
export type WindowMessage = Readonly<z.output<typeof windowMessageSchema>>;
/** What a frame queue carries: chunks of frames, and windows of models with windows. */
export type FrameQueueMessage =
  | ({ readonly kind: 'chunk' } & ChunkMessage)
  | ({ readonly kind: 'window' } & WindowMessage);
export type EventMessage = Readonly<z.output<typeof eventMessageSchema>>;

/** A message schema: every version of one message, discriminated on `v`. */
export type MessageSchema = z.ZodDiscriminatedUnion<readonly z.ZodObject[], 'v'>;

/** The versions a schema reads, e.g. `[1]`. */
export function versionsOf(schema: MessageSchema): number[] {
  return schema.options.flatMap((option) => {
    const v = option.shape.v;
    return v instanceof z.ZodLiteral ? [...v.values].filter((n) => typeof n === 'number') : [];
  });
}

const describeIssues = (error: z.ZodError): string =>
  error.issues
    .slice(0, 5)
    .map((i) => `${i.path.length > 0 ? i.path.join('.') : 'message'}: ${i.message}`)
    .join('; ');

export type ParsedMessage<T> = { ok: true; message: T } | { ok: false; reason: string };

/**
 * Reads one queue message's body. Never throws: a body that is not JSON, not of a version this code
 * reads, or not of the schema comes back with the reason, for the consumer to log and dead-letter.
 */
export function parseMessage<S extends MessageSchema>(
  schema: S,
  body: string,
): ParsedMessage<Readonly<z.output<S>>> {
  let raw: unknown;
  try {
    raw = JSON.parse(body);
  } catch (err) {
    return { ok: false, reason: `not JSON: ${err instanceof Error ? err.message : String(err)}` };
  }
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw))
    return { ok: false, reason: 'not a JSON object' };
  const versions = versionsOf(schema);
  const v: unknown = 'v' in raw ? raw.v : undefined;
  if (typeof v !== 'number' || !versions.includes(v)) {
    const read = `this code reads ${versions.map((n) => `v${n}`).join(', ')}`;
    return {
      ok: false,
      reason: v === undefined ? `no version (v); ${read}` : `unknown version ${JSON.stringify(v)}; ${read}`,
    };
  }
  const out = schema.safeParse(raw);
  return out.success ? { ok: true, message: out.data } : { ok: false, reason: describeIssues(out.error) };
}

/**
 * Reads a frame queue message: a chunk when it names `frames`, a window when it names `window` and no
 * frames. Never throws; a body that is neither comes back with the reason, for the worker to dead-letter.
 */
export function parseFrameQueueMessage(body: string): ParsedMessage<FrameQueueMessage> {
  if (names(body, 'window') && !names(body, 'frames')) {
    const parsed = parseMessage(windowMessageSchema, body);
    return parsed.ok ? { ok: true, message: { kind: 'window', ...parsed.message } } : parsed;
  }
  const parsed = parseMessage(chunkMessageSchema, body);
  return parsed.ok ? { ok: true, message: { kind: 'chunk', ...parsed.message } } : parsed;
}

/** True when `body` is a JSON object with the field `key`. */
function names(body: string, key: string): boolean {
  try {
    const raw: unknown = JSON.parse(body);
    return typeof raw === 'object' && raw !== null && !Array.isArray(raw) && key in raw;
  } catch {
    return false;
  }
}

/** A message's body, in the version producers send now; a message that breaks its schema is a bug here. */
function encode(schema: MessageSchema, what: string, message: object): string {
  const out = schema.safeParse(message);
  if (!out.success)
    throw new Error(`refusing to send a malformed ${what} message: ${describeIssues(out.error)}`);
  return JSON.stringify(out.data);
}

type Fields<M> = Omit<M, 'v'>;

export const encodePlan = (m: Fields<PlanMessage>): string =>
  encode(planMessageSchema, 'plan', { ...m, v: 1 });
/** What a re-roll message carries beyond the chunk or window it makes again. */
export type RerollOrder = z.output<typeof Reroll>;

/** What a dead-lettered chunk carries beyond its frames. */
export type DeadLetterNote = z.output<typeof DeadLetter>;

/** A dead letter's note: the last error (as much as the schema keeps) and now. */
export const deadLetterNote = (error: string, now = new Date()): DeadLetterNote => ({
  reason: error.slice(0, 1000),
  at: now.toISOString(),
});

type Producible<M> = Omit<M, 'v' | 'reroll' | 'deadLetter'> & { readonly reroll?: RerollOrder };

/** A chunk body: v1, v2 when it is a re-roll, v3 when it is a dead letter. */
export const encodeChunk = (m: Producible<ChunkMessage> & { readonly deadLetter?: DeadLetterNote }): string =>
  encode(chunkMessageSchema, 'chunk', { ...m, v: m.reroll ? 2 : m.deadLetter ? 3 : 1 });
/** A window body: v1, v2 when it is a re-roll, v3 when it is a dead letter. */
export const encodeWindow = (
  m: Producible<WindowMessage> & { readonly deadLetter?: DeadLetterNote },
): string => encode(windowMessageSchema, 'window', { ...m, v: m.reroll ? 2 : m.deadLetter ? 3 : 1 });
export const encodeEvent = (m: Fields<EventMessage>): string =>
  encode(eventMessageSchema, 'event', { ...m, v: 1 });
