import type { OutputFormat } from './colour.ts';
import type { InputBinding } from './inputs.ts';
import type {
  Actor,
  EventType,
  FrameStatus,
  JobRequest,
  JobStatus,
  VersionStatus,
  WindowMode,
} from './schemas.ts';
import type { WindowSpec } from './windows.ts';

/** The records Framecast keeps, in the users' words. Adapters map them to and from storage. */

export interface ApiKeyRecord {
  readonly hash: string;
  readonly tenant: string;
  readonly scopes: readonly Scope[];
  readonly name: string;
  readonly createdAt: string;
  readonly revokedAt?: string;
}

export const SCOPES = [
  'jobs:read',
  'jobs:write',
  'webhooks:manage',
  'assets:read',
  'assets:write',
  // The audit trail (GET /v1/audit): who made what; a key for disclosure work needs nothing else.
  'audit:read',
  'admin',
] as const;
export type Scope = (typeof SCOPES)[number];
/**
 * What a key gets when none are named: every scope but `admin` (budgets, every tenant's usage), which
 * reaches across tenants and is granted only by name (`framecast keys create --scopes admin,...`).
 */
export const DEFAULT_SCOPES: readonly Scope[] = SCOPES.filter((s) => s !== 'admin');

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
  /** The queue deadline (ISO 8601): frames not started by then are canceled (core/fair-share.ts). */
  readonly startBy?: string;
  /** Why frames of the job were canceled while it ran (a missed `startBy`); the job shows it. */
  readonly canceledReason?: string;
  readonly webhook?: JobRequest['webhook'];
  readonly succeeded: number;
  readonly failed: number;
  readonly canceled: number;
  readonly failedFrames: readonly number[];
  /** The assets the model is given, by input name, with the frames each asset covers. */
  readonly inputs?: Readonly<Record<string, JobInputRecord>>;
  /**
   * How the frames are delivered (docs/colour.md): EXR or PNG, and the pass and version the production's
   * naming template names. Absent: PNG named `<shot>.<frame>.png`.
   */
  readonly output?: { readonly format: OutputFormat; readonly pass?: string; readonly version?: number };
  /** For a model with windows: the windows this job is made of (the model's, or the smaller ones it asked for). */
  readonly window?: JobWindows;
  /** The window that failed after every attempt; in chained mode the frames after it count as canceled. */
  readonly failedWindow?: FailedWindow;
  /** A review gate: its frames are made first, the rest once a person approves (core/review.ts). */
  readonly review?: JobReview;
  /**
   * Whether each frame stored gets its review thumbnail (docs/performance.md, "Cost"). Written on every
   * job since the setting exists; absent on jobs stored before it, all of which had thumbnails.
   */
  readonly thumbnails?: boolean;
  /** Re-rolls accepted on this job, one per frame or window re-rolled (issue 12 prices them). */
  readonly rerolls?: number;
  readonly createdAt: string;
  /** Who submitted the job (issue 12's audit): the key's id and name, never the key. */
  readonly createdBy?: Actor;
  readonly startedAt?: string;
  readonly finishedAt?: string;
  /** The bucket and key prefix the frames are written under. */
  readonly bucket: string;
  readonly prefix: string;
  /** The first frame the fan-out has not yet queued; `frames.end + 1` once every chunk is queued. */
  readonly plannedUpTo?: number;
  /** The frame whose chunk asks the fan-out for the next release (core/fair-share.ts `lowWaterMark`). */
  readonly releaseAt?: number;
  /**
   * Set once a missed `startBy` canceled the frames never released: they are counted among `canceled`
   * from this frame on, so the chunks still queued count only their frames below it.
   */
  readonly unplannedCanceledFrom?: number;
  /** SHA-256 of the canonical request body, for Idempotency-Key checks. */
  readonly requestHash: string;
  /** GPU time and spend of the job's recorded frames, counted with them (core/cost.ts). */
  readonly gpuMs?: number;
  readonly costMicros?: number;
  /** What the job was estimated to take when it was accepted. */
  readonly estimate?: JobEstimate;
  /** Set while a budget at its stop threshold holds the job's unstarted frames (docs/operations.md, "Budgets"). */
  readonly held?: JobHold;
}

