import { crc32, deflateSync, inflateSync } from 'node:zlib';
import exifr from 'exifr';
import fc from 'fast-check';
import { PNG } from 'pngjs';
import { describe, expect, it } from 'vitest';
import {
  checkPng,
  decodeRgb as decodePixels,
  encodePng,
  PngError,
  type Provenance,
  provenanceText,
  readPng,
  readProvenance,
  stampProvenance,
  TRAINED_ALGORITHMIC_MEDIA,
  withProvenance,
  XMP_KEYWORD,
} from '../../../functions/core/png.ts';

const provenance: Provenance = {
  generator: 'framecast',
  model: 'sdxl',
  modelImage: 'r8.im/stability-ai/sdxl@sha256:abc',
  prompt: 'A lighthouse at dusk, 東京の夜景, مساء الخير, 🌅',
  negativePrompt: 'blurry',
  seed: 4294967295,
  frame: 1001,
  jobId: 'job_01JABCDEF',
  shot: 'EP101_SH040',
  width: 64,
  height: 32,
  params: { guidance: 7.5, steps: 30 },
};

/** A smooth test image: gradients, as generated frames mostly are. */
function gradient(width: number, height: number): Uint8Array {
  const rgb = new Uint8Array(width * height * 3);
  for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) {
      const i = (y * width + x) * 3;
      rgb[i] = (x * 255) / Math.max(1, width - 1);
      rgb[i + 1] = (y * 255) / Math.max(1, height - 1);
      rgb[i + 2] = (x + y) & 0xff;
    }
  }
  return rgb;
}

/** Decodes an 8-bit RGB, non-interlaced PNG back to pixels: an independent check of the filters. */
function decodeRgb(png: Uint8Array): Uint8Array {
  const { width, height } = readPng(png);
  const buf = Buffer.from(png);
  const idat: Buffer[] = [];
  for (let at = 8; at < buf.length; ) {
    const length = buf.readUInt32BE(at);
    if (buf.toString('latin1', at + 4, at + 8) === 'IDAT') idat.push(buf.subarray(at + 8, at + 8 + length));
    at += 12 + length;
  }
  const raw = inflateSync(Buffer.concat(idat));
  const stride = width * 3;
  const out = new Uint8Array(stride * height);
  for (let y = 0; y < height; y++) {
    const filter = raw[y * (stride + 1)]!;
    for (let i = 0; i < stride; i++) {
      const x = raw[y * (stride + 1) + 1 + i]!;
      const a = i >= 3 ? out[y * stride + i - 3]! : 0;
      const b = y > 0 ? out[(y - 1) * stride + i]! : 0;
      const c = i >= 3 && y > 0 ? out[(y - 1) * stride + i - 3]! : 0;
      const paeth = () => {
        const pa = Math.abs(b - c);
        const pb = Math.abs(a - c);
        const pc = Math.abs(a + b - 2 * c);
        return pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      };
      const predictor = [0, a, b, (a + b) >> 1, paeth()][filter]!;
      out[y * stride + i] = (x + predictor) & 0xff;
    }
  }
  return out;
}

/** Builds a PNG from raw chunks, as another encoder (Pillow, libpng) would. */
function pngOf(...chunks: Array<[string, Uint8Array]>): Buffer {
  const parts: Buffer[] = [Buffer.from([137, 80, 78, 71, 13, 10, 26, 10])];
  for (const [type, data] of chunks) {
    const head = Buffer.alloc(8);
    head.writeUInt32BE(data.length, 0);
    head.write(type, 4, 'latin1');
    const crc = Buffer.alloc(4);
    crc.writeUInt32BE(crc32(Buffer.concat([head.subarray(4), data])));
    parts.push(head, Buffer.from(data), crc);
  }
  return Buffer.concat(parts);
}

