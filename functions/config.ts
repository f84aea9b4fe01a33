import * as z from 'zod';
import { DEFAULT_AUDIT_RETENTION_DAYS } from './core/audit.ts';
import { ColourSpaceName, DEFAULT_COLOUR, DEFAULT_OCIO_CONFIG, EXR_COMPRESSIONS } from './core/colour.ts';
import { DEFAULT_NAMING_TEMPLATE, NamingError, type NamingTemplate, parseTemplate } from './core/naming.ts';
import { PublishersSchema, TRACKERS } from './core/publish.ts';
import { ORIGIN } from './shared/cors.ts';
import { CostSettingsSchema } from './shared/cost.ts';
import { ENV } from './shared/env.ts';
import { ModelSpecsSchema } from './shared/models.ts';
import {
  ASSET_FILE_BYTES,
  DEFAULT_FAIR_SHARE_CHUNKS,
  QUEUES,
  WEBHOOK_CLAIM_STALE_SECONDS,
} from './shared/resources.ts';

/**
 * Runtime configuration, read once from the environment at cold start.
 *
 * Every process (API Lambdas, fan-out, worker, webhook delivery) parses only the variables it needs, so a
 * missing one fails fast with its name instead of at the first request that happens to use it.
 * The variable names are in shared/env.ts, which the CDK stack (lib/) and local mode (local/) set too.
 */
export type EnvKey = keyof typeof ENV;

/** A variable holding JSON. */
const json = z.string().transform((s, ctx) => {
  try {
    return JSON.parse(s) as unknown;
  } catch {
    ctx.addIssue({ code: 'custom', message: 'must be JSON' });
    return z.NEVER;
  }
});

/** A switch: 1, 0, true or false. */
const flag = (fallback: boolean) =>
  z
    .enum(['0', '1', 'true', 'false'])
    .default(fallback ? '1' : '0')
    .transform((v) => v === '1' || v === 'true');
const intFrom = (fallback: number, min: number, max: number) =>
  z.coerce.number().int().min(min).max(max).default(fallback);

