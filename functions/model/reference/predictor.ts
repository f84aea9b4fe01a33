import { randomInt } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { type Provenance, provenanceText } from '../../core/png.ts';
import type { InputTable } from '../cog/inputs.ts';
import type { Predictor } from '../cog/predictor.ts';
import type { FrameRequest } from './render.ts';
import { type RenderThreads, startRenderThreads } from './render-thread.ts';

/**
 * The `reference` predictor: the procedural renderer (`render.ts`) behind the inputs the worker sends,
 * each frame rendered on a render thread (`render-thread.ts`) and returned as a PNG carrying its
 * provenance. `server.ts` serves it over the Cog HTTP contract.
 */

export const REFERENCE_DESCRIPTION =
  'Framecast reference model: a procedural CPU renderer for local mode and tests; production replaces it with a Cog-packaged image';

export const REFERENCE_VERSION = '1.0.0';

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
    maximum: 9999999,
  },
  job_id: { type: 'string', description: 'Recorded in the PNG provenance.', maxLength: 200 },
  shot: { type: 'string', description: 'Recorded in the PNG provenance.', maxLength: 200 },
} as const satisfies InputTable;

export interface ReferencePredictorOptions {
  /** Extra time per prediction, as a GPU would take. Default 0. */
  renderDelayMs?: number;
  /** Fault injection for tests: predictions for these frame numbers always fail. */
  failFrames?: number[];
}

/** A reference predictor; its render threads start in `setup`, one per prediction slot. */
export function referencePredictor(
  options: ReferencePredictorOptions = {},
): Predictor<typeof REFERENCE_INPUTS> {
  const renderDelayMs = options.renderDelayMs ?? 0;
  const failFrames = new Set(options.failFrames ?? []);
  let threads: RenderThreads | undefined;

  return {
    name: 'reference',
    description: REFERENCE_DESCRIPTION,
    version: REFERENCE_VERSION,
    inputs: REFERENCE_INPUTS,
    output: { type: 'string', title: 'Output', format: 'uri' },

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
      if (failFrames.has(input.frame)) {
        log(`frame ${input.frame} is configured to fail`);
        throw new Error(`injected failure: frame ${input.frame} is in failFrames`);
      }
      const provenance: Provenance = {
        generator: 'framecast',
        model: 'reference',
        prompt: input.prompt,
        ...(input.negative_prompt && { negativePrompt: input.negative_prompt }),
        seed,
        frame: input.frame,
        jobId: input.job_id ?? '',
        ...(input.shot !== undefined && { shot: input.shot }),
        width: input.width,
        height: input.height,
      };
      const text = { ...provenanceText(provenance), Software: REFERENCE_DESCRIPTION };
      const request: FrameRequest = {
        prompt: input.prompt,
        negativePrompt: input.negative_prompt,
        seed,
        ...(input.shot_seed !== undefined && { shotSeed: input.shot_seed }),
        frame: input.frame,
        width: input.width,
        height: input.height,
      };
      const frame = await threads.render(request, text);
      log(
        `rendered frame ${input.frame} (${input.width}x${input.height}, seed ${seed}) in ${Math.round(frame.renderMs)} ms, encoded in ${Math.round(frame.encodeMs)} ms`,
      );
      return {
        contentType: 'image/png',
        extension: 'png',
        bytes: Buffer.from(frame.png.buffer, frame.png.byteOffset, frame.png.byteLength),
      };
    },

    async close() {
      await threads?.close();
    },
  };
}
