import { createHash } from 'node:crypto';
import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import {
  assetFilesSchema,
  assetRequestSchema,
  contentKey,
  describeFrames,
  ImageError,
  incomplete,
  MAX_FILES_PER_REQUEST,
  missingFiles,
  probeImage,
  type ReadBytes,
  sniffFormat,
  uploadHeaders,
} from '../../../functions/core/assets.ts';
import { FramecastError } from '../../../functions/core/errors.ts';
import { parse } from '../../../functions/core/validation.ts';
import { exrFile, jpegFrame, pngFrame, sha256Hex } from '../../support/images.ts';

const sha = (n: number) => n.toString(16).padStart(64, '0');
const limits = { frameLimit: 10_000, maxFileBytes: 512 * 1024 * 1024 };
const schema = assetRequestSchema(limits);
const plate = (frames = 24, start = 1001) => ({
  name: 'EP101_SH040_plate',
  format: 'png',
  frames: { start, end: start + frames - 1 },
  files: Array.from({ length: frames }, (_, i) => ({ frame: start + i, sha256: sha(i + 1), size: 1000 + i })),
});
const still = { name: 'look_ref.v002', format: 'jpeg', files: [{ sha256: sha(9), size: 42 }] };

function refusal(body: unknown, s: { safeParse: (x: unknown) => unknown } = schema): FramecastError {
  try {
    parse(s as typeof schema, body);
  } catch (err) {
    if (err instanceof FramecastError) return err;
    throw err;
  }
  throw new Error('the request was accepted');
}

/** `bytes` as a ranged GET would give them, counting the reads. */
function reader(bytes: Uint8Array) {
  const reads: [number, number][] = [];
  const read: ReadBytes = async (offset, length) => {
    reads.push([offset, length]);
    return bytes.subarray(offset, offset + length);
  };
  return { read, reads };
}