function ihdr(width: number, height: number, bitDepth: number, colorType: number, interlace = 0): Uint8Array {
  const d = Buffer.alloc(13);
  d.writeUInt32BE(width, 0);
  d.writeUInt32BE(height, 4);
  d[8] = bitDepth;
  d[9] = colorType;
  d[12] = interlace;
  return d;
}

const tEXt = (keyword: string, text: string) => Buffer.from(`${keyword}\0${text}`, 'latin1');
const zTXt = (keyword: string, text: string) =>
  Buffer.concat([Buffer.from(`${keyword}\0\0`, 'latin1'), deflateSync(Buffer.from(text, 'latin1'))]);

/** A 3x2 palette image with the text chunks Pillow writes: not something encodePng makes. */
function thirdPartyPng(): Buffer {
  const rows = Buffer.from([0, 0, 1, 2, 0, 2, 1, 0]); // filter 0, one palette index per byte
  return pngOf(
    ['IHDR', ihdr(3, 2, 8, 3)],
    ['PLTE', Buffer.from([255, 0, 0, 0, 255, 0, 0, 0, 255])],
    ['tEXt', tEXt('Software', 'Pillow 10.3')],
    ['zTXt', zTXt('Comment', 'made elsewhere')],
    ['tEXt', tEXt('Description', 'what the model said')],
    ['IDAT', deflateSync(rows)],
    ['IEND', new Uint8Array(0)],
  );
}

const idatBytes = (png: Uint8Array): Buffer => {
  const buf = Buffer.from(png);
  const parts: Buffer[] = [];
  for (let at = 8; at < buf.length; ) {
    const length = buf.readUInt32BE(at);
    if (buf.toString('latin1', at + 4, at + 8) === 'IDAT') parts.push(buf.subarray(at, at + 12 + length));
    at += 12 + length;
  }
  return Buffer.concat(parts);
};

const chunkTypes = (png: Uint8Array): string[] => {
  const buf = Buffer.from(png);
  const types: string[] = [];
  for (let at = 8; at < buf.length; at += 12 + buf.readUInt32BE(at))
    types.push(buf.toString('latin1', at + 4, at + 8));
  return types;
};

describe('encoding a PNG', () => {
  it('writes an 8-bit RGB image of the given size that decodes to the same pixels', () => {
    const rgb = gradient(97, 41);
    const png = encodePng(rgb, 97, 41);
    expect(readPng(png)).toMatchObject({
      width: 97,
      height: 41,
      bitDepth: 8,
      colorType: 2,
      interlaced: false,
    });
    expect(decodeRgb(png)).toEqual(rgb);
  });

  it('round-trips any pixels, whichever filter each row takes', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 1, max: 12 }),
        fc.infiniteStream(fc.integer({ min: 0, max: 255 })),
        (width, height, bytes) => {
          const rgb = Uint8Array.from(bytes.take(width * height * 3));
          expect(decodeRgb(encodePng(rgb, width, height))).toEqual(rgb);
        },
      ),
    );
  });

  it('keeps text in any language in UTF-8 iTXt chunks', () => {
    const text = { Description: provenance.prompt, 'framecast:shot': 'EP101_SH040', Empty: '' };
    const png = encodePng(gradient(8, 8), 8, 8, text);
    expect(readPng(png).text).toEqual(text);
    expect(chunkTypes(png)).toEqual(['IHDR', 'iTXt', 'iTXt', 'iTXt', 'IDAT', 'IEND']);
  });

  // Speed is the benchmark's business (npm run bench); the test checks the compression.
  it('compresses a smooth 1024x576 frame to under a quarter of its raw size', () => {
    const rgb = gradient(1024, 576);
    expect(encodePng(rgb, 1024, 576).length).toBeLessThan(rgb.length / 4);
  });

  it('refuses pixels that do not match the size, and invalid keywords or text', () => {
    expect(() => encodePng(new Uint8Array(10), 2, 2)).toThrow(/12 bytes/);
    expect(() => encodePng(new Uint8Array(0), 0, 0)).toThrow(RangeError);
    expect(() => encodePng(new Uint8Array(3), 1.5, 2)).toThrow(RangeError);
    expect(() => encodePng(gradient(1, 1), 1, 1, { '': 'x' })).toThrow(/keyword/);
    expect(() => encodePng(gradient(1, 1), 1, 1, { ' Lead': 'x' })).toThrow(/keyword/);
    expect(() => encodePng(gradient(1, 1), 1, 1, { ['k'.repeat(80)]: 'x' })).toThrow(/keyword/);
    expect(() => encodePng(gradient(1, 1), 1, 1, { 'Prompt 提示': 'x' })).toThrow(/keyword/);
    expect(() => encodePng(gradient(1, 1), 1, 1, { Comment: 'a\0b' })).toThrow(/NUL/);
  });
});

