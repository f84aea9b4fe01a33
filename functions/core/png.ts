import { constants, crc32, createInflate, deflateSync, inflateSync } from 'node:zlib';

/**
 * PNG encoding, validation and frame provenance (the design's "Frames in S3": each PNG carries its provenance
 * in text chunks). Pure: no AWS, no I/O. The worker stamps provenance on PNGs from any Cog model, so the
 * reader and `withProvenance` accept every valid PNG, not only the ones `encodePng` writes.
 */

/** What a frame records about how it was made, enough to regenerate it exactly. */
export interface Provenance {
  generator: 'framecast';
  model: string;
  modelImage?: string;
  prompt: string;
  negativePrompt?: string;
  seed: number;
  frame: number;
  jobId: string;
  shot?: string;
  width: number;
  height: number;
  params?: Record<string, unknown>;
  /** The sha256 of each input file the frame was made from (a plate, a mask), by the model's input name. */
  inputs?: Record<string, string>;
  /** For a model with windows: the window whose prediction made the frame. */
  window?: WindowProvenance;
  /** The frame's version, when a re-roll made it (the first generation is version 1 and says nothing). */
  version?: number;
  /**
   * Parallel windows, a frame two windows share: the later window's version was blended in with `weight`,
   * `window`'s with `1 - weight`.
   */
  crossFade?: { window: WindowProvenance; weight: number };
}

/** A window of a video model: its frames, its seed and, in chained mode, the frames it continued. */
export interface WindowProvenance {
  index: number;
  /** First and last frame the prediction made. */
  start: number;
  end: number;
  seed: number;
  /** Chained mode: the frames the window was given as context, in order, with the sha256 of each file. */
  context?: { frame: number; sha256: string }[];
}

export interface PngInfo {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlaced: boolean;
  /** Every tEXt, zTXt and iTXt chunk by keyword; when a keyword repeats, the last one counts. */
  text: Record<string, string>;
}

/** The machine-readable record: one iTXt chunk of JSON, so nothing is lost to keyword length or charset. */
export const PROVENANCE_KEYWORD = 'framecast:provenance';

export class PngError extends Error {
  override readonly name = 'PngError';
}

const SIGNATURE = Buffer.from([137, 80, 78, 71, 13, 10, 26, 10]);
const MAX_CHUNK_LENGTH = 0x7fff_ffff;
const MAX_DIMENSION = 0x7fff_ffff;
// libpng's default; big enough that the per-chunk overhead vanishes, small enough for streaming readers.
const IDAT_CHUNK_BYTES = 1 << 20;
// Text chunks are inflated whole; a hostile zTXt must not make a worker allocate gigabytes.
const MAX_TEXT_BYTES = 16 << 20;
const TEXT_TYPES = new Set(['tEXt', 'zTXt', 'iTXt']);

const FILTER_SUB = 1;
const FILTER_UP = 2;
const FILTER_PAETH = 4;

/**
 * An 8-bit RGB PNG of `rgb` (row-major, 3 bytes a pixel), with `text` as UTF-8 iTXt chunks before the image
 * data so streaming readers see them first. Each row takes the filter (Sub, Up or Paeth) with the smallest sum
 * of absolute residuals, libpng's heuristic: smooth generated frames then deflate to a fraction of their size.
 */
export function encodePng(
  rgb: Uint8Array,
  width: number,
  height: number,
  text: Record<string, string> = {},
): Buffer {
  checkDimension('width', width);
  checkDimension('height', height);
  const stride = width * 3;
  if (rgb.length !== stride * height) {
    throw new RangeError(`rgb must hold width * height * 3 = ${stride * height} bytes, not ${rgb.length}`);
  }
  const textChunks = Object.entries(text).map(([keyword, value]) => chunk('iTXt', itxt(keyword, value)));

  const ihdr = Buffer.alloc(13);
  ihdr.writeUInt32BE(width, 0);
  ihdr.writeUInt32BE(height, 4);
  ihdr[8] = 8; // bit depth
  ihdr[9] = 2; // colour type: RGB
  // compression, filter method and interlace stay 0: deflate, adaptive filtering, no interlace.

  // Z_RLE: filtered rows of smooth images are mostly short runs; it deflates them 3x faster than the default
  // strategy at level 6 and, after the per-row filter choice, about as small (measured on reference frames).
  const idat = deflateSync(filterRows(rgb, stride, height), { level: 6, strategy: constants.Z_RLE });
  const idatChunks: Buffer[] = [];
  for (let at = 0; at < idat.length; at += IDAT_CHUNK_BYTES) {
    idatChunks.push(chunk('IDAT', idat.subarray(at, at + IDAT_CHUNK_BYTES)));
  }
  return Buffer.concat([SIGNATURE, chunk('IHDR', ihdr), ...textChunks, ...idatChunks, chunk('IEND')]);
}

