import type { JobRecord } from './model.ts';

/**
 * Delivered frame names (docs/colour.md, "Naming"): a production's naming template, such as
 * `{shot}_{pass}_v{version:03}.{frame:04}.{ext}`, decides the file name of every frame it delivers. The
 * default, `{shot}.{frame:04}.{ext}`, is the design's `<shot>.<frame>.png`. Pure: parsing, checking and
 * rendering templates, and the parts a frame-sequence reader (an OTIO ImageSequenceReference) needs.
 */

export const DEFAULT_NAMING_TEMPLATE = '{shot}.{frame:04}.{ext}';

/** What a name may hold: the characters every file system, S3 key and compositing tool takes as they are. */
export const LEGAL_NAME = /^[A-Za-z0-9_.-]{1,255}$/;
const LEGAL_TEXT = /^[A-Za-z0-9_.-]*$/;

export const NAMING_FIELDS = ['shot', 'pass', 'version', 'frame', 'ext'] as const;
export type NamingField = (typeof NAMING_FIELDS)[number];

type Part = { readonly text: string } | { readonly field: NamingField; readonly pad: number };

export interface NamingTemplate {
  readonly source: string;
  readonly parts: readonly Part[];
}

export interface NameValues {
  readonly shot: string;
  readonly frame: number;
  readonly ext: string;
  /** The production's pass name (e.g. `comp`, `fg`); needed when the template has `{pass}`. */
  readonly pass?: string;
  /** The delivery's version, from 1; needed when the template has `{version}`. */
  readonly version?: number;
}

export class NamingError extends Error {
  override readonly name = 'NamingError';
}

const FIELD = /\{([a-z]+)(?::(\d{1,2}))?\}/g;

/**
 * Parses and checks a template: literal text of legal name characters and the fields `{shot}`, `{pass}`,
 * `{version}`, `{frame}` and `{ext}`, numbers with an optional zero padding (`{frame:04}`). It must end
 * in `{frame}.{ext}` preceded by `.` or `_`, so every tool reads the frames as one sequence, and hold
 * `{shot}` (names of different shots never meet), each field at most once. Throws a NamingError saying
 * what is wrong.
 */
export function parseTemplate(source: string): NamingTemplate {
  if (source.length === 0 || source.length > 200) throw new NamingError('must be 1 to 200 characters');
  const parts: Part[] = [];
  const seen = new Set<string>();
  let at = 0;
  for (const m of source.matchAll(FIELD)) {
    const text = source.slice(at, m.index);
    if (text) parts.push({ text });
    const [whole, name, pad] = m;
    if (!(NAMING_FIELDS as readonly string[]).includes(name!)) {
      throw new NamingError(
        `unknown field {${name}}; the fields are ${NAMING_FIELDS.map((f) => `{${f}}`).join(', ')}`,
      );
    }
    if (seen.has(name!)) throw new NamingError(`{${name}} appears more than once`);
    seen.add(name!);
    if (pad !== undefined && name !== 'frame' && name !== 'version') {
      throw new NamingError(`{${name}} is text and takes no padding`);
    }
    parts.push({
      field: name as NamingField,
      pad: pad === undefined ? (name === 'frame' ? 4 : 1) : Number(pad),
    });
    at = m.index + whole.length;
  }
  const tail = source.slice(at);
  if (tail) parts.push({ text: tail });
  for (const part of parts) {
    if ('text' in part && !LEGAL_TEXT.test(part.text)) {
      throw new NamingError(
        `"${part.text}" holds a character a frame name may not have (letters, digits, "_", "." and "-" only, and fields in braces)`,
      );
    }
  }
  if (!seen.has('shot')) throw new NamingError('must hold {shot}');
  const n = parts.length;
  const [sep, frame, dot, ext] = [parts[n - 4], parts[n - 3], parts[n - 2], parts[n - 1]];
  const endsRight =
    ext &&
    'field' in ext &&
    ext.field === 'ext' &&
    dot &&
    'text' in dot &&
    dot.text === '.' &&
    frame &&
    'field' in frame &&
    frame.field === 'frame' &&
    sep &&
    'text' in sep &&
    /[._]$/.test(sep.text);
  if (!endsRight)
    throw new NamingError('must end in {frame}.{ext} after a "." or "_", e.g. {shot}.{frame:04}.{ext}');
  return { source, parts };
}

