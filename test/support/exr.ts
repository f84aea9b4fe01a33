import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Oiio } from '../../functions/adapters/oiio.ts';
import { DEFAULT_COLOUR, DEFAULT_OCIO_CONFIG } from '../../functions/core/colour.ts';

/** EXR plates and checks on EXR frames, made and read by oiiotool itself (no pixel is computed here). */

export const oiio = new Oiio({ ...DEFAULT_COLOUR, config: DEFAULT_OCIO_CONFIG });

async function inTemp<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'framecast-exr-test-'));
  try {
    return await fn(dir);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * An ACEScg half-float EXR plate frame: a gradient between four corner colours (given in sRGB, so every
 * pixel is inside the sRGB gamut a model's 8-bit PNG can hold), plus a per-frame offset so frames differ.
 */
export function exrPlate(width: number, height: number, frame = 0): Promise<Buffer> {
  const k = (frame % 10) / 100;
  const c = (r: number, g: number, b: number) => [r + k, g, b - k].map((v) => v.toFixed(3)).join(',');
  return inTemp(async (dir) => {
    const out = join(dir, 'plate.exr');
    await oiio.run([
      '--colorconfig',
      DEFAULT_OCIO_CONFIG,
      '--pattern',
      `fill:topleft=${c(0.1, 0.2, 0.6)}:topright=${c(0.85, 0.4, 0.2)}:bottomleft=${c(0.15, 0.7, 0.3)}:bottomright=${c(0.8, 0.8, 0.75)}`,
      `${width}x${height}`,
      '3',
      '--iscolorspace',
      'sRGB - Texture',
      '--colorconvert',
      'sRGB - Texture',
      'ACEScg',
      '-d',
      'half',
      '--compression',
      'zip',
      '--attrib',
      'colorSpace',
      'ACEScg',
      '-o',
      out,
    ]);
    return readFile(out);
  });
}

/** What `oiiotool --info -v` says of a file: its spec line and every attribute, as text. */
export function exrInfo(exr: Uint8Array): Promise<string> {
  return inTemp(async (dir) => {
    const file = join(dir, 'frame.exr');
    await writeFile(file, exr);
    return oiio.run(['--info', '-v', file]);
  });
}

/**
 * The largest difference of any channel of any pixel between two images in `space`, measured by
 * `oiiotool --diff` after both are converted from `from` to `space`.
 */
export function maxDifference(a: Uint8Array, b: Uint8Array, from: string, space: string): Promise<number> {
  return inTemp(async (dir) => {
    const [fa, fb] = [join(dir, 'a.exr'), join(dir, 'b.exr')];
    await writeFile(fa, a);
    await writeFile(fb, b);
    const convert = (f: string) => [f, '--iscolorspace', from, '--colorconvert', from, space];
    const out = await oiio
      .run([
        '--colorconfig',
        DEFAULT_OCIO_CONFIG,
        ...convert(fa),
        ...convert(fb),
        '--fail',
        '0',
        '--warn',
        '0',
        '--diff',
      ])
      .catch((err: Error) => err.message);
    const max = /Max error\s*=\s*([0-9.eE+-]+)/.exec(out);
    if (/PASS/.test(out) && !max) return 0;
    if (!max) throw new Error(`oiiotool --diff said: ${out}`);
    return Number(max[1]);
  });
}
