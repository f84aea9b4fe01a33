import sharp from 'sharp';
import { encodePng } from '../../../../functions/core/png.ts';

/** Plates, masks and frame measures for the reference model's window tests. */

export const dataUrl = (png: Uint8Array) => `data:image/png;base64,${Buffer.from(png).toString('base64')}`;

/** A plate that is nothing like a render: colour bars that slide with the frame, over a vertical ramp. */
export function plateRgb(width: number, height: number, frame: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const at = (y * width + x) * 3;
      const bar = Math.floor((x + frame * 2) / 8) % 3;
      rgb[at] = bar === 0 ? 220 : 40 + Math.floor((160 * y) / height);
      rgb[at + 1] = bar === 1 ? 200 : 50;
      rgb[at + 2] = bar === 2 ? 230 : 30 + Math.floor((x * 90) / width);
    }
  }
  return rgb;
}

/** A grey mask as an RGB PNG: `value(x, y)` from 0 (keep the plate) to 255 (show the render). */
export function maskPng(width: number, height: number, value: (x: number, y: number) => number): Buffer {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) rgb.fill(value(x, y), (y * width + x) * 3, (y * width + x) * 3 + 3);
  }
  return encodePng(rgb, width, height);
}

/** The pixels of a PNG or of a data URL of one, as 8-bit RGB. */
export async function pixelsOf(png: Uint8Array | string): Promise<Buffer> {
  const bytes =
    typeof png === 'string' ? Buffer.from(png.slice(png.indexOf(',') + 1), 'base64') : Buffer.from(png);
  return sharp(bytes).removeAlpha().raw().toBuffer();
}

/** Mean absolute difference per channel, 0..255. */
export function meanAbsDiff(a: Uint8Array, b: Uint8Array): number {
  if (a.length !== b.length) throw new Error(`sizes differ: ${a.length} and ${b.length}`);
  let sum = 0;
  for (let i = 0; i < a.length; i++) sum += Math.abs(a[i]! - b[i]!);
  return sum / a.length;
}

/** Mean of each channel, 0..255. */
export function meanColour(rgb: Uint8Array): [number, number, number] {
  const sums = [0, 0, 0];
  for (let i = 0; i < rgb.length; i++) sums[i % 3]! += rgb[i]!;
  return sums.map((s) => (s * 3) / rgb.length) as [number, number, number];
}
