import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  chainedFrames,
  contextFrames,
  crossFade,
  crossFadeWeight,
  fitLength,
  frameOrigin,
  jobWindowSpec,
  planWindows,
  type WindowSpec,
  windowSeed,
  windowSpecProblem,
  windowsOf,
} from '../../../functions/core/windows.ts';

const VIDEO: WindowSpec = { window: 49, overlap: 8, lengths: { multiple: 4, offset: 1 } };

/** Window specs a model may declare, and frame ranges to plan. */
const specs = fc
  .record({
    window: fc.integer({ min: 2, max: 130 }),
    overlapShare: fc.double({ min: 0, max: 0.9, noNaN: true }),
    fourNPlusOne: fc.boolean(),
  })
  .map(({ window, overlapShare, fourNPlusOne }): WindowSpec => {
    const w = fourNPlusOne
      ? fitLength(window, { window, overlap: 0, lengths: { multiple: 4, offset: 1 } })
      : window;
    return {
      window: w,
      overlap: Math.floor((overlapShare * (w - 1)) / 2),
      ...(fourNPlusOne && { lengths: { multiple: 4, offset: 1 } }),
    };
  });
const ranges = fc
  .record({ start: fc.integer({ min: 0, max: 5000 }), count: fc.integer({ min: 1, max: 600 }) })
  .map(({ start, count }) => ({ start, end: start + count - 1 }));

describe('window planning', () => {
  it('plans a 200-frame shot on a 49-frame model with overlap 8 as the design says', () => {
    expect(planWindows({ start: 1, end: 200 }, VIDEO)).toEqual([
      { index: 0, start: 1, end: 49 },
      { index: 1, start: 42, end: 90 },
      { index: 2, start: 83, end: 131 },
      { index: 3, start: 124, end: 172 },
      // 36 frames remain; 37 is the smallest 4n+1 length that reaches frame 200.
      { index: 4, start: 165, end: 201 },
    ]);
  });

  it('fits a shot shorter than one window to one allowed length', () => {
    expect(planWindows({ start: 1001, end: 1003 }, VIDEO)).toEqual([{ index: 0, start: 1001, end: 1005 }]);
    expect(planWindows({ start: 1001, end: 1003 }, { window: 49, overlap: 8 })).toEqual([
      { index: 0, start: 1001, end: 1003 },
    ]);
  });

  it('refuses specs it cannot plan', () => {
    expect(windowSpecProblem({ window: 8, overlap: 8 })).toMatch(/overlap/);
    expect(windowSpecProblem({ window: 16, overlap: 8 })).toMatch(/half/);
    expect(windowSpecProblem({ window: 48, overlap: 8, lengths: { multiple: 4, offset: 1 } })).toMatch(/48/);
    expect(() => planWindows({ start: 1, end: 10 }, { window: 0, overlap: 0 })).toThrow(RangeError);
  });

  it('starts each window overlap frames before the last one ended, at full length but the last', () => {
    fc.assert(
      fc.property(specs, ranges, (spec, range) => {
        const windows = planWindows(range, spec);
        expect(windows[0]!.start).toBe(range.start);
        windows.forEach((w, i) => {
          expect(w.index).toBe(i);
          const length = w.end - w.start + 1;
          expect(fitLength(length, spec)).toBe(length);
          if (i < windows.length - 1) {
            expect(length).toBe(spec.window);
            expect(windows[i + 1]!.start).toBe(w.end - spec.overlap + 1);
            expect(w.end).toBeLessThan(range.end);
          }
        });
        const last = windows[windows.length - 1]!;
        expect(last.end).toBeGreaterThanOrEqual(range.end);
        // Fitted: one allowed length less would not reach the end.
        expect(last.end - range.end).toBeLessThan(spec.lengths?.multiple ?? 1);
      }),
    );
  });

  it('in chained mode stores every frame of the shot exactly once, and gives each window its overlap as context', () => {
    fc.assert(
      fc.property(specs, ranges, (spec, range) => {
        const windows = planWindows(range, spec);
        let next = range.start;
        for (const w of windows) {
          const stored = chainedFrames(w, windows, range);
          expect(stored.start).toBe(next);
          next = stored.end + 1;
          const context = contextFrames(w, windows);
          if (w.index === 0) expect(context).toBeUndefined();
          else expect(context!.end - context!.start + 1).toBe(spec.overlap);
        }
        expect(next).toBe(range.end + 1);
      }),
    );
  });

  it('in parallel mode weighs the versions of every frame to 1 in all, rising across each overlap', () => {
    fc.assert(
      fc.property(specs, ranges, (spec, range) => {
        const windows = planWindows(range, spec);
        for (let frame = range.start; frame <= range.end; frame++) {
          const owners = windowsOf(frame, windows);
          expect(owners.length).toBeGreaterThanOrEqual(1);
          expect(owners.length).toBeLessThanOrEqual(2);
          const weights = owners.map((w) => crossFadeWeight(w, windows, frame));
          for (const weight of weights) expect(weight).toBeGreaterThan(0);
          expect(weights.reduce((a, b) => a + b, 0)).toBeCloseTo(1, 12);
          if (owners.length === 2 && frame + 1 <= owners[0]!.end) {
            expect(crossFadeWeight(owners[1]!, windows, frame + 1)).toBeGreaterThan(weights[1]!);
          }
        }
      }),
    );
  });

  it('seeds a window with the frame seed of its first frame', () => {
    const [first, second] = planWindows({ start: 1001, end: 1100 }, VIDEO);
    expect(windowSeed(42, 'per-frame', first!, { start: 1001, end: 1100 })).toBe(42);
    expect(windowSeed(42, 'per-frame', second!, { start: 1001, end: 1100 })).toBe(42 + 41);
    expect(windowSeed(42, 'fixed', second!, { start: 1001, end: 1100 })).toBe(42);
  });
});