describe('the asset request', () => {
  it('takes a frame sequence, one file per frame, and a still, one file without a frame', () => {
    expect(parse(schema, plate()).files).toHaveLength(24);
    expect(parse(schema, still).frames).toBeUndefined();
  });

  it('takes a first page of a long sequence: the frames not listed yet are no error', () => {
    const first = { ...plate(1000), frames: { start: 1, end: 10_000 } };
    expect(parse(schema, first).files).toHaveLength(1000);
  });

  const withFile = (i: number, change: Record<string, unknown>) => {
    const body = plate();
    body.files[i] = { ...body.files[i]!, ...change };
    return body;
  };

  it.each([
    ['a name that climbs out of its folder', { ...plate(), name: '../../etc/passwd' }, 'body.name'],
    ['a name with "..", even inside', { ...plate(), name: 'plate..v2' }, 'body.name'],
    ['a name of dots', { ...plate(), name: '.' }, 'body.name'],
    ['a name with a slash', { ...plate(), name: 'EP101/plate' }, 'body.name'],
    ['a name with a backslash', { ...plate(), name: 'EP101\\plate' }, 'body.name'],
    ['a name of 129 characters', { ...plate(), name: 'n'.repeat(129) }, 'body.name'],
    ['an empty name', { ...plate(), name: '' }, 'body.name'],
    ['a format that is not png, jpeg or exr', { ...plate(), format: 'tiff' }, 'body.format'],
    ['an unknown field', { ...plate(), path: 'plates/' }, 'body.path'],
    ['an unknown field in a file', withFile(3, { key: 'x/../y' }), 'body.files.3.key'],
    [
      'a SHA-256 in capitals',
      withFile(0, { sha256: sha(1).toUpperCase().replace(/^0/, 'A') }),
      'body.files.0.sha256',
    ],
    ['a SHA-256 of 63 digits', withFile(0, { sha256: sha(1).slice(1) }), 'body.files.0.sha256'],
    [
      'a SHA-256 in base64',
      withFile(0, { sha256: Buffer.alloc(32).toString('base64') }),
      'body.files.0.sha256',
    ],
    ['an empty file', withFile(2, { size: 0 }), 'body.files.2.size'],
    ['a file over the per-file limit', withFile(5, { size: 512 * 1024 * 1024 + 1 }), 'body.files.5.size'],
    ['a size that is not an integer', withFile(5, { size: 1.5 }), 'body.files.5.size'],
    ['a frame outside the range', withFile(7, { frame: 2000 }), 'body.files.7.frame'],
    ['a frame listed twice', withFile(7, { frame: 1001 }), 'body.files.7.frame'],
    ['a file without its frame in a sequence', withFile(4, { frame: undefined }), 'body.files.4.frame'],
    [
      'a still with two files',
      { ...still, files: [...still.files, { sha256: sha(8), size: 1 }] },
      'body.files',
    ],
    [
      'a still whose file has a frame',
      { ...still, files: [{ frame: 1, sha256: sha(9), size: 1 }] },
      'body.files.0.frame',
    ],
    ['no files', { ...plate(), files: [] }, 'body.files'],
    ['more frames than the limit', { ...plate(1), frames: { start: 1, end: 10_001 } }, 'body.frames.end'],
    ['frames given backwards', { ...plate(1), frames: { start: 1001, end: 1000 } }, 'body.frames.end'],
  ])('refuses %s with a 400 naming %s', (_name, body, field) => {
    const err = refusal(body);
    expect(err.status).toBe(400);
    expect(err.message.startsWith(`${field}:`), err.message).toBe(true);
  });

  it('names the first bad frame, and says what is wrong with it', () => {
    expect(refusal(withFile(7, { frame: 1001 })).message).toBe(
      'body.files.7.frame: frame 1001 is listed twice',
    );
    expect(refusal(withFile(3, { frame: 999 })).message).toBe(
      "body.files.3.frame: frame 999 is outside the asset's frames 1001-1024",
    );
  });

  it(`takes at most ${MAX_FILES_PER_REQUEST} files a request, and says how to announce more`, () => {
    const big = { ...plate(MAX_FILES_PER_REQUEST + 1), frames: { start: 1001, end: 9000 } };
    expect(refusal(big).message).toMatch(/^body\.files: .*POST \/v1\/assets\/\{id\}\/files/);
    const page = { files: plate(MAX_FILES_PER_REQUEST).files };
    expect(parse(assetFilesSchema(limits), page).files).toHaveLength(MAX_FILES_PER_REQUEST);
    expect(
      refusal({ files: plate(MAX_FILES_PER_REQUEST + 1).files }, assetFilesSchema(limits)).message,
    ).toMatch(/^body\.files:/);
  });

  it('keeps a page of 1000 files well under the API body limit of 256 KB', () => {
    const page = {
      files: plate(MAX_FILES_PER_REQUEST, 9_000_000).files.map((f, i) => ({
        ...f,
        sha256: sha256Hex(Buffer.from([i])),
        size: 536_870_912,
      })),
    };
    expect(Buffer.byteLength(JSON.stringify(page))).toBeLessThan(128 * 1024);
  });
});

describe('content addressing', () => {
  it('keeps content per tenant, by hash', () => {
    expect(contentKey('acme', sha(1))).toBe(`acme/sha256/${sha(1)}`);
  });

  it('gives the upload headers as S3 checks them: the SHA-256 in base64, and the exact length', () => {
    const bytes = Buffer.from('a plate frame');
    expect(uploadHeaders({ sha256: sha256Hex(bytes), size: bytes.length })).toEqual({
      'x-amz-checksum-sha256': createHash('sha256').update(bytes).digest('base64'),
      'content-length': String(bytes.length),
    });
  });
});

