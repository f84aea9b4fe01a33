import { describe, expect, it } from 'vitest';
import { OIIO_MISSING, Oiio } from '../../../functions/adapters/oiio.ts';
import { DEFAULT_COLOUR, DEFAULT_OCIO_CONFIG } from '../../../functions/core/colour.ts';
import { isPng, readPng } from '../../../functions/core/png.ts';
import { exrInfo, exrPlate, maxDifference, oiio } from '../../support/exr.ts';

/** The colour conversions on Debian's oiiotool and OCIO, with the project's own config. */

// One step of 8-bit sRGB, the precision of what the model reads and writes.
const SRGB_STEP = 1 / 255;

describe('oiiotool conversions', () => {
  it('turns an ACEScg EXR plate into an 8-bit sRGB PNG of its size for the model', async () => {
    const png = await oiio.plateToModel(await exrPlate(64, 36));
    expect(isPng(png)).toBe(true);
    expect(readPng(png)).toMatchObject({ width: 64, height: 36, bitDepth: 8, colorType: 2 });
  });

  it('writes a model PNG as a half EXR in the plate space, named in the header, with lossless compression', async () => {
    const exr = await oiio.modelToExr(await oiio.plateToModel(await exrPlate(64, 36)), '{"frame":1001}');
    const info = await exrInfo(exr);
    expect(info).toMatch(/64 x\s+36, 3 channel, half openexr/);
    expect(info).toMatch(/colorSpace: "ACEScg"/);
    expect(info).toMatch(/chromaticities: 0\.713, 0\.293, 0\.165, 0\.83, 0\.128, 0\.044, 0\.32168, 0\.33767/);
    expect(info).toMatch(/compression: "zip"/);
    // The provenance arrives as written: oiiotool's {expression} evaluation is off.
    expect(info).toContain('framecast:provenance: "{"frame":1001}"');
    // Declared AI-generated as a PNG frame's XMP does: IPTC's digital source type, in the header.
    expect(info).toContain(
      'Iptc4xmpExt:DigitalSourceType: "http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia"',
    );
    // No command line, temp path or history of the machine that made it.
    expect(info).not.toMatch(/Software|ImageHistory|framecast-oiio-/);
  });

  it('round-trips a plate within one step of 8-bit sRGB, and not bit for bit (the 8-bit step is real)', async () => {
    const plate = await exrPlate(64, 36, 3);
    const back = await oiio.modelToExr(await oiio.plateToModel(plate));
    const inSrgb = await maxDifference(plate, back, 'ACEScg', 'sRGB - Texture');
    expect(inSrgb).toBeLessThanOrEqual(SRGB_STEP);
    expect(await maxDifference(plate, back, 'ACEScg', 'ACEScg')).toBeGreaterThan(0);
  });

  it('uses PIZ when the production asks for it', async () => {
    const piz = new Oiio({ ...DEFAULT_COLOUR, config: DEFAULT_OCIO_CONFIG, compression: 'piz' });
    const exr = await piz.modelToExr(await oiio.plateToModel(await exrPlate(16, 16)));
    expect(await exrInfo(exr)).toMatch(/compression: "piz"/);
  });

  it('names the Debian packages when oiiotool is not installed', async () => {
    const missing = new Oiio(
      { ...DEFAULT_COLOUR, config: DEFAULT_OCIO_CONFIG },
      'oiiotool-not-installed-here',
    );
    await expect(missing.plateToModel(await exrPlate(8, 8))).rejects.toThrow(OIIO_MISSING);
    expect(OIIO_MISSING).toMatch(/openimageio-tools/);
  });

  it('refuses a colour space the config does not define, saying so', async () => {
    const wrong = new Oiio({ ...DEFAULT_COLOUR, config: DEFAULT_OCIO_CONFIG, plates: 'ARRI LogC4' });
    await expect(wrong.plateToModel(await exrPlate(8, 8))).rejects.toThrow(/oiiotool failed/);
  });
});
