import * as z from 'zod';
import { OUTPUT_FORMATS } from './colour.ts';
import { ASSET_ID, TENANT } from './ids.ts';
import { EVENT_TYPES, USAGE_GROUPS } from './vocabulary.ts';

export { EVENT_TYPES, type EventType, USAGE_GROUPS } from './vocabulary.ts';

/**
 * The schemas of the HTTP API (the design's "HTTP API (v1)"): one per boundary, shared by the handlers,
 * the OpenAPI document, the tests and any client.
 */

/** `awaiting_review`: a gated job whose review frames are finished, waiting for approve or reject. */
export const JOB_STATUSES = [
  'queued',
  'running',
  'awaiting_review',
  'succeeded',
  'failed',
  'canceled',
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const FRAME_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'canceled'] as const;
export type FrameStatus = (typeof FRAME_STATUSES)[number];

/** A frame version made by a re-roll: queued, being made, made, or failed after its attempts. */
export const VERSION_STATUSES = ['pending', 'running', 'succeeded', 'failed'] as const;
export type VersionStatus = (typeof VERSION_STATUSES)[number];

/** How the windows of a video model make a shot (docs/architecture.md, "Windows"). */
export const WINDOW_MODES = ['chained', 'parallel'] as const;
export type WindowMode = (typeof WINDOW_MODES)[number];

export const DEFAULT_FRAME_LIMIT = 10_000;
export const MAX_PARAMS_BYTES = 16 * 1024;
export const UINT32_MAX = 0xffff_ffff;

export const Shot = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,64}$/, 'must be 1 to 64 letters, digits, "_", "." or "-"')
  // A shot is a folder in S3 and on every workstation that downloads it: "." and ".." are not names.
  .refine((s) => !/^\.+$/.test(s), 'must not be only dots')
  .meta({ description: 'Shot name, e.g. EP101_SH040', example: 'EP101_SH040' });

const Dimension = z
  .int()
  .min(64, 'must be at least 64')
  .max(8192, 'must be at most 8192')
  .multipleOf(8, 'must be a multiple of 8');

export const FrameNumber = z.int().min(0, 'must be 0 or more').max(9_999_999, 'must be at most 9999999');

export const FrameRange = z
  .strictObject({ start: FrameNumber, end: FrameNumber })
  .refine((r) => r.end >= r.start, { message: 'must not be before frames.start', path: ['end'] })
  .meta({ description: 'Inclusive frame range', example: { start: 1001, end: 1048 } });

export const Seed = z
  .int()
  .min(0, 'must be 0 or more')
  .max(UINT32_MAX, 'must fit in 32 bits (at most 4294967295)');

export const WebhookTarget = z.strictObject({
  url: z.string().min(1).max(2048),
  events: z.array(z.enum(EVENT_TYPES)).min(1).optional(),
});

/**
 * What in a JSON value the job's record cannot hold, and where: DynamoDB refuses an empty map key, and a
 * number past 2^53 or nearer 0 than 1e-130 cannot be stored exactly (the document client refuses it).
 */
export function unstorableJson(
  value: unknown,
  path: (string | number)[] = [],
): { path: (string | number)[]; message: string } | undefined {
  if (typeof value === 'number') {
    const size = Math.abs(value);
    if (size > Number.MAX_SAFE_INTEGER || (size !== 0 && size < 1e-130))
      return {
        path,
        message: 'must be a number within ±9007199254740991 (2^53 - 1), and 0 or at least 1e-130 in size',
      };
    return undefined;
  }
  if (value === null || typeof value !== 'object') return undefined;
  for (const [key, child] of Array.isArray(value) ? value.entries() : Object.entries(value)) {
    if (key === '') return { path, message: 'must not hold an empty key name' };
    const found = unstorableJson(child, [...path, key]);
    if (found) return found;
  }
  return undefined;
}

export const Params = z
  .record(z.string(), z.json())
  .refine(
    (p) => Buffer.byteLength(JSON.stringify(p)) <= MAX_PARAMS_BYTES,
    `must be at most ${MAX_PARAMS_BYTES} bytes of JSON`,
  )
  .superRefine((p, ctx) => {
    const found = unstorableJson(p);
    if (found) ctx.addIssue({ code: 'custom', message: found.message, path: found.path });
  })
  .meta({ description: 'Model-specific inputs passed to the model as they are' });