describe('missing files', () => {
  const asset = { id: 'ast_01JBZ8Q1XG9X3J5W2Y7K4M6N8P', frames: { start: 1001, end: 1010 } };
  const files = Array.from({ length: 10 }, (_, i) => ({ frame: 1001 + i, sha256: sha(i), size: 1 }));

  it('are the frames never announced and the frames whose content is not stored', () => {
    const stored = new Set(files.map((f) => f.sha256));
    stored.delete(sha(2)); // frame 1003: announced, never uploaded
    const announced = files.filter((f) => f.frame !== 1007 && f.frame !== 1008);
    expect(missingFiles(asset, announced, stored)).toEqual({ count: 3, frames: [1003, 1007, 1008] });
    expect(missingFiles(asset, files, new Set(files.map((f) => f.sha256)))).toEqual({ count: 0, frames: [] });
  });

  it('count a still whose file is not stored', () => {
    const file = { sha256: sha(1), size: 1 };
    expect(missingFiles({}, [file], new Set())).toEqual({ count: 1, frames: [] });
    expect(missingFiles({}, [file], new Set([sha(1)]))).toEqual({ count: 0, frames: [] });
  });

  it('are named in the 409, in runs, with how to send them', () => {
    const err = incomplete(asset, { count: 4, frames: [1003, 1007, 1008, 1009] });
    expect(err.status).toBe(409);
    expect(err.code).toBe('asset_incomplete');
    expect(err.message).toMatch(
      /^frames 1003, 1007-1009 are missing: announce them again \(POST \/v1\/assets\/ast_\w+\/files\)/,
    );
    expect(err.details).toEqual({ missingFrames: [1003, 1007, 1008, 1009], missingCount: 4 });
    expect(incomplete(asset, { count: 1, frames: [1005] }).message).toMatch(/^frame 1005 is missing/);
    expect(incomplete({ id: asset.id }, { count: 1, frames: [] }).message).toMatch(
      /^the still's file is missing/,
    );
  });

  it('are listed a thousand at most, and counted all', () => {
    const frames = Array.from({ length: 10_000 }, (_, i) => i + 1);
    const err = incomplete({ id: asset.id, frames: { start: 1, end: 10_000 } }, { count: 10_000, frames });
    expect(err.message).toMatch(/^frames 1-10000 are missing/);
    expect(err.details).toEqual({ missingFrames: frames.slice(0, 1000), missingCount: 10_000 });
  });

  it('are described as the first runs and a count of the rest', () => {
    const frames = Array.from({ length: 40 }, (_, i) => 1000 + i * 2);
    expect(describeFrames(frames, 3)).toBe('1000, 1002, 1004 and 37 more');
    expect(describeFrames([1, 2, 3, 5])).toBe('1-3, 5');
  });
});