describe('the cross-fade', () => {
  it('gives the first version at 0, the second at 1, and values between them in between', () => {
    fc.assert(
      fc.property(
        fc
          .uint8Array({ minLength: 3, maxLength: 300 })
          .chain((a) =>
            fc.tuple(fc.constant(a), fc.uint8Array({ minLength: a.length, maxLength: a.length })),
          ),
        fc.double({ min: 0, max: 1, noNaN: true }),
        ([a, b], t) => {
          expect(crossFade(a, b, 0)).toEqual(a);
          expect(crossFade(a, b, 1)).toEqual(b);
          const mixed = crossFade(a, b, t);
          mixed.forEach((v, i) => {
            expect(v).toBeGreaterThanOrEqual(Math.min(a[i]!, b[i]!));
            expect(v).toBeLessThanOrEqual(Math.max(a[i]!, b[i]!));
          });
        },
      ),
    );
  });

  it('refuses frames of different sizes and weights outside 0..1', () => {
    expect(() => crossFade(new Uint8Array(3), new Uint8Array(6), 0.5)).toThrow(/same size/);
    expect(() => crossFade(new Uint8Array(3), new Uint8Array(3), 1.5)).toThrow(/weight/);
  });
});

describe('the windows a job asks for', () => {
  it("takes the model's windows when the job asks nothing", () => {
    expect(jobWindowSpec(VIDEO)).toEqual({ ok: true, spec: VIDEO });
  });

  it('takes a smaller allowed window, keeping the overlap or shrinking it to fit', () => {
    expect(jobWindowSpec(VIDEO, { size: 33 })).toEqual({ ok: true, spec: { ...VIDEO, window: 33 } });
    expect(jobWindowSpec(VIDEO, { size: 13 })).toEqual({
      ok: true,
      spec: { ...VIDEO, window: 13, overlap: 6 },
    });
    expect(jobWindowSpec(VIDEO, { size: 21, overlap: 4 })).toEqual({
      ok: true,
      spec: { ...VIDEO, window: 21, overlap: 4 },
    });
    expect(jobWindowSpec(VIDEO, { overlap: 0 })).toEqual({ ok: true, spec: { ...VIDEO, overlap: 0 } });
  });

  it('refuses a window larger than the model makes, or of a length it does not make, naming the field', () => {
    expect(jobWindowSpec(VIDEO, { size: 53 })).toMatchObject({
      ok: false,
      field: 'size',
      message: /at most 49/,
    });
    expect(jobWindowSpec(VIDEO, { size: 30 })).toMatchObject({
      ok: false,
      field: 'size',
      message: /4n\+1\), such as 29 or 33/,
    });
    expect(jobWindowSpec(VIDEO, { overlap: 25 })).toMatchObject({ ok: false, field: 'overlap' });
    expect(jobWindowSpec(VIDEO, { size: 17, overlap: 9 })).toMatchObject({ ok: false, field: 'overlap' });
  });

  it('gives only specs that plan', () => {
    fc.assert(
      fc.property(
        specs,
        fc.integer({ min: 1, max: 140 }),
        fc.option(fc.integer({ min: 0, max: 70 }), { nil: undefined }),
        (spec, size, overlap) => {
          const out = jobWindowSpec(spec, { size, overlap });
          if (out.ok) expect(windowSpecProblem(out.spec)).toBeUndefined();
        },
      ),
    );
  });
});

describe('the origin of a stored frame', () => {
  const shot = (mode: 'chained' | 'parallel') => ({
    frames: { start: 1, end: 200 },
    seed: 100,
    seedMode: 'per-frame' as const,
    window: { ...VIDEO, mode },
  });
  const windows = planWindows({ start: 1, end: 200 }, VIDEO);
  const sha = (f: number) => `sha-${f}`;

  it('in chained mode names the window that kept it, its seed, and the context it was given', () => {
    expect(frameOrigin(shot('chained'), windows, 49, sha)).toEqual({
      window: { index: 0, start: 1, end: 49, seed: 100 },
    });
    expect(frameOrigin(shot('chained'), windows, 50, sha)).toEqual({
      window: {
        index: 1,
        start: 42,
        end: 90,
        seed: 141,
        context: Array.from({ length: 8 }, (_, i) => ({ frame: 42 + i, sha256: `sha-${42 + i}` })),
      },
    });
    expect(frameOrigin(shot('chained'), windows, 200).window).toEqual({
      index: 4,
      start: 165,
      end: 201,
      seed: 264,
    });
  });

  it("in parallel mode names the one window, or the two cross-faded with the later one's weight", () => {
    expect(frameOrigin(shot('parallel'), windows, 41)).toEqual({
      window: { index: 0, start: 1, end: 49, seed: 100 },
    });
    expect(frameOrigin(shot('parallel'), windows, 42)).toEqual({
      window: { index: 0, start: 1, end: 49, seed: 100 },
      crossFade: { window: { index: 1, start: 42, end: 90, seed: 141 }, weight: 1 / 9 },
    });
    expect(frameOrigin(shot('parallel'), windows, 49).crossFade?.weight).toBeCloseTo(8 / 9, 12);
    expect(() => frameOrigin(shot('parallel'), windows, 201)).toThrow(RangeError);
  });
});