/** The job request. Strict: unknown fields are refused. `frameLimit` is the stack's configured limit. */
/** C0 control characters other than tab, line feed and carriage return. */
const hasControl = (s: string): boolean => {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 0x20 && c !== 0x09 && c !== 0x0a && c !== 0x0d) return true;
  }
  return false;
};

/** Text that goes into PNG text chunks and to the model: no NUL or other control characters. */
const Text = (max: number) =>
  z
    .string()
    .max(max, `must be at most ${max} characters`)
    .refine((s) => !hasControl(s), 'must not contain control characters');

/** One input of a job: an asset, and which of its frames each output frame takes (core/inputs.ts). */
const JobInput = z.strictObject({
  asset: z.string().regex(ASSET_ID, 'must be an asset id (ast_...)'),
  offset: z.int().min(-1_000_000).max(1_000_000).default(0).meta({
    description: 'Output frame f takes the asset frame f + offset',
  }),
  outside: z.enum(['error', 'hold']).default('error').meta({
    description:
      'For output frames the sequence does not cover: `error` refuses the job naming the first one, `hold` gives the nearest frame',
  }),
});

const JobInputs = z
  .record(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be an input name of the model'), JobInput)
  .refine((r) => Object.keys(r).length <= 16, 'must name at most 16 inputs')
  .meta({
    description:
      'Model input name → asset: plates, masks, control passes, references. The model must declare each input',
  });

/** Most review frames a gate may name (or `every` may make): a review is of hero frames, not of the shot. */
export const MAX_REVIEW_FRAMES = 1000;

export const ReviewGate = z
  .strictObject({
    frames: z
      .array(FrameNumber)
      .min(1, 'must name at least one frame')
      .max(MAX_REVIEW_FRAMES, `must name at most ${MAX_REVIEW_FRAMES} frames`)
      .optional()
      .meta({ description: 'Hero frames to review first (for a model with windows: their windows)' }),
    every: z.int().min(1, 'must be 1 or more').max(1_000_000).optional().meta({
      description: 'Review every N-th frame from the first: frames start, start + N, ...',
    }),
  })
  .refine((r) => (r.frames === undefined) !== (r.every === undefined), 'must give either frames or every')
  .meta({
    id: 'ReviewGate',
    description:
      'A review gate: these frames are made first, then the job waits in awaiting_review until approved (the rest is made) or rejected (canceled)',
  });

export const jobRequestSchema = (frameLimit: number = DEFAULT_FRAME_LIMIT) =>
  z
    .strictObject({
      shot: Shot,
      prompt: Text(4000).refine((s) => s.trim().length > 0, 'must not be empty'),
      negativePrompt: Text(4000).optional(),
      model: z
        .string()
        .regex(/^[a-z0-9][a-z0-9._-]{0,63}$/, 'must be a model name')
        .default('reference'),
      width: Dimension.default(1024),
      height: Dimension.default(576),
      frames: FrameRange.refine((r) => r.end - r.start + 1 <= frameLimit, {
        message: `must hold at most ${frameLimit} frames`,
        path: ['end'],
      }),
      seed: Seed.optional(),
      seedMode: z.enum(['fixed', 'per-frame']).default('per-frame'),
      params: Params.optional(),
      priority: z
        .int('must be an integer')
        .min(0, 'must be 0 or more')
        .max(100, 'must be at most 100')
        .default(50)
        .meta({
          description:
            'Orders work between jobs: 67-100 high, 34-66 normal, 0-33 low; within a band jobs share the workers fairly (docs/operations.md)',
        }),
      startBy: z.iso.datetime({ offset: true, error: 'must be an ISO 8601 time' }).optional().meta({
        description:
          'Queue deadline: frames not started by this time are canceled, and the job says why. Must be in the future',
      }),
      webhook: WebhookTarget.optional(),
      windowMode: z.enum(WINDOW_MODES).optional().meta({
        description:
          'For a model with windows: `chained` (default) makes each window from the last frames of the one before; `parallel` makes them at once and cross-fades the overlaps',
      }),
      inputs: JobInputs.optional(),
      output: z
        .strictObject({
          format: z.enum(OUTPUT_FORMATS).default('png').meta({
            description:
              "`png` (default: the model's 8-bit sRGB PNG with its provenance) or `exr` (16-bit half EXR in the plates' colour space)",
          }),
          pass: z
            .string()
            .regex(/^[A-Za-z0-9-]{1,32}$/, 'must be 1 to 32 letters, digits or "-"')
            .optional()
            .meta({
              description: "The `{pass}` of the production's naming template; default: the production's",
            }),
          version: z.int().min(1).max(9999).optional().meta({
            description:
              "The `{version}` of the production's naming template; default: one more than the shot's last job",
          }),
        })
        .optional()
        .meta({ description: 'What the frames are delivered as and named (docs/colour.md)' }),
      window: z
        .strictObject({
          size: z.int().min(1).max(1024).optional(),
          overlap: z.int().min(0).max(1023).optional(),
        })
        .optional()
        .meta({
          description:
            "For a model with windows: a smaller window (a length the model allows) or another overlap than the model's",
        }),
      review: ReviewGate.optional(),
      thumbnails: z.boolean().optional().meta({
        description:
          "Whether each frame gets a 256 px WebP thumbnail for the review page (one more S3 PUT a frame). Default: true for a job with a review gate, false otherwise; a re-roll's versions always get one. Without one, the review page shows the frame itself",
      }),
    })
    .meta({ id: 'JobRequest' });

export type JobRequest = z.output<ReturnType<typeof jobRequestSchema>>;
export type JobRequestInput = z.input<ReturnType<typeof jobRequestSchema>>;

/** Who did something to a job: the API key's tenant, its id (the first 12 hex digits of its hash) and name. */
export const Actor = z
  .object({ tenant: z.string(), keyId: z.string(), keyName: z.string().optional() })
  .meta({ id: 'Actor' });
export type Actor = z.output<typeof Actor>;

export const ReviewView = z
  .object({
    frames: z.array(z.int()).meta({ description: 'The frames to review, in order' }),
    every: z.int().optional(),
    status: z.enum(['pending', 'awaiting', 'approved', 'rejected']).meta({
      description:
        'pending: review frames being made; awaiting: the job waits in awaiting_review; approved or rejected by a person',
    }),
    requestedAt: z.iso
      .datetime()
      .optional()
      .meta({ description: 'When the review frames were all finished' }),
    approvedBy: Actor.optional(),
    approvedAt: z.iso.datetime().optional(),
    rejectedBy: Actor.optional(),
    rejectedAt: z.iso.datetime().optional(),
    reason: z.string().optional().meta({ description: 'The reason given with a reject' }),
  })
  .meta({ id: 'Review' });
export type ReviewView = z.output<typeof ReviewView>;

/** GPU time and what it cost (core/cost.ts): frames, jobs and usage show spend alike. */
export const Spend = z
  .object({
    gpuSeconds: z.number().meta({ description: "GPU time held, seconds (the task's share of its host)" }),
    usd: z.number().meta({ description: "What it cost at the production's GPU price, USD" }),
  })
  .meta({ id: 'Spend' });

/** What a job is expected to take, before it runs (`POST /v1/jobs?dryRun=true`, and on the job). */
export const EstimateView = z
  .object({
    gpuSeconds: z.number(),
    usd: z.number(),
    basis: z.enum(['history', 'prior']).meta({
      description:
        "history: the model's recorded seconds per megapixel; prior: the configured guess for a model with none",
    }),
    expectedStart: z.iso.datetime(),
    expectedFinish: z.iso.datetime(),
  })
  .meta({ id: 'Estimate' });

export const JobResponse = z
  .object({
    id: z.string().meta({ example: 'job_01JBZ8Q1XG9X3J5W2Y7K4M6N8P' }),
    shot: z.string(),
    status: z.enum(JOB_STATUSES),
    prompt: z.string(),
    negativePrompt: z.string().optional(),
    model: z.string(),
    width: z.int(),
    height: z.int(),
    frames: z.object({
      start: z.int(),
      end: z.int(),
      total: z.int(),
      succeeded: z.int(),
      failed: z.int(),
      canceled: z.int(),
      held: z.int().optional().meta({
        description:
          'While a budget holds the job: its frames not yet finished, which wait until it is raised',
      }),
    }),
    failedFrames: z.array(z.int()).meta({ description: 'Frame numbers that failed after every attempt' }),
    inputs: z
      .record(
        z.string(),
        z.object({ asset: z.string(), offset: z.int(), outside: z.enum(['error', 'hold']) }),
      )
      .optional()
      .meta({ description: 'The assets the job hands its model, by input name' }),
    output: z
      .object({ format: z.enum(OUTPUT_FORMATS), pass: z.string().optional(), version: z.int().optional() })
      .optional()
      .meta({
        description:
          'How the frames are delivered and named, when not the default PNG and <shot>.<frame>.png',
      }),
    windowMode: z.enum(WINDOW_MODES).optional().meta({ description: 'Set for a model with windows' }),
    window: z
      .object({
        size: z.int().meta({ description: 'Frames one prediction makes' }),
        overlap: z.int().meta({ description: 'Frames two neighbouring windows share' }),
        count: z.int().meta({ description: 'Windows the shot is made of' }),
      })
      .optional()
      .meta({ description: 'The windows of a model with windows, as this job makes them' }),
    failedWindow: z
      .object({ index: z.int(), start: z.int(), end: z.int(), error: z.string() })
      .optional()
      .meta({
        description:
          'The window that failed after every attempt (frames start to end); in chained mode the frames after it are canceled',
      }),
    seed: z.int(),
    seedMode: z.enum(['fixed', 'per-frame']),
    params: z.record(z.string(), z.json()).optional(),
    priority: z.int(),
    startBy: z.iso.datetime().optional().meta({ description: 'The queue deadline, when the job has one' }),
    canceledReason: z
      .string()
      .optional()
      .meta({ description: 'Why frames were canceled while the job ran (a missed startBy)' }),
    review: ReviewView.optional().meta({ description: 'Set on a job with a review gate' }),
    thumbnails: z.boolean().meta({
      description: "Whether the job's frames get thumbnails (`thumbnailUrl`); re-rolled versions always do",
    }),
    rerolls: z.int().meta({
      description: 'Re-rolls accepted on this job (one per frame, or per window of a model with windows)',
    }),
    createdAt: z.iso.datetime(),
    startedAt: z.iso.datetime().optional(),
    finishedAt: z.iso.datetime().optional(),
    outputPrefix: z.string().meta({ example: 's3://bucket/tenant/EP101_SH040/job_.../' }),
    cost: Spend.meta({
      description: 'What the frames recorded so far took: the actual, beside the estimate',
    }),
    estimate: EstimateView.optional().meta({
      description: 'What the job was estimated to take when accepted',
    }),
    held: z.object({ reason: z.string(), since: z.iso.datetime() }).optional().meta({
      description:
        'Set while a budget at its stop threshold holds the unstarted frames; they resume once it is raised',
    }),
  })
  .meta({ id: 'Job' });
export type JobResponse = z.output<typeof JobResponse>;

export const JobList = z
  .object({ jobs: z.array(JobResponse), nextCursor: z.string().optional() })
  .meta({ id: 'JobList' });

export const JobListQuery = z.strictObject({
  shot: Shot.optional(),
  status: z.enum(JOB_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(2048).optional(),
});

export const FrameResponse = z
  .object({
    frame: z.int(),
    status: z.enum([...FRAME_STATUSES, 'held']).meta({
      description:
        'held: not started, and waiting while a budget holds the job (docs/operations.md, "Budgets"); shown, never stored',
    }),
    seed: z.int(),
    attempts: z.int(),
    sha256: z.string().optional(),
    size: z.int().optional(),
    key: z.string().optional(),
    url: z.url().optional().meta({ description: 'Presigned download URL, once the frame is stored' }),
    urlExpiresAt: z.iso.datetime().optional(),
    thumbnailUrl: z.url().optional().meta({
      description: 'Presigned URL of a small WebP (256 px wide) of the selected version, once stored',
    }),
    version: z.int().optional().meta({
      description:
        'The version the sequence name points at: 1, the first generation, until another is selected',
    }),
    error: z.string().optional(),
    predictTime: z
      .number()
      .optional()
      .meta({ description: "The model's own time (Cog metrics.predict_time), seconds" }),
    cost: Spend.optional().meta({ description: 'GPU time the frame held and its spend, once recorded' }),
  })
  .meta({ id: 'Frame' });
export type FrameResponse = z.output<typeof FrameResponse>;

/** The frames a re-roll makes together: one frame, or the frames a window of a video model owns. */
const RerollUnit = z.object({
  start: z.int(),
  end: z.int(),
  window: z.int().optional().meta({ description: 'The window index, for a model with windows' }),
});

export const FrameVersion = z
  .object({
    version: z.int().meta({ description: '1 is the first generation; each re-roll adds one' }),
    status: z.enum(VERSION_STATUSES),
    selected: z.boolean().meta({ description: 'The sequence name points at this version' }),
    seed: z.int().meta({ description: "This frame's seed in this version" }),
    params: z.record(z.string(), z.json()).optional().meta({
      description: "The params the model was given: the job's, with the re-roll's over them",
    }),
    sha256: z.string().optional(),
    size: z.int().optional(),
    key: z.string().optional().meta({ description: 'The S3 key of this version' }),
    url: z.url().optional(),
    thumbnailUrl: z.url().optional(),
    urlExpiresAt: z.iso.datetime().optional(),
    attempts: z.int(),
    error: z.string().optional(),
    createdAt: z.iso.datetime(),
    finishedAt: z.iso.datetime().optional(),
    requestedBy: Actor.optional().meta({ description: 'Who asked for the re-roll (absent for version 1)' }),
  })
  .meta({ id: 'FrameVersion' });
export type FrameVersion = z.output<typeof FrameVersion>;

export const FrameDetail = FrameResponse.extend({
  unit: RerollUnit.meta({ description: 'The frames a re-roll or select of this frame acts on together' }),
  versions: z.array(FrameVersion).meta({ description: 'Every version, oldest first' }),
}).meta({ id: 'FrameDetail' });
export type FrameDetail = z.output<typeof FrameDetail>;

export const RerollRequest = z
  .strictObject({
    seed: Seed.optional().meta({
      description:
        "The new version's seed (for a model with windows, the window's); a new random seed when absent",
    }),
    params: Params.optional().meta({ description: "Model params laid over the job's for this version" }),
  })
  .meta({ id: 'RerollRequest' });

export const Reroll = z
  .object({
    jobId: z.string(),
    frame: z.int(),
    version: z.int(),
    status: z.enum(VERSION_STATUSES),
    seed: z.int(),
    params: z.record(z.string(), z.json()).optional(),
    unit: RerollUnit,
    createdAt: z.iso.datetime(),
  })
  .meta({ id: 'Reroll' });
export type Reroll = z.output<typeof Reroll>;

export const SelectVersionRequest = z
  .strictObject({ version: z.int().min(1, 'must be 1 or more').max(9999, 'must be at most 9999') })
  .meta({ id: 'SelectVersionRequest' });

export const RejectRequest = z.strictObject({ reason: Text(1000).optional() }).meta({ id: 'RejectRequest' });

export const FrameList = z
  .object({
    frames: z.array(FrameResponse),
    nextCursor: z.string().optional(),
    manifest: z.object({ url: z.url(), expiresAt: z.iso.datetime() }).optional().meta({
      description:
        "Once the job has ended: a presigned URL of its manifest.json (request, model, each frame's seed, sha256 and size). Written when the last frame finishes; a job canceled before it ran may have none (the URL then answers 404)",
    }),
  })
  .meta({ id: 'FrameList' });

export const FrameListQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
  cursor: z.string().max(64).optional(),
});

