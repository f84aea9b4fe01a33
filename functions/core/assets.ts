import * as z from 'zod';
import { FramecastError } from './errors.ts';
import { frameCount } from './frames.ts';
import { FrameNumber, FrameRange } from './schemas.ts';

/**
 * Assets: plates, masks, control passes and reference stills that a tenant uploads (the design's "Shots
 * from plates", "Assets"). Files are content-addressed: a client names each file by its SHA-256 and size,
 * and uploads only content the production does not hold yet. This module holds the pure rules: the request
 * schemas, which frames are missing, and what a file's first bytes say it is.
 */

export const ASSET_FORMATS = ['png', 'jpeg', 'exr'] as const;
export type AssetFormat = (typeof ASSET_FORMATS)[number];

export const ASSET_STATUSES = ['uploading', 'ready', 'failed'] as const;
export type AssetStatus = (typeof ASSET_STATUSES)[number];
/** `deleting` is never shown: an asset being deleted is not found, and a repeated DELETE finishes the job. */
export type StoredAssetStatus = AssetStatus | 'deleting';

/** Files per request: 1000 entries are about 100 KB of JSON, well under the API's 256 KB body limit. */
export const MAX_FILES_PER_REQUEST = 1000;

// ---- records ------------------------------------------------------------------------------------------

export interface AssetRecord {
  readonly id: string;
  readonly tenant: string;
  readonly name: string;
  readonly format: AssetFormat;
  /** A frame sequence; absent for a still. */
  readonly frames?: { readonly start: number; readonly end: number };
  readonly status: StoredAssetStatus;
  /** Files announced so far (each frame once). */
  readonly files: number;
  readonly width?: number;
  readonly height?: number;
  /** Why the asset failed: the frame and what is wrong with it. */
  readonly error?: string;
  readonly createdAt: string;
  readonly completedAt?: string;
  /** Set by the first attempt at deleting it: the token of that delete's removal claims. */
  readonly deleteToken?: string;
}

/** One announced file of an asset: a frame of a sequence, or the still. */
export interface AssetFileRecord {
  readonly frame?: number;
  readonly sha256: string;
  readonly size: number;
}

/** Files an asset needs before it can be complete: every frame of its range, or its one still. */
export const expectedFiles = (asset: Pick<AssetRecord, 'frames'>): number =>
  asset.frames ? frameCount(asset.frames) : 1;

/**
 * Where a file's content is kept: per tenant, by hash. Never shared across tenants, or a tenant could
 * learn whether another holds some content by announcing its hash and seeing no upload asked for.
 */
export const contentKey = (tenant: string, sha256: string): string => `${tenant}/sha256/${sha256}`;

/** The SHA-256 as S3's checksum headers carry it: base64 of the 32 bytes. */
export const sha256Base64 = (hex: string): string => Buffer.from(hex, 'hex').toString('base64');

/** The headers an upload must be sent with, exactly: both are signed into its URL. */
export const uploadHeaders = (file: Pick<AssetFileRecord, 'sha256' | 'size'>) => ({
  'x-amz-checksum-sha256': sha256Base64(file.sha256),
  'content-length': String(file.size),
});

// ---- requests -----------------------------------------------------------------------------------------

export const AssetName = z
  .string()
  .regex(/^[A-Za-z0-9_.-]{1,128}$/, 'must be 1 to 128 letters, digits, "_", "." or "-"')
  // The name may become a folder or a file name on a workstation: "..", "." and friends are not names.
  .refine((s) => !s.includes('..'), 'must not contain ".."')
  .refine((s) => !/^\.+$/.test(s), 'must not be only dots')
  .meta({ description: 'Asset name, e.g. EP101_SH040_plate', example: 'EP101_SH040_plate' });

export const Sha256Hex = z
  .string()
  .regex(/^[0-9a-f]{64}$/, "must be the file's SHA-256: 64 lowercase hexadecimal digits")
  .meta({ example: '9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08' });

const assetFile = (maxFileBytes: number) =>
  z
    .strictObject({
      frame: FrameNumber.optional(),
      sha256: Sha256Hex,
      size: z
        .int()
        .min(1, 'must be at least 1 byte')
        .max(maxFileBytes, `must be at most ${maxFileBytes} bytes (the production's per-file limit)`),
    })
    .meta({
      id: 'AssetFile',
      description: 'A file by its content: frame (absent for a still), sha256, size',
    });