describe('reading a PNG', () => {
  it('reads tEXt, zTXt and iTXt chunks of PNGs from other encoders', () => {
    expect(readPng(thirdPartyPng())).toEqual({
      width: 3,
      height: 2,
      bitDepth: 8,
      colorType: 3,
      interlaced: false,
      text: { Software: 'Pillow 10.3', Comment: 'made elsewhere', Description: 'what the model said' },
    });
  });

  it('checks the image data of interlaced images pass by pass', () => {
    // A 3x3 grey image in Adam7 has passes of 1x1, 1x1, 2x1, 1x2 and 3x1 pixels (passes 2 and 3 are
    // empty and carry no bytes at all): 15 bytes with the filter byte of each scanline.
    const rows = Buffer.from([0, 10, 0, 20, 0, 30, 31, 0, 40, 0, 41, 0, 50, 51, 52]);
    const png = pngOf(
      ['IHDR', ihdr(3, 3, 8, 0, 1)],
      ['IDAT', deflateSync(rows)],
      ['IEND', new Uint8Array(0)],
    );
    expect(readPng(png)).toMatchObject({ width: 3, height: 3, interlaced: true });
    const short = pngOf(
      ['IHDR', ihdr(3, 3, 8, 0, 1)],
      ['IDAT', deflateSync(rows.subarray(0, 14))],
      ['IEND', new Uint8Array(0)],
    );
    expect(() => readPng(short)).toThrow(/14 bytes, IHDR declares 15/);
  });

  const png = encodePng(gradient(16, 8), 16, 8, provenanceText(provenance));

  it.each([
    ['a file that is not a PNG', Buffer.from('GIF89a not a png at all'), /bad signature/],
    ['a truncated file', png.subarray(0, png.length - 20), /truncated/],
    ['a file without IEND', png.subarray(0, png.length - 12), /IEND missing/],
    ['bytes after IEND', Buffer.concat([png, Buffer.from([0])]), /after IEND/],
    [
      'a chunk with a wrong CRC',
      (() => {
        const bad = Buffer.from(png);
        bad[bad.length - 1]! ^= 1;
        return bad;
      })(),
      /CRC mismatch in IEND/,
    ],
    ['a file without IDAT', pngOf(['IHDR', ihdr(1, 1, 8, 2)], ['IEND', new Uint8Array(0)]), /no IDAT/],
    [
      'image data shorter than IHDR declares',
      pngOf(['IHDR', ihdr(2, 2, 8, 2)], ['IDAT', deflateSync(Buffer.alloc(13))], ['IEND', new Uint8Array(0)]),
      /13 bytes, IHDR declares 14/,
    ],
    [
      'image data one byte longer than IHDR declares',
      pngOf(['IHDR', ihdr(2, 2, 8, 2)], ['IDAT', deflateSync(Buffer.alloc(15))], ['IEND', new Uint8Array(0)]),
      /15 bytes, IHDR declares 14/,
    ],
    [
      'image data far longer than IHDR declares',
      pngOf(
        ['IHDR', ihdr(2, 2, 8, 2)],
        ['IDAT', deflateSync(Buffer.alloc(1e6))],
        ['IEND', new Uint8Array(0)],
      ),
      /larger than IHDR declares/,
    ],
    [
      'an unknown scanline filter',
      pngOf(
        ['IHDR', ihdr(1, 1, 8, 2)],
        ['IDAT', deflateSync(Buffer.from([7, 1, 2, 3]))],
        ['IEND', new Uint8Array(0)],
      ),
      /unknown filter type 7/,
    ],
    [
      'an invalid bit depth',
      pngOf(['IHDR', ihdr(1, 1, 4, 2)], ['IDAT', deflateSync(Buffer.alloc(4))], ['IEND', new Uint8Array(0)]),
      /bit depth 4/,
    ],
    [
      'an unknown critical chunk',
      pngOf(
        ['IHDR', ihdr(1, 1, 8, 2)],
        ['XYZW', new Uint8Array(1)],
        ['IDAT', deflateSync(Buffer.alloc(4))],
        ['IEND', new Uint8Array(0)],
      ),
      /unknown critical chunk XYZW/,
    ],
    [
      'IDAT chunks that are not consecutive',
      pngOf(
        ['IHDR', ihdr(1, 1, 8, 2)],
        ['IDAT', deflateSync(Buffer.alloc(4)).subarray(0, 4)],
        ['tEXt', tEXt('a', 'b')],
        ['IDAT', deflateSync(Buffer.alloc(4)).subarray(4)],
        ['IEND', new Uint8Array(0)],
      ),
      /not consecutive/,
    ],
  ])('refuses %s with a clear error, streaming the check or not', async (_, bytes, message) => {
    expect(() => readPng(bytes)).toThrow(PngError);
    expect(() => readPng(bytes)).toThrow(message);
    for (const stream of [true, false]) {
      await expect(checkPng(bytes, { stream })).rejects.toThrow(PngError);
      await expect(checkPng(bytes, { stream })).rejects.toThrow(message);
    }
  });

  it('streams the check of a large frame, pass by pass and row by row, as the whole check does', async () => {
    // 1024x576 RGB: 1.7 MB of scanlines, checked 64 KB at a time, across several IDAT chunks.
    const big = encodePng(gradient(1024, 576), 1024, 576);
    await expect(checkPng(big)).resolves.toBeUndefined();
    const rows = Buffer.from([0, 10, 0, 20, 0, 30, 31, 0, 40, 0, 41, 0, 50, 51, 52]);
    await expect(checkPng(big, { stream: false })).resolves.toBeUndefined();
    const interlaced = pngOf(
      ['IHDR', ihdr(3, 3, 8, 0, 1)],
      ['IDAT', deflateSync(rows)],
      ['IEND', new Uint8Array(0)],
    );
    await expect(checkPng(interlaced, { stream: true })).resolves.toBeUndefined();
    // A bad filter byte deep in the data, in a later piece of the stream.
    const raw = Buffer.alloc(576 * (1 + 1024 * 3));
    raw[400 * (1 + 1024 * 3)] = 9;
    const split = deflateSync(raw);
    const bad = pngOf(
      ['IHDR', ihdr(1024, 576, 8, 2)],
      ['IDAT', split.subarray(0, 1000)],
      ['IDAT', split.subarray(1000)],
      ['IEND', new Uint8Array(0)],
    );
    await expect(checkPng(bad)).rejects.toThrow(`unknown filter type 9 in scanline at byte ${400 * 3073}`);
    expect(() => readPng(bad)).toThrow(`unknown filter type 9 in scanline at byte ${400 * 3073}`);
  });

  it('stamps a checked PNG exactly as withProvenance does', async () => {
    await checkPng(png);
    expect(stampProvenance(png, provenance).equals(withProvenance(png, provenance))).toBe(true);
  });

  it('detects every single flipped byte', () => {
    fc.assert(
      fc.property(fc.nat(png.length - 1), fc.integer({ min: 1, max: 255 }), (at, mask) => {
        const corrupt = Buffer.from(png);
        corrupt[at]! ^= mask;
        expect(() => readPng(corrupt)).toThrow(PngError);
      }),
      { numRuns: 500 },
    );
  });

  it('streams to the same verdict as the whole check on randomly damaged files', async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.nat(png.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        async (writes) => {
          const damaged = Buffer.from(png);
          for (const [at, value] of writes) damaged[at] = value;
          const whole = (() => {
            try {
              readPng(damaged);
              return 'valid';
            } catch (err) {
              return (err as Error).constructor.name;
            }
          })();
          const streamed = await checkPng(damaged, { stream: true }).then(
            () => 'valid',
            (err: Error) => err.constructor.name,
          );
          expect(streamed).toBe(whole);
        },
      ),
      { numRuns: 200 },
    );
  });

  it('either refuses a randomly damaged file or reads it as the valid PNG it still is', () => {
    fc.assert(
      fc.property(
        fc.array(fc.tuple(fc.nat(png.length - 1), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 8,
        }),
        (writes) => {
          const damaged = Buffer.from(png);
          for (const [at, value] of writes) damaged[at] = value;
          let info: ReturnType<typeof readPng> | undefined;
          try {
            info = readPng(damaged);
          } catch (err) {
            expect(err).toBeInstanceOf(PngError);
            return;
          }
          // Only writes that restored the original bytes leave a valid file.
          expect(damaged.equals(png)).toBe(true);
          expect(info.width).toBe(16);
        },
      ),
      { numRuns: 300 },
    );
  });
});

