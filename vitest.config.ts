import { availableParallelism } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { defineConfig } from 'vitest/config';
import { specsByKind } from './test/helpers/spec-backends.js';

const root = path.dirname(fileURLToPath(import.meta.url));
// Two projects over the same files: `npm test` runs both (every spec once, on PGlite unless
// DATABASE_URL / REDIS_URL are set); CI's second run, against PostgreSQL and Redis, runs only
// `backend` (`npm run test:backend`). Which spec is which is computed, not listed: see
// test/helpers/spec-backends.ts.
const specs = specsByKind(root);

export default defineConfig({
  test: {
    // Two files at a time at least (cores − 1 on bigger machines; SOTTO_TEST_WORKERS overrides);
    // tests inside a file share a server and run in order. Measured on the 2-core CI machine, the
    // PGlite pass: one worker 1,313 s, two 819 s, all green. Before the recognizer replay and the
    // shared worker process (below) three took as long as one and timing specs failed: the
    // recognizer specs kept both cores busy; most specs now replay it.
    pool: 'forks',
    maxWorkers: process.env.SOTTO_TEST_WORKERS
      ? Number(process.env.SOTTO_TEST_WORKERS)
      : Math.max(2, availableParallelism() - 1),
    // One worker process runs file after file without a fresh module graph each (isolate: false):
    // the app's ~600 modules are imported once per worker, not once per file. Measured on the
    // 2-core machine (PGlite pass, 190 files, one worker): 36 min → 21 min; 40 light files 169 s →
    // 112 s. It holds because no spec mocks modules, stubs globals or changes process.env, and
    // every spec closes what it opens (servers, databases, browsers) in its own afterAll.
    isolate: false,
    testTimeout: 30_000,
    hookTimeout: 60_000,
    // Spies made with vi.spyOn are undone before each test, so one test's stub cannot leak into the next.
    restoreMocks: true,
    // Tests slower than this show their duration in the report: where CI time goes.
    slowTestThreshold: 5_000,
    // Unpacks the test corpus once and checks for every tool a spec would skip without (fails under CI).
    // …makes the migrated database every spec starts from, once per run, and reserves the run's
    // one panel build (made by the first browser spec that needs it).
    globalSetup: ['test/helpers/preflight.ts', 'test/helpers/db-template.ts', 'test/helpers/panel-build.ts'],
    projects: [
      { extends: true, test: { name: 'backend', include: specs.backend } },
      { extends: true, test: { name: 'once', include: specs.once } },
    ],
  },
});
