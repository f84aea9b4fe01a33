import { seededRandom } from './render.ts';

/**
 * What the reference model does to a rendered frame before it is a frame of the shot: a grade, then the
 * plate underneath.
 *
 * - **Grade.** A gain per channel (R, G, B) on the rendered elements, standing in for the drift of a video
 *   model between windows generated apart: each window's seed gives it a grade of its own, so two windows
 *   rendered without context jump at their seam. A window given context measures the grade of those
 *   frames instead and keeps it, so it continues them without a jump, and a test can tell it did.
 * - **Composite.** `out = plate + w * (graded - plate)` per channel, with `w = strength * mask / 255`:
 *   a black mask or strength 0 gives the plate bit for bit, a white mask at strength 1 the graded render
 *   bit for bit. Without a plate the graded render is the frame.
 *
 * Only IEEE-exact arithmetic, summed in a fixed order, so frames regenerate bit for bit.
 */

/** Gains for R, G and B; `[1, 1, 1]` leaves the render as it is. */
export type Grade = readonly [number, number, number];

/** What goes under the rendered elements, each `width * height` pixels like the render. */
export interface Underlay {
  /** 8-bit RGB. */
  readonly plate?: Uint8Array;
  /** 8-bit grey: 0 keeps the plate, 255 lets the render through. Absent: white. */
  readonly mask?: Uint8Array;
  /** 0..1: how much of the render is laid over the plate. */
  readonly strength: number;
}

// A seed's grade: an exposure and a tint per channel, enough that windows made apart visibly differ, as a
// video model's do.
const EXPOSURE = { min: 0.75, max: 1.25 };
const TINT = 0.08;
/** The brightest rendered value that no seed's grade clips. */
const UNCLIPPED = Math.floor(255 / (EXPOSURE.max * (1 + TINT)));

/** The grade a window's seed gives it: exposure 0.75..1.25, and a tint of up to 8% per channel. */
export function gradeForSeed(seed: number): Grade {
  const random = seededRandom(`grade\0${seed}`);
  const exposure = EXPOSURE.min + (EXPOSURE.max - EXPOSURE.min) * random();
  const tint = () => exposure * (1 + TINT * (2 * random() - 1));
  return [tint(), tint(), tint()];
}

/** The frame: `rendered` graded (when a grade is given) and laid over the plate. Writes into `rendered`. */
export function composeFrame(
  rendered: Uint8Array,
  grade: Grade | undefined,
  { plate, mask, strength }: Underlay,
): Uint8Array {
  const out = new Uint8ClampedArray(rendered.buffer, rendered.byteOffset, rendered.byteLength);
  if (grade) {
    for (let i = 0; i < out.length; i += 3) {
      out[i] = out[i]! * grade[0];
      out[i + 1] = out[i + 1]! * grade[1];
      out[i + 2] = out[i + 2]! * grade[2];
    }
  }
  if (plate) {
    for (let i = 0, px = 0; i < out.length; i += 3, px++) {
      const w = mask ? (strength * mask[px]!) / 255 : strength;
      for (let c = i; c < i + 3; c++) out[c] = plate[c]! + w * (out[c]! - plate[c]!);
    }
  }
  return rendered;
}

/**
 * Evidence of the grade of a context frame: least-squares sums per channel for the gain `g` in
 * `context = plate + w * (g * rendered - plate)`, where `rendered` is the frame as rendered without a grade.
 * Pixels the render does not reach (`w = 0`) say nothing. Clipped ones would understate the gain, so bright
 * render pixels that any seed's grade may have clipped are left out, and context pixels at 255.
 * Returns `[sum xy R, G, B, sum xx R, G, B]`.
 */
export function gradeEvidence(rendered: Uint8Array, context: Uint8Array, underlay: Underlay): Float64Array {
  const { plate, mask, strength } = underlay;
  const sums = new Float64Array(6);
  for (let i = 0, px = 0; i < rendered.length; i += 3, px++) {
    const w = plate ? (mask ? (strength * mask[px]!) / 255 : strength) : 1;
    if (w === 0) continue;
    for (let c = 0; c < 3; c++) {
      const seen = context[i + c]!;
      const value = rendered[i + c]!;
      if (seen === 255 || value > UNCLIPPED) continue;
      const x = w * value;
      const y = plate ? seen - (1 - w) * plate[i + c]! : seen;
      sums[c]! += x * y;
      sums[c + 3]! += x * x;
    }
  }
  return sums;
}

/**
 * The grade that best explains the context frames, from their evidence in frame order; `undefined` for a
 * channel the render never reaches (a black mask, strength 0), where no grade shows anyway.
 */
export function gradeFromEvidence(evidence: readonly Float64Array[]): Grade | undefined {
  const total = new Float64Array(6);
  for (const sums of evidence) for (let k = 0; k < 6; k++) total[k]! += sums[k]!;
  if (total[3] === 0 || total[4] === 0 || total[5] === 0) return undefined;
  // Bounded, so a context that is not this shot at all (black frames, another scene) stays a grade.
  const gain = (c: number) => Math.min(4, Math.max(0.25, total[c]! / total[c + 3]!));
  return [gain(0), gain(1), gain(2)];
}