export const ErrorResponse = z
  .object({
    error: z.object({ code: z.string(), message: z.string(), details: z.unknown().optional() }),
  })
  .meta({ id: 'Error' });

export const WebhookEndpointRequest = z
  .strictObject({
    url: z.string().min(1, 'must not be empty').max(2048, 'must be at most 2048 characters'),
    events: z.array(z.enum(EVENT_TYPES)).min(1, 'must name at least one event type').optional(),
  })
  .meta({ id: 'WebhookEndpointRequest' });

export const WebhookEndpoint = z
  .object({
    id: z.string(),
    url: z.string(),
    events: z.array(z.enum(EVENT_TYPES)).optional(),
    createdAt: z.iso.datetime(),
    disabled: z.boolean(),
    disabledAt: z.iso.datetime().optional(),
    disabledReason: z.string().optional(),
  })
  .meta({ id: 'WebhookEndpoint' });
export type WebhookEndpoint = z.output<typeof WebhookEndpoint>;

export const WebhookEndpointList = z
  .object({ endpoints: z.array(WebhookEndpoint) })
  .meta({ id: 'WebhookEndpointList' });

export const WebhookSecret = z
  .object({
    secret: z.string().meta({ example: 'whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw' }),
    previousExpiresAt: z.iso.datetime().optional(),
  })
  .meta({ id: 'WebhookSecret' });

