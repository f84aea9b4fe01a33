import { type FrameRange, frameSeed, type SeedMode } from './frames.ts';
import type { WindowProvenance } from './png.ts';

/**
 * Windows: how a video model, which makes 49 to 121 frames per prediction, covers a long shot.
 *
 * The frame range is split into windows `[start, end]`, each starting `overlap` frames before the last one
 * ended (`next.start = end - overlap + 1`). Every window but the last has the model's full length; the
 * last is fitted to the smallest length the model allows that reaches the end of the range. A fitted
 * window may run past the end: the frames past it are generated and not kept (a model that only makes
 * 4n+1 frames cannot make 3). Pure functions; the fan-out and the worker apply them.
 */

/** What a model declares of its frames: `window` frames per prediction, `overlap` shared by neighbours. */
export interface WindowSpec {
  /** Frames one prediction makes. */
  readonly window: number;
  /** Frames two neighbouring windows share. */
  readonly overlap: number;
  /** The lengths the model accepts, as `{multiple, offset}` (4n+1 is `{multiple: 4, offset: 1}`); any when absent. */
  readonly lengths?: { readonly multiple: number; readonly offset: number };
}

export interface Window {
  readonly index: number;
  /** First frame the model makes. */
  readonly start: number;
  /** Last frame the model makes; past the range's end for a fitted last window. */
  readonly end: number;
}

/** The smallest length of at least `n` frames that `spec` allows. */
export function fitLength(n: number, spec: WindowSpec): number {
  const { lengths } = spec;
  if (!lengths) return n;
  const { multiple, offset } = lengths;
  const k = Math.max(0, Math.ceil((n - offset) / multiple));
  return k * multiple + offset;
}

/** True when `n` is a length the model accepts. */
export const isAllowedLength = (n: number, spec: WindowSpec): boolean => fitLength(n, spec) === n;

/** Why `spec` cannot plan windows, or undefined when it can. */
export function windowSpecProblem(spec: WindowSpec): string | undefined {
  if (!Number.isInteger(spec.window) || spec.window < 1) return 'window must be a positive integer';
  if (!Number.isInteger(spec.overlap) || spec.overlap < 0) return 'overlap must be a non-negative integer';
  // At most two windows share a frame: cross-fades blend pairs, and a chained window's context is its
  // predecessor's alone.
  if (spec.overlap * 2 >= spec.window) return 'overlap must be less than half the window';
  if (spec.lengths) {
    const { multiple, offset } = spec.lengths;
    if (!Number.isInteger(multiple) || multiple < 1 || !Number.isInteger(offset) || offset < 0)
      return 'lengths must be a positive multiple and a non-negative offset';
    if (!isAllowedLength(spec.window, spec)) return `window ${spec.window} is not an allowed length`;
  }
  return undefined;
}

/** The windows that cover `range`, in order. */
export function planWindows(range: FrameRange, spec: WindowSpec): Window[] {
  const problem = windowSpecProblem(spec);
  if (problem) throw new RangeError(problem);
  const windows: Window[] = [];
  for (let start = range.start; ; ) {
    const remaining = range.end - start + 1;
    const length = remaining >= spec.window ? spec.window : fitLength(remaining, spec);
    const end = start + length - 1;
    windows.push({ index: windows.length, start, end });
    if (end >= range.end) return windows;
    start = end - spec.overlap + 1;
  }
}

/** The window's seed: the frame seed of its first frame, so a window re-planned alike is seeded alike. */
export const windowSeed = (seed: number, mode: SeedMode, w: Window, range: FrameRange): number =>
  frameSeed(seed, mode, w.start, range.start);

/** Frames of window `w` that belong to the shot (a fitted last window may run past its end). */
export const keptEnd = (w: Window, range: FrameRange): number => Math.min(w.end, range.end);

/**
 * In chained mode, the frames window `w` stores: it starts after the overlap its predecessor already
 * stored (the model's own frames for the overlap are not kept), up to the range's end.
 */
export function chainedFrames(w: Window, windows: readonly Window[], range: FrameRange): FrameRange {
  const previous = w.index > 0 ? windows[w.index - 1] : undefined;
  return { start: previous ? previous.end + 1 : w.start, end: keptEnd(w, range) };
}

/** In chained mode, the context window `w` is given: the frames of its predecessor that it overlaps. */
export function contextFrames(w: Window, windows: readonly Window[]): FrameRange | undefined {
  const previous = w.index > 0 ? windows[w.index - 1] : undefined;
  return previous ? { start: w.start, end: previous.end } : undefined;
}

/**
 * In parallel mode, the weight of window `w`'s version of `frame` in the cross-fade: 1 outside any overlap,
 * rising linearly across the overlap with its predecessor and falling across the one with its successor,
 * so the two versions of an overlapping frame always weigh 1 together.
 */
export function crossFadeWeight(w: Window, windows: readonly Window[], frame: number): number {
  if (frame < w.start || frame > w.end) return 0;
  const previous = w.index > 0 ? windows[w.index - 1] : undefined;
  const next = windows[w.index + 1];
  if (previous && frame <= previous.end) {
    const span = previous.end - w.start + 2;
    return (frame - w.start + 1) / span;
  }
  if (next && frame >= next.start) {
    const span = w.end - next.start + 2;
    return (w.end - frame + 1) / span;
  }
  return 1;
}