/** Why a job's unstarted frames wait, and since when. */
export interface JobHold {
  readonly reason: string;
  readonly since: string;
}

/** A job's estimate as recorded at submit (core/cost.ts `estimateJob`). */
export interface JobEstimate {
  readonly gpuMs: number;
  readonly costMicros: number;
  readonly basis: 'history' | 'prior';
  readonly expectedStart: string;
  readonly expectedFinish: string;
}

/** One input of a job: its asset and binding, and the asset's frames (absent for a still), read at submit. */
export interface JobInputRecord extends InputBinding {
  readonly asset: string;
  readonly frames?: { readonly start: number; readonly end: number };
}

/** A job's windows: the spec it plans them with, and how they make the shot. */
export interface JobWindows extends WindowSpec {
  readonly mode: WindowMode;
}

/** A job's review gate and what became of it. */
export interface JobReview {
  /** The frames to review, sorted, resolved from `frames` or `every` at submit. */
  readonly frames: readonly number[];
  readonly every?: number;
  /** When the review frames were all finished and the job moved to awaiting_review. */
  readonly requestedAt?: string;
  readonly approvedBy?: Actor;
  readonly approvedAt?: string;
  readonly rejectedBy?: Actor;
  readonly rejectedAt?: string;
  readonly reason?: string;
}

export interface FailedWindow {
  readonly index: number;
  /** Its first and last frame in the shot. */
  readonly start: number;
  readonly end: number;
  readonly error: string;
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
  /** Input name → sha256 of the input file the frame was made from. */
  readonly inputs?: Readonly<Record<string, string>>;
  /** The model's own time (Cog `metrics.predict_time`), seconds. */
  readonly predictTime?: number;
  /** GPU time the frame held, ms (the task's share of its host; a window's shared out over its frames). */
  readonly gpuMs?: number;
  /** What that time cost at the production's GPU price when it was recorded, micro-dollars (core/cost.ts). */
  readonly costMicros?: number;
  /** The event announcing the frame's last outcome, re-published if a worker dies after recording it. */
  readonly eventId?: string;
  /** The version the sequence name points at, once one other than the first was selected. */
  readonly selected?: number;
  /** Once re-rolled: every version of the frame, for the manifest. */
  readonly versions?: readonly VersionSummary[];
}

/** A frame's version as the manifest lists it. */
export interface VersionSummary {
  readonly version: number;
  readonly status: VersionStatus;
  readonly seed: number;
  readonly params?: Record<string, unknown>;
  readonly sha256?: string;
  readonly size?: number;
  readonly file?: string;
  readonly createdAt: string;
}

/**
 * One version of a re-roll unit (a frame, or the frames a window owns): made by a re-roll, or, for
 * version 1, the first generation as its frame records had it, written at the unit's first re-roll.
 */
export interface VersionRecord {
  readonly jobId: string;
  /** The unit: its first and last frame, and its window for a model with windows. */
  readonly start: number;
  readonly end: number;
  readonly window?: number;
  readonly version: number;
  readonly status: VersionStatus;
  /** The seed given to the model (a window's seed for a window). */
  readonly seed: number;
  /** The params the model was given: the job's, with the re-roll's over them. */
  readonly params?: Record<string, unknown>;
  readonly attempts: number;
  readonly createdAt: string;
  readonly finishedAt?: string;
  readonly requestedBy?: Actor;
  readonly error?: string;
  /** GPU time the re-roll held its model slot (the task's share), ms, and its spend (core/cost.ts). */
  readonly gpuMs?: number;
  readonly costMicros?: number;
  /** What each frame of the unit came out as, by frame number. */
  readonly frames: Readonly<Record<string, VersionFrame>>;
}

export interface VersionFrame {
  readonly seed: number;
  readonly sha256?: string;
  readonly size?: number;
  readonly key?: string;
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