export const DeliveryAttempt = z.object({
  attempt: z.int(),
  at: z.iso.datetime(),
  status: z.int().optional().meta({ description: 'HTTP status the receiver answered' }),
  latencyMs: z.number(),
  error: z.string().optional(),
  manual: z.boolean().optional(),
});

export const EventDelivery = z.object({
  target: z.string().meta({ description: 'An endpoint id, or "job" for the job\'s own webhook' }),
  url: z.string(),
  status: z.enum(['pending', 'retrying', 'succeeded', 'failed']),
  attempts: z.array(DeliveryAttempt),
  nextAttemptAt: z.iso.datetime().optional(),
});

export const EventView = z
  .object({
    id: z.string(),
    type: z.enum(EVENT_TYPES),
    timestamp: z.iso.datetime(),
    data: z.record(z.string(), z.unknown()),
    deliveries: z.array(EventDelivery),
  })
  .meta({ id: 'Event' });
export type EventView = z.output<typeof EventView>;

export const EventList = z
  .object({ events: z.array(EventView), nextCursor: z.string().optional() })
  .meta({ id: 'EventList' });

export const EventListQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(500).default(100),
  cursor: z.string().max(64).optional(),
});

export const Redelivery = z
  .object({ event: z.string(), targets: z.array(z.string()) })
  .meta({ id: 'Redelivery' });

