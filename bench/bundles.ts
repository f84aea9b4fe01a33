import { spawnSync } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import { build } from 'esbuild';
import { CONSUMERS, ROUTES } from '../functions/shared/routes.ts';

export interface Bundle {
  /** The bundle's size in KB. */
  readonly kb: number;
  /** Time to import the bundle in a fresh Node process, in ms (what a Lambda cold start pays to load it). */
  readonly importMs: number;
}

/**
 * Each Lambda handler's bundle, built as lib/lambda.ts has the CDK build it: ESM, minified, for Node on
 * Lambda, the AWS SDK bundled, the createRequire banner (source maps left out). One build, no code
 * splitting, so each output is the whole of what that Lambda loads. Each is then imported once in a new
 * Node process with the given environment (the handlers read their configuration at import).
 */
export async function bundles(env: NodeJS.ProcessEnv): Promise<Record<string, Bundle>> {
  const entries = [
    ...new Set([...ROUTES.map((r) => r.entry), CONSUMERS.fanout.entry, CONSUMERS.webhooks.entry]),
  ];
  const outdir = await mkdtemp(join(tmpdir(), 'framecast-bundles-'));
  try {
    const result = await build({
      entryPoints: entries,
      bundle: true,
      metafile: true,
      format: 'esm',
      platform: 'node',
      target: 'node22',
      mainFields: ['module', 'main'],
      minify: true,
      outdir,
      outbase: '.',
      outExtension: { '.js': '.mjs' },
      banner: {
        js:
          "import { createRequire as __framecastCreateRequire } from 'node:module'; " +
          'const require = __framecastCreateRequire(import.meta.url);',
      },
      logLevel: 'error',
    });
    const out: Record<string, Bundle> = {};
    for (const [file, output] of Object.entries(result.metafile.outputs)) {
      if (!output.entryPoint) continue;
      const url = pathToFileURL(join(process.cwd(), file)).href;
      const child = spawnSync(
        process.execPath,
        [
          '--input-type=module',
          '-e',
          `const t = performance.now(); await import(${JSON.stringify(url)}); console.log(performance.now() - t);`,
        ],
        { env, encoding: 'utf8' },
      );
      const importMs = Number(child.stdout.trim().split('\n').at(-1));
      out[output.entryPoint] = {
        kb: output.bytes / 1024,
        importMs: child.status === 0 ? importMs : Number.NaN,
      };
    }
    return Object.fromEntries(entries.map((e) => [e, out[e] ?? { kb: Number.NaN, importMs: Number.NaN }]));
  } finally {
    await rm(outdir, { recursive: true, force: true });
  }
}
