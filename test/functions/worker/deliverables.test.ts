import { describe, expect, it } from 'vitest';
import { isExr } from '../../../functions/core/colour.ts';
import { parseTemplate } from '../../../functions/core/naming.ts';
import { isPng, PROVENANCE_KEYWORD, readPng, withProvenance } from '../../../functions/core/png.ts';
import { deliverFrames, exrPlates, type PlateStaging } from '../../../functions/worker/deliverables.ts';
import { exrInfo, exrPlate, oiio } from '../../support/exr.ts';
import { pngFrame, sha256Hex } from '../../support/images.ts';

/** The worker's colour seams, on the real oiiotool, with staging kept in a Map. */

function staging(contents: Map<string, Buffer>) {
  const staged = new Map<string, Uint8Array>();
  const calls = { reads: 0, puts: 0 };
  const deps: PlateStaging = {
    head: async (_t, sha) => contents.get(sha)!.subarray(0, 4),
    read: async (_t, sha) => {
      calls.reads++;
      return contents.get(sha)!;
    },
    presign: async (t, sha) => `https://assets/${t}/${sha}`,
    exists: async (key) => staged.has(key),
    put: async (key, png) => {
      calls.puts++;
      staged.set(key, png);
    },
    presignStaged: async (key) => `https://frames/${key}`,
  };
  return { deps, staged, calls };
}

describe('EXR plates for the model', () => {
  it('hands a PNG plate over as it is, and an EXR one as a PNG in the model space, converted once', async () => {
    const [png, exr] = [await pngFrame(16, 16, 1), await exrPlate(16, 16)];
    const s = staging(
      new Map([
        [sha256Hex(png), png],
        [sha256Hex(exr), exr],
      ]),
    );
    const plates = exrPlates(s.deps, oiio);
    expect(await plates.presign('acme', sha256Hex(png))).toBe(`https://assets/acme/${sha256Hex(png)}`);
    const url = await plates.presign('acme', sha256Hex(exr));
    expect(url).toMatch(new RegExp(`^https://frames/\\.colour/acme/${sha256Hex(exr)}-[0-9a-f]{16}\\.png$`));
    expect(await plates.presign('acme', sha256Hex(exr))).toBe(url);
    expect(s.calls).toEqual({ reads: 1, puts: 1 });
    const [staged] = [...s.staged.values()];
    expect(isPng(staged!)).toBe(true);
    expect(readPng(staged!)).toMatchObject({ width: 16, height: 16, bitDepth: 8 });
    // For video inputs: the same PNG's bytes.
    expect(Buffer.from(await plates.read('acme', sha256Hex(exr)))).toEqual(Buffer.from(staged!));
    expect(isExr(await plates.read('acme', sha256Hex(png)))).toBe(false);
  });

  it('finds a conversion another worker staged and converts nothing', async () => {
    const exr = await exrPlate(8, 8);
    const first = staging(new Map([[sha256Hex(exr), exr]]));
    const url = await exrPlates(first.deps, oiio).presign('acme', sha256Hex(exr));
    const second = staging(new Map([[sha256Hex(exr), exr]]));
    for (const [k, v] of first.staged) second.staged.set(k, v);
    expect(await exrPlates(second.deps, oiio).presign('acme', sha256Hex(exr))).toBe(url);
    expect(second.calls).toEqual({ reads: 0, puts: 0 });
  });
});

describe('delivered frames', () => {
  const job = {
    id: 'job_01JBZ8Q1XG9X3J5W2Y7K4M6N8P',
    tenant: 'acme',
    shot: 'EP101_SH040',
    output: { format: 'exr' as const, pass: 'comp', version: 2 },
  } as Parameters<ReturnType<typeof deliverFrames>>[0];

  it('are the PNG under the default name unless the job asks for EXR', async () => {
    const png = await pngFrame(8, 8, 2);
    const out = await deliverFrames(oiio)({ ...job, output: undefined } as typeof job, 1001, png);
    expect(out).toEqual({
      key: `acme/EP101_SH040/${job.id}/EP101_SH040.1001.png`,
      body: png,
      contentType: 'image/png',
    });
  });

  it('are EXR under the production template, with the provenance record in the header', async () => {
    const png = withProvenance(await oiio.plateToModel(await exrPlate(8, 8)), {
      generator: 'framecast',
      model: 'reference',
      prompt: 'dust at {dusk}',
      seed: 7,
      frame: 1001,
      jobId: job.id,
      width: 8,
      height: 8,
    });
    const out = await deliverFrames(oiio, parseTemplate('{shot}_{pass}_v{version:03}.{frame:04}.{ext}'))(
      job,
      1001,
      png,
    );
    expect(out.key).toBe(`acme/EP101_SH040/${job.id}/EP101_SH040_comp_v002.1001.exr`);
    expect(out.contentType).toBe('image/x-exr');
    expect(isExr(out.body)).toBe(true);
    const info = await exrInfo(out.body);
    expect(info).toMatch(/colorSpace: "ACEScg"/);
    expect(info).toContain(`framecast:provenance: "${readPng(png).text[PROVENANCE_KEYWORD]}"`);
    expect(info).toContain('"prompt":"dust at {dusk}"');
  });

  it('cannot be EXR on a worker without conversions', async () => {
    await expect(deliverFrames()(job, 1001, await pngFrame(8, 8, 3))).rejects.toThrow(/cannot write EXR/);
  });
});