// ---- audit (issue 12: who made what, with which model and inputs; docs/operations.md, "Audit trail") --------

export const AUDIT_KINDS = [
  'job.created',
  'job.finished',
  'frame.rerolled',
  'job.approved',
  'job.rejected',
  'job.canceled',
  'version.selected',
  'job.reopened',
] as const;
export type AuditKind = (typeof AUDIT_KINDS)[number];

/** A time as the audit query takes it: an ISO date-time with its zone, or a date (midnight UTC). */
const AuditTime = z
  .union([z.iso.datetime({ offset: true }), z.iso.date()])
  .transform((s) => new Date(s.length === 10 ? `${s}T00:00:00Z` : s).toISOString());

export const AuditQuery = z.strictObject({
  from: AuditTime.optional().meta({
    description: 'Records at or after this time (ISO 8601); default: the start',
  }),
  to: AuditTime.optional().meta({ description: 'Records before this time (ISO 8601); default: now' }),
  tenant: z.string().min(1).max(128).optional().meta({ description: "The caller's own tenant only" }),
  format: z.enum(['json', 'csv']).optional(),
  limit: z.coerce.number().int().min(1).max(1000).default(200),
  cursor: z.string().max(256).optional(),
});
export type AuditQuery = z.output<typeof AuditQuery>;

