import { build } from 'esbuild';
import { CONSUMERS, ROUTES } from '../functions/shared/routes.ts';

/**
 * The size of each Lambda handler's bundle, in KB, built as lib/lambda.ts has the CDK build it: ESM,
 * minified, for Node on Lambda, the AWS SDK bundled (source maps left out). One build, no code splitting,
 * so each output is the whole of what that Lambda loads.
 */
export async function bundleSizes(): Promise<Record<string, number>> {
  const entries = [
    ...new Set([...ROUTES.map((r) => r.entry), CONSUMERS.fanout.entry, CONSUMERS.webhooks.entry]),
  ];
  const result = await build({
    entryPoints: entries,
    bundle: true,
    write: false,
    metafile: true,
    format: 'esm',
    platform: 'node',
    target: 'node22',
    mainFields: ['module', 'main'],
    minify: true,
    outdir: 'bundles',
    outbase: '.',
    logLevel: 'error',
  });
  const sizes: Record<string, number> = {};
  for (const output of Object.values(result.metafile.outputs)) {
    if (output.entryPoint) sizes[output.entryPoint] = output.bytes / 1024;
  }
  return Object.fromEntries(entries.map((e) => [e, sizes[e] ?? Number.NaN]));
}