describe('frame provenance', () => {
  it('is added to a PNG without text and read back exactly', () => {
    const png = encodePng(gradient(64, 32), 64, 32);
    const stamped = withProvenance(png, provenance);
    expect(readProvenance(stamped)).toEqual(provenance);
    expect(readPng(stamped).text).toMatchObject({
      Software: 'Framecast (model sdxl)',
      Description: provenance.prompt,
      'framecast:seed': '4294967295',
      'framecast:frame': '1001',
      'framecast:job': 'job_01JABCDEF',
      'framecast:shot': 'EP101_SH040',
      'framecast:model': 'sdxl (r8.im/stability-ai/sdxl@sha256:abc)',
    });
    expect(decodeRgb(stamped)).toEqual(decodeRgb(png));
    expect(chunkTypes(stamped).at(-1)).toBe('IEND');
    expect(chunkTypes(stamped).at(-2)).toBe('iTXt');
  });

  it('keeps the chunks of another encoder and replaces its Description with the prompt', () => {
    const original = thirdPartyPng();
    const stamped = withProvenance(original, provenance);
    const { text } = readPng(stamped);
    expect(text.Software).toBe('Pillow 10.3');
    expect(text.Comment).toBe('made elsewhere');
    expect(text.Description).toBe(provenance.prompt);
    expect(readProvenance(stamped)).toEqual(provenance);
    expect(idatBytes(stamped)).toEqual(idatBytes(original));
    expect(chunkTypes(stamped).filter((t) => t === 'PLTE')).toHaveLength(1);
  });

  it('replaces an earlier Framecast record instead of adding a second one', () => {
    const png = encodePng(gradient(64, 32), 64, 32);
    const first = withProvenance(png, { ...provenance, seed: 1, shot: 'OLD_SHOT' });
    const second = withProvenance(first, provenance);
    expect(readProvenance(second)).toEqual(provenance);
    expect(readPng(second).text['framecast:shot']).toBe('EP101_SH040');
    expect(second.equals(withProvenance(png, provenance))).toBe(true);
    expect(chunkTypes(second).filter((t) => t === 'iTXt')).toHaveLength(
      Object.keys(provenanceText(provenance)).length,
    );
  });

  it('is byte-identical for the same frame, whatever the key order of the record', () => {
    const png = encodePng(gradient(8, 8), 8, 8);
    const reordered = Object.fromEntries(Object.entries(provenance).reverse()) as unknown as Provenance;
    expect(withProvenance(png, reordered).equals(withProvenance(png, provenance))).toBe(true);
  });

  it('is absent from a PNG that has none, and refused when it is not a record', () => {
    expect(readProvenance(thirdPartyPng())).toBeUndefined();
    const notJson = encodePng(gradient(1, 1), 1, 1, { 'framecast:provenance': '{oops' });
    expect(() => readProvenance(notJson)).toThrow(/not JSON/);
    const wrong = encodePng(gradient(1, 1), 1, 1, {
      'framecast:provenance': JSON.stringify({ ...provenance, seed: 'forty-two' }),
    });
    expect(() => readProvenance(wrong)).toThrow(/seed is not an integer/);
  });

  it('refuses to stamp a file that is not a valid PNG', () => {
    const png = encodePng(gradient(4, 4), 4, 4);
    expect(() => withProvenance(png.subarray(0, 40), provenance)).toThrow(PngError);
  });

  it('survives any prompt, including NUL characters and lone surrogates', () => {
    fc.assert(
      fc.property(
        fc.string({ unit: 'binary', maxLength: 200 }),
        fc.string({ maxLength: 40 }),
        (prompt, jobId) => {
          const p: Provenance = { ...provenance, prompt, jobId };
          const read = readProvenance(withProvenance(encodePng(gradient(2, 2), 2, 2), p));
          expect(read).toEqual(JSON.parse(JSON.stringify(p)));
        },
      ),
      { numRuns: 200 },
    );
  });
});

