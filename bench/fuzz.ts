/**
 * Schema-driven fuzzing of the whole HTTP surface (issue 15): hostile requests generated from the
 * app's OpenAPI document — wrong types, missing and extra fields, oversized, unicode/bidi and
 * injection strings, numbers out of range, malformed JSON, wrong content types, forged, expired
 * and alg-none JWTs, other org's ids — plus multipart uploads, WebSocket upgrades and slow clients,
 * against the real app over HTTPS on 127.0.0.1. Bounded by count and time.
 *
 *   npm run bench:fuzz -- --requests 100000 --seconds 600 [--seed 1] [--concurrency 8] [--out FILE]
 *   DATABASE_URL=postgres://… npm run bench:fuzz -- …
 *
 * Exits 1 when any answer is ≥ 500 or any request hung.
 */
import { cpus, totalmem } from 'node:os';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { formatReport, runFuzz } from './fuzz-runner.js';
import { startFuzzTarget } from './fuzz-target.js';

async function main(): Promise<void> {
  const { values } = parseArgs({
    options: {
      requests: { type: 'string', default: '10000' },
      seconds: { type: 'string', default: '600' },
      seed: { type: 'string', default: '1' },
      concurrency: { type: 'string', default: '8' },
      out: { type: 'string' },
      only: { type: 'string' },
      slow: { type: 'string', default: '6' },
    },
  });
  const target = await startFuzzTarget();
  try {
    const res = await runFuzz({
      port: target.port,
      operations: target.operations,
      identities: target.identities,
      refreshIdentities: target.refreshIdentities,
      requests: Number(values.requests),
      seconds: Number(values.seconds),
      seed: Number(values.seed),
      concurrency: Number(values.concurrency),
      slowClients: Number(values.slow),
      only: values.only as 'json' | 'multipart' | 'upgrade' | undefined,
    });
    const report = formatReport(res, {
      date: new Date().toISOString(),
      machine: `${cpus().length} × ${cpus()[0]?.model ?? '?'}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.version}`,
      backend: target.harness.services.db.kind,
      routes: `${target.operations.length} operations from the OpenAPI document (+ probes, panel, sockets)`,
      seed: String(values.seed),
    });
    // The server's own account of any failure (error level and above; logs are redacted).
    const errors = target.harness.logs.filter((l) => /"level":(50|60)/.test(l));
    const full =
      errors.length > 0
        ? `${report}\n- server error log lines: ${errors.length}\n${errors
            .slice(0, 10)
            .map((l) => `    ${l.trim().slice(0, 1500)}`)
            .join('\n')}`
        : report;
    console.log(full);
    if (values.out) writeFileSync(values.out, `${full}\n`);
    process.exitCode = res.serverErrors.length + res.hung.length > 0 ? 1 : 0;
  } finally {
    await target.close();
  }
}

main().catch((err) => {
  console.error(err);
  process.exit(1);
});