/** True when `bytes` start with the PNG signature (a quick check, not a validation). */
export const isPng = (bytes: Uint8Array): boolean =>
  bytes.length >= SIGNATURE.length && SIGNATURE.equals(bytes.subarray(0, SIGNATURE.length));

/**
 * Reads and validates a PNG: signature, every chunk's CRC, IHDR, chunk order, IEND at the very end, and that
 * the image data inflates to exactly the size IHDR declares. Throws a PngError saying what is wrong.
 */
export function readPng(png: Uint8Array): PngInfo {
  const buf = asBuffer(png);
  const chunks = parseChunks(buf);
  const header = readHeader(buf, chunks);
  const text: Record<string, string> = {};
  for (const c of chunks) {
    if (!TEXT_TYPES.has(c.type)) continue;
    const entry = decodeText(c.type, buf.subarray(c.dataStart, c.dataEnd));
    if (entry) text[entry.keyword] = entry.value;
  }
  checkImageData(buf, chunks, header);
  return { ...header, text };
}

/**
 * The text chunks Framecast writes for a provenance record: the JSON record, plus readable standard and
 * `framecast:` keywords so exiftool and image viewers show prompt, seed, frame and job at a glance.
 */
export function provenanceText(p: Provenance): Record<string, string> {
  const text: Record<string, string> = {
    [PROVENANCE_KEYWORD]: JSON.stringify(canonical(p)),
    Software: framecastSoftware(p.model),
    Description: withoutNul(p.prompt),
    'framecast:model': withoutNul(p.modelImage ? `${p.model} (${p.modelImage})` : p.model),
    'framecast:seed': String(p.seed),
    'framecast:frame': String(p.frame),
    'framecast:job': withoutNul(p.jobId),
  };
  if (p.shot !== undefined) text['framecast:shot'] = withoutNul(p.shot);
  text[XMP_KEYWORD] = xmpPacket(p);
  return text;
}

/** The keyword of the PNG chunk that holds an XMP packet (XMP Specification Part 3, 1.1.5). */
export const XMP_KEYWORD = 'XML:com.adobe.xmp';

/** IPTC's digital source type for media a trained model made: how readers tell a frame is AI-generated. */
export const TRAINED_ALGORITHMIC_MEDIA =
  'http://cv.iptc.org/newscodes/digitalsourcetype/trainedAlgorithmicMedia';

const xmlEscape = (s: string): string =>
  withoutNul(s)
    .replaceAll('&', '&amp;')
    .replaceAll('<', '&lt;')
    .replaceAll('>', '&gt;')
    .replaceAll('"', '&quot;');

/**
 * An XMP packet declaring the frame AI-generated (IPTC Photo Metadata, `Iptc4xmpExt:DigitalSourceType`), so
 * standard XMP readers (exifr in the tests) say so without knowing Framecast. It also
 * names the tool (`xmp:CreatorTool`); the prompt and everything else stay in the provenance record.
 */
function xmpPacket(p: Provenance): string {
  return [
    '<?xpacket begin="\uFEFF" id="W5M0MpCehiHzreSzNTczkc9d"?>',
    '<x:xmpmeta xmlns:x="adobe:ns:meta/">',
    ' <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">',
    '  <rdf:Description rdf:about=""',
    '    xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/"',
    '    xmlns:xmp="http://ns.adobe.com/xap/1.0/"',
    `    Iptc4xmpExt:DigitalSourceType="${TRAINED_ALGORITHMIC_MEDIA}"`,
    `    xmp:CreatorTool="${xmlEscape(framecastSoftware(p.model))}"/>`,
    ' </rdf:RDF>',
    '</x:xmpmeta>',
    '<?xpacket end="r"?>',
  ].join('\n');
}

/**
 * `png` with `p` recorded in it: any earlier Framecast record (`framecast:*`, `Description`, and the
 * `Software` chunk Framecast writes) is replaced, the new chunks go just before IEND, and every other chunk
 * is kept byte for byte, so stamping twice equals stamping once. Another `Software` chunk stays, because it
 * names what made the pixels (the model); Framecast adds its own only when there is none.
 * Throws a PngError when `png` is not a valid PNG.
 */
