import { createHash } from 'node:crypto';
import sharp from 'sharp';

/** Image files for the asset tests: real PNG and JPEG encodings (sharp), and OpenEXR headers by hand. */

export const sha256Hex = (bytes: Uint8Array): string => createHash('sha256').update(bytes).digest('hex');

/** A PNG of `width` x `height` whose pixels depend on `seed`, so every frame of a plate differs. */
export async function pngFrame(width: number, height: number, seed = 0): Promise<Buffer> {
  const pixels = Buffer.alloc(width * height * 3);
  for (let i = 0; i < pixels.length; i++) pixels[i] = (i * 7 + seed * 31) % 251;
  return sharp(pixels, { raw: { width, height, channels: 3 } })
    .png({ compressionLevel: 1 })
    .toBuffer();
}

/** A JPEG, optionally with an ICC profile and EXIF before its frame header (as cameras write them). */
export async function jpegFrame(
  width: number,
  height: number,
  options: { metadata?: boolean; progressive?: boolean } = {},
): Promise<Buffer> {
  let image = sharp({ create: { width, height, channels: 3, background: { r: 90, g: 120, b: 150 } } });
  if (options.metadata)
    image = image
      .withIccProfile('p3')
      .withExif({ IFD0: { Copyright: 'Framecast test plate', Artist: 'x'.repeat(2000) } });
  return image.jpeg({ progressive: options.progressive ?? false }).toBuffer();
}

/**
 * An OpenEXR file's header, as the format writes it (magic, version 2, attributes, an empty name), with a
 * data window of `width` x `height` at (`x`, `y`). `extra` attributes come before the data window, e.g. a
 * large `preview` to push it past a first read.
 */
export function exrFile(
  width: number,
  height: number,
  options: { x?: number; y?: number; extra?: { name: string; type: string; value: Buffer }[] } = {},
): Buffer {
  const attribute = (name: string, type: string, value: Buffer) => {
    const size = Buffer.alloc(4);
    size.writeInt32LE(value.length);
    return Buffer.concat([Buffer.from(`${name}\0${type}\0`, 'latin1'), size, value]);
  };
  const box = (x0: number, y0: number, x1: number, y1: number) => {
    const b = Buffer.alloc(16);
    for (const [i, v] of [x0, y0, x1, y1].entries()) b.writeInt32LE(v, i * 4);
    return b;
  };
  const x = options.x ?? 0;
  const y = options.y ?? 0;
  const channels = Buffer.concat([
    ...['B', 'G', 'R'].map((c) =>
      Buffer.concat([Buffer.from(`${c}\0`), Buffer.from([1, 0, 0, 0, 0, 0, 0, 0, 1, 0, 0, 0, 1, 0, 0, 0])]),
    ),
    Buffer.from([0]),
  ]);
  const float = (v: number) => {
    const b = Buffer.alloc(4);
    b.writeFloatLE(v);
    return b;
  };
  return Buffer.concat([
    Buffer.from([0x76, 0x2f, 0x31, 0x01, 0x02, 0x00, 0x00, 0x00]),
    attribute('channels', 'chlist', channels),
    attribute('compression', 'compression', Buffer.from([0])),
    ...(options.extra ?? []).map((a) => attribute(a.name, a.type, a.value)),
    attribute('dataWindow', 'box2i', box(x, y, x + width - 1, y + height - 1)),
    attribute('displayWindow', 'box2i', box(0, 0, width - 1, height - 1)),
    attribute('lineOrder', 'lineOrder', Buffer.from([0])),
    attribute('pixelAspectRatio', 'float', float(1)),
    attribute('screenWindowCenter', 'v2f', Buffer.concat([float(0), float(0)])),
    attribute('screenWindowWidth', 'float', float(1)),
    Buffer.from([0]),
    // The line offset table and the pixels would follow; the header is all Framecast reads.
    Buffer.alloc(8 * height),
  ]);
}
