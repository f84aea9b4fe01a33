import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { frameFileName } from '../../../functions/core/frames.ts';
import {
  DEFAULT_NAMING_TEMPLATE,
  LEGAL_NAME,
  NamingError,
  parseName,
  parseTemplate,
  renderName,
  sequenceParts,
} from '../../../functions/core/naming.ts';

const STUDIO = '{shot}_{pass}_v{version:03}.{frame:04}.{ext}';

const legal = fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9_-]{0,30}$/);
const shot = fc.stringMatching(/^[A-Za-z0-9_.-]{1,64}$/).filter((s) => !/^\.+$/.test(s));
const frame = fc.integer({ min: 0, max: 9_999_999 });
const version = fc.integer({ min: 1, max: 99_999 });
const ext = fc.constantFrom('png', 'exr');

describe('the default template', () => {
  it("names every frame exactly as the design's <shot>.<frame>.png does", () => {
    const t = parseTemplate(DEFAULT_NAMING_TEMPLATE);
    fc.assert(
      fc.property(shot, frame, ext, (s, f, e) => {
        expect(renderName(t, { shot: s, frame: f, ext: e })).toBe(frameFileName(s, f, e));
      }),
    );
  });
});

describe('a studio template', () => {
  const t = parseTemplate(STUDIO);

  it('renders the example the production gave', () => {
    expect(renderName(t, { shot: 'EP101_SH040', pass: 'comp', version: 3, frame: 1001, ext: 'exr' })).toBe(
      'EP101_SH040_comp_v003.1001.exr',
    );
  });

  it('gives legal names that read back as the frame and version they were made from', () => {
    fc.assert(
      fc.property(legal, legal, version, frame, ext, (s, p, v, f, e) => {
        const name = renderName(t, { shot: s, pass: p, version: v, frame: f, ext: e });
        expect(name).toMatch(LEGAL_NAME);
        expect(parseName(t, name)).toMatchObject({ version: v, frame: f, ext: e });
      }),
    );
  });

  it('orders the frames of one delivery as a sequence: one prefix and suffix around the frame number', () => {
    fc.assert(
      fc.property(legal, legal, version, frame, (s, p, v, f) => {
        const values = { shot: s, pass: p, version: v, ext: 'exr' };
        const { prefix, suffix, padding } = sequenceParts(t, values);
        expect(renderName(t, { ...values, frame: f })).toBe(
          `${prefix}${String(f).padStart(padding, '0')}${suffix}`,
        );
      }),
    );
  });

  it('needs the pass and version it names', () => {
    expect(() => renderName(t, { shot: 'A', frame: 1, ext: 'exr', version: 1 })).toThrow(/\{pass\}/);
    expect(() => renderName(t, { shot: 'A', frame: 1, ext: 'exr', pass: 'comp' })).toThrow(/\{version\}/);
    expect(() => renderName(t, { shot: 'A', frame: 1, ext: 'exr', pass: 'comp', version: 0 })).toThrow(
      /version/,
    );
  });
});

describe('templates refused', () => {
  it.each([
    ['', /1 to 200/],
    ['{shot}.{frame:04}.png', /must end in \{frame\}\.\{ext\}/],
    ['{shot}{frame}.{ext}', /after a "\." or "_"/],
    ['{frame}.{ext}', /must hold \{shot\}/],
    ['{shot}/{frame}.{ext}', /character a frame name may not have/],
    ['{shot} {frame}.{ext}', /character a frame name may not have/],
    ['{shot}.{take}.{frame}.{ext}', /unknown field \{take\}/],
    ['{shot}.{shot}.{frame}.{ext}', /more than once/],
    ['{shot:03}.{frame}.{ext}', /takes no padding/],
  ])('%j', (source, message) => {
    expect(() => parseTemplate(source)).toThrow(NamingError);
    expect(() => parseTemplate(source)).toThrow(message);
  });

  it('whatever text is put around the fields, a template that parses renders only legal names', () => {
    const text = fc.string({ maxLength: 6 });
    fc.assert(
      fc.property(text, text, legal, frame, (a, b, s, f) => {
        let t: ReturnType<typeof parseTemplate>;
        try {
          t = parseTemplate(`${a}{shot}${b}.{frame}.{ext}`);
        } catch (err) {
          expect(err).toBeInstanceOf(NamingError);
          return;
        }
        expect(renderName(t, { shot: s, frame: f, ext: 'exr' })).toMatch(LEGAL_NAME);
      }),
    );
  });
});

describe('names refused', () => {
  it('refuses a pass that would put an illegal character in a name', () => {
    const t = parseTemplate(STUDIO);
    expect(() => renderName(t, { shot: 'A', pass: 'co mp', version: 1, frame: 1, ext: 'exr' })).toThrow(
      /not a legal frame name/,
    );
  });

  it('does not read a name of another template', () => {
    expect(parseName(parseTemplate(STUDIO), 'EP101_SH040.1001.exr')).toBeUndefined();
  });
});
