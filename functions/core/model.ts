import type { EventType, FrameStatus, JobRequest, JobStatus } from './schemas.ts';

/** The records Framecast keeps, in the users' words. Adapters map them to and from storage. */

export interface ApiKeyRecord {
  readonly hash: string;
  readonly tenant: string;
  readonly scopes: readonly Scope[];
  readonly name: string;
  readonly createdAt: string;
  readonly revokedAt?: string;
}

export const SCOPES = ['jobs:read', 'jobs:write', 'webhooks:manage', 'assets:read', 'assets:write'] as const;
export type Scope = (typeof SCOPES)[number];

export interface JobRecord {
  readonly id: string;
  readonly tenant: string;
  readonly shot: string;
  readonly status: JobStatus;
  readonly prompt: string;
  readonly negativePrompt?: string;
  readonly model: string;
  readonly width: number;
  readonly height: number;
  readonly frames: { readonly start: number; readonly end: number };
  readonly seed: number;
  readonly seedMode: 'fixed' | 'per-frame';
  readonly params?: Record<string, unknown>;
  readonly priority: number;
  readonly webhook?: JobRequest['webhook'];
  readonly succeeded: number;
  readonly failed: number;
  readonly canceled: number;
  readonly failedFrames: readonly number[];
  readonly createdAt: string;
  readonly startedAt?: string;
  readonly finishedAt?: string;
  /** The bucket and key prefix the frames are written under. */
  readonly bucket: string;
  readonly prefix: string;
  /** The first frame the fan-out has not yet queued; `frames.end + 1` once every chunk is queued. */
  readonly plannedUpTo?: number;
  /** SHA-256 of the canonical request body, for Idempotency-Key checks. */
  readonly requestHash: string;
}

export interface FrameRecord {
  readonly jobId: string;
  readonly frame: number;
  readonly status: FrameStatus;
  readonly seed: number;
  readonly attempts: number;
  readonly sha256?: string;
  readonly size?: number;
  readonly key?: string;
  readonly error?: string;
  readonly startedAt?: string;
  readonly finishedAt?: string;
  /** The model's own time (Cog `metrics.predict_time`), seconds. */
  readonly predictTime?: number;
  /** The event announcing the frame's last outcome, re-published if a worker dies after recording it. */
  readonly eventId?: string;
}

/** An event a webhook carries: recorded with the state change that caused it, in the same transaction. */
export interface EventRecord {
  readonly id: string;
  readonly tenant: string;
  readonly jobId: string;
  readonly type: EventType;
  /** ISO 8601, when the state changed. */
  readonly timestamp: string;
  /** The webhook body's `data`: the job, and for frame events the frame. */
  readonly data: Record<string, unknown>;
}

/** One SQS message on the plan queue: "queue the frames of this job". */
export interface PlanMessage {
  readonly v: 1;
  readonly jobId: string;
  readonly tenant: string;
}

/** One SQS message on the frame queue: a chunk of one job's frames, generated together. */
export interface ChunkMessage {
  readonly v: 1;
  readonly jobId: string;
  readonly tenant: string;
  readonly frames: readonly number[];
}

/** One SQS message on the event queue: an event to deliver (the event itself is read from the table). */
export interface EventMessage {
  readonly v: 1;
  readonly eventId: string;
  readonly jobId: string;
  readonly tenant: string;
  /** Set when one endpoint is targeted (a redelivery or a retry); absent means every subscribed endpoint. */
  readonly endpoint?: string;
  /** The attempt this message makes (1 when absent). */
  readonly attempt?: number;
  /** Not before this time (ISO 8601): retries hours away hop through the queue's 15-minute delays. */
  readonly notBefore?: string;
  /** A redelivery a person asked for: one attempt, made even if the event was delivered. */
  readonly manual?: boolean;
}
