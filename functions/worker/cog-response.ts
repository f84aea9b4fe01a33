/**
 * Reading a Cog prediction's JSON answer as it streams in. A model's file outputs arrive in it as `data:`
 * URLs (Cog's synchronous answer): base64, a third larger than the file. Read whole, a 4K frame would be
 * held as the response's bytes, its text, the parsed string and the decoded file. Here each base64 data
 * URL is decoded as its bytes arrive, so the text of a file is never held whole: a file is in memory once,
 * as its bytes (and, for a moment at its end, as the pieces they were decoded in). Everything else in the
 * answer (status, metrics, error, URLs) is small and parsed as JSON, each data URL replaced by its bytes.
 */

export class CogResponseError extends Error {
  constructor(message: string) {
    super(message);
    this.name = 'CogResponseError';
  }
}

const QUOTE = 0x22;
const BACKSLASH = 0x5c;
const COMMA = 0x2c;
const SLASH = 0x2f;
const COLON = 0x3a;
const OPEN_OBJECT = 0x7b;
const OPEN_LIST = 0x5b;
const CLOSE_OBJECT = 0x7d;
const CLOSE_LIST = 0x5d;
/** The answer's key whose files are handed on: a Cog answer also echoes its input, data URLs and all. */
const OUTPUT = 'output';
const DATA = Buffer.from('data:');
/** Longest media type and parameters before a data URL's comma. */
const MAX_META = 256;
/** Base64 decoded this many characters at a time (a multiple of 4). */
const DECODE_BLOCK = 256 * 1024;
/** A string value that replaces a decoded data URL in the JSON parsed; not valid in any model's output text. */
const PLACEHOLDER = '\u0000framecast-file:';

export interface ReadOptions {
  /** Largest file accepted, decoded, and largest text besides: a broken model cannot exhaust memory. */
  readonly maxBytes: number;
  /**
   * Takes each file of the answer's `output` as soon as it is decoded, with its place in the output (0 for
   * one file, its index in a list), instead of the parsed answer (which holds a `HandedFile` in its
   * place): nothing more of the answer is read, let alone decoded, until it resolves, so a window of large
   * frames is never held whole (functions/worker/windows.ts). Files elsewhere (the echoed input's) stay in
   * the parsed answer.
   */
  readonly onFile?: (file: Uint8Array, index: number) => Promise<void>;
}

/** In a parsed answer, a file given to `onFile` as it was decoded: its place in the output. */
export class HandedFile {
  constructor(readonly index: number) {}
}

type Mode =
  | 'json' // outside strings
  | 'prefix' // the first bytes of a string, to tell a data URL
  | 'string' // any other string, copied as it is
  | 'meta' // a data URL's media type, up to its comma
  | 'base64' // a base64 data URL's payload, decoded on the way
  | 'plain'; // a data URL that is not base64 (percent-encoded): kept as its JSON text, decoded at its end

/**
 * The parsed JSON of a Cog answer whose `data:` URL strings are replaced by the bytes they hold
 * (`Uint8Array`); other values as JSON.parse gives them.
 */
export async function readCogJson(body: AsyncIterable<Uint8Array>, options: ReadOptions): Promise<unknown> {
  const reader = new CogJsonReader(options);
  for await (const chunk of body) {
    for (let at = 0; at < chunk.byteLength; ) {
      at += reader.push(at === 0 ? chunk : chunk.subarray(at));
      await reader.handOn();
    }
  }
  return reader.end();
}

/** The state machine of readCogJson, fed chunk by chunk (exported for tests that split answers anywhere). */
export class CogJsonReader {
  private mode: Mode = 'json';
  private escaped = false;
  /** The answer without its data URLs' payloads. */
  private readonly skeleton: Buffer[] = [];
  private skeletonBytes = 0;
  /** Of the current string: its first bytes (prefix), media type (meta) or JSON text (plain). */
  private head: number[] = [];
  /** A data URL that is not base64: its JSON text after `data:`. */
  private plain: number[] = [];
  /** Base64 characters not yet decoded (fewer than a block, or not a multiple of 4). */
  private pending: Buffer[] = [];
  private pendingBytes = 0;
  private pieces: Buffer[] = [];
  private fileBytes = 0;
  /** The files decoded, in order; with `onFile`, each output file is dropped once handed on. */
  readonly files: (Uint8Array | HandedFile)[] = [];
  /** With `onFile`: the output file just decoded, waiting to be handed on (its number and place). */
  private finished: { readonly file: number; readonly place: number } | undefined;
  /**
   * Where the reader is in the answer's structure, enough to tell its output files and their places:
   * nesting depth, the top-level key whose value is being read, whether that value is a list and at which
   * item, and the text of a top-level key being read.
   */
  private depth = 0;
  private expectKey = false;
  private key: string | undefined;
  private keyText: number[] | undefined;
  private inOutputList = false;
  private item = 0;

