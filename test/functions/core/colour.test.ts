import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  ColourSpaceName,
  DEFAULT_COLOUR,
  isExr,
  modelToExrArgs,
  plateToModelArgs,
} from '../../../functions/core/colour.ts';

const settings = { ...DEFAULT_COLOUR, config: 'colour/framecast.ocio' };

describe('oiiotool command lines', () => {
  it('convert a plate from its space to the model space, as 8-bit, with expressions off', () => {
    const args = plateToModelArgs(settings, 'in.exr', 'out.png');
    expect(args[0]).toBe('--evaloff');
    expect(args).toEqual(expect.arrayContaining(['--colorconfig', 'colour/framecast.ocio']));
    const at = args.indexOf('--colorconvert');
    expect(args.slice(at, at + 3)).toEqual(['--colorconvert', 'ACEScg', 'sRGB - Texture']);
    expect(args.slice(-4)).toEqual(['-d', 'uint8', '-o', 'out.png']);
  });

  it('write a frame as half EXR in the plate space with its compression, colour space and provenance', () => {
    const args = modelToExrArgs({ ...settings, compression: 'piz' }, 'in.png', 'out.exr', '{"a":"{b}"}');
    const at = args.indexOf('--colorconvert');
    expect(args.slice(at, at + 3)).toEqual(['--colorconvert', 'sRGB - Texture', 'ACEScg']);
    expect(args).toEqual(
      expect.arrayContaining(['-d', 'half', '--compression', 'piz', 'colorSpace', 'ACEScg', '{"a":"{b}"}']),
    );
    expect(args[args.indexOf('chromaticities') + 1]).toBe(
      '0.713,0.293,0.165,0.83,0.128,0.044,0.32168,0.33767',
    );
  });

  it('name a colour space without known primaries in the header, without chromaticities', () => {
    const args = modelToExrArgs({ ...settings, plates: 'Show - Log' }, 'in.png', 'out.exr');
    expect(args).not.toContain('chromaticities');
    expect(args).toContain('Show - Log');
  });
});

describe('colour space names', () => {
  it('accept the names OCIO configs use', () => {
    for (const name of [
      'ACEScg',
      'sRGB - Texture',
      'ARRI LogC3 (EI800)',
      'Linear Rec.709 (sRGB)',
      'ACES2065-1',
    ]) {
      expect(ColourSpaceName.safeParse(name).success).toBe(true);
    }
  });

  it('refuse any name carrying a character a command line or a header would misread', () => {
    fc.assert(
      fc.property(
        fc.string(),
        fc.constantFrom('"', "'", '{', '}', '\n', ';', '$', '`', '\\', '/'),
        (s, bad) => {
          expect(ColourSpaceName.safeParse(`A${s}${bad}`).success).toBe(false);
        },
      ),
    );
  });
});

describe('isExr', () => {
  it('knows an OpenEXR file by its magic number', () => {
    expect(isExr(Uint8Array.from([0x76, 0x2f, 0x31, 0x01, 2, 0, 0, 0]))).toBe(true);
    expect(isExr(Uint8Array.from([0x89, 0x50, 0x4e, 0x47]))).toBe(false);
    expect(isExr(Uint8Array.from([0x76, 0x2f]))).toBe(false);
  });
});
