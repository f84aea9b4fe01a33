#!/usr/bin/env node
// `framecast`, the command line (bin/framecast-cli.ts; bin/framecast.ts is the CDK app).
//
// The repository runs TypeScript from its sources. Loading them through tsx's hooks cost the CLI about
// 0.4 s of CPU at every start; instead esbuild (a dev dependency, as tsx is) builds the CLI's own modules
// into plain JavaScript under node_modules/.cache/framecast/cli, once, and every run after that imports the
// build as long as none of its sources changed (their modification times are kept beside it). Packages stay
// outside the build, where Node finds them; the commands that need the AWS SDK still load it only when
// they run (code splitting keeps the build's dynamic imports). Without esbuild, or without a writable
// cache, the sources load through tsx as before.
import { createHash } from 'node:crypto';
import { mkdirSync, readFileSync, renameSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';

const root = fileURLToPath(new URL('..', import.meta.url));
const cache = join(root, 'node_modules', '.cache', 'framecast', 'cli');
const current = join(cache, 'current.json');

/** The built entry, when the build on record is of the sources as they are now. */
function built() {
  try {
    const { entry, inputs } = JSON.parse(readFileSync(current, 'utf8'));
    for (const [file, mtimeMs] of Object.entries(inputs)) {
      if (statSync(join(root, file)).mtimeMs !== mtimeMs) return undefined;
    }
    statSync(entry);
    return entry;
  } catch {
    return undefined;
  }
}

async function build() {
  const { buildSync } = await import('esbuild');
  const result = buildSync({
    absWorkingDir: root,
    entryPoints: ['bin/framecast-cli.ts'],
    bundle: true,
    splitting: true,
    packages: 'external',
    format: 'esm',
    platform: 'node',
    target: `node${process.versions.node.split('.')[0]}`,
    outdir: 'out',
    write: false,
    metafile: true,
    logLevel: 'silent',
  });
  const hash = createHash('sha256');
  for (const file of result.outputFiles) hash.update(file.path).update(file.contents);
  const dir = join(cache, hash.digest('hex').slice(0, 16));
  // Written whole under a name of this process's, then renamed: a run at the same time never reads half.
  const partial = `${dir}.${process.pid}.part`;
  for (const file of result.outputFiles) {
    const to = join(partial, file.path.slice(join(root, 'out').length));
    mkdirSync(dirname(to), { recursive: true });
    writeFileSync(to, file.contents);
  }
  try {
    renameSync(partial, dir);
  } catch {
    rmSync(partial, { recursive: true, force: true }); // the same build, made by another run
  }
  const inputs = Object.fromEntries(
    Object.keys(result.metafile.inputs).map((file) => [file, statSync(join(root, file)).mtimeMs]),
  );
  const entry = join(dir, 'framecast-cli.js');
  const record = `${current}.${process.pid}.part`;
  writeFileSync(record, JSON.stringify({ entry, inputs }));
  renameSync(record, current);
  return entry;
}

let entry = built();
if (entry === undefined) entry = await build().catch(() => undefined);
if (entry !== undefined) {
  await import(pathToFileURL(entry).href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./framecast-cli.ts');
}
