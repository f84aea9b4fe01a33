import { readdirSync, readFileSync } from 'node:fs';
import { join, sep } from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';

/**
 * Files that change what a module holds for the whole process run each in a process of their own:
 * aws-sdk-client-mock on the SDK's clients, vi.mock, stubbed globals or environment, spies, fake timers,
 * process-wide handlers. They are found by what they call, so a new one is isolated without a list to keep.
 * Every other file shares a process with the files before it (`isolate: false`), which spares a fresh
 * import of the SDK and the app for each of them: on two cores that import was a third of the suite's time
 * (README.md, "Tests and benchmark").
 */
const CHANGES_THE_PROCESS =
  /mockClient|vi\.mock\(|vi\.doMock\(|vi\.stubEnv|vi\.stubGlobal|vi\.spyOn|vi\.useFakeTimers|process\.on\(/;
const TESTS = fileURLToPath(new URL('./test/', import.meta.url));
const ISOLATED = readdirSync(TESTS, { recursive: true, encoding: 'utf8' })
  .filter((file) => file.endsWith('.test.ts') && !file.startsWith('faults'))
  .filter((file) => CHANGES_THE_PROCESS.test(readFileSync(join(TESTS, file), 'utf8')))
  .map((file) => `test/${file.split(sep).join('/')}`);

export default defineConfig({
  test: {
    reporters: ['default', './test/support/summary-reporter.ts'],
    pool: 'forks',
    // One DynamoDB Local for all the files, each stack on a table of its own.
    globalSetup: ['./test/support/global-setup.ts'],
    // s3rver (the local S3 emulator) uses an MD5 path that OpenSSL 3 hides behind the legacy provider.
    execArgv: ['--openssl-legacy-provider'],
    // Three files at once on two cores: the integration tests wait on emulators and models much of the
    // time, so a third keeps both cores busy (measured on a 2-core machine: 281 s with two, 251 s with
    // three, every test passing).
    maxWorkers: 3,
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Tests talk to emulators on 127.0.0.1; keep the SDK away from any real account and from proxies.
    env: {
      AWS_REGION: 'us-east-1',
      AWS_ACCESS_KEY_ID: 'S3RVER',
      AWS_SECRET_ACCESS_KEY: 'S3RVER',
      AWS_REQUEST_CHECKSUM_CALCULATION: 'WHEN_REQUIRED',
      AWS_RESPONSE_CHECKSUM_VALIDATION: 'WHEN_REQUIRED',
      AWS_EC2_METADATA_DISABLED: 'true',
      NO_PROXY: '127.0.0.1,localhost',
      POWERTOOLS_LOG_LEVEL: 'SILENT',
      POWERTOOLS_METRICS_DISABLED: 'true',
    },
    // Load, fuzzing and outage runs take minutes: `npm run test:faults` (vitest.faults.config.ts).
    projects: [
      {
        extends: true,
        test: { name: 'isolated', include: ISOLATED, isolate: true },
      },
      {
        extends: true,
        test: {
          name: 'shared',
          include: ['test/**/*.test.ts'],
          exclude: ['test/faults/**', '**/node_modules/**', ...ISOLATED],
          isolate: false,
        },
      },
    ],
  },
});