export function withProvenance(png: Uint8Array, p: Provenance): Buffer {
  if (p.generator !== 'framecast') throw new TypeError('provenance.generator must be "framecast"');
  const buf = asBuffer(png);
  const chunks = parseChunks(buf);
  checkImageData(buf, chunks, readHeader(buf, chunks));
  return stamp(buf, chunks, p);
}

/**
 * `withProvenance` for a PNG `checkPng` has passed: its chunks are read again (and their CRCs checked),
 * its image data is not inflated again.
 */
export function stampProvenance(png: Uint8Array, p: Provenance): Buffer {
  if (p.generator !== 'framecast') throw new TypeError('provenance.generator must be "framecast"');
  const buf = asBuffer(png);
  const chunks = parseChunks(buf);
  readHeader(buf, chunks);
  return stamp(buf, chunks, p);
}

function stamp(buf: Buffer, chunks: readonly Chunk[], p: Provenance): Buffer {
  const kept: Buffer[] = [SIGNATURE];
  let hasSoftware = false;
  for (const c of chunks) {
    if (c.type === 'IEND') break;
    if (TEXT_TYPES.has(c.type)) {
      const entry = decodeText(c.type, buf.subarray(c.dataStart, c.dataEnd));
      if (entry && isFramecastText(entry.keyword, entry.value)) continue;
      if (entry?.keyword === 'Software') hasSoftware = true;
    }
    kept.push(buf.subarray(c.start, c.end));
  }
  for (const [keyword, value] of Object.entries(provenanceText(p))) {
    if (keyword === 'Software' && hasSoftware) continue;
    kept.push(chunk('iTXt', itxt(keyword, value)));
  }
  kept.push(chunk('IEND'));
  return Buffer.concat(kept);
}

/**
 * The pixels of `png` as 8-bit RGB (row-major, 3 bytes a pixel): what the cross-fade of parallel windows
 * blends. Reads the PNGs models write: grey, grey+alpha, RGB and RGBA of 8 or 16 bits, and 8-bit palettes,
 * not interlaced; alpha is dropped (frames are opaque), 16-bit samples keep their high byte. Throws a
 * PngError for anything else, and for an invalid PNG.
 */
export function decodeRgb(png: Uint8Array): { width: number; height: number; rgb: Uint8Array } {
  const buf = asBuffer(png);
  const chunks = parseChunks(buf);
  const header = readHeader(buf, chunks);
  checkImageData(buf, chunks, header);
  const { width, height, bitDepth, colorType } = header;
  if (header.interlaced) throw new PngError('interlaced PNGs are not decoded');
  if (bitDepth < 8) throw new PngError(`bit depth ${bitDepth} is not decoded`);
  const bytesPerSample = bitDepth / 8;
  const bpp = CHANNELS[colorType]! * bytesPerSample;
  const stride = width * bpp;
  const raw = inflateSync(
    Buffer.concat(chunks.filter((c) => c.type === 'IDAT').map((c) => buf.subarray(c.dataStart, c.dataEnd))),
  );
  const plte = chunks.find((c) => c.type === 'PLTE');
  const palette = plte ? buf.subarray(plte.dataStart, plte.dataEnd) : undefined;
  const rgb = new Uint8Array(width * height * 3);
  let prev = new Uint8Array(stride);
  let cur = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const at = y * (stride + 1);
    const filter = raw[at]!;
    for (let i = 0; i < stride; i++) {
      const x = raw[at + 1 + i]!;
      const a = i >= bpp ? cur[i - bpp]! : 0;
      const b = prev[i]!;
      const c = i >= bpp ? prev[i - bpp]! : 0;
      let v = x;
      if (filter === FILTER_SUB) v = x + a;
      else if (filter === FILTER_UP) v = x + b;
      else if (filter === 3) v = x + ((a + b) >> 1);
      else if (filter === FILTER_PAETH) {
        const pa = Math.abs(b - c);
        const pb = Math.abs(a - c);
        const pc = Math.abs(a + b - 2 * c);
        v = x + (pa <= pb && pa <= pc ? a : pb <= pc ? b : c);
      }
      cur[i] = v & 0xff;
    }
    const out = y * width * 3;
    for (let px = 0; px < width; px++) {
      const s = px * bpp;
      const o = out + px * 3;
      if (colorType === 3) {
        const entry = cur[s]! * 3;
        if (!palette || entry + 2 >= palette.length) throw new PngError('palette index out of range');
        rgb[o] = palette[entry]!;
        rgb[o + 1] = palette[entry + 1]!;
        rgb[o + 2] = palette[entry + 2]!;
      } else if (colorType === 0 || colorType === 4) {
        rgb[o] = rgb[o + 1] = rgb[o + 2] = cur[s]!;
      } else {
        rgb[o] = cur[s]!;
        rgb[o + 1] = cur[s + bytesPerSample]!;
        rgb[o + 2] = cur[s + 2 * bytesPerSample]!;
      }
    }
    [prev, cur] = [cur, prev];
  }
  return { width, height, rgb };
}

