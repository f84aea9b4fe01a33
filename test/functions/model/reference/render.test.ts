import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type FrameRequest, renderFrame } from '../../../../functions/model/reference/render.ts';

const W = 256;
const H = 144;
const shot: FrameRequest = {
  prompt: 'EP101_SH040, a lighthouse on a rocky coast at sunset',
  seed: 42,
  frame: 1001,
  width: W,
  height: H,
};

/** Mean absolute difference per channel, 0..255. */
function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  expect(a.length).toBe(b.length);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

const prompts = [
  'EP101_SH040, a lighthouse on a rocky coast at sunset',
  'wide establishing shot of a desert canyon',
  'snowy mountains at night under the stars',
  'a quiet green valley in the morning',
  '東京の夜景, 映画のワンシーン',
  'une forêt au bord de la mer',
];

describe('rendering a reference frame', () => {
  it('gives identical pixels for the same prompt, seed, frame and size', () => {
    fc.assert(
      fc.property(
        fc.string({ maxLength: 60 }),
        fc.integer({ min: 0, max: 0xffff_ffff }),
        fc.integer({ min: 0, max: 9_999_999 }),
        (prompt, seed, frame) => {
          const req = { prompt, seed, frame, width: 64, height: 40 };
          expect(Buffer.from(renderFrame(req)).equals(Buffer.from(renderFrame(req)))).toBe(true);
        },
      ),
      { numRuns: 30 },
    );
  });

  it('is RGB at the requested size and is a real picture, not a flat fill', () => {
    const rgb = renderFrame({ ...shot, width: 200, height: 120 });
    expect(rgb).toBeInstanceOf(Uint8Array);
    expect(rgb.length).toBe(200 * 120 * 3);
    const colours = new Set<number>();
    for (let i = 0; i < rgb.length; i += 3) colours.add((rgb[i]! << 16) | (rgb[i + 1]! << 8) | rgb[i + 2]!);
    expect(colours.size).toBeGreaterThan(500);
    // The top of the frame (sky) and the bottom (ground or water) differ.
    const top = rgb.subarray(0, 200 * 3 * 10);
    const bottom = rgb.subarray(rgb.length - 200 * 3 * 10);
    expect(meanAbsDiff(top, bottom)).toBeGreaterThan(10);
  });

  it('looks clearly different with another seed', () => {
    for (const prompt of prompts) {
      for (const seed of [0, 42, 4294967295]) {
        const a = renderFrame({ ...shot, prompt, seed });
        const b = renderFrame({ ...shot, prompt, seed: (seed + 1) % 2 ** 32 });
        expect(meanAbsDiff(a, b), `${prompt} seed ${seed}`).toBeGreaterThan(5);
      }
    }
  });

  it('looks clearly different with another prompt', () => {
    for (const [i, prompt] of prompts.entries()) {
      const other = prompts[(i + 1) % prompts.length]!;
      const diff = meanAbsDiff(renderFrame({ ...shot, prompt }), renderFrame({ ...shot, prompt: other }));
      expect(diff, `${prompt} vs ${other}`).toBeGreaterThan(10);
    }
    const oneWord = meanAbsDiff(
      renderFrame({ ...shot, prompt: 'a castle at dusk' }),
      renderFrame({ ...shot, prompt: 'a castle at dusk, rain' }),
    );
    expect(oneWord).toBeGreaterThan(5);
  });

  it('moves like a shot: the next frame differs little, a frame a second later clearly', () => {
    for (const prompt of prompts) {
      for (const seed of [7, 123456]) {
        const start = { ...shot, prompt, seed };
        const frame = renderFrame(start);
        const next = meanAbsDiff(frame, renderFrame({ ...start, frame: start.frame + 1 }));
        const second = meanAbsDiff(frame, renderFrame({ ...start, frame: start.frame + 24 }));
        expect(next, prompt).toBeGreaterThan(0);
        expect(next, prompt).toBeLessThan(2);
        expect(second, prompt).toBeGreaterThan(3 * next);
        expect(second, prompt).toBeGreaterThan(1);
      }
    }
  });

  it('keeps moving smoothly at the largest frame numbers', () => {
    const late = { ...shot, frame: 9_999_975 };
    const frame = renderFrame(late);
    const next = meanAbsDiff(frame, renderFrame({ ...late, frame: late.frame + 1 }));
    const second = meanAbsDiff(frame, renderFrame({ ...late, frame: late.frame + 24 }));
    expect(next).toBeLessThan(2);
    expect(second).toBeGreaterThan(3 * next);
  });

  it('shifts the colours a little for a negative prompt but keeps the composition', () => {
    const plain = renderFrame(shot);
    const negative = meanAbsDiff(plain, renderFrame({ ...shot, negativePrompt: 'blurry, low quality' }));
    const otherSeed = meanAbsDiff(plain, renderFrame({ ...shot, seed: 43 }));
    expect(negative).toBeGreaterThan(0);
    expect(negative).toBeLessThan(otherSeed);
    expect(renderFrame({ ...shot, negativePrompt: '' })).toEqual(plain);
  });

  it('refuses sizes, seeds and frames it cannot render', () => {
    expect(() => renderFrame({ ...shot, width: 0 })).toThrow(RangeError);
    expect(() => renderFrame({ ...shot, height: 10.5 })).toThrow(RangeError);
    expect(() => renderFrame({ ...shot, seed: -1 })).toThrow(/uint32/);
    expect(() => renderFrame({ ...shot, seed: 2 ** 32 })).toThrow(/uint32/);
    expect(() => renderFrame({ ...shot, frame: 1.5 })).toThrow(/frame/);
  });
});

describe('a shot seeded frame by frame (seedMode per-frame)', () => {
  // The worker sends the job's seed as shot_seed and seed + (frame - start) as each frame's seed.
  const perFrame = (frame: number) =>
    renderFrame({ ...shot, shotSeed: 42, seed: 42 + (frame - 1001), frame });

  it('keeps one scene that moves smoothly, the frame seed changing only the grain', () => {
    const step = meanAbsDiff(perFrame(1001), perFrame(1002));
    const second = meanAbsDiff(perFrame(1001), perFrame(1025));
    expect(step).toBeLessThan(6);
    expect(second).toBeGreaterThan(step);
    const noShotSeed = meanAbsDiff(
      renderFrame({ ...shot, seed: 42, frame: 1001 }),
      renderFrame({ ...shot, seed: 43, frame: 1002 }),
    );
    expect(noShotSeed).toBeGreaterThan(step * 2);
  });

  it('is still deterministic, and another shot seed is another scene', () => {
    expect(Buffer.from(perFrame(1010)).equals(Buffer.from(perFrame(1010)))).toBe(true);
    const other = renderFrame({ ...shot, shotSeed: 7, seed: 42, frame: 1001 });
    expect(meanAbsDiff(perFrame(1001), other)).toBeGreaterThan(5);
  });
});
