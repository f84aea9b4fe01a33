import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { describe, expect, it } from 'vitest';
import { CHROMATICITIES, DEFAULT_COLOUR, DEFAULT_OCIO_CONFIG } from '../../functions/core/colour.ts';

/** The project's own OCIO config, checked by OpenColorIO's own tool. */

const run = promisify(execFile);

describe('colour/framecast.ocio', () => {
  it('passes ociocheck without an error or a warning', async () => {
    const { stdout, stderr } = await run('ociocheck', ['--iconfig', DEFAULT_OCIO_CONFIG]);
    const out = `${stdout}${stderr}`;
    expect(out).toMatch(/\*\* Validation \*\*\s+passed/);
    expect(out).not.toMatch(/WARNING|ERROR/);
  });

  it('defines the default spaces and every space whose primaries the EXR header names', async () => {
    const { stdout } = await run('ociocheck', ['--iconfig', DEFAULT_OCIO_CONFIG]);
    const spaces = stdout.split('** ColorSpaces **')[1]!.split('**')[0]!.trim().split('\n');
    for (const name of [DEFAULT_COLOUR.plates, DEFAULT_COLOUR.model, ...Object.keys(CHROMATICITIES), 'Raw']) {
      expect(spaces).toContain(name);
    }
  });
});