describe('decoding a PNG to RGB pixels', () => {
  it('gives back the pixels encodePng was given, whatever filters the rows took', () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 1, max: 24 }),
        fc.integer({ min: 1, max: 12 }),
        fc.integer({ min: 0, max: 2 ** 31 }),
        (width, height, seed) => {
          let x = seed;
          const rgb = Uint8Array.from({ length: width * height * 3 }, (_, i) => {
            x = (x * 1103515245 + 12345) >>> 0;
            return i % 7 === 0 ? x & 0xff : (i * 3) & 0xff;
          });
          const out = decodePixels(encodePng(rgb, width, height));
          expect(out).toEqual({ width, height, rgb });
        },
      ),
    );
  });

  it('reads the RGBA, grey and 16-bit PNGs other encoders write, dropping alpha', () => {
    const width = 5;
    const height = 3;
    const rgb = gradient(width, height);
    const rgba = Buffer.alloc(width * height * 4);
    for (let i = 0; i < width * height; i++) {
      rgba.set(rgb.subarray(i * 3, i * 3 + 3), i * 4);
      rgba[i * 4 + 3] = 200;
    }
    const write = (options: { colorType: 0 | 2 | 4 | 6; bitDepth: 8 | 16 }) => {
      const png = new PNG({ width, height, ...options, inputColorType: 6, inputHasAlpha: true });
      rgba.copy(png.data);
      // pngjs blends a dropped alpha over white; only the RGBA file keeps a translucent one.
      if (options.colorType !== 6) for (let i = 3; i < png.data.length; i += 4) png.data[i] = 255;
      return PNG.sync.write(png, options);
    };
    expect(decodePixels(write({ colorType: 6, bitDepth: 8 })).rgb).toEqual(rgb);
    expect(decodePixels(write({ colorType: 2, bitDepth: 8 })).rgb).toEqual(rgb);
    // 16 bits a sample, rows unfiltered: each sample is its 8-bit value then a low byte.
    const rows = Buffer.alloc(height * (1 + width * 6));
    for (let y = 0; y < height; y++) {
      for (let i = 0; i < width * 3; i++) {
        rows[y * (1 + width * 6) + 1 + i * 2] = rgb[y * width * 3 + i]!;
        rows[y * (1 + width * 6) + 2 + i * 2] = 0x5a;
      }
    }
    const deep = pngOf(
      ['IHDR', ihdr(width, height, 16, 2)],
      ['IDAT', deflateSync(rows)],
      ['IEND', new Uint8Array()],
    );
    expect(decodePixels(deep).rgb).toEqual(rgb);
    const grey = decodePixels(write({ colorType: 0, bitDepth: 8 })).rgb;
    for (let i = 0; i < width * height; i++) {
      expect(grey[i * 3]).toBe(grey[i * 3 + 1]);
      expect(grey[i * 3]).toBe(grey[i * 3 + 2]);
    }
  });

  it('refuses what is not a valid PNG', () => {
    expect(() => decodePixels(Buffer.from('not a png'))).toThrow(PngError);
  });
});