const fileList = (maxFileBytes: number) =>
  z
    .array(assetFile(maxFileBytes))
    .min(1, 'must list at least one file')
    .max(
      MAX_FILES_PER_REQUEST,
      `must list at most ${MAX_FILES_PER_REQUEST} files; announce more with POST /v1/assets/{id}/files`,
    );

/** The production's limits (FRAMECAST_FRAME_LIMIT, FRAMECAST_ASSET_MAX_FILE_BYTES). */
export interface AssetLimits {
  readonly frameLimit: number;
  readonly maxFileBytes: number;
}

/** `POST /v1/assets`. Strict: unknown fields are refused. */
export const assetRequestSchema = (limits: AssetLimits) =>
  z
    .strictObject({
      name: AssetName,
      format: z.enum(ASSET_FORMATS),
      frames: FrameRange.refine((r) => frameCount(r) <= limits.frameLimit, {
        message: `must hold at most ${limits.frameLimit} frames`,
        path: ['end'],
      }).optional(),
      files: fileList(limits.maxFileBytes),
    })
    .superRefine((request, ctx) => {
      const issue = fileListIssue(request.frames, request.files);
      if (issue) ctx.addIssue({ code: 'custom', path: ['files', ...issue.path], message: issue.message });
    })
    .meta({ id: 'AssetRequest' });
export type AssetRequest = z.output<ReturnType<typeof assetRequestSchema>>;

/** `POST /v1/assets/{id}/files`: more files of a sequence, or the same files again for fresh upload URLs. */
export const assetFilesSchema = (limits: Pick<AssetLimits, 'maxFileBytes'>) =>
  z.strictObject({ files: fileList(limits.maxFileBytes) }).meta({ id: 'AssetFilesRequest' });

/**
 * What is wrong with a list of files for an asset of `frames` (a still when undefined), as the path
 * under `files` and a message; undefined when nothing is. Frames not listed are no error here: a long
 * sequence is announced in pages, and `complete` names the frames still missing.
 */
export function fileListIssue(
  frames: { start: number; end: number } | undefined,
  files: readonly AssetFileRecord[],
): { path: (string | number)[]; message: string } | undefined {
  if (!frames) {
    if (files.length !== 1)
      return { path: [], message: 'a still has exactly one file; give frames {start, end} for a sequence' };
    if (files[0]?.frame !== undefined)
      return { path: [0, 'frame'], message: 'must be absent for a still (an asset without frames)' };
    return undefined;
  }
  const seen = new Set<number>();
  for (const [i, file] of files.entries()) {
    if (file.frame === undefined) return { path: [i, 'frame'], message: 'is required in a sequence' };
    if (file.frame < frames.start || file.frame > frames.end)
      return {
        path: [i, 'frame'],
        message: `frame ${file.frame} is outside the asset's frames ${frames.start}-${frames.end}`,
      };
    if (seen.has(file.frame)) return { path: [i, 'frame'], message: `frame ${file.frame} is listed twice` };
    seen.add(file.frame);
  }
  return undefined;
}

// ---- responses ----------------------------------------------------------------------------------------

const assetShape = {
  id: z.string().meta({ example: 'ast_01JBZ8Q1XG9X3J5W2Y7K4M6N8P' }),
  name: z.string(),
  status: z.enum(ASSET_STATUSES),
  format: z.enum(ASSET_FORMATS),
  frames: z.object({ start: z.int(), end: z.int() }).optional().meta({ description: 'Absent for a still' }),
  files: z
    .object({ total: z.int(), announced: z.int() })
    .meta({ description: 'Files the asset needs (frames, or 1 for a still) and files announced so far' }),
  width: z.int().optional().meta({ description: 'Read from the files by complete' }),
  height: z.int().optional(),
  error: z.string().optional().meta({ description: 'Why the asset failed' }),
  createdAt: z.iso.datetime(),
  completedAt: z.iso.datetime().optional(),
};

export const AssetResponse = z.object(assetShape).meta({ id: 'Asset' });
export type AssetResponse = z.output<typeof AssetResponse>;

export const AssetUpload = z
  .object({
    frame: z.int().optional().meta({ description: 'A frame with this content; absent for a still' }),
    sha256: z.string(),
    size: z.int(),
    url: z.url(),
    method: z.literal('PUT'),
    headers: z
      .object({ 'x-amz-checksum-sha256': z.string(), 'content-length': z.string() })
      .meta({ description: 'Send exactly these headers: both are signed into the URL' }),
    expiresAt: z.iso.datetime(),
  })
  .meta({ id: 'AssetUpload' });
