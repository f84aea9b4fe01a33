import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  deliveredKey,
  frameFileName,
  frameKey,
  frameSeed,
  planChunks,
  versionKey,
} from '../../../functions/core/frames.ts';
import { parseTemplate } from '../../../functions/core/naming.ts';
import { UINT32_MAX } from '../../../functions/core/schemas.ts';

describe('planning a frame range into chunks', () => {
  it('covers every frame exactly once, in order, in chunks no larger than asked', () => {
    fc.assert(
      fc.property(fc.nat(100_000), fc.nat(500), fc.integer({ min: 1, max: 64 }), (start, extra, size) => {
        const chunks = [...planChunks({ start, end: start + extra }, size)];
        const frames = chunks.flat();
        expect(frames).toEqual(Array.from({ length: extra + 1 }, (_, i) => start + i));
        expect(chunks.every((c) => c.length >= 1 && c.length <= size)).toBe(true);
      }),
    );
  });

  it('resumes from a frame in the middle of the range', () => {
    expect([...planChunks({ start: 1001, end: 1010 }, 4, 1005)]).toEqual([
      [1005, 1006, 1007, 1008],
      [1009, 1010],
    ]);
  });

  it('refuses a chunk size that is not a positive integer', () => {
    expect(() => [...planChunks({ start: 1, end: 2 }, 0)]).toThrow(RangeError);
  });
});

describe('per-frame seeds', () => {
  it('is seed + (frame - start) in per-frame mode and stays a uint32', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: UINT32_MAX }),
        fc.nat(10_000),
        fc.nat(10_000),
        (seed, start, offset) => {
          const s = frameSeed(seed, 'per-frame', start + offset, start);
          expect(s).toBe((seed + offset) % 2 ** 32);
          expect(s).toBeGreaterThanOrEqual(0);
          expect(s).toBeLessThanOrEqual(UINT32_MAX);
        },
      ),
    );
  });

  it('is the job seed for every frame in fixed mode', () => {
    expect(frameSeed(42, 'fixed', 1048, 1001)).toBe(42);
  });
});

describe('frame names', () => {
  it('pads the frame number to four digits at least', () => {
    expect(frameFileName('EP101_SH040', 7)).toBe('EP101_SH040.0007.png');
    expect(frameFileName('EP101_SH040', 1001)).toBe('EP101_SH040.1001.png');
    expect(frameFileName('EP101_SH040', 123456)).toBe('EP101_SH040.123456.png');
  });

  it('names versions by the template: bumping {version}, else after the shot, in the job format', () => {
    const job = { tenant: 'acme', shot: 'SH010', id: 'job_X' };
    expect(versionKey(job, 1001, 2)).toBe('acme/SH010/job_X/versions/SH010.v002.1001.png');
    expect(deliveredKey({ ...job, output: { format: 'exr' } }, 1001)).toBe('acme/SH010/job_X/SH010.1001.exr');
    const studio = parseTemplate('{shot}_{pass}_v{version:03}.{frame:04}.{ext}');
    const exr = { ...job, output: { format: 'exr' as const, pass: 'comp', version: 3 } };
    expect(deliveredKey(exr, 1001, studio)).toBe('acme/SH010/job_X/SH010_comp_v003.1001.exr');
    expect(versionKey(exr, 1001, 1, studio)).toBe('acme/SH010/job_X/versions/SH010_comp_v003.1001.exr');
    expect(versionKey(exr, 1001, 2, studio)).toBe('acme/SH010/job_X/versions/SH010_comp_v004.1001.exr');
  });

  it('places a frame under tenant, shot and job', () => {
    expect(frameKey('acme', 'SH010', 'job_X', 1)).toBe('acme/SH010/job_X/SH010.0001.png');
  });
});