/** What made a frame: the model's name and, where the worker knows them, its image and the image's digest. */
export const AuditModel = z
  .object({
    name: z.string(),
    image: z.string().optional(),
    digest: z.string().nullable().optional().meta({
      description: 'The image digest (sha256:...) when the registry gives one; null when it does not',
    }),
  })
  .meta({ id: 'AuditModel' });

export const AuditOutput = z
  .object({
    frame: z.int(),
    version: z.int(),
    sha256: z.string(),
    seed: z.int(),
    inputs: z.record(z.string(), z.string()).optional().meta({ description: 'sha256 of each input file' }),
  })
  .meta({ id: 'AuditOutput' });
export type AuditOutput = z.output<typeof AuditOutput>;

export const AuditRecord = z
  .object({
    id: z.string().meta({ description: 'Unique and time-ordered within the tenant' }),
    at: z.iso.datetime(),
    kind: z.enum(AUDIT_KINDS),
    tenant: z.string(),
    jobId: z.string(),
    shot: z.string(),
    by: Actor.optional().meta({ description: 'Who created, approved, rejected, re-rolled or selected' }),
    model: AuditModel,
    prompt: z.string().optional(),
    negativePrompt: z.string().optional(),
    seed: z.int().optional(),
    seedMode: z.enum(['fixed', 'per-frame']).optional(),
    params: z.record(z.string(), z.unknown()).optional(),
    frames: z.object({ start: z.int(), end: z.int() }).optional(),
    inputs: z
      .record(
        z.string(),
        z.object({
          asset: z.string(),
          offset: z.int(),
          outside: z.string(),
          frames: z.object({ start: z.int(), end: z.int() }).optional(),
        }),
      )
      .optional()
      .meta({ description: 'The assets bound as inputs; each frame’s input file hashes are in `outputs`' }),
    status: z.string().optional(),
    version: z.int().optional(),
    outputs: z.array(AuditOutput).optional(),
    part: z
      .object({ index: z.int(), count: z.int() })
      .optional()
      .meta({ description: 'A long shot’s job.finished list split over several records' }),
    reason: z.string().optional(),
  })
  .meta({ id: 'AuditRecord' });