/** The windows whose versions of `frame` make the stored frame (one, or two in an overlap). */
export function windowsOf(frame: number, windows: readonly Window[]): Window[] {
  return windows.filter((w) => frame >= w.start && frame <= w.end);
}

/**
 * Blends two 8-bit versions of one frame, `a` weighted `1 - t` and `b` weighted `t`, rounding to nearest:
 * the cross-fade of parallel windows. Pixel layouts must match.
 */
export function crossFade(a: Uint8Array, b: Uint8Array, t: number): Uint8Array {
  if (a.length !== b.length) throw new RangeError('cross-faded frames must have the same size');
  if (!(t >= 0 && t <= 1)) throw new RangeError('the cross-fade weight must be within 0..1');
  const out = new Uint8Array(a.length);
  for (let i = 0; i < a.length; i++) out[i] = Math.round(a[i]! * (1 - t) + b[i]! * t);
  return out;
}

/** What a job asks of a model's windows: a smaller window, or another overlap. */
export interface WindowRequest {
  readonly size?: number | undefined;
  readonly overlap?: number | undefined;
}

export type JobWindowSpec =
  | { readonly ok: true; readonly spec: WindowSpec }
  | { readonly ok: false; readonly field: 'size' | 'overlap'; readonly message: string };

/**
 * The windows a job makes on a model declaring `model`: the model's, or what the job asks within its
 * bounds. A window is at most the model's and of a length it allows; the overlap is less than half the
 * window. A smaller window asked without an overlap keeps the model's overlap, shrunk to fit.
 */
export function jobWindowSpec(model: WindowSpec, asked: WindowRequest = {}): JobWindowSpec {
  const size = asked.size ?? model.window;
  if (size > model.window)
    return { ok: false, field: 'size', message: `must be at most ${model.window}, the model's window` };
  if (size < 2) return { ok: false, field: 'size', message: 'must be at least 2' };
  if (!isAllowedLength(size, model)) {
    const { multiple, offset } = model.lengths!;
    const below = fitLength(size, model) - multiple;
    return {
      ok: false,
      field: 'size',
      message: `must be a length the model makes (${multiple}n+${offset}), such as ${below >= 2 ? `${below} or ` : ''}${fitLength(size, model)}`,
    };
  }
  const overlap = asked.overlap ?? Math.min(model.overlap, Math.ceil(size / 2) - 1);
  const spec: WindowSpec = { window: size, overlap, ...(model.lengths && { lengths: model.lengths }) };
  if (overlap * 2 >= size)
    return { ok: false, field: 'overlap', message: `must be less than half the window (${size})` };
  return { ok: true, spec };
}

/** What the windows of a job are planned from. */
export interface WindowedShot {
  readonly frames: FrameRange;
  readonly seed: number;
  readonly seedMode: SeedMode;
  readonly window: WindowSpec & { readonly mode: 'chained' | 'parallel' };
}

/** How a stored frame was made: the window that made it and, for a cross-faded frame, the one blended in. */
export interface FrameOrigin {
  readonly window: WindowProvenance;
  /** Parallel mode, a frame two windows share: the later window, with its weight. */
  readonly crossFade?: { readonly window: WindowProvenance; readonly weight: number };
}

/**
 * The origin of `frame` of `shot`, as its provenance and the manifest record it. In chained mode the
 * window whose frames it is among, with the context that window was given (`sha256Of` gives each stored
 * context frame's hash); in parallel mode the window, or the two windows, whose versions make it.
 */
export function frameOrigin(
  shot: WindowedShot,
  windows: readonly Window[],
  frame: number,
  sha256Of: (frame: number) => string | undefined = () => undefined,
): FrameOrigin {
  if (frame < shot.frames.start || frame > shot.frames.end)
    throw new RangeError(`frame ${frame} is outside the shot`);
  const describe = (w: Window, withContext: boolean): WindowProvenance => {
    const context = withContext ? contextFrames(w, windows) : undefined;
    const frames: { frame: number; sha256: string }[] = [];
    for (let f = context?.start ?? 0; context && f <= context.end; f++) {
      const sha256 = sha256Of(f);
      if (sha256 !== undefined) frames.push({ frame: f, sha256 });
    }
    return {
      index: w.index,
      start: w.start,
      end: w.end,
      seed: windowSeed(shot.seed, shot.seedMode, w, shot.frames),
      ...(frames.length > 0 && { context: frames }),
    };
  };
  if (shot.window.mode === 'chained') {
    const w = windows.find((c) => {
      const kept = chainedFrames(c, windows, shot.frames);
      return frame >= kept.start && frame <= kept.end;
    });
    return { window: describe(w!, true) };
  }
  const [first, second] = windowsOf(frame, windows);
  if (!second) return { window: describe(first!, false) };
  return {
    window: describe(first!, false),
    crossFade: { window: describe(second, false), weight: crossFadeWeight(second, windows, frame) },
  };
}