export type AssetUpload = z.output<typeof AssetUpload>;

export const AssetUploads = z
  .object({
    ...assetShape,
    uploads: z
      .array(AssetUpload)
      .meta({ description: 'One PUT per content not held yet, for the files of this request only' }),
  })
  .meta({ id: 'AssetUploads' });
export type AssetUploads = z.output<typeof AssetUploads>;

export const AssetFrame = z
  .object({
    asset: z.string(),
    frame: z.int().optional().meta({ description: 'The frame of a sequence; absent for a still' }),
    sha256: z.string(),
    size: z.int(),
    url: z.url().meta({ description: 'Presigned GET URL of the file' }),
    urlExpiresAt: z.iso.datetime(),
  })
  .meta({ id: 'AssetFrame' });
export type AssetFrame = z.output<typeof AssetFrame>;

export const AssetList = z
  .object({ assets: z.array(AssetResponse), nextCursor: z.string().optional() })
  .meta({ id: 'AssetList' });

export const AssetListQuery = z.strictObject({
  status: z.enum(ASSET_STATUSES).optional(),
  limit: z.coerce.number().int().min(1).max(100).default(20),
  cursor: z.string().max(2048).optional(),
});

export function toAssetResponse(asset: AssetRecord): AssetResponse {
  return {
    id: asset.id,
    name: asset.name,
    // A deleting asset is never shown (it is not found); the cast keeps the view total all the same.
    status: asset.status as AssetStatus,
    format: asset.format,
    ...(asset.frames && { frames: { start: asset.frames.start, end: asset.frames.end } }),
    files: { total: expectedFiles(asset), announced: asset.files },
    ...(asset.width !== undefined && { width: asset.width }),
    ...(asset.height !== undefined && { height: asset.height }),
    ...(asset.error !== undefined && { error: asset.error }),
    createdAt: asset.createdAt,
    ...(asset.completedAt !== undefined && { completedAt: asset.completedAt }),
  };
}

// ---- completeness -------------------------------------------------------------------------------------

/** Frames listed in a 409 and in its message, at most. */
const MISSING_LISTED = 1000;
const MISSING_IN_MESSAGE = 10;

/** Files an asset lacks: how many, and for a sequence which frames (in order). */
export interface MissingFiles {
  readonly count: number;
  readonly frames: readonly number[];
}

/**
 * The files of `asset` that cannot be read: never announced, or announced with content that is not
 * stored (`stored` holds the hashes found in storage).
 */
export function missingFiles(
  asset: Pick<AssetRecord, 'frames'>,
  files: readonly AssetFileRecord[],
  stored: ReadonlySet<string>,
): MissingFiles {
  if (!asset.frames) {
    const still = files[0];
    return { count: still && stored.has(still.sha256) ? 0 : 1, frames: [] };
  }
  const byFrame = new Map(files.map((f) => [f.frame, f.sha256]));
  const frames: number[] = [];
  for (let frame = asset.frames.start; frame <= asset.frames.end; frame++) {
    const sha = byFrame.get(frame);
    if (sha === undefined || !stored.has(sha)) frames.push(frame);
  }
  return { count: frames.length, frames };
}

/** `1003, 1007-1010 and 12 more`: frame numbers (sorted) as runs, the first few of them. */
export function describeFrames(frames: readonly number[], max = MISSING_IN_MESSAGE): string {
  const runs: [number, number][] = [];
  for (const f of frames) {
    const last = runs.at(-1);
    if (last && f === last[1] + 1) last[1] = f;
    else runs.push([f, f]);
  }
  const shown = runs.slice(0, max).map(([a, b]) => (a === b ? String(a) : `${a}-${b}`));
  const rest = runs.slice(max).reduce((n, [a, b]) => n + b - a + 1, 0);
  return rest > 0 ? `${shown.join(', ')} and ${rest} more` : shown.join(', ');
}

