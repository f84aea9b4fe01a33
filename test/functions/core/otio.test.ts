import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { parseTemplate, renderName, sequenceParts } from '../../../functions/core/naming.ts';
import { sequenceTimeline, sequenceUrls } from '../../../functions/core/otio.ts';
import { checkOtio } from '../../support/otio.ts';

const spec = {
  name: 'EP101_SH040',
  targetUrlBase: 's3://frames/acme/EP101_SH040/job_1/',
  prefix: 'EP101_SH040.',
  suffix: '.exr',
  padding: 4,
  frames: { start: 1001, end: 1048 },
  rate: 24,
  complete: true,
};

describe('a job timeline', () => {
  it("follows OTIO's file format: one track of one clip whose media is an image sequence", () => {
    const doc = JSON.parse(JSON.stringify(sequenceTimeline(spec)));
    const refs = checkOtio(doc);
    expect(refs).toHaveLength(1);
    expect(doc.OTIO_SCHEMA).toBe('Timeline.1');
    expect(doc.tracks.children).toHaveLength(1);
    expect(doc.tracks.children[0].children).toHaveLength(1);
    expect(refs[0]).toMatchObject({
      target_url_base: spec.targetUrlBase,
      name_prefix: 'EP101_SH040.',
      name_suffix: '.exr',
      start_frame: 1001,
      frame_step: 1,
      rate: 24,
      frame_zero_padding: 4,
      missing_frame_policy: 'error',
      available_range: { start_time: { value: 1001, rate: 24 }, duration: { value: 48, rate: 24 } },
    });
  });

  it('shows missing frames as black when the job did not make them all', () => {
    const [ref] = checkOtio(sequenceTimeline({ ...spec, complete: false }));
    expect(ref!.missing_frame_policy).toBe('black');
  });

  it('refuses a rate that is not positive', () => {
    expect(() => sequenceTimeline({ ...spec, rate: 0 })).toThrow(/rate/);
  });
});

describe('the frame paths a timeline names', () => {
  it('are exactly the names the naming template gives each frame of the range', () => {
    const t = parseTemplate('{shot}_{pass}_v{version:03}.{frame:04}.{ext}');
    fc.assert(
      fc.property(
        fc.integer({ min: 0, max: 100_000 }),
        fc.integer({ min: 1, max: 50 }),
        fc.integer({ min: 1, max: 999 }),
        (start, count, version) => {
          const values = { shot: 'EP101_SH040', pass: 'comp', version, ext: 'exr' };
          const parts = sequenceParts(t, values);
          const frames = { start, end: start + count - 1 };
          const [ref] = checkOtio(sequenceTimeline({ ...spec, ...parts, frames }));
          const urls = sequenceUrls(ref!);
          expect(urls.map((u) => u.frame)).toEqual(Array.from({ length: count }, (_, i) => start + i));
          for (const { frame, url } of urls) {
            expect(url).toBe(`${spec.targetUrlBase}${renderName(t, { ...values, frame })}`);
          }
        },
      ),
    );
  });

  it('join a base without a trailing slash with one, as OTIO does', () => {
    const [ref] = checkOtio(
      sequenceTimeline({ ...spec, targetUrlBase: 's3://b/p', frames: { start: 1, end: 1 } }),
    );
    expect(sequenceUrls(ref!)).toEqual([{ frame: 1, url: 's3://b/p/EP101_SH040.0001.exr' }]);
  });
});
