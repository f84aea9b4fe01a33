import { digestOf, type ModelIdentity } from '../core/audit.ts';
import { logger } from '../logger.ts';

/** The model's container in the worker's ECS task (lib/model-service.ts names it). */
export const MODEL_CONTAINER = 'model';

export interface ModelIdentityOptions {
  readonly name: string;
  /** The image reference the worker was configured with (FRAMECAST_MODEL_IMAGE): a tag or `repo@sha256:...`. */
  readonly image: string;
  /** ECS_CONTAINER_METADATA_URI_V4, set by ECS in every container of a task; absent elsewhere. */
  readonly metadataUri?: string;
  readonly fetch?: typeof fetch;
  /** How long the metadata endpoint may take before the digest is given up (it is a local endpoint). */
  readonly timeoutMs?: number;
}

interface TaskMetadata {
  readonly Containers?: readonly {
    readonly Name?: string;
    readonly Image?: string;
    readonly ImageID?: string;
  }[];
}

/**
 * What the audit trail records of the model (core/audit.ts): its name, its image and the image's digest.
 * A reference that pins a digest gives it. Otherwise, on ECS, the task metadata endpoint (v4) says which
 * image the model's container runs (`ImageID`, the digest the agent pulled). Anything else, or a failure
 * of the endpoint, gives `digest: null`: a local image has no registry digest, and a frame is never held
 * up for one. Asked once per worker process.
 */
export async function modelIdentity(options: ModelIdentityOptions): Promise<ModelIdentity> {
  const pinned = digestOf(options.image);
  const known = { name: options.name, image: options.image };
  if (pinned || !options.metadataUri) return { ...known, digest: pinned };
  try {
    const res = await (options.fetch ?? fetch)(`${options.metadataUri}/task`, {
      signal: AbortSignal.timeout(options.timeoutMs ?? 2000),
    });
    if (!res.ok) throw new Error(`task metadata answered ${res.status}`);
    const task = (await res.json()) as TaskMetadata;
    const containers = task.Containers ?? [];
    const model =
      containers.find((c) => c.Name === MODEL_CONTAINER) ?? containers.find((c) => c.Image === options.image);
    const digest = model?.ImageID;
    return { ...known, digest: digest && /^sha256:[0-9a-f]{64}$/.test(digest) ? digest : null };
  } catch (err) {
    logger.warn('the model image digest could not be read from the ECS task metadata', {
      error: err as Error,
    });
    return { ...known, digest: null };
  }
}

/**
 * The model as a worker records it: its `modelIdentity` (create.ts asks ECS once), or, where none is given
 * (tests, bench), the configured image and the digest it pins, if any. The name is the job's model.
 */
export async function recordedModel(
  deps: {
    readonly modelIdentity?: () => Promise<ModelIdentity>;
    readonly settings: { readonly modelImage: string };
  },
  name: string,
): Promise<ModelIdentity> {
  const found = deps.modelIdentity
    ? await deps.modelIdentity()
    : { name, image: deps.settings.modelImage, digest: digestOf(deps.settings.modelImage) };
  return { ...found, name };
}

/** `make` once: the first call's promise serves every later one. */
export function once<T>(make: () => Promise<T>): () => Promise<T> {
  let made: Promise<T> | undefined;
  return () => {
    made ??= make();
    return made;
  };
}