describe('the provenance of a frame made in a window', () => {
  const window = {
    index: 2,
    start: 83,
    end: 131,
    seed: 1316,
    context: [
      { frame: 83, sha256: 'a'.repeat(64) },
      { frame: 84, sha256: 'b'.repeat(64) },
    ],
  };

  it('records the window, its seed and context, a cross-fade and the input hashes, and reads them back', () => {
    const p: Provenance = {
      ...provenance,
      frame: 85,
      inputs: { mask: 'c'.repeat(64), image: 'd'.repeat(64) },
      window,
      crossFade: { window: { index: 3, start: 124, end: 172, seed: 1357 }, weight: 0.25 },
    };
    const png = withProvenance(encodePng(gradient(64, 32), 64, 32), p);
    expect(readProvenance(png)).toEqual(p);
    // The same record in any key order stamps the same bytes.
    const reordered = {
      ...p,
      window: { context: window.context, seed: 1316, end: 131, start: 83, index: 2 },
    };
    expect(withProvenance(encodePng(gradient(64, 32), 64, 32), reordered).equals(png)).toBe(true);
  });

  it('refuses a record whose window is malformed', () => {
    const png = withProvenance(encodePng(gradient(4, 4), 4, 4), {
      ...provenance,
      window: { ...window, context: [{ frame: 83 } as { frame: number; sha256: string }] },
    });
    expect(() => readProvenance(png)).toThrow(/window: context/);
  });
});

