import { existsSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import * as z from 'zod';
import { ORIGIN } from '../functions/shared/cors.ts';
import { BudgetSettingsSchema, DEFAULT_PRIOR_SECONDS_PER_MEGAPIXEL } from '../functions/shared/cost.ts';
import {
  ColourSpaceName,
  DEFAULT_COLOUR,
  DEFAULT_NAMING_TEMPLATE,
  DEFAULT_OCIO_CONFIG,
  EXR_COMPRESSIONS,
  NamingError,
  OcioConfigPath,
  PublisherSchema,
  parseTemplate,
} from '../functions/shared/deliverables.ts';
import { InputKind, WindowSpecSchema } from '../functions/shared/models.ts';
import { ASSET_FILE_BYTES, DEFAULT_FAIR_SHARE_CHUNKS, QUEUES } from '../functions/shared/resources.ts';

/**
 * A production's deployment settings: `config/<production>.json`, parsed strictly (an unknown or misspelt
 * field is an error, not a silently ignored setting). A missing file means every default below; the
 * defaults are documented in docs/operations.md, which must change with them.
 */

/** One stack per production; the name ends up in the stack name, tags and metric dimensions. */
export const PRODUCTION_NAME = /^[a-z][a-z0-9-]{1,30}$/;

/** The built-in CPU model server: always deployed, because the API accepts `reference` in every stack. */
export const REFERENCE_MODEL = 'reference';

/** The `image` of a model that runs from this project's own container image (see Dockerfile). */
export const BUILTIN_IMAGE = 'builtin';

/** The retention periods CloudWatch Logs accepts. */
const LOG_RETENTION_DAYS = [
  1, 3, 5, 7, 14, 30, 60, 90, 120, 150, 180, 365, 400, 545, 731, 1096, 1827, 2192, 2557, 2922, 3288, 3653,
] as const;

const hostLabel = '[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?';

const int = (min: number, max: number) => z.int().min(min).max(max);

const SECRET_ARN =
  /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[A-Za-z0-9/_+=.@-]+-[A-Za-z0-9]{6}$/;

const PassName = z.string().regex(/^[A-Za-z0-9-]{1,32}$/, 'must be 1 to 32 letters, digits or "-"');

const Model = z.strictObject({
  /** What a job names in `model`; also the model's frame queue and ECS service. */
  name: z.string().regex(/^[a-z][a-z0-9-]{0,30}$/, 'must match [a-z][a-z0-9-]{0,30}'),
  /** A Cog-packaged image: any registry URI, an ECR URI of this account (pull rights are granted), or `builtin`. */
  image: z.string().min(1).max(255).optional(),
  gpuCount: int(0, 8).optional(),
  /** Memory reserved for the model container; the worker container takes its own on top. */
  memoryMiB: int(512, 1_048_576).optional(),
  /** The model's prediction slots: frames the worker sends it at once. Cog models serve one. */
  concurrency: int(1, 64).optional(),
  /** Most tasks of this model at once. */
  maxTasks: int(1, 1000).optional(),
  /** ECS health check in the model container (exec form). Default: a python3 probe of /health-check. */
  healthCheckCommand: z.array(z.string().min(1)).min(1).optional(),
  /**
   * The inputs the model accepts beyond prompt, seed and size, by their Cog names, and how each is handed
   * over (`image`, `mask`, `images` or `video`). Built-in models declare theirs (functions/shared/models.ts).
   */
  inputs: z
    .record(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be a Cog input name'), InputKind)
    .optional(),
  /** Windows, for a video model: `{window, overlap, lengths?: "4n+1"}`. Absent: one prediction per frame. */
  frames: WindowSpecSchema.optional(),
  /** Secrets Manager secret with `{"username", "password"}` for a private registry other than ECR. */
  registryCredentialsSecretArn: z
    .string()
    .regex(
      /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:.+$/,
      'must be a Secrets Manager secret ARN',
    )
    .optional(),
});

/** Defaults of a production's own model; `maxTasks` defaults to gpu.maxInstances. */
const MODEL_DEFAULTS = { gpuCount: 1, memoryMiB: 12_288, concurrency: 1 } as const;

/** The reference model is a small CPU server for smoke tests: one task, no GPU. */
const REFERENCE_DEFAULTS = {
  image: BUILTIN_IMAGE,
  gpuCount: 0,
  memoryMiB: 1024,
  concurrency: 2,
  maxTasks: 1,
} as const;

const InstanceType = z
  .string()
  .regex(/^[a-z][a-z0-9-]*\.[a-z0-9]+$/, 'must be an EC2 instance type such as g6.xlarge')
  .refine((t) => /^[gp]/.test(t), 'must be a GPU instance type (g or p family)')
  // The worker image and Cog images are x86_64 with CUDA: Graviton (g5g) and AMD (g4ad) hosts cannot run them.
  .refine((t) => !/^(g\d+g|g4ad)\./.test(t), 'needs x86_64 with NVIDIA GPUs (not g5g or g4ad)');

/**
 * The warm pool of the GPU hosts. What depends on the other gpu settings is checked by `warmPoolIssues`.
 * Hibernated is refused: hibernation keeps host memory, not GPU memory, and AWS does not hibernate
 * instances used by ECS.
 */
const WarmPool = z.strictObject({
  /** Hosts kept in the pool, refilled as the group takes them; each pays its EBS volume while it waits. */
  size: int(1, 100),
  /** `Stopped`: the volume is all a host pays while it waits; `Running`: the instance hour as well. */
  state: z
    .enum(['Stopped', 'Running'], {
      error: (issue) =>
        issue.input === 'Hibernated'
          ? 'Hibernated is not offered: hibernation keeps host memory, not the GPU, and AWS does not hibernate ' +
            'instances used by ECS; use Stopped (pays the volume only) or Running'
          : 'must be Stopped or Running',
    })
    .default('Stopped'),
  /** Refused when true (ECS does not allow it); the field exists to say so rather than "unknown field". */
  reuseOnScaleIn: z.boolean().default(false),
});

export const ConfigSchema = z
  .strictObject({
    /** Free text for the humans who read the file. */
    description: z.string().max(1000).optional(),
    /** Value of the `cost-center` tag on every resource. */
    costCenter: z
      .string()
      .regex(/^[\p{L}\p{Z}\p{N}_.:/=+\-@]{1,256}$/u, 'must be a valid AWS tag value (1-256 characters)')
      .default('unassigned'),
    /** What stack deletion does to the table, the buckets and the log groups. */
    removalPolicy: z.enum(['retain', 'destroy']).default('retain'),
    gpu: z
      .strictObject({
        /** Tried in this order (on-demand) or by price and capacity (Spot). */
        instanceTypes: z.array(InstanceType).min(1).max(20).default(['g6.xlarge', 'g5.xlarge']),
        spot: z.boolean().default(false),
        maxInstances: int(1, 100).default(2),
        /** Root volume: Cog images with weights are tens of GB. */
        volumeSizeGiB: int(30, 16_000).default(100),
        /** Chunks waiting or in progress per running task that the scaling policy aims for. */
        targetBacklogPerTask: int(1, 1000).default(4),
        /**
         * Hosts kept booted once, with the model images pulled, beside the group (an EC2 Auto Scaling warm
         * pool). Absent: none, and a scale-out from zero boots a fresh host. See docs/operations.md.
         */
        warmPool: WarmPool.optional(),
      })
      .prefault({}),
    network: z
      .strictObject({
        /** 0: GPU hosts in public subnets (no inbound rules), no NAT cost. 1-2: private subnets behind NAT. */
        natGateways: int(0, 2).default(0),
      })
      .prefault({}),
    /** Models besides `reference`; an entry named `reference` replaces the built-in one's settings. */
    models: z.array(Model).max(10).default([]),
    frameLimit: int(1, 1_000_000).default(10_000),
    /** The largest file of an asset (a plate frame, a mask), in bytes. */
    assetMaxFileBytes: int(1, ASSET_FILE_BYTES.max).default(ASSET_FILE_BYTES.default),
    chunkSize: int(1, 100).default(8),
    /**
     * Fair share: chunks of one job queued and unfinished at most (docs/operations.md, "Fair share,
     * priority and deadlines"); at least the fleet's chunks in hand (maxTasks x concurrency x 2).
     */
    fairShareChunks: int(1, 10_000).default(DEFAULT_FAIR_SHARE_CHUNKS),
    // Below the frame queue's maxReceiveCount less one: a chunk that keeps killing workers must fail its
    // frames on a last delivery rather than reach the DLQ with frames still marked running.
    maxAttempts: int(1, QUEUES.frame.maxReceiveCount - 2).default(3),
    /**
     * Frames and manifests are deleted this many days after they are written. Absent (the default): kept until
     * the production deletes them, as deliverables are.
     */
    retentionDays: int(1, 3650).optional(),
    /**
     * Audit records (who made which frames, with what model and inputs) are kept this many days, whatever
     * `retentionDays` does to the frames: seven years by default (docs/operations.md, "Audit trail").
     */
    auditRetentionDays: int(1, 36_500).default(2557),
    // A presigned URL dies with the role session that signed it, whatever it says: past 12 hours it would
    // promise more than the Lambda's credentials can keep.
    presignedUrlExpirySeconds: int(60, 12 * 3600).default(3600),
    /** Empty: any public https host. Otherwise `vendor.com` (exactly) or `.vendor.com` (any subdomain). */
    webhookAllowedHosts: z
      .array(
        z
          .string()
          .regex(new RegExp(`^\\.?(?:${hostLabel}\\.)*${hostLabel}$`), 'must be a lowercase host name'),
      )
      .max(50)
      .default([]),
    /** USD per month for the AWS Budget on this production's tag; 0 creates no budget. */
    monthlyBudgetUsd: z.number().min(0).max(10_000_000).default(1000),
    /**
     * Prices, estimates and the production's own budget (docs/operations.md, "Prices, spend and budgets").
     * `gpuHourUsd`: USD per instance-hour by instance type, over the list prices in functions/core/cost.ts;
     * a model's frames are priced at the first of `gpu.instanceTypes`.
     */
    cost: z
      .strictObject({
        gpuHourUsd: z.record(InstanceType, z.number().min(0).max(1000)).default({}),
        priorSecondsPerMegapixel: z
          .number()
          .positive()
          .max(10_000)
          .default(DEFAULT_PRIOR_SECONDS_PER_MEGAPIXEL),
        budget: BudgetSettingsSchema.optional(),
      })
      .prefault({}),
    /** Subscribed to the alarm topic (the address must confirm the subscription). */
    alarmEmail: z.email().optional(),
    logRetentionDays: z
      .int()
      .refine((d) => (LOG_RETENTION_DAYS as readonly number[]).includes(d), {
        message: `must be one of ${LOG_RETENTION_DAYS.join(', ')} (the periods CloudWatch Logs accepts)`,
      })
      .default(30),
    api: z
      .strictObject({
        /** Steady-state requests per second, for the whole API. */
        rateLimit: z.number().min(1).max(10_000).default(50),
        burstLimit: int(1, 5000).default(100),
        /**
         * Origins a browser page (the review page, served elsewhere) may call the API from, or `*`. Empty:
         * no CORS. Keys travel as Bearer headers, never cookies, so no credentials are allowed.
         */
        corsOrigins: z
          .array(z.string().regex(ORIGIN, 'must be an origin such as https://review.studio.example, or *'))
          .max(20)
          .default([]),
      })
      .prefault({}),
    /**
     * The colour pipeline (docs/colour.md): the OCIO config (a file in the project's colour/ folder, shipped in
     * the worker image), the colour space of EXR plates and EXR output frames, the model's colour space, and
     * the EXR compression. Default: the project's own config, ACEScg plates, an sRGB model, ZIP.
     */
    colour: z
      .strictObject({
        ocioConfig: OcioConfigPath.default(DEFAULT_OCIO_CONFIG),
        plates: ColourSpaceName.default(DEFAULT_COLOUR.plates),
        model: ColourSpaceName.default(DEFAULT_COLOUR.model),
        exrCompression: z.enum(EXR_COMPRESSIONS).default(DEFAULT_COLOUR.compression),
      })
      .prefault({}),
    /**
     * Delivered frame names (docs/colour.md, "Naming"): a template such as
     * `{shot}_{pass}_v{version:03}.{frame:04}.{ext}` and the pass its `{pass}` takes when a job names none.
     * Default: the design's `<shot>.<frame>.png`.
     */
    naming: z
      .strictObject({
        template: z
          .string()
          .default(DEFAULT_NAMING_TEMPLATE)
          .superRefine((t, ctx) => {
            try {
              parseTemplate(t);
            } catch (err) {
              if (!(err instanceof NamingError)) throw err;
              ctx.addIssue({ code: 'custom', message: err.message });
            }
          }),
        pass: PassName.default('main'),
      })
      .prefault({}),
    /**
     * Trackers a finished job is published to (docs/colour.md, "Publishing"): ShotGrid, ftrack or Kitsu, one
     * each, at https, with the complete ARN of the Secrets Manager secret holding the credentials (the
     * delivery Lambda may read exactly that secret).
     */
    publish: z
      .array(
        PublisherSchema.check(
          z.refine((p) => p.url.startsWith('https://'), { message: 'url must be https', path: ['url'] }),
          z.refine((p) => SECRET_ARN.test(p.secret), {
            message: 'secret must be the complete ARN of a Secrets Manager secret',
            path: ['secret'],
          }),
        ),
      )
      .max(3)
      .refine((list) => new Set(list.map((p) => p.tracker)).size === list.length, 'one publisher per tracker')
      .default([]),
    /** Frames per second of the production, written into each job's OpenTimelineIO clip. */
    frameRate: z.number().min(1).max(240).default(24),
    /** A prebuilt worker image (registry URI); then deploying needs no Docker. Default: built from Dockerfile. */
    workerImage: z.string().min(1).max(255).optional(),
  })
  .superRefine((config, ctx) => {
    for (const { path, message } of warmPoolIssues(config.gpu)) {
      ctx.addIssue({ code: 'custom', path: ['gpu', 'warmPool', ...path], message });
    }
    const seen = new Set<string>();
    config.models.forEach((model, i) => {
      if (seen.has(model.name)) {
        ctx.addIssue({
          code: 'custom',
          path: ['models', i, 'name'],
          message: `duplicate model name "${model.name}"`,
        });
      }
      seen.add(model.name);
      if (model.image === undefined && model.name !== REFERENCE_MODEL) {
        ctx.addIssue({
          code: 'custom',
          path: ['models', i, 'image'],
          message: 'required: the Cog image to run',
        });
      }
    });
  });

/**
 * What AWS refuses, or what could never help, in a warm pool of these GPU hosts, each with its reason:
 * - Auto Scaling refuses a warm pool on a group with a mixed instances policy or Spot Instances
 *   (PutWarmPool), so the group must launch one on-demand instance type from a plain launch template;
 * - ECS refuses `ReuseOnScaleIn` on a capacity provider's group (ECS guide, "Configuring pre-initialized
 *   instances for your Amazon ECS Auto Scaling group");
 * - a pool larger than the group's maximum holds hosts the group can never take.
 */
function warmPoolIssues(gpu: {
  readonly warmPool?: z.output<typeof WarmPool> | undefined;
  readonly spot: boolean;
  readonly instanceTypes: readonly string[];
  readonly maxInstances: number;
}): { path: string[]; message: string }[] {
  const pool = gpu.warmPool;
  if (!pool) return [];
  const issues: { path: string[]; message: string }[] = [];
  if (gpu.spot) {
    issues.push({
      path: [],
      message:
        'needs on-demand hosts (gpu.spot: false): AWS refuses a warm pool on a group that launches Spot Instances',
    });
  }
  if (gpu.instanceTypes.length !== 1) {
    issues.push({
      path: [],
      message:
        `needs exactly one instance type in gpu.instanceTypes (now ${gpu.instanceTypes.length}): AWS refuses a ` +
        'warm pool on a group with a mixed instances policy; for example "instanceTypes": ["g6.xlarge"]',
    });
  }
  if (pool.size > gpu.maxInstances) {
    issues.push({
      path: ['size'],
      message: `at most gpu.maxInstances (${gpu.maxInstances}): the group never takes more hosts than that`,
    });
  }
  if (pool.reuseOnScaleIn) {
    issues.push({
      path: ['reuseOnScaleIn'],
      message:
        'must be false: ECS does not allow hosts of a capacity provider to return to the warm pool on scale-in',
    });
  }
  return issues;
}

type ModelInput = z.output<typeof Model>;
type OptionalModelField = 'healthCheckCommand' | 'registryCredentialsSecretArn' | 'inputs' | 'frames';
export type ModelConfig = Required<Omit<ModelInput, OptionalModelField>> &
  Pick<ModelInput, OptionalModelField>;

export interface ProductionConfig extends Omit<z.output<typeof ConfigSchema>, 'models'> {
  readonly production: string;
  /** Every model the stack runs, `reference` first. */
  readonly models: readonly ModelConfig[];
}

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

/** Checks a production name, saying what a valid one looks like. */
export function assertProductionName(name: unknown): asserts name is string {
  if (typeof name !== 'string' || name === '') {
    throw new ConfigError(
      'No production given: run with -c production=<name>, for example -c production=demo ' +
        '(cdk bootstrap runs the app too, so it needs one as well)',
    );
  }
  if (!PRODUCTION_NAME.test(name)) {
    throw new ConfigError(
      `Invalid production name "${name}": it must match ${PRODUCTION_NAME.source} ` +
        '(a lowercase letter, then 1 to 30 lowercase letters, digits or hyphens)',
    );
  }
}

function describeIssues(error: z.ZodError): string[] {
  return error.issues.flatMap((issue) => {
    const at = issue.path
      .map((p, i) => (typeof p === 'number' ? `[${p}]` : `${i > 0 ? '.' : ''}${String(p)}`))
      .join('');
    if (issue.code === 'unrecognized_keys') {
      return issue.keys.map((key) => `${at ? `${at}.` : ''}${key}: unknown field`);
    }
    return [`${at || '(root)'}: ${issue.message}`];
  });
}

/** Validates a parsed config file's content; `source` names the file in errors. */
export function parseConfig(
  production: string,
  input: unknown,
  source = `config/${production}.json`,
): ProductionConfig {
  assertProductionName(production);
  const parsed = ConfigSchema.safeParse(input);
  if (!parsed.success) {
    throw new ConfigError(
      `Invalid production config ${source}:\n  ${describeIssues(parsed.error).join('\n  ')}`,
    );
  }
  const { models, ...rest } = parsed.data;
  // A model of the production's own always has its image (the schema requires it); only the reference has a default one.
  const own = { ...MODEL_DEFAULTS, maxTasks: rest.gpu.maxInstances };
  const withDefaults = (m: ModelInput): ModelConfig => {
    const defaults = m.name === REFERENCE_MODEL ? REFERENCE_DEFAULTS : own;
    const set = Object.fromEntries(Object.entries(m).filter(([, v]) => v !== undefined));
    return { ...defaults, ...set } as ModelConfig;
  };
  const reference = models.find((m) => m.name === REFERENCE_MODEL) ?? { name: REFERENCE_MODEL };
  return {
    ...rest,
    production,
    models: [withDefaults(reference), ...models.filter((m) => m.name !== REFERENCE_MODEL).map(withDefaults)],
  };
}

/** Reads `<configDir>/<production>.json`; an absent file gives the documented defaults. */
export function loadProductionConfig(production: unknown, configDir: string): ProductionConfig {
  assertProductionName(production);
  const file = join(configDir, `${production}.json`);
  const source = `config/${production}.json`;
  if (!existsSync(file)) return parseConfig(production, {}, `${source} (absent: defaults)`);
  let input: unknown;
  try {
    input = JSON.parse(readFileSync(file, 'utf8'));
  } catch (err) {
    throw new ConfigError(`Invalid production config ${source}: not valid JSON (${(err as Error).message})`);
  }
  const config = parseConfig(production, input, source);
  // The worker image carries the project's colour/ folder: a show config named there must exist in it.
  const ocio = config.colour.ocioConfig;
  if (ocio !== DEFAULT_OCIO_CONFIG && !existsSync(join(configDir, '..', ocio))) {
    throw new ConfigError(
      `Invalid production config ${source}:\n  colour.ocioConfig: ${config.colour.ocioConfig} does not exist`,
    );
  }
  return config;
}
