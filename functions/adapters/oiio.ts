import { execFile } from 'node:child_process';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { type ColourSettings, modelToExrArgs, plateToModelArgs } from '../core/colour.ts';

/**
 * OpenImageIO's `oiiotool` with OpenColorIO: the colour conversions of EXR plates and EXR output frames
 * (docs/colour.md). Run as a child process with an argument array (never a shell line), on files in a
 * temp folder of its own that goes when the conversion ends. Debian's `openimageio-tools` ships it; the
 * worker image installs it, and local mode finds it on the PATH (or at FRAMECAST_OIIOTOOL).
 */

/** What a machine without oiiotool lacks, said in the words of the package that brings it. */
export const OIIO_MISSING =
  "oiiotool is missing: EXR plates and EXR output need Debian's openimageio-tools and opencolorio-tools " +
  '(apt-get install openimageio-tools opencolorio-tools, or run .ci/run)';

export class OiioError extends Error {
  override readonly name = 'OiioError';
}

export class Oiio {
  constructor(
    readonly colour: ColourSettings,
    /** The oiiotool program: a path, or a name looked up on the PATH. */
    readonly program = 'oiiotool',
  ) {}

  /** An EXR plate frame as the model reads it: an 8-bit PNG in the model's colour space. */
  async plateToModel(exr: Uint8Array): Promise<Buffer> {
    return this.convert(exr, 'plate.exr', 'model.png', (i, o) => plateToModelArgs(this.colour, i, o));
  }

  /** A model's PNG as a delivered frame: half EXR in the plates' colour space, named in its header. */
  async modelToExr(png: Uint8Array, provenance?: string): Promise<Buffer> {
    return this.convert(png, 'model.png', 'frame.exr', (i, o) =>
      modelToExrArgs(this.colour, i, o, provenance),
    );
  }

  /** Runs oiiotool with `args`; answers its standard output. */
  run(args: readonly string[]): Promise<string> {
    return new Promise((resolve, reject) => {
      execFile(this.program, args, { maxBuffer: 16 * 1024 * 1024 }, (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        if ((err as NodeJS.ErrnoException).code === 'ENOENT') return reject(new OiioError(OIIO_MISSING));
        reject(new OiioError(`oiiotool failed: ${(stderr || stdout || err.message).trim().slice(0, 2000)}`));
      });
    });
  }

  private async convert(
    bytes: Uint8Array,
    inName: string,
    outName: string,
    argsOf: (input: string, output: string) => string[],
  ): Promise<Buffer> {
    const dir = await mkdtemp(join(tmpdir(), 'framecast-oiio-'));
    try {
      const input = join(dir, inName);
      const output = join(dir, outName);
      await writeFile(input, bytes);
      await this.run(argsOf(input, output));
      return await readFile(output);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }
}