describe('the AI-generated declaration (XMP)', () => {
  it('makes a standard metadata reader (exifr) report the IPTC digital source type of generative AI', async () => {
    const stamped = withProvenance(encodePng(gradient(16, 8), 16, 8), provenance);
    const meta = (await exifr.parse(stamped, { xmp: true })) as Record<string, unknown>;
    expect(meta.DigitalSourceType).toBe(TRAINED_ALGORITHMIC_MEDIA);
    expect(meta.CreatorTool).toBe('Framecast (model sdxl)');
    // Whatever a model is called, the packet stays well-formed XML.
    const odd = readPng(withProvenance(stamped, { ...provenance, model: 'a"<&>' })).text[XMP_KEYWORD];
    expect(odd).toContain('xmp:CreatorTool="Framecast (model a&quot;&lt;&amp;&gt;)"');
  });

  it('replaces an XMP packet the model wrote, so the PNG holds one packet and it declares the frame', async () => {
    const foreign = encodePng(gradient(8, 8), 8, 8, {
      [XMP_KEYWORD]: '<x:xmpmeta xmlns:x="adobe:ns:meta/"/>',
    });
    const stamped = withProvenance(foreign, provenance);
    const packets = chunkTypes(stamped).filter((t) => t === 'iTXt').length;
    expect(packets).toBe(Object.keys(provenanceText(provenance)).length);
    expect(readPng(stamped).text[XMP_KEYWORD]).toContain(TRAINED_ALGORITHMIC_MEDIA);
    expect(((await exifr.parse(stamped, { xmp: true })) as Record<string, unknown>).DigitalSourceType).toBe(
      TRAINED_ALGORITHMIC_MEDIA,
    );
  });
});
