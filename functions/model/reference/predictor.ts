import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Provenance, provenanceText } from '../../core/png.ts';
import type { InputOf, InputTable, ValidationIssue } from '../cog/inputs.ts';
import type { OutputFile, Predictor } from '../cog/predictor.ts';
import type { ImageLimits } from './images.ts';
import { type RenderThreads, startRenderThreads } from './render-thread.ts';
import { startVideo, VIDEO_FILE } from './video.ts';
import { renderWindow, type WindowRequest } from './window.ts';

/**
 * The `reference` predictor: the procedural renderer (`render.ts`) behind the inputs the worker sends. A
 * prediction is a window of frames (`window.ts`; a single frame is a window of one), each rendered on a
 * render thread (`render-thread.ts`), graded and laid over its plate (`composite.ts`), and returned as a
 * list of PNGs carrying their provenance, or as one lossless video (`video.ts`). `server.ts` serves it over
 * the Cog HTTP contract.
 */

export const REFERENCE_DESCRIPTION =
  'Framecast reference model: a procedural CPU renderer for local mode and tests; production replaces it with a Cog-packaged image';

// 1.1: plates, masks, windows and context. A single frame asked as before renders the same bytes.
export const REFERENCE_VERSION = '1.1.0';

/** The longest window: 129 frames, above the 121 of the longest current video models. */
export const MAX_WINDOW = 129;
const MAX_FRAME = 9999999;
const URIS = { type: 'string', format: 'uri' } as const;

/**
 * The inputs the worker may send, in Cog's `x-order`. Each entry is the OpenAPI property (titled from its
 * name) and the validation of that input: a new input is a new entry here, and in `predict` below.
 */
export const REFERENCE_INPUTS = {
  prompt: {
    type: 'string',
    description:
      'What the frame shows. Words like night, sunset, desert, snow, forest or ocean steer the palette.',
    minLength: 1,
    maxLength: 4000,
    required: true,
  },
  negative_prompt: {
    type: 'string',
    description: 'What to avoid; shifts the colours slightly.',
    default: '',
    maxLength: 4000,
  },
  seed: {
    type: 'integer',
    description: 'Chooses the scene. Random when absent (then written to the logs).',
    minimum: 0,
    maximum: 4294967295,
  },
  shot_seed: {
    type: 'integer',
    description:
      'The seed of the whole shot. When given, it chooses the scene and `seed` only varies the grain, so a shot seeded frame by frame still holds one scene.',
    minimum: 0,
    maximum: 4294967295,
  },
  width: { type: 'integer', default: 1024, minimum: 64, maximum: 8192, multipleOf: 8 },
  height: { type: 'integer', default: 576, minimum: 64, maximum: 8192, multipleOf: 8 },
  frame: {
    type: 'integer',
    description: 'Frame number in the shot: the time of the frame (camera drift, moving clouds).',
    default: 0,
    minimum: 0,
    maximum: MAX_FRAME,
  },
  job_id: { type: 'string', description: 'Recorded in the PNG provenance.', maxLength: 200 },
  shot: { type: 'string', description: 'Recorded in the PNG provenance.', maxLength: 200 },
  // Plates and windows (docs/reference-model.md, "Plates, windows and context"). Appended, so the inputs
  // above keep their x-order.
  image: {
    type: 'array',
    items: URIS,
    description:
      'The plate, under the rendered elements: one image per frame of the window, in frame order, or one image for every frame, or one video (Matroska, such as FFV1) whose frame k is frame k of the window. PNG or JPEG (or video frames) of exactly width x height, as data or http(s) URLs.',
    minItems: 1,
    maxItems: MAX_WINDOW,
  },
  mask: {
    type: 'array',
    items: URIS,
    description:
      'Where the rendered elements may replace the plate: black keeps the plate, white shows the elements, grey blends. One per frame, one for every frame, or one video, like image; needs image.',
    minItems: 1,
    maxItems: MAX_WINDOW,
  },
  strength: {
    type: 'number',
    description:
      'How much of the rendered elements is laid over the plate: 0 passes the plate through bit for bit, 1 lays them on fully where the mask is white. Without image it changes nothing.',
    default: 1,
    minimum: 0,
    maximum: 1,
  },
  start_frame: {
    type: 'integer',
    description:
      'First frame of the window. Absent: frame. Given, the prediction is a window: it takes its grade from seed, or from context.',
    minimum: 0,
    maximum: MAX_FRAME,
  },
  num_frames: {
    type: 'integer',
    description:
      'Frames in the window, made in one prediction: start_frame to start_frame + num_frames - 1. The output lists one PNG per frame, in that order.',
    default: 1,
    minimum: 1,
    maximum: MAX_WINDOW,
  },
  context: {
    type: 'array',
    items: URIS,
    description:
      "Frames already made that this window overlaps (the previous window's last frames): context[k] is frame start_frame + k. The window takes its grade from them, so it continues them without a jump. At most num_frames.",
    maxItems: MAX_WINDOW,
  },
} as const satisfies InputTable;