/** The 409 of `complete` when files are missing: it names them, and says how to send them. */
export function incomplete(asset: Pick<AssetRecord, 'id' | 'frames'>, missing: MissingFiles) {
  const how = `announce them again (POST /v1/assets/${asset.id}/files) for upload URLs, upload, then complete`;
  const { frames } = missing;
  const which = !asset.frames
    ? "the still's file is"
    : frames.length === 1
      ? `frame ${frames[0]} is`
      : `frames ${describeFrames(frames)} are`;
  return new FramecastError('asset_incomplete', `${which} missing: ${how}`, {
    missingFrames: frames.slice(0, MISSING_LISTED),
    missingCount: missing.count,
  });
}

/** The 422 of `complete` when a file is not what the asset says: the asset fails, naming the frame. */
export function invalidAsset(error: string) {
  return new FramecastError('asset_invalid', error, { error });
}

/** `frame 1003` or `the still`: how a file is named in an error. */
export const fileLabel = (file: Pick<AssetFileRecord, 'frame'>): string =>
  file.frame === undefined ? 'the still' : `frame ${file.frame}`;

// ---- what a file is -----------------------------------------------------------------------------------

export interface ImageInfo {
  readonly format: AssetFormat;
  readonly width: number;
  readonly height: number;
}

/** Reads `length` bytes at `offset` (fewer at the end of the file): a ranged GET in the cloud. */
export type ReadBytes = (offset: number, length: number) => Promise<Uint8Array>;

/** A file that is not what it should be; the message reads after the file's name ("frame 1003 ..."). */
export class ImageError extends Error {
  override readonly name = 'ImageError';
}

const MAGIC: readonly (readonly [AssetFormat, readonly number[]])[] = [
  ['png', [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]],
  ['jpeg', [0xff, 0xd8, 0xff]],
  ['exr', [0x76, 0x2f, 0x31, 0x01]],
];

export const FORMAT_NAMES: Readonly<Record<AssetFormat, string>> = {
  png: 'PNG',
  jpeg: 'JPEG',
  exr: 'OpenEXR',
};

/** The format a file's first bytes announce (its magic number), or undefined. */
export function sniffFormat(head: Uint8Array): AssetFormat | undefined {
  return MAGIC.find(([, magic]) => magic.every((b, i) => head[i] === b))?.[0];
}

export interface ProbeOptions {
  /** Bytes fetched per read. */
  readonly window?: number;
  /** Reads at most: a header that needs more is refused rather than read without end. */
  readonly maxReads?: number;
}

/** Reads a file's header through `read` in windows, so a header is read in one or two ranged GETs. */
class HeaderBytes {
  private start = 0;
  private bytes: Uint8Array = new Uint8Array(0);
  private reads = 0;

  constructor(
    private readonly read: ReadBytes,
    private readonly size: number,
    private readonly window: number,
    private readonly maxReads: number,
  ) {}

  private async at(offset: number, length: number): Promise<number> {
    if (offset < 0 || offset + length > this.size) throw new ImageError('ends inside its header');
    if (offset >= this.start && offset + length <= this.start + this.bytes.length) return offset - this.start;
    if (++this.reads > this.maxReads)
      throw new ImageError(`has a header longer than ${this.maxReads} reads of ${this.window} bytes`);
    this.bytes = await this.read(offset, Math.min(Math.max(length, this.window), this.size - offset));
    this.start = offset;
    if (this.bytes.length < length) throw new ImageError('ends inside its header');
    return 0;
  }

  async u8(offset: number): Promise<number> {
    // `at` may read a new window: index the bytes only after it has.
    const i = await this.at(offset, 1);
    return this.bytes[i]!;
  }
  async head(length: number): Promise<Uint8Array> {
    const i = await this.at(0, Math.min(length, this.size));
    return this.bytes.subarray(i, i + Math.min(length, this.size));
  }
  private async view(offset: number, length: number): Promise<DataView> {
    const i = await this.at(offset, length);
    return new DataView(this.bytes.buffer, this.bytes.byteOffset + i, length);
  }
  async u16be(offset: number): Promise<number> {
    return (await this.view(offset, 2)).getUint16(0, false);
  }
  async u32be(offset: number): Promise<number> {
    return (await this.view(offset, 4)).getUint32(0, false);
  }
  async u32le(offset: number): Promise<number> {
    return (await this.view(offset, 4)).getUint32(0, true);
  }
  async i32le(offset: number): Promise<number> {
    return (await this.view(offset, 4)).getInt32(0, true);
  }
  /** A NUL-terminated Latin-1 string of at most `max` characters. */
  async cstring(offset: number, max: number): Promise<string> {
    let out = '';
    for (let i = 0; i <= max; i++) {
      const c = await this.u8(offset + i);
      if (c === 0) return out;
      out += String.fromCharCode(c);
    }
    throw new ImageError('has a header name longer than the format allows');
  }
}

