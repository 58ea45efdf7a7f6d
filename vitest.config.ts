import { defineConfig } from 'vitest/config';

// '@tollgate/source' makes workspace packages resolve to their TypeScript sources (see each
// package.json "exports"), so tests never run against a stale build.
const conditions = ['@tollgate/source', 'module', 'node', 'development|production'];

export default defineConfig({
  resolve: { conditions },
  ssr: { resolve: { conditions } },
  test: {
    include: ['{services,gateway,cli,plugins}/{src,test}/**/*.test.ts'],
    globalSetup: ['test/global-setup.ts'],
    reporters: ['default', './test/summary-reporter.ts'],
    pool: 'forks',
    testTimeout: 30_000,
    hookTimeout: 60_000,
  },
});
