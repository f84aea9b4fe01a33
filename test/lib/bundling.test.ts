import { spawnSync } from 'node:child_process';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { Duration, RemovalPolicy, Stack } from 'aws-cdk-lib';
import { Template } from 'aws-cdk-lib/assertions';
import { RetentionDays } from 'aws-cdk-lib/aws-logs';
import { describe, expect, it } from 'vitest';
import { ROUTES } from '../../functions/shared/routes.ts';
import { FramecastFunction } from '../../lib/lambda.ts';
import { cliLikeApp } from './synth.ts';

const getJob = ROUTES.find((r) => r.entry.endsWith('get-job.ts'))!;

describe('Lambda bundling', () => {
  it('bundles a handler with the local esbuild, no Docker, into one ESM file with its source map', () => {
    const app = cliLikeApp({ bundling: true });
    const stack = new Stack(app, 'Bundled');
    new FramecastFunction(stack, 'GetJob', {
      entry: getJob.entry,
      description: 'bundling test',
      timeout: Duration.seconds(15),
      environment: {},
      logs: { retention: RetentionDays.ONE_DAY, removalPolicy: RemovalPolicy.DESTROY },
    });
    Template.fromStack(stack).hasResourceProperties('AWS::Lambda::Function', {
      Handler: 'index.handler',
      Runtime: 'nodejs24.x',
    });

    const assets = readdirSync(app.outdir).filter(
      (d) => d.startsWith('asset.') && existsSync(join(app.outdir, d, 'index.mjs')),
    );
    expect(assets).toHaveLength(1);
    const dir = join(app.outdir, assets[0]!);
    expect(readdirSync(dir).sort()).toEqual(['index.mjs', 'index.mjs.map']);

    const bundle = readFileSync(join(dir, 'index.mjs'), 'utf8');
    // ESM: the createRequire banner first, an `export` of the handler, and the SDK inside the bundle.
    // (Assertions on excerpts: a failure must not print 700 KB of minified code.)
    expect(bundle.slice(0, 120)).toMatch(
      /^import \{ createRequire as __framecastCreateRequire \} from 'node:module';/,
    );
    expect(bundle.slice(-100)).toMatch(/\/\/# sourceMappingURL=index\.mjs\.map\s*$/);
    expect(/export\s*\{[^}]*\bas handler\b[^}]*\}/.test(bundle), 'an ESM export of handler').toBe(true);
    expect(/from\s*["']@aws-sdk\//.test(bundle), 'the SDK is bundled, not imported').toBe(false);
    // Node parses it as a module: it is valid ESM for the runtime.
    const check = spawnSync(process.execPath, ['--check', join(dir, 'index.mjs')], { encoding: 'utf8' });
    expect(check.status, check.stderr).toBe(0);
  });
});
