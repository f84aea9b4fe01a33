import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { basename, dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { buildSync } from 'esbuild';

/**
 * The review page as the browser gets it: index.html and style.css as written, and app.ts bundled with
 * the typed client into one minified app.js. Local mode builds it when it starts and the CDK stack when it
 * synthesizes, with the esbuild the project already has: a fresh clone needs no build step of its own.
 */

const SOURCE = dirname(fileURLToPath(import.meta.url));

/** The page's files by name, as `functions/review/serve.ts` serves them. */
export type PageFiles = ReadonlyMap<string, Uint8Array>;

export function buildReviewPage(): PageFiles {
  const result = buildSync({
    entryPoints: [join(SOURCE, 'app.ts')],
    bundle: true,
    platform: 'browser',
    format: 'esm',
    target: 'es2022',
    minify: true,
    sourcemap: 'linked',
    sourcesContent: false,
    outfile: 'app.js',
    write: false,
    logLevel: 'silent',
  });
  const files = new Map<string, Uint8Array>();
  for (const out of result.outputFiles) files.set(basename(out.path), out.contents);
  for (const name of ['index.html', 'style.css']) files.set(name, readFileSync(join(SOURCE, name)));
  return files;
}

/** Writes the built page into `dir` (the Lambda asset of the stack, or local mode's temp folder). */
export function writeReviewPage(dir: string, files: PageFiles = buildReviewPage()): string {
  const out = resolve(dir);
  mkdirSync(out, { recursive: true });
  for (const [name, body] of files) writeFileSync(join(out, name), body);
  return out;
}