/**
 * The provenance recorded in `png`, or undefined when it has none. Throws a PngError when the file is not a
 * valid PNG or its record is not a Framecast provenance record.
 */
export function readProvenance(png: Uint8Array): Provenance | undefined {
  const raw = readPng(png).text[PROVENANCE_KEYWORD];
  if (raw === undefined) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(raw);
  } catch {
    throw new PngError(`${PROVENANCE_KEYWORD} is not JSON`);
  }
  const problem = provenanceProblem(value);
  if (problem) throw new PngError(`${PROVENANCE_KEYWORD} is not a provenance record: ${problem}`);
  return value as Provenance;
}

// ---- encoding -------------------------------------------------------------------------------------------

function checkDimension(name: string, n: number): void {
  if (!Number.isInteger(n) || n < 1 || n > MAX_DIMENSION) {
    throw new RangeError(`${name} must be an integer from 1 to ${MAX_DIMENSION}, not ${n}`);
  }
}

function filterRows(rgb: Uint8Array, stride: number, height: number): Buffer {
  const out = Buffer.allocUnsafe(height * (stride + 1));
  // Candidate rows are written once and the winner copied: cheaper than filtering twice.
  const sub = new Uint8Array(stride);
  const up = new Uint8Array(stride);
  const paeth = new Uint8Array(stride);
  const zeros = new Uint8Array(stride);
  for (let y = 0; y < height; y++) {
    const row = y * stride;
    const prev = y === 0 ? zeros : rgb.subarray(row - stride, row);
    const cur = rgb.subarray(row, row + stride);
    let sumSub = 0;
    let sumUp = 0;
    let sumPaeth = 0;
    for (let i = 0; i < stride; i++) {
      const x = cur[i]!;
      const b = prev[i]!;
      const a = i >= 3 ? cur[i - 3]! : 0;
      const c = i >= 3 ? prev[i - 3]! : 0;
      const s = (x - a) & 0xff;
      const u = (x - b) & 0xff;
      const pa = Math.abs(b - c);
      const pb = Math.abs(a - c);
      const pc = Math.abs(a + b - 2 * c);
      const predictor = pa <= pb && pa <= pc ? a : pb <= pc ? b : c;
      const p = (x - predictor) & 0xff;
      sub[i] = s;
      up[i] = u;
      paeth[i] = p;
      sumSub += s < 128 ? s : 256 - s;
      sumUp += u < 128 ? u : 256 - u;
      sumPaeth += p < 128 ? p : 256 - p;
    }
    const at = y * (stride + 1);
    if (sumPaeth <= sumUp && sumPaeth <= sumSub) {
      out[at] = FILTER_PAETH;
      out.set(paeth, at + 1);
    } else if (sumUp <= sumSub) {
      out[at] = FILTER_UP;
      out.set(up, at + 1);
    } else {
      out[at] = FILTER_SUB;
      out.set(sub, at + 1);
    }
  }
  return out;
}

function chunk(type: string, data: Uint8Array = new Uint8Array(0)): Buffer {
  if (data.length > MAX_CHUNK_LENGTH) throw new RangeError(`${type} chunk too large: ${data.length} bytes`);
  const out = Buffer.allocUnsafe(12 + data.length);
  out.writeUInt32BE(data.length, 0);
  out.write(type, 4, 'latin1');
  out.set(data, 8);
  out.writeUInt32BE(crc32(out.subarray(4, 8 + data.length)), 8 + data.length);
  return out;
}

/** PNG keywords: 1-79 Latin-1 printable characters, no leading, trailing or doubled spaces. */
function checkKeyword(keyword: string): void {
  if (!/^[\x20-\x7e\xa1-\xff]{1,79}$/.test(keyword) || /^ | $| {2}/.test(keyword)) {
    throw new RangeError(`invalid PNG text keyword ${JSON.stringify(keyword)}`);
  }
}

