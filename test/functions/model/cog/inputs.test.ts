import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { type InputTable, inputSchema, validateInput } from '../../../../functions/model/cog/inputs.ts';

const TABLE = {
  prompt: { type: 'string', minLength: 1, maxLength: 20, required: true },
  guidance_scale: { type: 'number', title: 'Guidance', default: 7.5, minimum: 1, maximum: 20 },
  steps: { type: 'integer', enum: [10, 20, 50], default: 20 },
  window: { type: 'string', enum: ['full', 'tile', 'strip'] },
  tiled: { type: 'boolean', default: false },
} as const satisfies InputTable;

const issuesOf = (input: unknown) => {
  const checked = validateInput(TABLE, input);
  return 'issues' in checked ? checked.issues : [];
};

describe('the Input schema of a table of inputs', () => {
  it('titles each input from its name and orders it by its place in the table, as Cog does', () => {
    const schema = inputSchema(TABLE) as { required: string[]; properties: Record<string, object> };
    expect(schema.required).toEqual(['prompt']);
    expect(Object.keys(schema.properties)).toEqual(['prompt', 'guidance_scale', 'steps', 'window', 'tiled']);
    // Key order as Cog writes it: type, title, the declaration's own keys, x-order; `required` is not one.
    expect(Object.entries(schema.properties.prompt!)).toEqual([
      ['type', 'string'],
      ['title', 'Prompt'],
      ['minLength', 1],
      ['maxLength', 20],
      ['x-order', 0],
    ]);
    expect(schema.properties.guidance_scale).toMatchObject({ title: 'Guidance', 'x-order': 1 });
    expect(Object.keys(schema.properties.guidance_scale!).slice(0, 2)).toEqual(['type', 'title']);
    expect(schema.properties.window).toEqual({
      type: 'string',
      title: 'Window',
      enum: ['full', 'tile', 'strip'],
      'x-order': 3,
    });
  });

  it('leaves out `required` when every input is optional', () => {
    expect(inputSchema({ seed: { type: 'integer' } })).toEqual({
      type: 'object',
      title: 'Input',
      properties: { seed: { type: 'integer', title: 'Seed', 'x-order': 0 } },
    });
  });
});

describe('validating an input against its table', () => {
  it('fills in defaults and leaves an optional input without one absent', () => {
    expect(validateInput(TABLE, { prompt: 'a lighthouse' })).toEqual({
      value: { prompt: 'a lighthouse', guidance_scale: 7.5, steps: 20, tiled: false },
    });
  });

  it('takes any finite number for a number input, and only booleans for a boolean', () => {
    expect(validateInput(TABLE, { prompt: 'p', guidance_scale: 3.25, tiled: true })).toMatchObject({
      value: { guidance_scale: 3.25, tiled: true },
    });
    expect(issuesOf({ prompt: 'p', guidance_scale: '3' })).toEqual([
      { loc: ['body', 'input', 'guidance_scale'], msg: 'Input should be a valid number', type: 'float_type' },
    ]);
    expect(issuesOf({ prompt: 'p', tiled: 'yes' })).toEqual([
      { loc: ['body', 'input', 'tiled'], msg: 'Input should be a valid boolean', type: 'bool_type' },
    ]);
  });

  it('names every choice when a value is not one of them, as pydantic does', () => {
    expect(issuesOf({ prompt: 'p', window: 'side' })).toEqual([
      { loc: ['body', 'input', 'window'], msg: "Input should be 'full', 'tile' or 'strip'", type: 'enum' },
    ]);
    expect(issuesOf({ prompt: 'p', steps: 30 })).toEqual([
      { loc: ['body', 'input', 'steps'], msg: 'Input should be 10, 20 or 50', type: 'enum' },
    ]);
  });

  it('reports every problem at once, each at its input', () => {
    expect(issuesOf({ prompt: 'x'.repeat(21), guidance_scale: 0, extra: 1 })).toEqual([
      {
        loc: ['body', 'input', 'prompt'],
        msg: 'String should have at most 20 characters',
        type: 'string_too_long',
      },
      {
        loc: ['body', 'input', 'guidance_scale'],
        msg: 'Input should be greater than or equal to 1',
        type: 'greater_than_equal',
      },
      { loc: ['body', 'input', 'extra'], msg: "Unexpected field 'extra'", type: 'extra_forbidden' },
    ]);
  });

  it('never throws, and what it accepts keeps to every declaration', () => {
    const anyValue = fc.oneof(
      fc.string({ maxLength: 25 }),
      fc.double(),
      fc.integer(),
      fc.boolean(),
      fc.constantFrom(null, 10, 20, 50, 'full', 'tile'),
    );
    const anyInput = fc.dictionary(
      fc.constantFrom('prompt', 'guidance_scale', 'steps', 'window', 'tiled', 'other'),
      anyValue,
    );
    fc.assert(
      fc.property(anyInput, (input) => {
        const checked = validateInput(TABLE, input);
        if ('issues' in checked) {
          expect(checked.issues.length).toBeGreaterThan(0);
          return;
        }
        const v = checked.value;
        expect(v.prompt.length).toBeGreaterThanOrEqual(1);
        expect(v.prompt.length).toBeLessThanOrEqual(20);
        expect(v.guidance_scale).toBeGreaterThanOrEqual(1);
        expect(v.guidance_scale).toBeLessThanOrEqual(20);
        expect([10, 20, 50]).toContain(v.steps);
        expect([undefined, 'full', 'tile', 'strip']).toContain(v.window);
        expect(typeof v.tiled).toBe('boolean');
        expect(Object.keys(v)).not.toContain('other');
      }),
    );
  });
});

