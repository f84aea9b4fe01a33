import { readdirSync, readFileSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import ts from 'typescript';
import { describe, expect, it } from 'vitest';

/**
 * Dependencies point one way: the layout is the architecture, and this test keeps it so. It reads the
 * imports of every source file with TypeScript's own pre-processor and fails on one that goes against
 * the rules below. docs/architecture.md shows the same map for people.
 */

const ROOT = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const SOURCE_DIRS = ['functions', 'lib', 'local', 'bin', 'bench', 'client', 'review'];

interface Rule {
  /** Files the rule is about: a folder prefix relative to the project root. */
  readonly from: string;
  readonly why: string;
  /** Import targets refused: project folders (prefix) or package names (prefix, e.g. `@aws-sdk/`). */
  readonly refuse?: readonly string[];
  /** When set, relative imports must land in one of these folders. */
  readonly only?: readonly string[];
}

const HANDLER_FOLDERS = [
  'functions/api/',
  'functions/worker/',
  'functions/fanout/',
  'functions/webhooks/',
  'functions/consumers/',
];
const CLOUD_PACKAGES = ['@aws-sdk/', '@middy/', '@aws-lambda-powertools/', 'aws-cdk-lib', 'constructs'];

const RULES: readonly Rule[] = [
  {
    from: 'client/',
    why: 'the typed client runs in Node and in browsers: fetch only, types from the core, no AWS SDK',
    refuse: CLOUD_PACKAGES,
    only: ['client/', 'functions/core/'],
  },
  {
    from: 'review/',
    why: 'the review page runs in browsers and reaches the API through the typed client only',
    refuse: CLOUD_PACKAGES,
    only: ['review/', 'client/'],
  },
  {
    from: 'functions/core/',
    why: 'the domain core is pure: no AWS SDK, no middy, nothing outside core/',
    refuse: CLOUD_PACKAGES,
    only: ['functions/core/'],
  },
  {
    from: 'functions/shared/',
    why: 'the contracts shared with the infrastructure are plain data over the core',
    refuse: CLOUD_PACKAGES,
    only: ['functions/shared/', 'functions/core/'],
  },
  {
    from: 'functions/adapters/',
    why: 'adapters implement storage and transport; they know no service, handler or worker',
    refuse: ['functions/services/', ...HANDLER_FOLDERS],
  },
  {
    from: 'functions/services/',
    why: 'services are called by handlers, never the other way round',
    refuse: HANDLER_FOLDERS,
  },
  {
    from: 'functions/',
    why: 'what runs in the cloud never imports the infrastructure, local mode or the entry points',
    refuse: ['lib/', 'local/', 'bin/', 'aws-cdk-lib', 'constructs'],
  },
  {
    from: 'lib/',
    why: 'the infrastructure reads the runtime only through its shared contracts',
    refuse: [
      'functions/adapters/',
      'functions/services/',
      'functions/core/',
      'local/',
      'bin/',
      ...HANDLER_FOLDERS,
    ],
  },
];

function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true, recursive: true })
    .filter((e) => e.isFile() && e.name.endsWith('.ts'))
    .map((e) => relative(ROOT, join(e.parentPath, e.name)));
}

/** What `file` imports: project paths relative to the root for relative imports, package names otherwise. */
function importsOf(file: string, source: string): string[] {
  return ts
    .preProcessFile(source, true, true)
    .importedFiles.map(({ fileName }) =>
      fileName.startsWith('.') ? relative(ROOT, resolve(ROOT, dirname(file), fileName)) : fileName,
    );
}

/** The rules `file` breaks by importing `target`, as messages. */
function violations(file: string, targets: readonly string[], rules = RULES): string[] {
  const out: string[] = [];
  for (const rule of rules) {
    if (!file.startsWith(rule.from)) continue;
    for (const target of targets) {
      const relativeTarget = !target.startsWith('@') && target.includes('/') && target.endsWith('.ts');
      const refused = rule.refuse?.some(
        (r) => target === r || target.startsWith(r.endsWith('/') ? r : `${r}/`),
      );
      const outside = relativeTarget && rule.only && !rule.only.some((o) => target.startsWith(o));
      if (refused || outside) out.push(`${file} imports ${target}: ${rule.why}`);
    }
  }
  return out;
}