/** An uncompressed iTXt chunk: UTF-8, so prompts in any language survive. */
function itxt(keyword: string, value: string): Buffer {
  checkKeyword(keyword);
  if (value.includes('\0')) throw new RangeError(`PNG text ${JSON.stringify(keyword)} must not contain NUL`);
  // keyword NUL, compression flag 0, method 0, empty language tag NUL, empty translated keyword NUL, text.
  return Buffer.concat([
    Buffer.from(keyword, 'latin1'),
    Buffer.from([0, 0, 0, 0, 0]),
    Buffer.from(value, 'utf8'),
  ]);
}

const withoutNul = (s: string): string => s.replaceAll('\0', '\uFFFD');

function canonical(p: Provenance): Provenance {
  // A fixed key order, so the same frame always carries byte-identical provenance.
  const out: Provenance = {
    generator: 'framecast',
    model: p.model,
    ...(p.modelImage !== undefined && { modelImage: p.modelImage }),
    prompt: p.prompt,
    ...(p.negativePrompt !== undefined && { negativePrompt: p.negativePrompt }),
    seed: p.seed,
    frame: p.frame,
    jobId: p.jobId,
    ...(p.shot !== undefined && { shot: p.shot }),
    width: p.width,
    height: p.height,
    ...(p.params !== undefined && { params: p.params }),
    ...(p.inputs !== undefined && { inputs: sortedKeys(p.inputs) }),
    ...(p.window !== undefined && { window: canonicalWindow(p.window) }),
    ...(p.crossFade !== undefined && {
      crossFade: { window: canonicalWindow(p.crossFade.window), weight: p.crossFade.weight },
    }),
    ...(p.version !== undefined && { version: p.version }),
  };
  return out;
}

const sortedKeys = (r: Record<string, string>): Record<string, string> =>
  Object.fromEntries(Object.entries(r).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0)));

const canonicalWindow = (w: WindowProvenance): WindowProvenance => ({
  index: w.index,
  start: w.start,
  end: w.end,
  seed: w.seed,
  ...(w.context !== undefined && { context: w.context.map((c) => ({ frame: c.frame, sha256: c.sha256 })) }),
});

const framecastSoftware = (model: string): string => `Framecast (model ${withoutNul(model)})`;

/** The text chunks an earlier `withProvenance` wrote, so stamping again replaces them all. */
// An XMP packet the model wrote is replaced too: a PNG holds one, and Framecast's declares the frame
// AI-generated, which a model's own packet may not.
const isFramecastText = (keyword: string, value: string): boolean =>
  keyword.startsWith('framecast:') ||
  keyword === XMP_KEYWORD ||
  keyword === 'Description' ||
  (keyword === 'Software' && /^Framecast \(model .*\)$/s.test(value));

// ---- reading --------------------------------------------------------------------------------------------

interface Chunk {
  type: string;
  /** Offsets into the file: the whole chunk (length to CRC) and its data. */
  start: number;
  end: number;
  dataStart: number;
  dataEnd: number;
}

interface Header {
  width: number;
  height: number;
  bitDepth: number;
  colorType: number;
  interlaced: boolean;
}

const asBuffer = (png: Uint8Array): Buffer =>
  Buffer.isBuffer(png) ? png : Buffer.from(png.buffer, png.byteOffset, png.byteLength);