  constructor(private readonly options: ReadOptions) {}

  /**
   * Reads `chunk`; the bytes of it read: all of them, or, handing files on, up to the end of the file
   * that ended in it (`handOn` takes it, then the rest of the chunk is pushed).
   */
  push(chunk: Uint8Array): number {
    const buf = Buffer.isBuffer(chunk)
      ? chunk
      : Buffer.from(chunk.buffer, chunk.byteOffset, chunk.byteLength);
    let i = 0;
    let copiedFrom = 0; // json/string bytes of this chunk not yet copied to the skeleton
    const flushCopy = (to: number) => {
      if (to > copiedFrom) this.emit(buf.subarray(copiedFrom, to));
      copiedFrom = to;
    };
    while (i < buf.length && this.finished === undefined) {
      switch (this.mode) {
        case 'json': {
          if (!this.options.onFile) {
            // Nothing to hand on: no need to follow the structure.
            const q = buf.indexOf(QUOTE, i);
            if (q < 0) {
              i = buf.length;
              break;
            }
            i = q;
          }
          const b = buf[i]!;
          if (b !== QUOTE) {
            this.follow(b);
            i++;
            break;
          }
          flushCopy(i);
          copiedFrom = i + 1; // the quote is written with the string, once its kind is known
          i++;
          this.mode = 'prefix';
          this.head = [];
          if (this.options.onFile && this.expectKey && this.depth === 1) {
            this.key = undefined;
            this.keyText = [];
          }
          break;
        }
        case 'prefix': {
          const b = buf[i]!;
          if (
            b === QUOTE ||
            b === BACKSLASH ||
            this.head.length === DATA.length ||
            b !== DATA[this.head.length]
          ) {
            // Not a data URL: the string as it is, from its quote.
            this.emit(Buffer.from([QUOTE, ...this.head]));
            this.keyText?.push(...this.head);
            this.mode = 'string';
            this.escaped = false;
            copiedFrom = i;
            break;
          }
          this.head.push(b);
          i++;
          if (this.head.length === DATA.length) {
            this.keyText = undefined;
            this.mode = 'meta';
            this.escaped = false;
            this.head = [];
            copiedFrom = i;
          }
          break;
        }
        case 'string': {
          const b = buf[i++]!;
          if (this.escaped) this.escaped = false;
          else if (b === BACKSLASH) this.escaped = true;
          else if (b === QUOTE) {
            this.mode = 'json';
            if (this.keyText) this.key = Buffer.from(this.keyText).toString('utf8');
            this.keyText = undefined;
          } else if (this.keyText && this.keyText.length <= OUTPUT.length) this.keyText.push(b);
          break;
        }
        case 'meta': {
          const b = buf[i]!;
          if (this.escaped) {
            this.escaped = false;
          } else if (b === BACKSLASH) {
            this.escaped = true;
          } else if (b === COMMA) {
            i++;
            this.startData();
            copiedFrom = i;
            break;
          } else if (b === QUOTE || this.head.length >= MAX_META) {
            // A string that starts like a data URL and is not one: kept as it is.
            this.emit(Buffer.concat([Buffer.from('"data:'), Buffer.from(this.head)]));
            this.mode = 'string';
            copiedFrom = i;
            break;
          }
          this.head.push(b);
          i++;
          break;
        }
        case 'base64': {
          // Up to the closing quote or an escape (a JSON writer may escape "/" as "\/").
          if (this.escaped) {
            if (buf[i] !== SLASH) throw new CogResponseError('malformed base64 in a data URL output');
            this.addBase64(buf.subarray(i, i + 1));
            this.escaped = false;
            i++;
            break;
          }
          let end = i;
          while (end < buf.length && buf[end] !== QUOTE && buf[end] !== BACKSLASH) end++;
          if (end > i) this.addBase64(buf.subarray(i, end));
          i = end;
          if (i >= buf.length) break;
          if (buf[i] === BACKSLASH) this.escaped = true;
          else this.endFile(this.decoded());
          i++;
          copiedFrom = i;
          break;
        }
        case 'plain': {
          const b = buf[i]!;
          this.plain.push(b);
          i++;
          if (this.escaped) this.escaped = false;
          else if (b === BACKSLASH) this.escaped = true;
          else if (b === QUOTE) {
            // The whole string, as JSON reads it: the payload is what follows its first comma.
            const url = JSON.parse(`"data:${Buffer.from(this.plain).toString('utf8')}`) as string;
            this.plain = [];
            this.endFile(Buffer.from(decodeURIComponent(url.slice(url.indexOf(',') + 1)), 'latin1'));
            copiedFrom = i;
            break;
          }
          if (this.plain.length > this.options.maxBytes) throw new CogResponseError('output too large');
          break;
        }
      }
    }
    if (this.mode === 'json' || this.mode === 'string') flushCopy(i);
    return i;
  }

