import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { firstUncovered, type InputBinding, sourceFrame } from '../../../functions/core/inputs.ts';

const plate = { frames: { start: 1001, end: 1024 } };

describe('job inputs', () => {
  it('hand output frame f the asset frame f + offset', () => {
    const same: InputBinding = { offset: 0, outside: 'error' };
    expect(sourceFrame(1001, same, plate)).toBe(1001);
    expect(sourceFrame(1024, same, plate)).toBe(1024);
    expect(sourceFrame(1, { offset: 1000, outside: 'error' }, plate)).toBe(1001);
  });

  it('give a still to every frame', () => {
    for (const frame of [0, 1001, 99999])
      expect(sourceFrame(frame, { offset: 7, outside: 'error' }, {})).toBe('still');
  });

  it('leave frames the sequence does not cover uncovered, or hold the nearest frame', () => {
    expect(sourceFrame(1025, { offset: 0, outside: 'error' }, plate)).toBeUndefined();
    expect(sourceFrame(1025, { offset: 0, outside: 'hold' }, plate)).toBe(1024);
    expect(sourceFrame(990, { offset: 0, outside: 'hold' }, plate)).toBe(1001);
    // A fitted window's frames past the shot hold, whatever the job says.
    expect(sourceFrame(1025, { offset: 0, outside: 'error' }, plate, 'hold')).toBe(1024);
  });

  it('name the first uncovered frame of a shot', () => {
    const error: InputBinding = { offset: 0, outside: 'error' };
    expect(firstUncovered({ start: 1001, end: 1024 }, error, plate)).toBeUndefined();
    expect(firstUncovered({ start: 1001, end: 1030 }, error, plate)).toBe(1025);
    expect(firstUncovered({ start: 990, end: 1010 }, error, plate)).toBe(990);
    expect(firstUncovered({ start: 1, end: 24 }, { offset: 1000, outside: 'error' }, plate)).toBeUndefined();
    expect(firstUncovered({ start: 1001, end: 1030 }, { offset: 0, outside: 'hold' }, plate)).toBeUndefined();
    expect(firstUncovered({ start: 1, end: 5000 }, error, {})).toBeUndefined();
  });

  it('agree frame by frame: the first uncovered frame is the first whose source is missing', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: 0, max: 200 }),
        fc.integer({ min: 1, max: 60 }),
        fc.integer({ min: -100, max: 100 }),
        (ps, pn, rs, rn, offset) => {
          const source = { frames: { start: ps, end: ps + pn - 1 } };
          const binding: InputBinding = { offset, outside: 'error' };
          const range = { start: rs, end: rs + rn - 1 };
          let expected: number | undefined;
          for (let f = range.start; f <= range.end && expected === undefined; f++)
            if (sourceFrame(f, binding, source) === undefined) expected = f;
          expect(firstUncovered(range, binding, source)).toBe(expected);
          for (let f = range.start; f <= range.end; f++) {
            const held = sourceFrame(f, { offset, outside: 'hold' }, source);
            expect(held).toBeGreaterThanOrEqual(source.frames.start);
            expect(held).toBeLessThanOrEqual(source.frames.end);
          }
        },
      ),
    );
  });
});
