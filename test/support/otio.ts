import { expect } from 'vitest';
import type { ImageSequenceReference } from '../../functions/core/otio.ts';

/**
 * OTIO's JSON file format, as its file format specification and serialized schema reference write each
 * object: the fields every schema version used here carries, and their types. A document is checked
 * object by object, so a field misspelt or of the wrong type anywhere fails the test.
 */
type FieldType = 'string' | 'number' | 'integer' | 'boolean' | 'object' | 'array' | 'null' | 'time' | 'range';

const FIELDS: Record<string, Record<string, FieldType | FieldType[]>> = {
  'Timeline.1': { name: 'string', metadata: 'object', global_start_time: ['time', 'null'], tracks: 'object' },
  'Stack.1': {
    name: 'string',
    metadata: 'object',
    source_range: ['range', 'null'],
    effects: 'array',
    markers: 'array',
    enabled: 'boolean',
    children: 'array',
  },
  'Track.1': {
    name: 'string',
    metadata: 'object',
    source_range: ['range', 'null'],
    effects: 'array',
    markers: 'array',
    enabled: 'boolean',
    children: 'array',
    kind: 'string',
  },
  'Clip.2': {
    name: 'string',
    metadata: 'object',
    source_range: ['range', 'null'],
    effects: 'array',
    markers: 'array',
    enabled: 'boolean',
    media_references: 'object',
    active_media_reference_key: 'string',
  },
  'ImageSequenceReference.1': {
    name: 'string',
    metadata: 'object',
    available_range: ['range', 'null'],
    available_image_bounds: ['object', 'null'],
    target_url_base: 'string',
    name_prefix: 'string',
    name_suffix: 'string',
    start_frame: 'integer',
    frame_step: 'integer',
    rate: 'number',
    frame_zero_padding: 'integer',
    missing_frame_policy: 'string',
  },
  'TimeRange.1': { start_time: 'time', duration: 'time' },
  'RationalTime.1': { rate: 'number', value: 'number' },
};

function typeOk(value: unknown, type: FieldType): boolean {
  switch (type) {
    case 'null':
      return value === null;
    case 'array':
      return Array.isArray(value);
    case 'object':
      return typeof value === 'object' && value !== null && !Array.isArray(value);
    case 'integer':
      return Number.isInteger(value);
    case 'time':
      return (value as { OTIO_SCHEMA?: string } | null)?.OTIO_SCHEMA === 'RationalTime.1';
    case 'range':
      return (value as { OTIO_SCHEMA?: string } | null)?.OTIO_SCHEMA === 'TimeRange.1';
    default:
      return typeof value === type;
  }
}

/** Checks every OTIO object in `doc` against its schema; answers the ImageSequenceReferences found. */
export function checkOtio(doc: unknown, path = '$'): ImageSequenceReference[] {
  const found: ImageSequenceReference[] = [];
  if (Array.isArray(doc)) {
    for (const [i, d] of doc.entries()) found.push(...checkOtio(d, `${path}[${i}]`));
    return found;
  }
  if (typeof doc !== 'object' || doc === null) return found;
  const obj = doc as Record<string, unknown>;
  const schema = obj.OTIO_SCHEMA;
  if (schema !== undefined) {
    const fields = FIELDS[schema as string];
    expect(fields, `${path}: unknown schema ${String(schema)}`).toBeDefined();
    for (const [name, types] of Object.entries(fields!)) {
      const ok = [types].flat().some((t) => typeOk(obj[name], t));
      expect(ok, `${path}.${name} of ${String(schema)} must be ${[types].flat().join(' or ')}`).toBe(true);
    }
    if (schema === 'Track.1') expect(['Video', 'Audio']).toContain(obj.kind);
    if (schema === 'ImageSequenceReference.1') {
      expect(['error', 'black', 'hold']).toContain(obj.missing_frame_policy);
      found.push(obj as unknown as ImageSequenceReference);
    }
    if (schema === 'Clip.2') {
      const refs = obj.media_references as Record<string, unknown>;
      expect(Object.keys(refs), `${path}: the active media reference key names a reference`).toContain(
        obj.active_media_reference_key,
      );
    }
  }
  for (const [key, value] of Object.entries(obj)) {
    if (key !== 'OTIO_SCHEMA') found.push(...checkOtio(value, `${path}.${key}`));
  }
  return found;
}