describe('what a file is', () => {
  it('is told by its magic number', async () => {
    expect(sniffFormat(await pngFrame(8, 8))).toBe('png');
    expect(sniffFormat(await jpegFrame(8, 8))).toBe('jpeg');
    expect(sniffFormat(exrFile(8, 8))).toBe('exr');
    expect(sniffFormat(Buffer.from('GIF89a'))).toBeUndefined();
    expect(sniffFormat(new Uint8Array(0))).toBeUndefined();
  });

  it('reads the size of a PNG from its IHDR chunk, in one read', async () => {
    const png = await pngFrame(37, 21);
    const { read, reads } = reader(png);
    expect(await probeImage(read, png.length)).toEqual({ format: 'png', width: 37, height: 21 });
    expect(reads).toHaveLength(1);
  });

  it('reads the size of a JPEG from its frame header, baseline or progressive', async () => {
    for (const progressive of [false, true]) {
      const jpeg = await jpegFrame(1920, 1080, { progressive });
      expect(await probeImage(reader(jpeg).read, jpeg.length)).toEqual({
        format: 'jpeg',
        width: 1920,
        height: 1080,
      });
    }
  });

  it('skips the ICC profile and EXIF before a JPEG frame header, reading on where the header lies', async () => {
    const jpeg = await jpegFrame(640, 360, { metadata: true });
    const { read, reads } = reader(jpeg);
    expect(await probeImage(read, jpeg.length, { window: 512 })).toEqual({
      format: 'jpeg',
      width: 640,
      height: 360,
    });
    expect(reads.length).toBeGreaterThan(1);
    // Only the header is read, not the image data after it.
    expect(Math.max(...reads.map(([offset, length]) => offset + length))).toBeLessThan(jpeg.length);
  });

  it('reads the data window of an OpenEXR header, wherever it starts', async () => {
    const exr = exrFile(2048, 858, { x: -64, y: 10 });
    expect(await probeImage(reader(exr).read, exr.length)).toEqual({
      format: 'exr',
      width: 2048,
      height: 858,
    });
    const preview = { name: 'preview', type: 'preview', value: Buffer.alloc(200_000, 7) };
    const large = exrFile(4096, 2160, { extra: [preview] });
    const { read, reads } = reader(large);
    expect(await probeImage(read, large.length)).toEqual({ format: 'exr', width: 4096, height: 2160 });
    expect(reads).toHaveLength(2); // the start, then past the preview: its 200 KB are never read
  });

  it.each([
    ['a GIF', Buffer.from('GIF89a\x01\x00\x01\x00'), /is not a PNG, JPEG or OpenEXR file/],
    [
      'a PNG cut short before its size',
      async () => (await pngFrame(8, 8)).subarray(0, 20),
      /ends inside its header/,
    ],
    [
      'a PNG whose first chunk is not IHDR',
      async () => {
        const png = Buffer.from(await pngFrame(8, 8));
        png.write('IDAT', 12, 'latin1');
        return png;
      },
      /without an IHDR chunk/,
    ],
    [
      'a PNG of width 0',
      async () => {
        const png = Buffer.from(await pngFrame(8, 8));
        png.writeUInt32BE(0, 16);
        return png;
      },
      /no usable size/,
    ],
    [
      'a JPEG without a frame header',
      Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0xff, 0xda, 0, 2]),
      /without a frame header/,
    ],
    [
      'a JPEG of garbage after its marker',
      Buffer.from([0xff, 0xd8, 0xff, 0xe0, 0, 4, 0, 0, 0x12, 0x34]),
      /malformed marker/,
    ],
    [
      'an OpenEXR of another version',
      Buffer.from([0x76, 0x2f, 0x31, 0x01, 3, 0, 0, 0, 0]),
      /unknown version 3/,
    ],
    [
      'an OpenEXR without a data window',
      Buffer.from([0x76, 0x2f, 0x31, 0x01, 2, 0, 0, 0, 0, 0]),
      /without a dataWindow/,
    ],
    ['an OpenEXR whose data window runs backwards', exrFile(-5, 10), /no usable size/],
  ])('refuses %s, saying why', async (_name, make, why) => {
    const bytes = typeof make === 'function' ? await make() : make;
    const err = await probeImage(reader(bytes).read, bytes.length).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ImageError);
    expect((err as Error).message).toMatch(why);
  });

  it('stops reading a header that never ends, after a bounded number of reads', async () => {
    // Thousands of empty APP segments: a hostile JPEG that would otherwise be read to its end.
    const segments = Buffer.concat(Array.from({ length: 5000 }, () => Buffer.from([0xff, 0xe1, 0, 2])));
    const jpeg = Buffer.concat([Buffer.from([0xff, 0xd8]), segments, Buffer.from([0xff, 0xd9])]);
    const { read, reads } = reader(jpeg);
    const err = await probeImage(read, jpeg.length, { window: 256, maxReads: 8 }).catch((e: unknown) => e);
    expect((err as Error).message).toMatch(/header longer than 8 reads/);
    expect(reads).toHaveLength(8);
  });

  it('answers any bytes with a size or an ImageError, never another error', async () => {
    const prefixes = [
      [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0, 0, 13, 0x49, 0x48, 0x44, 0x52],
      [0xff, 0xd8, 0xff],
      [0x76, 0x2f, 0x31, 0x01, 2, 0, 0, 0],
      [],
    ];
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom(...prefixes),
        fc.uint8Array({ maxLength: 300 }),
        async (prefix, tail) => {
          const bytes = Uint8Array.from([...prefix, ...tail]);
          try {
            const info = await probeImage(reader(bytes).read, bytes.length, { window: 64 });
            expect(info.width).toBeGreaterThan(0);
            expect(info.height).toBeGreaterThan(0);
          } catch (err) {
            expect(err).toBeInstanceOf(ImageError);
          }
        },
      ),
      { numRuns: 500 },
    );
  });
});
