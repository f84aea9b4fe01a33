import * as z from 'zod';
import { OUTPUT_FORMATS } from './colour.ts';
import { ASSET_ID } from './ids.ts';

/**
 * The schemas of the HTTP API (the design's "HTTP API (v1)"): one per boundary, shared by the handlers,
 * the OpenAPI document, the tests and any client.
 */

export const JOB_STATUSES = ['queued', 'running', 'succeeded', 'failed', 'canceled'] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

export const FRAME_STATUSES = ['pending', 'running', 'succeeded', 'failed', 'canceled'] as const;
export type FrameStatus = (typeof FRAME_STATUSES)[number];

export const EVENT_TYPES = [
  'job.started',
  'job.progress',
  'frame.succeeded',
  'frame.failed',
  'job.succeeded',
  'job.failed',
  'job.canceled',
] as const;
export type EventType = (typeof EVENT_TYPES)[number];

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

export const Params = z
  .record(z.string(), z.json())
  .refine(
    (p) => Buffer.byteLength(JSON.stringify(p)) <= MAX_PARAMS_BYTES,
    `must be at most ${MAX_PARAMS_BYTES} bytes of JSON`,
  )
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
      priority: z.int().min(0).max(100).default(50),
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
    })
    .meta({ id: 'JobRequest' });

export type JobRequest = z.output<ReturnType<typeof jobRequestSchema>>;
export type JobRequestInput = z.input<ReturnType<typeof jobRequestSchema>>;

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
    createdAt: z.iso.datetime(),
    startedAt: z.iso.datetime().optional(),
    finishedAt: z.iso.datetime().optional(),
    outputPrefix: z.string().meta({ example: 's3://bucket/tenant/EP101_SH040/job_.../' }),
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
    status: z.enum(FRAME_STATUSES),
    seed: z.int(),
    attempts: z.int(),
    sha256: z.string().optional(),
    size: z.int().optional(),
    key: z.string().optional(),
    url: z.url().optional().meta({ description: 'Presigned download URL, once the frame is stored' }),
    urlExpiresAt: z.iso.datetime().optional(),
    error: z.string().optional(),
  })
  .meta({ id: 'Frame' });
export type FrameResponse = z.output<typeof FrameResponse>;

export const FrameList = z
  .object({ frames: z.array(FrameResponse), nextCursor: z.string().optional() })
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
