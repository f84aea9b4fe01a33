import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { build } from 'esbuild';
import { describe, expect, it } from 'vitest';

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '../..');

describe('the typed client in a browser', () => {
  it('bundles for the browser with no zod, no AWS SDK and no Node built-in', async () => {
    const result = await build({
      entryPoints: [join(ROOT, 'client/index.ts')],
      bundle: true,
      platform: 'browser',
      format: 'esm',
      write: false,
      metafile: true,
      logLevel: 'silent',
    });
    const inputs = Object.keys(result.metafile.inputs);
    expect(inputs).toEqual(['client/index.ts']);
    const code = result.outputFiles[0]!.text;
    expect(code).toMatch(/FramecastClient = class|class FramecastClient/);
    expect(code).not.toMatch(/from ['"](zod|node:|@aws-sdk)/);
    expect(code.length).toBeLessThan(20_000);
  });
});
