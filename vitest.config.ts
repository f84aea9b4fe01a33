import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    // Load, fuzzing and outage runs take minutes: `npm run test:faults` (vitest.faults.config.ts).
    exclude: ['test/faults/**', '**/node_modules/**'],
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
  },
});
