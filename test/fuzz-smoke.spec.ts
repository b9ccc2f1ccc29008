import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { formatReport, runFuzz } from '../bench/fuzz-runner.js';
import { startFuzzTarget, type FuzzTarget } from '../bench/fuzz-target.js';
import { backendLabel } from './helpers/test-app.js';

/**
 * A small run of the fuzzer (bench/fuzz.ts; the long run's report is docs/security-fuzz.md):
 * 2,000 hostile requests over HTTPS, generated from the OpenAPI document. The seed is fixed so
 * a failure replays; SOTTO_FUZZ_SEED=<n> explores other sequences (the long runs do that). Any
 * answer ≥ 500 or any request left without an answer fails.
 */
describe(`fuzz smoke run (${backendLabel})`, () => {
  let target: FuzzTarget;
  beforeAll(async () => {
    target = await startFuzzTarget();
  }, 60_000);
  afterAll(async () => target?.close());

  it('answers 2,000 hostile requests without a 5xx or a hang', async () => {
    const seed = Number(process.env.SOTTO_FUZZ_SEED ?? 15);
    const res = await runFuzz({
      port: target.port,
      operations: target.operations,
      identities: target.identities,
      refreshIdentities: target.refreshIdentities,
      requests: 2000,
      seconds: 120,
      seed,
      concurrency: 6,
      slowClients: 2,
    });
    const report = formatReport(res, { seed: `${seed} (SOTTO_FUZZ_SEED=${seed} replays it)` });
    expect(res.total, report).toBe(2000);
    expect(res.serverErrors, report).toEqual([]);
    expect(res.hung, report).toEqual([]);
    expect(res.slowClients.hung, report).toBe(0);
    // Every route family was reached, and most answers are refusals (4xx), not crashes.
    expect(Object.keys(res.byKind).sort(), report).toEqual([
      'json/query/path',
      'multipart',
      'websocket upgrade',
    ]);
    expect(res.byClass['4xx'] ?? 0, report).toBeGreaterThan(1000);
  }, 180_000);
});