/** Every chunk, with structure, CRCs and chunk order checked. */
function parseChunks(buf: Buffer): Chunk[] {
  if (buf.length < SIGNATURE.length || !buf.subarray(0, SIGNATURE.length).equals(SIGNATURE)) {
    throw new PngError('not a PNG file: bad signature');
  }
  const chunks: Chunk[] = [];
  let at = SIGNATURE.length;
  let idatRun: 'none' | 'open' | 'closed' = 'none';
  for (;;) {
    if (at + 12 > buf.length)
      throw new PngError(`truncated PNG: no complete chunk at byte ${at}, IEND missing`);
    const length = buf.readUInt32BE(at);
    const type = buf.toString('latin1', at + 4, at + 8);
    if (!/^[A-Za-z]{4}$/.test(type)) throw new PngError(`invalid chunk type at byte ${at}`);
    if (length > MAX_CHUNK_LENGTH) throw new PngError(`${type} chunk at byte ${at} has an invalid length`);
    const dataStart = at + 8;
    const dataEnd = dataStart + length;
    if (dataEnd + 4 > buf.length)
      throw new PngError(`truncated PNG: ${type} chunk at byte ${at} runs past the end`);
    const stored = buf.readUInt32BE(dataEnd);
    if (crc32(buf.subarray(at + 4, dataEnd)) !== stored) {
      throw new PngError(`CRC mismatch in ${type} chunk at byte ${at}: the file is corrupt`);
    }
    const c: Chunk = { type, start: at, end: dataEnd + 4, dataStart, dataEnd };
    if (chunks.length === 0 && type !== 'IHDR') throw new PngError(`the first chunk is ${type}, not IHDR`);
    if (chunks.length > 0 && type === 'IHDR') throw new PngError('more than one IHDR chunk');
    if (type === 'IDAT') {
      if (idatRun === 'closed') throw new PngError('IDAT chunks are not consecutive');
      idatRun = 'open';
    } else if (idatRun === 'open') {
      idatRun = 'closed';
    }
    // A decoder must refuse critical chunks it does not know (first letter upper case).
    if (type[0]! <= 'Z' && !['IHDR', 'PLTE', 'IDAT', 'IEND'].includes(type)) {
      throw new PngError(`unknown critical chunk ${type}`);
    }
    chunks.push(c);
    at = c.end;
    if (type === 'IEND') {
      if (length !== 0) throw new PngError('IEND chunk is not empty');
      if (at !== buf.length) throw new PngError(`${buf.length - at} bytes after IEND`);
      break;
    }
  }
  if (idatRun === 'none') throw new PngError('no IDAT chunk');
  return chunks;
}

const BIT_DEPTHS: Record<number, readonly number[]> = {
  0: [1, 2, 4, 8, 16],
  2: [8, 16],
  3: [1, 2, 4, 8],
  4: [8, 16],
  6: [8, 16],
};
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };

function readHeader(buf: Buffer, chunks: readonly Chunk[]): Header {
  const ihdr = chunks[0]!;
  if (ihdr.dataEnd - ihdr.dataStart !== 13) throw new PngError('IHDR chunk must be 13 bytes');
  const d = buf.subarray(ihdr.dataStart, ihdr.dataEnd);
  const width = d.readUInt32BE(0);
  const height = d.readUInt32BE(4);
  const bitDepth = d[8]!;
  const colorType = d[9]!;
  if (width < 1 || width > MAX_DIMENSION || height < 1 || height > MAX_DIMENSION) {
    throw new PngError(`invalid image size ${width}x${height}`);
  }
  const depths = BIT_DEPTHS[colorType];
  if (!depths) throw new PngError(`invalid colour type ${colorType}`);
  if (!depths.includes(bitDepth))
    throw new PngError(`bit depth ${bitDepth} is invalid for colour type ${colorType}`);
  if (d[10] !== 0) throw new PngError(`unknown compression method ${d[10]}`);
  if (d[11] !== 0) throw new PngError(`unknown filter method ${d[11]}`);
  if (d[12] !== 0 && d[12] !== 1) throw new PngError(`unknown interlace method ${d[12]}`);
  if (colorType === 3 && !chunks.some((c) => c.type === 'PLTE'))
    throw new PngError('palette image without PLTE');
  return { width, height, bitDepth, colorType, interlaced: d[12] === 1 };
}

// Adam7: x and y of the first pixel and the steps of each of the seven passes.
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
] as const;

/** The scanlines of the image: [width in pixels, rows] for each pass (one pass when not interlaced). */
function passes(h: Header): Array<[number, number]> {
  if (!h.interlaced) return [[h.width, h.height]];
  const out: Array<[number, number]> = [];
  for (const [x0, y0, dx, dy] of ADAM7) {
    const w = h.width > x0 ? Math.ceil((h.width - x0) / dx) : 0;
    const r = h.height > y0 ? Math.ceil((h.height - y0) / dy) : 0;
    if (w > 0 && r > 0) out.push([w, r]);
  }
  return out;
}

/**
 * The scanlines IHDR declares, as inflated image data: each row of each pass starts with a filter type of
 * 0 to 4. Fed the inflated data piece by piece (`take`), in one piece or as a stream inflates it, so the
 * check never needs the raw pixels whole; `end` says whether exactly the declared size came.
 */
class ScanlineCheck {
  /** Byte offsets of the rows' filter bytes, as [row size, rows] per pass. */
  private readonly layout: ReadonlyArray<readonly [number, number]>;
  readonly expected: number;
  private seen = 0;
  private pass = 0;
  private row = 0;
  /** Where the next filter byte is, counted from the start of the data. */
  private nextFilter = 0;