/** The variables each setting is parsed with; a process picks the ones it needs. */
export const SETTINGS = {
  table: z.string().min(1),
  bucket: z.string().min(1),
  /** Plates and other assets: a bucket of their own, since frames expire and assets must not. */
  assetBucket: z.string().min(1),
  /** The largest file an asset may have. */
  assetMaxFileBytes: intFrom(ASSET_FILE_BYTES.default, 1, ASSET_FILE_BYTES.max),
  planQueueUrl: z.url(),
  frameQueueUrl: z.url(),
  /** The fan-out's routing: each model's frame queue, as JSON `{"model": "https://sqs..."}`. */
  frameQueueUrls: json.pipe(z.record(z.string(), z.url())),
  frameQueueBandUrls: z.string().default('{}').pipe(json).pipe(z.record(z.string(), z.url())),
  frameQueueBands: z
    .string()
    .default('{}')
    .pipe(json)
    .pipe(z.strictObject({ high: z.url().optional(), low: z.url().optional() })),
  frameDlqUrl: z.url().optional(),
  eventQueueUrl: z.url(),
  eventDlqUrl: z.url(),
  frameLimit: intFrom(10_000, 1, 1_000_000),
  /** Comma-separated model names the stack is configured with; `reference` is always there. */
  models: z
    .string()
    .default('reference')
    .transform((s) => [
      ...new Set([
        'reference',
        ...s
          .split(',')
          .map((m) => m.trim())
          .filter(Boolean),
      ]),
    ]),
  /** What each model declares (inputs, windows), as JSON `{"model": {...}}`; built-in models need none. */
  modelSpecs: z.string().default('{}').pipe(json).pipe(ModelSpecsSchema),
  urlExpirySeconds: intFrom(3600, 60, 7 * 24 * 3600),
  chunkSize: intFrom(8, 1, 100),
  fairShareChunks: intFrom(DEFAULT_FAIR_SHARE_CHUNKS, 1, 10_000),
  // Below the frame queue's maxReceiveCount less one, so a chunk that keeps killing workers fails its
  // frames on a last delivery instead of sitting in the DLQ with frames marked running.
  maxAttempts: intFrom(3, 1, QUEUES.frame.maxReceiveCount - 2),
  modelUrl: z.url().default('http://127.0.0.1:5000'),
  modelName: z.string().min(1).default('reference'),
  modelImage: z.string().min(1).default('framecast/reference-model'),
  workerConcurrency: intFrom(2, 1, 64),
  modelPipelining: flag(true),
  workerVisibilitySeconds: intFrom(QUEUES.frame.visibilityTimeoutSeconds, 3, 43_200),
  // Below the event queue's visibility timeout: a killed sender's message comes back to a stale claim.
  webhookClaimStaleSeconds: intFrom(
    WEBHOOK_CLAIM_STALE_SECONDS,
    1,
    QUEUES.event.visibilityTimeoutSeconds - 1,
  ),
  webhookAllowLoopback: flag(false),
  webhookAllowedHosts: z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((h) => h.trim().toLowerCase())
        .filter(Boolean),
    ),
  // Local mode's gateway: origins a browser page may call the API from (the stack configures API Gateway).
  corsOrigins: z
    .string()
    .default('')
    .transform((s) =>
      s
        .split(',')
        .map((o) => o.trim().toLowerCase())
        .filter(Boolean),
    )
    .pipe(z.array(z.string().regex(ORIGIN, 'must be origins such as http://127.0.0.1:5173, or *'))),
  production: z.string().min(1).default('local'),
  ocioConfig: z.string().min(1).default(DEFAULT_OCIO_CONFIG),
  plateColourSpace: ColourSpaceName.default(DEFAULT_COLOUR.plates),
  modelColourSpace: ColourSpaceName.default(DEFAULT_COLOUR.model),
  exrCompression: z.enum(EXR_COMPRESSIONS).default(DEFAULT_COLOUR.compression),
  oiiotool: z.string().min(1).default('oiiotool'),
  namingTemplate: z
    .string()
    .default(DEFAULT_NAMING_TEMPLATE)
    .transform((t, ctx): NamingTemplate => {
      try {
        return parseTemplate(t);
      } catch (err) {
        if (!(err instanceof NamingError)) throw err;
        ctx.addIssue({ code: 'custom', message: err.message });
        return z.NEVER;
      }
    }),
  publishers: z.string().default('[]').pipe(json).pipe(PublishersSchema),
  publishCredentials: z
    .string()
    .default('{}')
    .pipe(json)
    .pipe(z.record(z.enum(TRACKERS), z.unknown())),
  frameRate: z.coerce.number().min(1).max(240).default(24),
  namingPass: z
    .string()
    .regex(/^[A-Za-z0-9-]{1,32}$/)
    .default('main'),
  /** The review page's built files; unset, the `page/` folder its Lambda bundle ships with. */
  reviewPageDir: z.string().min(1).optional(),
  /** CSP sources the review page may call and load images from besides itself (functions/review/serve.ts). */
  reviewSources: z
    .string()
    .regex(/^[A-Za-z0-9:/*.\- ]+$/, 'must be CSP source expressions separated by spaces')
    .default('https:'),
  /** Audit records' retention in days: seven years unless the production says otherwise (core/audit.ts). */
  auditRetentionDays: intFrom(DEFAULT_AUDIT_RETENTION_DAYS, 1, 36_500),
  cost: z.string().default('{}').pipe(json).pipe(CostSettingsSchema),
} satisfies Record<EnvKey, z.ZodType>;

export type Settings = { [K in EnvKey]: z.output<(typeof SETTINGS)[K]> };

/** Reads the named settings from `env`; throws naming every missing or invalid variable. */
export function loadConfig<K extends EnvKey>(
  keys: readonly K[],
  env: Record<string, string | undefined> = process.env,
): Pick<Settings, K> {
  const out: Partial<Settings> = {};
  const problems: string[] = [];
  for (const key of keys) {
    const name = ENV[key];
    const raw = env[name];
    // An empty variable means unset: its default applies.
    const parsed = SETTINGS[key].safeParse(raw === '' ? undefined : raw);
    if (parsed.success) (out as Record<string, unknown>)[key] = parsed.data;
    else
      problems.push(
        raw === undefined ? `${name} is not set` : `${name} is invalid: ${parsed.error.issues[0]?.message}`,
      );
  }
  if (problems.length > 0) throw new Error(`Framecast configuration: ${problems.join('; ')}`);
  return out as Pick<Settings, K>;
}

/**
 * A value built from settings (a document, files read from a folder), built again only when they change.
 * On Lambda the environment never changes, so it is built once, as at cold start; local mode runs one stack
 * after another in one process, each with an environment of its own, and each gets its own value.
 */
export function fromConfig<K extends EnvKey, T>(
  keys: readonly K[],
  build: (config: Pick<Settings, K>) => T,
): () => T {
  let built: { key: string; value: T } | undefined;
  return () => {
    const config = loadConfig(keys);
    const key = JSON.stringify(config);
    if (built?.key !== key) built = { key, value: build(config) };
    return built.value;
  };
}
