import { defineConfig } from 'vitest/config';
import base from './vitest.config.ts';

/**
 * `npm run test:faults`: the load run, the hostile-input fuzzing and the outages (docs/reliability.md).
 * Minutes rather than seconds, so apart from `npm test`; CI runs both (.ci/run). One file at a time:
 * the load run measures throughput and must not share the two cores with the fuzzing.
 * The base's settings (environment, emulator flags, reporters) are kept but its projects (which split
 * `npm test` by isolation), and `include` and `exclude` are set here, not merged (mergeConfig would
 * concatenate them and exclude these very files).
 */
const { projects: _, ...shared } = base.test ?? {};

export default defineConfig({
  ...base,
  test: {
    ...shared,
    include: ['test/faults/**/*.test.ts'],
    exclude: ['**/node_modules/**'],
    fileParallelism: false,
    maxWorkers: 1,
    testTimeout: 240_000,
  },
});
