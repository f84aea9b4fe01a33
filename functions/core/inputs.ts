import type { FrameRange } from './frames.ts';

/**
 * Job inputs: which file of an asset each output frame hands the model. Output frame `f` takes the
 * asset's frame `f + offset`; a still (an asset without frames) goes to every frame. For frames the
 * sequence does not cover, `outside` decides: `error` refuses the job at submit, naming the first such
 * frame; `hold` gives the nearest frame of the sequence. Pure functions; the API and the worker apply them.
 */

export type Outside = 'error' | 'hold';

export interface InputBinding {
  /** The asset's frame for output frame `f` is `f + offset`. */
  readonly offset: number;
  readonly outside: Outside;
}

/** What a binding needs to know of its asset: its frame range, or none for a still. */
export interface InputSource {
  readonly frames?: FrameRange;
}

/**
 * The asset frame output frame `frame` uses: a number, `'still'` for a still, or undefined when the
 * sequence does not cover it and `outside` is `error`. A fitted last window's frames past the shot use
 * `hold` whatever the job says (they are generated and not kept).
 */
export function sourceFrame(
  frame: number,
  binding: InputBinding,
  source: InputSource,
  outside: Outside = binding.outside,
): number | 'still' | undefined {
  if (!source.frames) return 'still';
  const wanted = frame + binding.offset;
  const { start, end } = source.frames;
  if (wanted >= start && wanted <= end) return wanted;
  if (outside === 'error') return undefined;
  return wanted < start ? start : end;
}

/** The first output frame of `range` the binding leaves uncovered, or undefined when it covers them all. */
export function firstUncovered(
  range: FrameRange,
  binding: InputBinding,
  source: InputSource,
): number | undefined {
  if (!source.frames || binding.outside === 'hold') return undefined;
  const { start, end } = source.frames;
  // Covered frames form one run: [start - offset, end - offset]; the first frame outside it is the answer.
  if (range.start + binding.offset < start) return range.start;
  if (range.end + binding.offset > end) return Math.max(range.start, end - binding.offset + 1);
  return undefined;
}
