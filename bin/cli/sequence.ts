import { createHash } from 'node:crypto';
import { createReadStream } from 'node:fs';
import { readdir } from 'node:fs/promises';
import { basename, dirname, extname, join } from 'node:path';

/**
 * Frame-sequence patterns as compositing tools write them: `plate.####.png` (one `#` a digit),
 * `plate.%04d.png` (printf) and `plate.[1001-1048].png` (an explicit range). A name without any of them
 * is one file: a still.
 */
/** A pattern that names no usable sequence: a usage error of the CLI. */
export class SequenceError extends Error {}

export interface SequencePattern {
  readonly dir: string;
  readonly prefix: string;
  readonly suffix: string;
  /** Digits of a frame number in a name (zero padded); 0 for unpadded (`%d`). */
  readonly padding: number;
  /** For the range form: exactly these frames. */
  readonly range?: { readonly start: number; readonly end: number };
}

export function parsePattern(pattern: string): SequencePattern | undefined {
  const dir = dirname(pattern);
  const name = basename(pattern);
  const hashes = /^(.*?)(#+)([^#]*)$/.exec(name);
  if (hashes) return { dir, prefix: hashes[1]!, padding: hashes[2]!.length, suffix: hashes[3]! };
  const printf = /^(.*?)%(0?(\d+))?d(.*)$/.exec(name);
  if (printf) return { dir, prefix: printf[1]!, padding: Number(printf[3] ?? 0), suffix: printf[4]! };
  const range = /^(.*?)\[(\d+)-(\d+)\](.*)$/.exec(name);
  if (range) {
    const [start, end] = [Number(range[2]), Number(range[3])];
    if (end < start) throw new SequenceError(`${pattern}: the range ends before it starts`);
    return { dir, prefix: range[1]!, padding: range[2]!.length, suffix: range[4]!, range: { start, end } };
  }
  return undefined;
}

export const frameFileName = (p: SequencePattern, frame: number) =>
  `${p.prefix}${String(frame).padStart(p.padding, '0')}${p.suffix}`;

export interface SequenceFile {
  readonly path: string;
  /** Absent for a still. */
  readonly frame?: number;
}

const literal = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** The files a pattern names, in frame order; a range must be complete. */
export async function findSequence(pattern: string): Promise<SequenceFile[]> {
  const p = parsePattern(pattern);
  if (!p) return [{ path: pattern }];
  const names = await readdir(p.dir).catch(() => {
    throw new SequenceError(`${pattern}: no folder ${p.dir}`);
  });
  const digits = p.padding > 0 ? `\\d{${p.padding},}` : '\\d+';
  const re = new RegExp(`^${literal(p.prefix)}(${digits})${literal(p.suffix)}$`);
  const found = new Map<number, string>();
  for (const name of names) {
    const m = re.exec(name);
    if (!m) continue;
    const frame = Number(m[1]);
    if (p.range && (frame < p.range.start || frame > p.range.end)) continue;
    found.set(frame, join(p.dir, name));
  }
  if (p.range) {
    const missing: number[] = [];
    for (let f = p.range.start; f <= p.range.end; f++) if (!found.has(f)) missing.push(f);
    if (missing.length > 0)
      throw new SequenceError(
        `${pattern}: missing frame${missing.length > 1 ? 's' : ''} ${missing.slice(0, 10).join(', ')}`,
      );
  }
  if (found.size === 0) throw new SequenceError(`${pattern}: no file matches`);
  return [...found.entries()].sort(([a], [b]) => a - b).map(([frame, path]) => ({ path, frame }));
}

/** The asset's format by the file's extension. */
export function formatOf(path: string): 'png' | 'jpeg' | 'exr' {
  const ext = extname(path).toLowerCase();
  if (ext === '.png') return 'png';
  if (ext === '.jpg' || ext === '.jpeg') return 'jpeg';
  if (ext === '.exr') return 'exr';
  throw new SequenceError(`${path}: unknown format ${ext || '(no extension)'}; png, jpeg and exr are known`);
}

/** A default asset name from a pattern: the name without its frame part and extension. */
export function assetNameOf(pattern: string): string {
  const p = parsePattern(pattern);
  const stem = p ? `${p.prefix}${p.suffix}` : basename(pattern);
  const name = stem
    .replace(/\.[A-Za-z0-9]+$/, '')
    .replace(/[._-]+$/, '')
    .replace(/[^A-Za-z0-9_.-]/g, '_')
    .replace(/\.\.+/g, '.');
  return name.slice(0, 128) || 'asset';
}

export function sha256File(path: string): Promise<{ sha256: string; size: number }> {
  return new Promise((ok, fail) => {
    const hash = createHash('sha256');
    let size = 0;
    createReadStream(path)
      .on('data', (chunk) => {
        hash.update(chunk);
        size += chunk.length;
      })
      .on('error', fail)
      .on('end', () => ok({ sha256: hash.digest('hex'), size }));
  });
}