/**
 * What a file is, from its header alone: its format by magic number, and its width and height (PNG: the
 * IHDR chunk; JPEG: the frame header, SOFn; OpenEXR: the `dataWindow` attribute, the pixels stored). No
 * pixel is decoded, so a 500 MB EXR costs a ranged GET or two.
 */
export async function probeImage(
  read: ReadBytes,
  size: number,
  options: ProbeOptions = {},
): Promise<ImageInfo> {
  const bytes = new HeaderBytes(read, size, options.window ?? 64 * 1024, options.maxReads ?? 32);
  const format = sniffFormat(await bytes.head(8));
  if (!format) throw new ImageError('is not a PNG, JPEG or OpenEXR file (its first bytes say so)');
  const { width, height } =
    format === 'png'
      ? await pngSize(bytes)
      : format === 'jpeg'
        ? await jpegSize(bytes)
        : await exrSize(bytes);
  if (!(width >= 1 && height >= 1 && width <= 0x7fff_ffff && height <= 0x7fff_ffff))
    throw new ImageError(`has no usable size in its header (${width}x${height})`);
  return { format, width, height };
}

async function pngSize(bytes: HeaderBytes) {
  // The first chunk is IHDR: length 13, then width and height as big-endian 32-bit integers.
  const ihdr = (await bytes.u32be(8)) === 13 && (await bytes.u32be(12)) === 0x49484452;
  if (!ihdr) throw new ImageError('is a PNG without an IHDR chunk first');
  return { width: await bytes.u32be(16), height: await bytes.u32be(20) };
}

/** SOF0-SOF15 except DHT (C4), JPG (C8) and DAC (CC): the frame headers that hold the size. */
const isStartOfFrame = (m: number) => m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc;

async function jpegSize(bytes: HeaderBytes) {
  let pos = 2;
  for (let segments = 0; segments < 10_000; segments++) {
    if ((await bytes.u8(pos)) !== 0xff) throw new ImageError('is a JPEG with a malformed marker');
    let marker = await bytes.u8(pos + 1);
    while (marker === 0xff) marker = await bytes.u8(++pos + 1); // fill bytes
    // Markers without a length: TEM, RSTn, SOI.
    if (marker === 0x01 || (marker >= 0xd0 && marker <= 0xd8)) {
      pos += 2;
      continue;
    }
    if (marker === 0xd9 || marker === 0xda) throw new ImageError('is a JPEG without a frame header');
    const length = await bytes.u16be(pos + 2);
    if (length < 2) throw new ImageError('is a JPEG with a malformed segment');
    if (isStartOfFrame(marker))
      return { height: await bytes.u16be(pos + 5), width: await bytes.u16be(pos + 7) };
    pos += 2 + length;
  }
  throw new ImageError('is a JPEG without a frame header');
}

/** OpenEXR: magic, version, then attributes (name, type, size, value) until an empty name. */
async function exrSize(bytes: HeaderBytes) {
  const version = await bytes.u32le(4);
  if ((version & 0xff) !== 2) throw new ImageError(`is an OpenEXR file of unknown version ${version & 0xff}`);
  // In a multi-part file the first header is the first part's; its data window is the one used.
  let pos = 8;
  for (let attributes = 0; attributes < 10_000; attributes++) {
    const name = await bytes.cstring(pos, 255);
    pos += name.length + 1;
    if (name === '') break;
    const type = await bytes.cstring(pos, 255);
    pos += type.length + 1;
    const size = await bytes.i32le(pos);
    pos += 4;
    if (size < 0) throw new ImageError('is an OpenEXR file with a malformed attribute');
    if (name === 'dataWindow') {
      if (type !== 'box2i' || size !== 16)
        throw new ImageError('is an OpenEXR file with a malformed dataWindow');
      const [xMin, yMin, xMax, yMax] = [
        await bytes.i32le(pos),
        await bytes.i32le(pos + 4),
        await bytes.i32le(pos + 8),
        await bytes.i32le(pos + 12),
      ];
      return { width: xMax - xMin + 1, height: yMax - yMin + 1 };
    }
    pos += size;
  }
  throw new ImageError('is an OpenEXR file without a dataWindow');
}
