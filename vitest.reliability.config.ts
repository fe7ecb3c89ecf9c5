import { defineConfig } from 'vitest/config';

/**
 * `npm run test:reliability`: the service as real processes on PostgreSQL (TEST_DATABASE_URL)
 * under load, faults and hostile input. One file at a time: each starts its own replicas.
 */
export default defineConfig({
  test: {
    include: ['test/reliability/**/*.test.ts'],
    testTimeout: 600_000,
    hookTimeout: 180_000,
    maxWorkers: 1,
    pool: 'forks',
  },
});
