import { createHash } from 'node:crypto';
import type { AssetFileRecord } from '../core/assets.ts';
import { sourceFrame } from '../core/inputs.ts';
import type { JobRecord } from '../core/model.ts';
import { type ModelSpec, specOf } from '../shared/models.ts';
import { ModelError } from './cog.ts';
import { encodeInputVideo, INPUT_VIDEO, inputVideoKey } from './video-input.ts';

/**
 * A job's inputs (plates, masks, control passes: the design's "Job inputs"), as one prediction hands them
 * to the model. Given the job and the frames one prediction makes, in order (one frame, or a window's
 * frames), it gives the extra Cog inputs of that prediction and, for each frame, the sha256 of every input
 * file it was made from, which the frame's provenance and the manifest record.
 *
 * The worker calls it for every prediction, chunked or windowed, before it takes a model slot, and knows
 * nothing else of inputs.
 */
export interface PredictionInputs {
  /** Cog inputs by name, added to the prediction's input as they are. */
  readonly inputs?: Readonly<Record<string, unknown>>;
  /** Frame number → input name → sha256 of the file that frame was given. */
  readonly hashes?: ReadonlyMap<number, Readonly<Record<string, string>>>;
}

export type InputsFor = (job: JobRecord, frames: readonly number[]) => Promise<PredictionInputs>;

/** Jobs without inputs. */
export const noInputs: InputsFor = async () => ({});

export interface AssetInputsDeps {
  /** The recorded files of these frames of an asset (undefined: its still), by frame. */
  readonly files: (
    assetId: string,
    frames: readonly (number | undefined)[],
  ) => Promise<ReadonlyMap<number | undefined, AssetFileRecord>>;
  /** A GET URL of one content of the tenant, for the model to download. */
  readonly presign: (tenant: string, sha256: string) => Promise<string>;
  /** What each model declares: how each input is handed over. */
  readonly specs: Readonly<Record<string, ModelSpec>>;
  /** For inputs declared as video: where the worker reads input files and stages the videos it makes. */
  readonly video?: VideoStaging;
}

/** Reading asset content and staging video inputs in the frames bucket (./video-input.ts). */
export interface VideoStaging {
  /** The bytes of one content of the tenant. */
  read(tenant: string, sha256: string): Promise<Uint8Array>;
  /** The `frames-sha256` recorded with a staged video, or undefined when there is none at `key`. */
  staged(key: string): Promise<string | undefined>;
  put(key: string, video: Uint8Array, contentType: string, framesSha256: string): Promise<void>;
  /** A GET URL of a staged video, for the model to download. */
  presign(key: string): Promise<string>;
}

/** The hash a staged video is known by: of its frames' content hashes, in order. */
const framesHash = (files: readonly AssetFileRecord[]) =>
  createHash('sha256')
    .update(files.map((f) => f.sha256).join('\n'))
    .digest('hex');

/** Files read per worker and kept: a plate's frames are read once however many windows and attempts use them. */
const CACHE_ENTRIES = 20_000;

/**
 * Inputs from the job's assets. Output frame f takes the asset file `sourceFrame` names (a still for
 * every frame); frames a fitted last window makes past the shot hold the sequence's last frame. By the
 * model's declaration, an input goes over as one URL (`image`, `mask` on a model without windows) or an
 * ordered list, one URL per frame (`images`, or any input of a model with windows). An input declared
 * `video` goes over as ONE URL of a lossless video of the prediction's frames (./video-input.ts), staged
 * in the frames bucket under the job's prefix (`<prefix>.inputs/<name>/<first>-<last>.mkv`) and reused by
 * a retry whose frames hash the same; the job's end removes it (`stagedInputKeys`). A model with windows
 * gets it as a list of that one URL, as it gets every input as a list.
 */
export function assetInputs(deps: AssetInputsDeps): InputsFor {
  const cache = new Map<string, AssetFileRecord>();
  const keyOf = (asset: string, frame: number | undefined) => `${asset}#${frame ?? 'still'}`;

  async function filesOf(asset: string, frames: readonly (number | undefined)[]) {
    const missing = [...new Set(frames)].filter((f) => !cache.has(keyOf(asset, f)));
    if (missing.length > 0) {
      const read = await deps.files(asset, missing);
      if (cache.size + read.size > CACHE_ENTRIES) cache.clear();
      for (const [frame, file] of read) cache.set(keyOf(asset, frame), file);
    }
    return frames.map((f) => {
      const file = cache.get(keyOf(asset, f));
      // Checked at submit; an asset deleted since leaves the job nothing to give its model.
      if (!file)
        throw new ModelError(`asset ${asset} has no file for frame ${f ?? '(still)'} any more`, false);
      return file;
    });
  }

  /** The staged video of these frames' files (made now, or by an earlier attempt), as a GET URL. */
  async function videoOf(
    job: JobRecord,
    name: string,
    frames: readonly number[],
    files: readonly AssetFileRecord[],
  ): Promise<string> {
    const staging = deps.video;
    if (!staging) {
      throw new ModelError(
        `input "${name}" is declared as video, and this worker cannot stage videos`,
        false,
      );
    }
    const key = inputVideoKey(job, name, frames);
    const hash = framesHash(files);
    if ((await staging.staged(key)) !== hash) {
      const video = await encodeInputVideo(
        files.map((file) => ({ sha256: file.sha256, read: () => staging.read(job.tenant, file.sha256) })),
        name,
      );
      await staging.put(key, video, INPUT_VIDEO.contentType, hash);
    }
    return staging.presign(key);
  }

  return async (job, frames) => {
    if (!job.inputs || frames.length === 0) return {};
    const declared = specOf(deps.specs, job.model).inputs;
    const inputs: Record<string, unknown> = {};
    const hashes = new Map<number, Record<string, string>>(frames.map((f) => [f, {}]));
    for (const [name, binding] of Object.entries(job.inputs)) {
      const sources = frames.map((f) => {
        const source = sourceFrame(f, binding, binding, f > job.frames.end ? 'hold' : binding.outside);
        return source === 'still' || source === undefined ? undefined : source;
      });
      const files = await filesOf(binding.asset, sources);
      files.forEach((file, i) => {
        hashes.get(frames[i]!)![name] = file.sha256;
      });
      const kind = declared[name] ?? 'image';
      if (kind === 'video') {
        const url = await videoOf(job, name, frames, files);
        inputs[name] = job.window ? [url] : url;
        continue;
      }
      const urls = new Map<string, Promise<string>>();
      const list = await Promise.all(
        files.map((file) => {
          const url = urls.get(file.sha256) ?? deps.presign(job.tenant, file.sha256);
          urls.set(file.sha256, url);
          return url;
        }),
      );
      inputs[name] = kind === 'images' || job.window ? list : list[0];
    }
    return { inputs, hashes };
  };
}