describe('file inputs, as Cog declares Path and list[Path]', () => {
  const FILES = {
    image: { type: 'string', format: 'uri', description: 'A still.' },
    frames: { type: 'array', items: { type: 'string', format: 'uri' }, minItems: 1, maxItems: 3 },
  } as const satisfies InputTable;
  const PNG_URL = 'data:image/png;base64,iVBORw0KGgo=';

  it('writes a file as a uri string and a list of files as an array of them', () => {
    const schema = inputSchema(FILES) as { properties: Record<string, object> };
    expect(JSON.stringify(schema.properties.image)).toBe(
      JSON.stringify({
        type: 'string',
        title: 'Image',
        format: 'uri',
        description: 'A still.',
        'x-order': 0,
      }),
    );
    expect(JSON.stringify(schema.properties.frames)).toBe(
      JSON.stringify({
        type: 'array',
        title: 'Frames',
        items: { type: 'string', format: 'uri' },
        minItems: 1,
        maxItems: 3,
        'x-order': 1,
      }),
    );
  });

  it('takes data, http and https URLs, in order, and types the list as strings', () => {
    const checked = validateInput(FILES, {
      image: 'https://bucket.s3.amazonaws.com/plate.0001.png?X-Amz-Signature=abc',
      frames: [PNG_URL, 'http://127.0.0.1:9000/plate.0002.png'],
    });
    expect(checked).toEqual({
      value: {
        image: 'https://bucket.s3.amazonaws.com/plate.0001.png?X-Amz-Signature=abc',
        frames: [PNG_URL, 'http://127.0.0.1:9000/plate.0002.png'],
      },
    });
    if ('value' in checked) {
      const frames: string[] | undefined = checked.value.frames;
      expect(frames?.length).toBe(2);
    }
  });

  it('refuses what is not a URL, another scheme, a list that is not one, and a list of the wrong length', () => {
    const at = (input: unknown) => {
      const checked = validateInput(FILES, input);
      return 'issues' in checked ? checked.issues : [];
    };
    expect(at({ image: 'plate.png' })).toEqual([
      {
        loc: ['body', 'input', 'image'],
        msg: 'Input should be a valid URL, relative URL without a base',
        type: 'url_parsing',
      },
    ]);
    expect(at({ image: 'file:///etc/passwd' })).toEqual([
      {
        loc: ['body', 'input', 'image'],
        msg: "URL scheme should be 'data', 'http' or 'https'",
        type: 'url_scheme',
      },
    ]);
    expect(at({ frames: PNG_URL })).toEqual([
      { loc: ['body', 'input', 'frames'], msg: 'Input should be a valid list', type: 'list_type' },
    ]);
    expect(at({ frames: [] })).toEqual([
      {
        loc: ['body', 'input', 'frames'],
        msg: 'List should have at least 1 item after validation, not 0',
        type: 'too_short',
      },
    ]);
    expect(at({ frames: [PNG_URL, PNG_URL, PNG_URL, PNG_URL] })).toEqual([
      {
        loc: ['body', 'input', 'frames'],
        msg: 'List should have at most 3 items after validation, not 4',
        type: 'too_long',
      },
    ]);
    // An item at fault is located by its index, as pydantic locates it.
    expect(at({ frames: [PNG_URL, 7] })).toEqual([
      { loc: ['body', 'input', 'frames', 1], msg: 'Input should be a valid string', type: 'string_type' },
    ]);
  });
});