  constructor(header: Header) {
    const bitsPerPixel = header.bitDepth * CHANNELS[header.colorType]!;
    this.layout = passes(header).map(([w, rows]) => [Math.ceil((w * bitsPerPixel) / 8) + 1, rows] as const);
    this.expected = this.layout.reduce((sum, [rowBytes, rows]) => sum + rowBytes * rows, 0);
  }

  take(piece: Uint8Array): void {
    const end = this.seen + piece.length;
    // One byte over is named with the sizes (`end`); more is a stream not worth inflating further.
    if (end > this.expected + 1) throw new PngError('image data is larger than IHDR declares');
    while (this.pass < this.layout.length && this.nextFilter < end) {
      const filter = piece[this.nextFilter - this.seen]!;
      if (filter > 4)
        throw new PngError(`unknown filter type ${filter} in scanline at byte ${this.nextFilter}`);
      const [rowBytes, rows] = this.layout[this.pass]!;
      this.nextFilter += rowBytes;
      if (++this.row >= rows) {
        this.pass++;
        this.row = 0;
      }
    }
    this.seen = end;
  }

  end(): void {
    if (this.seen !== this.expected) {
      throw new PngError(`image data is ${this.seen} bytes, IHDR declares ${this.expected}`);
    }
  }
}

/** The IDAT chunks' data, in order, as views of `buf`. */
const idatOf = (buf: Buffer, chunks: readonly Chunk[]): Buffer[] =>
  chunks.filter((c) => c.type === 'IDAT').map((c) => buf.subarray(c.dataStart, c.dataEnd));

/**
 * The image data must inflate to exactly the scanlines IHDR declares, each starting with a known filter
 * type: a model that writes a truncated or padded stream with correct CRCs is caught here, not in a
 * compositor weeks later.
 */