export type AuditRecord = z.output<typeof AuditRecord>;

export const AuditList = z
  .object({ records: z.array(AuditRecord), nextCursor: z.string().optional() })
  .meta({ id: 'AuditList' });
export type AuditList = z.output<typeof AuditList>;
// ---- usage and budgets (docs/operations.md, "Prices, spend and budgets") ------------------------------

const Day = z.iso.date().meta({ description: 'A UTC day, yyyy-mm-dd' });
const Tenant = z.string().regex(TENANT, 'must be a tenant: 1 to 63 lowercase letters, digits or "-"');

/** GET /v1/usage: the days from..to (inclusive, at most 366), grouped. Default: this month so far, by day. */
export const UsageQuery = z
  .strictObject({
    from: Day.optional(),
    to: Day.optional(),
    groupBy: z.enum(USAGE_GROUPS).default('day'),
    tenant: Tenant.optional().meta({
      description:
        "Another tenant's usage, or every tenant's with groupBy=tenant: for a key with the admin scope",
    }),
  })
  .meta({ id: 'UsageQuery' });
export type UsageQuery = z.output<typeof UsageQuery>;

const UsageGroup = z.object({
  key: z.string().meta({ description: 'The day, tenant, shot or model' }),
  frames: z.int(),
  gpuSeconds: z.number(),
  usd: z.number(),
});

export const UsageReport = z
  .object({
    from: Day,
    to: Day,
    groupBy: z.enum(USAGE_GROUPS),
    tenant: z.string().optional().meta({ description: 'The tenant reported; absent: every tenant' }),
    total: UsageGroup.omit({ key: true }),
    groups: z.array(UsageGroup),
  })
  .meta({ id: 'UsageReport' });
export type UsageReport = z.output<typeof UsageReport>;

/** PUT /v1/budgets/{tenant}: a tenant's monthly budget and its graduated actions. */
export const BudgetRequest = z
  .strictObject({
    limitUsd: z.number().min(0).max(100_000_000).meta({ description: 'USD a calendar month (UTC)' }),
    warningPercent: z.number().min(1).max(1000).default(80).meta({
      description: 'At this share of the limit: a budget.warning event and the alarm',
    }),
    stopPercent: z.number().min(1).max(1000).default(100).meta({
      description: 'At this share: new jobs are refused with 402 and unstarted frames are held',
    }),
  })
  .refine((b) => b.warningPercent <= b.stopPercent, {
    message: 'must not be above stopPercent',
    path: ['warningPercent'],
  })
  .meta({ id: 'BudgetRequest' });
export type BudgetRequest = z.output<typeof BudgetRequest>;

export const BudgetView = z
  .object({
    tenant: z.string(),
    limitUsd: z.number(),
    warningPercent: z.number(),
    stopPercent: z.number(),
    month: z.string().meta({ description: 'The month the spend is of, yyyy-mm' }),
    spentUsd: z.number(),
    level: z.enum(['ok', 'warning', 'stopped']),
    updatedAt: z.iso.datetime().optional(),
  })
  .meta({ id: 'Budget' });
export type BudgetView = z.output<typeof BudgetView>;

/** POST /v1/jobs query: `dryRun=true` answers the estimate and writes nothing. */
export const CreateJobQuery = z
  .strictObject({
    dryRun: z
      .enum(['true', 'false'])
      .optional()
      .transform((v) => v === 'true'),
  })
  .meta({ id: 'CreateJobQuery' });

export const DryRunResponse = z
  .object({
    dryRun: z.literal(true),
    model: z.string(),
    frames: z.int().meta({ description: 'Frames the job would make' }),
    estimate: EstimateView,
  })
  .meta({ id: 'DryRun' });
export type DryRunResponse = z.output<typeof DryRunResponse>;