type ReferenceInput = InputOf<typeof REFERENCE_INPUTS>;

/** What the input table cannot say: list lengths that follow the window, a window inside the frame range. */
export function checkReferenceInput(input: ReferenceInput): ValidationIssue[] {
  const issues: ValidationIssue[] = [];
  const issue = (name: string, msg: string) =>
    issues.push({ loc: ['body', 'input', name], msg: `Value error, ${msg}`, type: 'value_error' });
  const n = input.num_frames;
  const start = input.start_frame ?? input.frame;
  if (start + n - 1 > MAX_FRAME) {
    issue('num_frames', `the window ends at frame ${start + n - 1}, after the last frame, ${MAX_FRAME}`);
  }
  for (const name of ['image', 'mask'] as const) {
    const length = input[name]?.length;
    if (length !== undefined && length !== 1 && length !== n) {
      issue(
        name,
        `${name} has ${length} images: give one per frame (num_frames is ${n}) or one for every frame`,
      );
    }
  }
  if (input.mask && !input.image) issue('mask', 'a mask needs a plate: give image too');
  if (input.context && input.context.length > n) {
    issue('context', `context has ${input.context.length} frames, more than the window's ${n}`);
  }
  return issues;
}

export interface ReferencePredictorOptions {
  /** Extra time per prediction, as a GPU would take. Default 0. */
  renderDelayMs?: number;
  /** Fault injection for tests: predictions of a window with any of these frames always fail. */
  failFrames?: number[];
  /**
   * `images` (default): a list of PNGs, one per frame (Cog `list[Path]`). `video`: one lossless video of
   * the window (Cog `Path`), as a video model would answer. A Cog model's output type is fixed, so this is
   * chosen per server, not per prediction.
   */
  output?: 'images' | 'video';
  /** Gives up on an image input after this long. Default 60 s. */
  imageTimeoutMs?: number;
  /** The largest image input accepted. Default 256 MiB. */
  maxImageBytes?: number;
}

/** A list of files, one per frame: Cog's `list[Path]`. */
const IMAGES_OUTPUT = { type: 'array', title: 'Output', items: URIS } as const;
/** One file: Cog's `Path`. */
const VIDEO_OUTPUT = { type: 'string', title: 'Output', format: 'uri' } as const;

