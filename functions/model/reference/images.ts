/**
 * Image inputs of the reference model (plates, masks, context frames), read the way a Cog model reads its
 * `Path` inputs: a data URL is decoded, an http(s) URL is fetched (the worker sends presigned S3 GET URLs).
 * Only PNG and JPEG, and only of the prediction's own size: a plate is never resized, since a plate of
 * another size is a mistake upstream that a resize would hide. Pixels are taken as stored: an embedded
 * colour profile is not applied, so 8-bit sRGB frames pass through unchanged.
 */

export interface ImageLimits {
  /** Gives up on one file after this long. */
  readonly timeoutMs: number;
  /** The largest file accepted, so one input cannot exhaust the model's memory. */
  readonly maxBytes: number;
}

export interface ImageRequest {
  /** How the input is named in errors: `image[3]`, `mask[0]`, `context[1]`. */
  readonly name: string;
  /** `rgb`: 3 bytes a pixel; `grey`: 1 byte a pixel, the image's luminance. Alpha is dropped. */
  readonly kind: 'rgb' | 'grey';
  readonly width: number;
  readonly height: number;
  readonly limits: ImageLimits;
  /** The prediction's: aborted when it is canceled. */
  readonly signal: AbortSignal;
}

/** What is wrong with an image input, named by the input: the prediction fails with this message. */
export class ImageInputError extends Error {
  override readonly name = 'ImageInputError';
}

/** Reads one image input into raw 8-bit pixels, or throws an ImageInputError that names the input and says why. */
export async function readImage(uri: string, request: ImageRequest): Promise<Uint8Array> {
  return decodeImage(await readInputFile(uri, request), uri, request);
}

/** The bytes of one input file: a data URL decoded, an http(s) URL fetched, within the limits. */
export async function readInputFile(uri: string, request: ImageRequest): Promise<Buffer> {
  return /^data:/i.test(uri) ? decodeDataUrl(uri, request) : await download(uri, request);
}

/** An image file read into raw 8-bit pixels of the request's size (see readImage); `uri` names it in errors. */
export async function decodeImage(
  bytes: Uint8Array,
  uri: string,
  request: ImageRequest,
): Promise<Uint8Array> {
  const { name, kind, width, height } = request;
  const format = isPng(bytes) ? 'png' : isJpeg(bytes) ? 'jpeg' : undefined;
  if (!format) throw new ImageInputError(`${name} (${shown(uri)}) is neither a PNG nor a JPEG`);
  const sharp = await loadSharp();
  const unreadable = (err: unknown) =>
    new ImageInputError(`${name} (${shown(uri)}) is not a readable ${format}: ${(err as Error).message}`);
  const info = await sharp(bytes)
    .metadata()
    .catch((err: unknown) => {
      throw unreadable(err);
    });
  if (info.width !== width || info.height !== height) {
    throw new ImageInputError(
      `${name} (${shown(uri)}) is ${info.width}x${info.height}, the prediction is ${width}x${height}: plates, masks and context frames must be the frame's size`,
    );
  }
  try {
    const { data, info: raw } = await sharp(bytes)
      .removeAlpha()
      .toColourspace(kind === 'rgb' ? 'srgb' : 'b-w')
      .raw({ depth: 'uchar' })
      .toBuffer({ resolveWithObject: true });
    const channels = kind === 'rgb' ? 3 : 1;
    if (raw.channels !== channels || data.length !== width * height * channels) {
      throw new Error(`decoded to ${raw.channels} channel(s)`);
    }
    return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
  } catch (err) {
    throw unreadable(err);
  }
}

/**
 * sharp, loaded on the first image input: it is a native module, and a build of the model that cannot load
 * it (a bundle without its binaries) still renders frames without plates, and says why it cannot read one.
 */
async function loadSharp() {
  try {
    return (await import('sharp')).default;
  } catch (err) {
    const reason = (err as Error).message.split('\n')[0];
    throw new Error(`image inputs need sharp, which this build cannot load: ${reason}`);
  }
}

/** A URL as errors and logs show it: without its query, which for a presigned URL is a credential. */
export function shown(uri: string): string {
  if (/^data:/i.test(uri)) return 'a data URL';
  try {
    const url = new URL(uri);
    return `${url.origin}${url.pathname}`;
  } catch {
    return 'an invalid URL';
  }
}

function decodeDataUrl(uri: string, { name, limits }: ImageRequest): Buffer {
  const comma = uri.indexOf(',');
  if (comma < 0) throw new ImageInputError(`${name} is a data URL without a comma`);
  const base64 = /;base64$/i.test(uri.slice(0, comma));
  const payload = uri.slice(comma + 1);
  // Checked before decoding: a base64 payload decodes to three quarters of its length.
  const size = base64 ? Math.floor((payload.length * 3) / 4) : payload.length;
  if (size > limits.maxBytes) throw new ImageInputError(`${name} is larger than ${limits.maxBytes} bytes`);
  return base64 ? Buffer.from(payload, 'base64') : Buffer.from(decodeURIComponent(payload), 'latin1');
}

async function download(uri: string, { name, limits, signal }: ImageRequest): Promise<Buffer> {
  const where = `${name} (${shown(uri)})`;
  const timeout = AbortSignal.timeout(limits.timeoutMs);
  try {
    const res = await fetch(uri, { signal: AbortSignal.any([signal, timeout]) });
    if (!res.ok) {
      await res.body?.cancel();
      throw new ImageInputError(`${where} answered HTTP ${res.status}`);
    }
    if (Number(res.headers.get('content-length') ?? 0) > limits.maxBytes) {
      await res.body?.cancel();
      throw new ImageInputError(`${where} is larger than ${limits.maxBytes} bytes`);
    }
    const parts: Uint8Array[] = [];
    let size = 0;
    for await (const part of res.body ?? []) {
      size += part.byteLength;
      // A server that sends more than it declared (or declares nothing) is cut off at the limit.
      if (size > limits.maxBytes)
        throw new ImageInputError(`${where} is larger than ${limits.maxBytes} bytes`);
      parts.push(part);
    }
    return Buffer.concat(parts);
  } catch (err) {
    if (signal.aborted) throw signal.reason;
    if (timeout.aborted) throw new ImageInputError(`${where} did not arrive within ${limits.timeoutMs} ms`);
    if (err instanceof ImageInputError) throw err;
    const cause = (err as { cause?: { code?: string; message?: string } }).cause;
    throw new ImageInputError(
      `${where} could not be fetched: ${cause?.code ?? cause?.message ?? (err as Error).message}`,
    );
  }
}

const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const isPng = (b: Uint8Array) => PNG_SIGNATURE.every((byte, i) => b[i] === byte);
const isJpeg = (b: Uint8Array) => b[0] === 0xff && b[1] === 0xd8 && b[2] === 0xff;
/** EBML, the header of a Matroska (or WebM) file: a video input. */
export const isMatroska = (b: Uint8Array) => b[0] === 0x1a && b[1] === 0x45 && b[2] === 0xdf && b[3] === 0xa3;
