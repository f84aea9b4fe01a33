import { mkdtempSync } from 'node:fs';
import { rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assetNameOf, findSequence, formatOf, frameFileName, parsePattern } from '../../bin/cli/sequence.ts';

const dir = mkdtempSync(join(tmpdir(), 'framecast-seq-'));
afterAll(() => rm(dir, { recursive: true, force: true }));

describe('sequence patterns', () => {
  it('read the three forms', () => {
    expect(parsePattern('plates/plate.####.png')).toEqual({
      dir: 'plates',
      prefix: 'plate.',
      suffix: '.png',
      padding: 4,
    });
    expect(parsePattern('plate.%04d.png')).toEqual({
      dir: '.',
      prefix: 'plate.',
      suffix: '.png',
      padding: 4,
    });
    expect(parsePattern('plate.%d.png')).toMatchObject({ padding: 0 });
    expect(parsePattern('plate.[1001-1048].png')).toMatchObject({
      padding: 4,
      range: { start: 1001, end: 1048 },
    });
    expect(parsePattern('still.png')).toBeUndefined();
    expect(() => parsePattern('plate.[1048-1001].png')).toThrow('ends before');
    expect(frameFileName(parsePattern('p.######.exr')!, 1001)).toBe('p.001001.exr');
  });

  it('find the files in frame order, and a range only when complete', async () => {
    for (const f of [9, 10, 11]) await writeFile(join(dir, `p.${String(f).padStart(4, '0')}.png`), 'x');
    await writeFile(join(dir, 'p.12.png'), 'not padded');
    await writeFile(join(dir, 'other.0009.png'), 'x');
    expect((await findSequence(join(dir, 'p.####.png'))).map((f) => f.frame)).toEqual([9, 10, 11]);
    expect((await findSequence(join(dir, 'p.%04d.png'))).map((f) => f.frame)).toEqual([9, 10, 11]);
    expect((await findSequence(join(dir, 'p.%d.png'))).map((f) => f.frame)).toEqual([9, 10, 11, 12]);
    expect((await findSequence(join(dir, 'p.[0010-0011].png'))).map((f) => f.frame)).toEqual([10, 11]);
    await expect(findSequence(join(dir, 'p.[0009-0013].png'))).rejects.toThrow('missing frames 12, 13');
    await expect(findSequence(join(dir, 'q.####.png'))).rejects.toThrow('no file matches');
  });

  it('name the asset and its format', () => {
    expect(assetNameOf('plates/EP101_SH040_PL01.####.png')).toBe('EP101_SH040_PL01');
    expect(assetNameOf('plates/EP101_SH040_PL01_%04d.exr')).toBe('EP101_SH040_PL01');
    expect(assetNameOf('ref still.jpg')).toBe('ref_still');
    expect(formatOf('a.PNG')).toBe('png');
    expect(formatOf('a.jpeg')).toBe('jpeg');
    expect(formatOf('a.exr')).toBe('exr');
    expect(() => formatOf('a.tif')).toThrow('unknown format');
  });
});