function checkImageData(buf: Buffer, chunks: readonly Chunk[], header: Header): void {
  const check = new ScanlineCheck(header);
  // One IDAT (what Framecast's encoder writes) is inflated where it is: no copy of the frame for the check.
  const idat = idatOf(buf, chunks);
  const compressed = idat.length === 1 ? idat[0]! : Buffer.concat(idat);
  let raw: Buffer;
  try {
    raw = inflateSync(compressed, { maxOutputLength: check.expected + 1 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code === 'ERR_BUFFER_TOO_LARGE') {
      throw new PngError('image data is larger than IHDR declares');
    }
    throw new PngError(`image data does not inflate: ${(err as Error).message}`);
  }
  check.take(raw);
  check.end();
}

/** Inflated image data up to which `checkPng` checks in one piece (a 590x590 RGB frame). */
const SMALL_IMAGE_BYTES = 1 << 20;

/**
 * Validates `png` as `withProvenance` does (signature, chunks and CRCs, IHDR, and image data that inflates
 * to exactly the declared scanlines), but streams the inflate: the raw pixels (26.5 MB for a 4096x2160 RGB
 * frame, four times its PNG) are never held, only 64 KB of them at a time, and the inflating runs on
 * libuv's thread pool, off the thread that feeds the model. A frame of at most 1 MiB of pixels is
 * checked at once instead. What the worker checks a model's frame with before it stamps it
 * (`stampProvenance`). Rejects with a PngError.
 */
export async function checkPng(
  png: Uint8Array,
  /** Stream whatever the size (`true`), or check at once (`false`); by default, by the size. */
  options: { stream?: boolean } = {},
): Promise<void> {
  const buf = asBuffer(png);
  const chunks = parseChunks(buf);
  const header = readHeader(buf, chunks);
  const check = new ScanlineCheck(header);
  // A small frame's pixels are checked at once, here: handing them to the thread pool and back would cost
  // the model more (about a millisecond before the next prediction goes) than holding them does.
  if (!(options.stream ?? check.expected > SMALL_IMAGE_BYTES)) return checkImageData(buf, chunks, header);
  const inflate = createInflate({ chunkSize: 64 * 1024 });
  const done = new Promise<void>((resolve, reject) => {
    inflate.on('data', (piece: Buffer) => {
      try {
        check.take(piece);
      } catch (err) {
        inflate.destroy(err as Error);
      }
    });
    inflate.on('error', (err) =>
      reject(err instanceof PngError ? err : new PngError(`image data does not inflate: ${err.message}`)),
    );
    inflate.on('end', () => {
      try {
        check.end();
        resolve();
      } catch (err) {
        reject(err);
      }
    });
  });
  for (const part of idatOf(buf, chunks)) inflate.write(part);
  inflate.end();
  await done;
}

/** The keyword of a text chunk, or undefined when the chunk has no keyword terminator. */
function readKeyword(data: Buffer): string | undefined {
  const nul = data.indexOf(0);
  return nul >= 1 && nul <= 79 ? data.toString('latin1', 0, nul) : undefined;
}

const utf8 = new TextDecoder('utf-8');

/**
 * One text chunk's keyword and value. Text chunks are ancillary: one its encoder wrote malformed (the CRC
 * matched, so the file is what it wrote) is skipped rather than making the whole frame unreadable.
 */
function decodeText(type: string, data: Buffer): { keyword: string; value: string } | undefined {
  const keyword = readKeyword(data);
  if (keyword === undefined) return undefined;
  let rest = data.subarray(keyword.length + 1);
  try {
    if (type === 'tEXt') return { keyword, value: rest.toString('latin1') };
    if (type === 'zTXt') {
      if (rest[0] !== 0) return undefined;
      return {
        keyword,
        value: inflateSync(rest.subarray(1), { maxOutputLength: MAX_TEXT_BYTES }).toString('latin1'),
      };
    }
    const compressed = rest[0];
    const method = rest[1];
    if (compressed === undefined || method !== 0 || compressed > 1) return undefined;
    rest = rest.subarray(2);
    const langEnd = rest.indexOf(0);
    if (langEnd < 0) return undefined;
    rest = rest.subarray(langEnd + 1);
    const translatedEnd = rest.indexOf(0);
    if (translatedEnd < 0) return undefined;
    rest = rest.subarray(translatedEnd + 1);
    const bytes = compressed === 1 ? inflateSync(rest, { maxOutputLength: MAX_TEXT_BYTES }) : rest;
    return { keyword, value: utf8.decode(bytes) };
  } catch {
    return undefined;
  }
}

function provenanceProblem(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not an object';
  const r = v as Record<string, unknown>;
  if (r.generator !== 'framecast') return 'generator is not "framecast"';
  for (const key of ['model', 'prompt', 'jobId'] as const) {
    if (typeof r[key] !== 'string') return `${key} is not a string`;
  }
  for (const key of ['modelImage', 'negativePrompt', 'shot'] as const) {
    if (r[key] !== undefined && typeof r[key] !== 'string') return `${key} is not a string`;
  }
  for (const key of ['seed', 'frame', 'width', 'height'] as const) {
    if (!Number.isInteger(r[key])) return `${key} is not an integer`;
  }
  if (
    r.params !== undefined &&
    (typeof r.params !== 'object' || r.params === null || Array.isArray(r.params))
  ) {
    return 'params is not an object';
  }
  if (r.inputs !== undefined && !isStringRecord(r.inputs)) return 'inputs is not an object of hashes';
  if (r.version !== undefined && !(Number.isInteger(r.version) && (r.version as number) >= 1))
    return 'version is not a positive integer';
  if (r.window !== undefined) {
    const problem = windowProblem(r.window);
    if (problem) return `window: ${problem}`;
  }
  if (r.crossFade !== undefined) {
    const c = r.crossFade as Record<string, unknown>;
    if (typeof c !== 'object' || c === null) return 'crossFade is not an object';
    const problem = windowProblem(c.window);
    if (problem) return `crossFade.window: ${problem}`;
    if (typeof c.weight !== 'number' || !(c.weight >= 0 && c.weight <= 1))
      return 'crossFade.weight is not a number within 0..1';
  }
  return undefined;
}

const isStringRecord = (v: unknown): boolean =>
  typeof v === 'object' &&
  v !== null &&
  !Array.isArray(v) &&
  Object.values(v).every((x) => typeof x === 'string');

function windowProblem(v: unknown): string | undefined {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) return 'not an object';
  const w = v as Record<string, unknown>;
  for (const key of ['index', 'start', 'end', 'seed'] as const) {
    if (!Number.isInteger(w[key])) return `${key} is not an integer`;
  }
  if (w.context !== undefined) {
    if (!Array.isArray(w.context)) return 'context is not a list';
    for (const c of w.context as unknown[]) {
      const frame = (c as { frame?: unknown } | null)?.frame;
      const sha256 = (c as { sha256?: unknown } | null)?.sha256;
      if (!Number.isInteger(frame) || typeof sha256 !== 'string')
        return 'context lists a frame without its sha256';
    }
  }
  return undefined;
}