/** True when the template names a field. */
export const hasField = (t: NamingTemplate, field: NamingField): boolean =>
  t.parts.some((p) => 'field' in p && p.field === field);

const padded = (n: number, pad: number) => String(n).padStart(pad, '0');

function fieldValue(part: { field: NamingField; pad: number }, v: NameValues): string {
  switch (part.field) {
    case 'shot':
      return v.shot;
    case 'ext':
      return v.ext;
    case 'frame':
      return padded(v.frame, part.pad);
    case 'pass':
      if (v.pass === undefined) throw new NamingError('the template names {pass} and no pass is given');
      return v.pass;
    case 'version':
      if (v.version === undefined)
        throw new NamingError('the template names {version} and no version is given');
      return padded(v.version, part.pad);
  }
}

/** A frame's file name; throws a NamingError when a value would make an illegal name. */
export function renderName(t: NamingTemplate, v: NameValues): string {
  if (!Number.isSafeInteger(v.frame) || v.frame < 0)
    throw new NamingError(`frame ${v.frame} is not a frame number`);
  if (v.version !== undefined && (!Number.isSafeInteger(v.version) || v.version < 1)) {
    throw new NamingError(`version ${v.version} is not a version number (1 or more)`);
  }
  const name = t.parts.map((p) => ('text' in p ? p.text : fieldValue(p, v))).join('');
  if (!LEGAL_NAME.test(name) || /^\.+$/.test(name)) {
    throw new NamingError(`"${name}" is not a legal frame name (1 to 255 letters, digits, "_", "." or "-")`);
  }
  return name;
}

/**
 * A sequence's name around its frame number: what an OpenTimelineIO ImageSequenceReference calls
 * `name_prefix`, `name_suffix` and `frame_zero_padding`.
 */
export function sequenceParts(
  t: NamingTemplate,
  v: Omit<NameValues, 'frame'>,
): { prefix: string; suffix: string; padding: number } {
  const at = t.parts.findIndex((p) => 'field' in p && p.field === 'frame');
  const frame = t.parts[at] as { field: 'frame'; pad: number };
  const render = (parts: readonly Part[]) =>
    parts.map((p) => ('text' in p ? p.text : fieldValue(p, { ...v, frame: 0 }))).join('');
  return { prefix: render(t.parts.slice(0, at)), suffix: render(t.parts.slice(at + 1)), padding: frame.pad };
}

/**
 * The values a name was rendered from, or undefined when the name does not follow the template. The frame
 * and version come back as numbers; with adjacent text fields the split is the first that fits.
 */
export function parseName(t: NamingTemplate, name: string): Partial<NameValues> | undefined {
  const fields: NamingField[] = [];
  const pattern = t.parts
    .map((p) => {
      if ('text' in p) return p.text.replace(/[.-]/g, '\\$&');
      fields.push(p.field);
      return p.field === 'frame' || p.field === 'version' ? `(\\d{${p.pad},})` : '([A-Za-z0-9_.-]+?)';
    })
    .join('');
  const m = new RegExp(`^${pattern}$`).exec(name);
  if (!m) return undefined;
  const out: Record<string, string | number> = {};
  fields.forEach((f, i) => {
    const value = m[i + 1]!;
    out[f] = f === 'frame' || f === 'version' ? Number(value) : value;
  });
  return out as Partial<NameValues>;
}

/** The delivered sequence of a job around its frame numbers (its format, pass and version as it recorded them). */
export const jobSequenceParts = (t: NamingTemplate, job: Pick<JobRecord, 'shot' | 'output'>) =>
  sequenceParts(t, {
    shot: job.shot,
    ext: job.output?.format === 'exr' ? 'exr' : 'png',
    ...(job.output?.pass !== undefined && { pass: job.output.pass }),
    ...(job.output?.version !== undefined && { version: job.output.version }),
  });
