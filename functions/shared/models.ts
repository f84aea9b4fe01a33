import * as z from 'zod';
import { type WindowSpec, windowSpecProblem } from '../core/windows.ts';

/**
 * What a model declares: the inputs it accepts (beyond the prompt, seed and size every model gets) and,
 * for a video model, its windows. A production's config names these per model (lib/config.ts); the API
 * refuses a job that names an input its model does not declare, the fan-out plans windows from `frames`,
 * and the worker hands each input over by its kind. The runtime reads them from FRAMECAST_MODEL_SPECS.
 */

/**
 * How the worker hands an input to the model:
 * - `image`, `mask`: one URL per frame (a still: the same URL for every frame); a windowed model gets the
 *   window's frames as an ordered list;
 * - `images`: always an ordered list, one URL per frame of the prediction;
 * - `video`: one lossless video file of the prediction's frames.
 */
export const InputKind = z.enum(['image', 'mask', 'images', 'video']);
export type InputKind = z.output<typeof InputKind>;

/** `4n+1`: the lengths a video model accepts. */
const LENGTHS = /^(\d{1,3})n\+(\d{1,3})$/;

export const WindowSpecSchema = z
  .strictObject({
    /** Frames one prediction makes. */
    window: z.int().min(2).max(1024),
    /** Frames two neighbouring windows share (less than half the window). */
    overlap: z.int().min(0).max(511),
    /** The lengths the model accepts, as `<multiple>n+<offset>`, for example `4n+1`; any when absent. */
    lengths: z
      .union([
        z.string().regex(LENGTHS, 'must look like 4n+1'),
        z.strictObject({ multiple: z.int().min(1).max(999), offset: z.int().min(0).max(999) }),
      ])
      .optional(),
  })
  .transform((spec, ctx): WindowSpec => {
    const match = typeof spec.lengths === 'string' ? LENGTHS.exec(spec.lengths) : null;
    const lengths = match ? { multiple: Number(match[1]), offset: Number(match[2]) } : spec.lengths;
    const out: WindowSpec = {
      window: spec.window,
      overlap: spec.overlap,
      ...(lengths && typeof lengths === 'object' && { lengths }),
    };
    const problem = windowSpecProblem(out);
    if (problem) ctx.addIssue({ code: 'custom', message: problem });
    return out;
  });

export const ModelSpecSchema = z.strictObject({
  /** Model input name (as the model's Cog schema names it) → how it is handed over. */
  inputs: z
    .record(z.string().regex(/^[a-z][a-z0-9_]{0,63}$/, 'must be a Cog input name'), InputKind)
    .default({}),
  /** Windows, for a video model; absent: one prediction per frame. */
  frames: WindowSpecSchema.optional(),
});

export type ModelSpec = z.output<typeof ModelSpecSchema>;

/** The reference model composites a plate per frame, inside a mask; its Cog schema takes both as lists. */
export const REFERENCE_SPEC: ModelSpec = { inputs: { image: 'images', mask: 'images' } };

/**
 * The same reference server as a video model: 49 frames a prediction, 8 shared with the next window,
 * lengths 4n+1, as current video models. Local mode runs it beside `reference`; a production adds it with
 * `{"name": "reference-window", "image": "builtin", "frames": {...}}`.
 */
export const REFERENCE_WINDOW_SPEC: ModelSpec = {
  inputs: { image: 'images', mask: 'images' },
  frames: { window: 49, overlap: 8, lengths: { multiple: 4, offset: 1 } },
};

/** The models this project serves itself, with what they declare unless a production says otherwise. */
export const BUILTIN_SPECS: Readonly<Record<string, ModelSpec>> = {
  reference: REFERENCE_SPEC,
  'reference-window': REFERENCE_WINDOW_SPEC,
};

/** The spec of `model`: a model nobody declared anything for takes the prompt and nothing else. */
export const specOf = (specs: Readonly<Record<string, ModelSpec>>, model: string): ModelSpec =>
  specs[model] ?? BUILTIN_SPECS[model] ?? { inputs: {} };

/** FRAMECAST_MODEL_SPECS: `{"<model>": <spec>}` as JSON. */
export const ModelSpecsSchema = z.record(z.string(), ModelSpecSchema);