  /** Hands the output file just decoded to `onFile`, and drops it: the reader holds one file at most. */
  async handOn(): Promise<void> {
    const finished = this.finished;
    if (!finished || !this.options.onFile) return;
    const file = this.files[finished.file] as Uint8Array;
    this.files[finished.file] = new HandedFile(finished.place);
    this.finished = undefined;
    await this.options.onFile(file, finished.place);
  }

  /** A byte of the answer's structure, outside strings. */
  private follow(b: number): void {
    if (b === OPEN_OBJECT || b === OPEN_LIST) {
      if (b === OPEN_LIST && this.depth === 1 && this.key === OUTPUT) {
        this.inOutputList = true;
        this.item = 0;
      }
      this.depth++;
      this.expectKey = b === OPEN_OBJECT;
    } else if (b === CLOSE_OBJECT || b === CLOSE_LIST) {
      this.depth--;
      if (this.depth === 1) this.inOutputList = false;
    } else if (b === COMMA) {
      if (this.depth === 1) this.expectKey = true;
      else if (this.depth === 2 && this.inOutputList) this.item++;
    } else if (b === COLON) {
      this.expectKey = false;
    }
  }

  /** The place in the output of a string value that ends here, or undefined when it is not in the output. */
  private outputPlace(): number | undefined {
    if (this.key !== OUTPUT) return undefined;
    if (this.depth === 1 && !this.inOutputList) return 0;
    if (this.depth === 2 && this.inOutputList) return this.item;
    return undefined;
  }

  /** The answer parsed, with its files in place of their data URLs. */
  end(): unknown {
    if (this.mode !== 'json') throw new CogResponseError('the answer ended inside a string');
    const text = Buffer.concat(this.skeleton).toString('utf8');
    return JSON.parse(text, (_key, value: unknown) =>
      typeof value === 'string' && value.startsWith(PLACEHOLDER)
        ? this.files[Number(value.slice(PLACEHOLDER.length))]
        : value,
    );
  }

  private emit(bytes: Buffer): void {
    this.skeletonBytes += bytes.length;
    if (this.skeletonBytes > this.options.maxBytes) throw new CogResponseError('answer too large');
    // Copied: a chunk's bytes are otherwise kept alive by a subarray of them.
    this.skeleton.push(Buffer.from(bytes));
  }

  /** After a data URL's comma: base64 is decoded on the way; anything else is kept as text (rare, small). */
  private startData(): void {
    // The media type as JSON reads it (a writer may escape its "/").
    const raw = Buffer.from(this.head);
    const meta = (JSON.parse(`"${raw.toString('utf8')}"`) as string).toLowerCase();
    this.startFile();
    if (meta.endsWith(';base64')) this.mode = 'base64';
    else {
      this.mode = 'plain';
      this.plain = [...raw, COMMA];
    }
    this.head = [];
    this.escaped = false;
  }

  private startFile(): void {
    this.pieces = [];
    this.pending = [];
    this.pendingBytes = 0;
    this.fileBytes = 0;
  }

  private addBase64(bytes: Buffer): void {
    this.pending.push(Buffer.from(bytes));
    this.pendingBytes += bytes.length;
    if (this.pendingBytes >= DECODE_BLOCK) this.decodePending(false);
  }

  /** Decodes what is pending, all of it at the end, else the longest run of whole 4-character groups. */
  private decodePending(all: boolean): void {
    const text = Buffer.concat(this.pending, this.pendingBytes);
    const upTo = all ? text.length : text.length - (text.length % 4);
    const piece = Buffer.from(text.subarray(0, upTo).toString('latin1'), 'base64');
    this.fileBytes += piece.length;
    if (this.fileBytes > this.options.maxBytes) throw new CogResponseError('output too large');
    this.pieces.push(piece);
    const rest = text.subarray(upTo);
    this.pending = rest.length > 0 ? [Buffer.from(rest)] : [];
    this.pendingBytes = rest.length;
  }

  private decoded(): Buffer {
    this.decodePending(true);
    const file = Buffer.concat(this.pieces, this.fileBytes);
    this.pieces = [];
    return file;
  }

  private endFile(file: Buffer): void {
    this.emit(Buffer.from(JSON.stringify(`${PLACEHOLDER}${this.files.length}`)));
    this.files.push(file);
    const place = this.options.onFile && this.outputPlace();
    if (place !== undefined) this.finished = { file: this.files.length - 1, place };
    this.mode = 'json';
  }
}