describe('the import rules', () => {
  const files = SOURCE_DIRS.flatMap(sourceFiles);

  it('find every source file of the project', () => {
    expect(files.length).toBeGreaterThan(60);
    expect(files).toContain('functions/core/state.ts');
    expect(files).toContain('lib/framecast-stack.ts');
  });

  it('hold for every import of every source file', () => {
    const broken = files.flatMap((file) =>
      violations(file, importsOf(file, readFileSync(join(ROOT, file), 'utf8'))),
    );
    expect(broken).toEqual([]);
  });

  it('refuse an AWS SDK or an outside import in the core', () => {
    expect(violations('functions/core/x.ts', ['@aws-sdk/client-s3'])).toHaveLength(1);
    expect(violations('functions/core/x.ts', ['@middy/core'])).toHaveLength(1);
    expect(violations('functions/core/x.ts', ['functions/adapters/queues.ts'])).toHaveLength(1);
    expect(violations('functions/core/x.ts', ['zod', 'node:crypto', 'functions/core/ids.ts'])).toEqual([]);
  });

  it('let the client import the core and zod as types only, so its bundle carries neither', () => {
    const broken = files
      .filter((f) => f.startsWith('client/'))
      .flatMap((file) =>
        ts
          .createSourceFile(file, readFileSync(join(ROOT, file), 'utf8'), ts.ScriptTarget.Latest)
          .statements.filter(
            (s) =>
              (ts.isImportDeclaration(s) || ts.isExportDeclaration(s)) &&
              s.moduleSpecifier &&
              ts.isStringLiteral(s.moduleSpecifier) &&
              /^(zod$|[./]+functions\/)/.test(s.moduleSpecifier.text) &&
              !(ts.isImportDeclaration(s) ? s.importClause?.isTypeOnly : s.isTypeOnly),
          )
          .map((s) => `${file}: ${((s as ts.ImportDeclaration).moduleSpecifier as ts.StringLiteral).text}`),
      );
    expect(files).toContain('client/index.ts');
    expect(broken).toEqual([]);
    expect(
      violations('client/index.ts', ['@aws-sdk/client-s3', 'functions/adapters/queues.ts']),
    ).toHaveLength(2);
  });

  it('refuse adapters that reach up into services, handlers or the worker', () => {
    for (const target of ['functions/services/jobs.ts', 'functions/api/http.ts', 'functions/worker/cog.ts'])
      expect(violations('functions/adapters/queues.ts', [target])).toHaveLength(1);
  });

  it('refuse runtime code that imports the infrastructure, local mode or the entry points', () => {
    for (const target of ['lib/api.ts', 'local/stack.ts', 'bin/dev.ts', 'aws-cdk-lib/aws-sqs'])
      expect(violations('functions/worker/worker.ts', [target]).length).toBeGreaterThan(0);
  });

  it('refuse services that import a handler', () => {
    expect(violations('functions/services/jobs.ts', ['functions/api/http.ts'])).toHaveLength(1);
    expect(violations('functions/services/webhooks.ts', ['functions/webhooks/handler.ts'])).toHaveLength(1);
  });

  it('read relative imports, re-exports and dynamic imports', () => {
    const source = [
      "import { a } from '../core/a.ts';",
      "export { b } from './b.ts';",
      "const c = await import('../../lib/c.ts');",
      "import type { D } from '@aws-sdk/client-sqs';",
    ].join('\n');
    expect(importsOf('functions/worker/x.ts', source)).toEqual([
      'functions/core/a.ts',
      'functions/worker/b.ts',
      'lib/c.ts',
      '@aws-sdk/client-sqs',
    ]);
  });
});