/** A reference predictor; its render threads start in `setup`, one per prediction slot. */
export function referencePredictor(
  options: ReferencePredictorOptions = {},
): Predictor<typeof REFERENCE_INPUTS> {
  const renderDelayMs = options.renderDelayMs ?? 0;
  const failFrames = new Set(options.failFrames ?? []);
  const output = options.output ?? 'images';
  const limits: ImageLimits = {
    timeoutMs: options.imageTimeoutMs ?? 60_000,
    maxBytes: options.maxImageBytes ?? 256 * 1024 * 1024,
  };
  let threads: RenderThreads | undefined;

  return {
    name: 'reference',
    description: REFERENCE_DESCRIPTION,
    version: REFERENCE_VERSION,
    inputs: REFERENCE_INPUTS,
    output: output === 'video' ? VIDEO_OUTPUT : IMAGES_OUTPUT,
    check: checkReferenceInput,

    async setup({ concurrency, defunct }) {
      const started = Date.now();
      threads = await startRenderThreads(concurrency, (error) =>
        defunct(`render thread failed: ${error.message}`),
      );
      return `started ${concurrency} render thread(s) in ${Date.now() - started} ms`;
    },

    async predict(input, { signal, log }) {
      if (!threads) throw new Error('setup has not run');
      const seed = input.seed ?? randomInt(0, 2 ** 32);
      if (input.seed === undefined) log(`Using seed: ${seed}`);
      if (renderDelayMs > 0) await sleep(renderDelayMs, undefined, { signal });
      signal.throwIfAborted();
      const window = windowOf(input, seed);
      const last = window.startFrame + window.numFrames - 1;
      for (let frame = window.startFrame; frame <= last; frame++) {
        if (failFrames.has(frame)) {
          log(`frame ${frame} is configured to fail`);
          throw new Error(`injected failure: frame ${frame} is in failFrames`);
        }
      }
      const deps = { threads, limits, signal, log };
      const provenance = (frame: number): Provenance => ({
        generator: 'framecast',
        model: 'reference',
        prompt: input.prompt,
        ...(input.negative_prompt && { negativePrompt: input.negative_prompt }),
        seed,
        frame,
        jobId: input.job_id ?? '',
        ...(input.shot !== undefined && { shot: input.shot }),
        width: input.width,
        height: input.height,
      });

      if (output === 'video') {
        const video = await startVideo({
          width: input.width,
          height: input.height,
          frames: window.numFrames,
          // The window's provenance: frame is its first frame; the others follow in order.
          metadata: {
            comment: JSON.stringify({ ...provenance(window.startFrame), numFrames: window.numFrames }),
            description: input.prompt,
          },
          signal,
        });
        try {
          await renderWindow(window, deps, { frame: (index, rgb) => video.frame(index, rgb) });
          const bytes = await video.finish();
          log(`encoded ${window.numFrames} frame(s) as FFV1 in Matroska, ${bytes.length} bytes`);
          return { ...VIDEO_FILE, bytes };
        } catch (err) {
          await video.abort();
          throw err;
        }
      }

      const files: OutputFile[] = [];
      await renderWindow(window, deps, {
        text: (frame) => ({ ...provenanceText(provenance(frame)), Software: REFERENCE_DESCRIPTION }),
        frame: (index, png) => {
          files[index] = {
            contentType: 'image/png',
            extension: 'png',
            bytes: Buffer.from(png.buffer, png.byteOffset, png.byteLength),
          };
        },
      });
      return files;
    },

    async close() {
      await threads?.close();
    },
  };
}

/** The window a validated input asks for. */
function windowOf(input: ReferenceInput, seed: number): WindowRequest {
  return {
    prompt: input.prompt,
    negativePrompt: input.negative_prompt,
    seed,
    ...(input.shot_seed !== undefined && { shotSeed: input.shot_seed }),
    width: input.width,
    height: input.height,
    startFrame: input.start_frame ?? input.frame,
    numFrames: input.num_frames,
    // Only a window has a grade of its own: frames asked one by one with `frame` (each with its own seed,
    // under one shot seed) render as they always have, without a flicker from frame to frame.
    graded: input.start_frame !== undefined,
    ...(input.image && { image: input.image }),
    ...(input.mask && { mask: input.mask }),
    strength: input.strength,
    ...(input.context && input.context.length > 0 && { context: input.context }),
  };
}
