import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    setupFiles: ['test/setup/unhandledRejections.ts'],
    // Integration tests share one Docker Engine and two cores: one file at a time keeps their
    // timings honest and their containers from competing.
    fileParallelism: false,
    testTimeout: 60_000,
    hookTimeout: 120_000,
  },
});
