import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  composeFrame,
  gradeEvidence,
  gradeForSeed,
  gradeFromEvidence,
} from '../../../../functions/model/reference/composite.ts';
import { renderFrame } from '../../../../functions/model/reference/render.ts';

const W = 96;
const H = 56;
const request = { prompt: 'a harbour at dusk', seed: 7, shotSeed: 3, frame: 1001, width: W, height: H };

function plate(): Uint8Array {
  const rgb = new Uint8Array(W * H * 3);
  for (let i = 0, px = 0; i < rgb.length; i += 3, px++) {
    rgb[i] = (px * 7) & 255;
    rgb[i + 1] = 40 + (px % W);
    rgb[i + 2] = 255 - ((px * 3) & 255);
  }
  return rgb;
}
const grey = (value: number | ((px: number) => number)) =>
  Uint8Array.from({ length: W * H }, (_, px) => (typeof value === 'number' ? value : value(px)));
const render = () => renderFrame(request);

describe('laying the rendered elements over a plate', () => {
  it('passes the plate through bit for bit at strength 0, whatever the grade and mask', () => {
    fc.assert(
      fc.property(fc.integer({ min: 0, max: 2 ** 32 - 1 }), fc.integer({ min: 0, max: 255 }), (seed, m) => {
        const out = composeFrame(render(), gradeForSeed(seed), {
          plate: plate(),
          mask: grey(m),
          strength: 0,
        });
        expect(Buffer.from(out).equals(Buffer.from(plate()))).toBe(true);
      }),
      { numRuns: 20 },
    );
  });

  it('keeps the plate where the mask is black and shows the graded render where it is white', () => {
    const grade = gradeForSeed(42);
    const graded = composeFrame(render(), grade, { strength: 1 });
    const black = composeFrame(render(), grade, { plate: plate(), mask: grey(0), strength: 1 });
    const white = composeFrame(render(), grade, { plate: plate(), mask: grey(255), strength: 1 });
    expect(Buffer.from(black).equals(Buffer.from(plate()))).toBe(true);
    expect(Buffer.from(white).equals(Buffer.from(graded))).toBe(true);
  });

  it('blends in between for grey and for a strength below 1', () => {
    const rendered = render();
    const halfMask = composeFrame(render(), undefined, { plate: plate(), mask: grey(128), strength: 1 });
    const halfStrength = composeFrame(render(), undefined, { plate: plate(), strength: 0.5 });
    const p = plate();
    for (const i of [0, 1, 2, 1000, W * H * 3 - 1]) {
      expect(halfMask[i]).toBe(Math.round(p[i]! + (128 / 255) * (rendered[i]! - p[i]!)));
      expect(Math.abs(halfStrength[i]! - (p[i]! + rendered[i]!) / 2)).toBeLessThanOrEqual(0.5);
    }
  });

  it('leaves a render without grade or plate as it is', () => {
    expect(
      Buffer.from(composeFrame(render(), undefined, { strength: 0.3 })).equals(Buffer.from(render())),
    ).toBe(true);
  });
});

describe('the grade of a window', () => {
  it('comes from the seed: the same for the same seed, another for another seed, within its bounds', () => {
    expect(gradeForSeed(42)).toEqual(gradeForSeed(42));
    const grades = Array.from({ length: 200 }, (_, seed) => gradeForSeed(seed));
    for (const grade of grades) {
      for (const gain of grade) {
        expect(gain).toBeGreaterThan(0.75 * 0.92);
        expect(gain).toBeLessThan(1.25 * 1.08);
      }
    }
    expect(new Set(grades.map((g) => g.join())).size).toBe(200);
  });

  it('is measured back from frames it was applied to, under a plate and a partial mask', () => {
    const mask = grey((px) => ((px % W) * 255) / (W - 1));
    for (const seed of [1, 42, 9999]) {
      const grade = gradeForSeed(seed);
      const underlay = { plate: plate(), mask, strength: 0.8 };
      const evidence = [1001, 1002, 1003].map((frame) => {
        const context = composeFrame(renderFrame({ ...request, frame }), grade, underlay);
        return gradeEvidence(renderFrame({ ...request, frame }), context, underlay);
      });
      const measured = gradeFromEvidence(evidence)!;
      for (let c = 0; c < 3; c++) expect(Math.abs(measured[c]! - grade[c]!)).toBeLessThan(0.01);
    }
  });

  it('cannot be measured where the render never shows, and says so', () => {
    const underlay = { plate: plate(), mask: grey(0), strength: 1 };
    expect(gradeFromEvidence([gradeEvidence(render(), plate(), underlay)])).toBeUndefined();
    expect(gradeFromEvidence([])).toBeUndefined();
  });
});
