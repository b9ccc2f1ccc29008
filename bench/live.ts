/**
 * Live recordings: how long after an utterance ends in the stream does its final segment reach
 * a viewer, and how many concurrent real-time live recordings one node sustains before that
 * delay doubles.
 *
 * Serves the real app over HTTPS/WSS (TLS 1.3, the harness's self-signed certificate pinned) with
 * the sphinx engine. Each live recording gets a capture client that streams a corpus file in real
 * time (100 ms frames on a clock, as `sotto bot` does) and a viewer on /watch. For every final
 * segment:
 *   delay = arrival at the viewer − the moment the segment's last word was streamed
 *           (stream start + segment end), i.e. VAD end-of-utterance detection + queueing +
 *           recognition + fan-out;
 *   engine = the engine's own transcribe() time for that utterance (measured in place by timing
 *            the live service's engine), so the rest of the delay is visible.
 * Then N = 1, 2, 4, 8… recordings at once (corpus files in rotation, starts staggered by 250 ms)
 * and the N at which the p50 delay is twice N = 1's. Numbers for the README, never pass/fail.
 *
 *   npm run bench:live                  # PGlite
 *   DATABASE_URL=postgres://… npm run bench:live
 *   BENCH_LIVE_MAX_N=16 npm run bench:live
 */
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import type { AsrEngine } from '../src/repositories/asr/engine.js';
import { sphinxAvailability } from '../src/repositories/asr/sphinx.engine.js';
import { corpusEntry, corpusIds, hasCorpus, noCorpusReason } from '../test/helpers/corpus.js';
import { readCorpusMono } from '../test/helpers/corpus-audio.js';
import { createOrgWithUser } from '../test/helpers/fixtures.js';
import { createLive, frames, listenTls, mustOpen, type Listening } from '../test/helpers/live.js';
import { startTestApp, type TestApp } from '../test/helpers/test-app.js';

interface SessionResult {
  file: string;
  delays: number[];
  segments: number;
  errors: string[];
}

const engineTimes: number[] = [];

/** Times every transcribe() of the engine the live service uses (the same instance as the jobs). */
function timeLiveEngine(t: TestApp): boolean {
  const deps = (t.services.live as unknown as { d?: { engine?: () => Promise<AsrEngine> } }).d;
  if (!deps?.engine) return false;
  const original = deps.engine;
  let wrapped: AsrEngine | undefined;
  deps.engine = async () => {
    const engine = await original();
    wrapped ??= {
      id: engine.id,
      describe: () => engine.describe(),
      transcribe: async (pcm, opts) => {
        const start = performance.now();
        try {
          return await engine.transcribe(pcm, opts);
        } finally {
          engineTimes.push(performance.now() - start);
        }
      },
    };
    return wrapped;
  };
  return true;
}

const quantile = (xs: number[], q: number) => {
  if (xs.length === 0) return NaN;
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.floor(q * (s.length - 1) + 0.5))]!;
};
const ms = (x: number) => (Number.isNaN(x) ? 'n/a' : `${Math.round(x)} ms`);

async function liveSession(
  t: TestApp,
  server: Listening,
  token: string,
  file: string,
  delayMs: number,
): Promise<SessionResult> {
  await sleep(delayMs);
  const { pcm } = readCorpusMono(file);
  const id = await createLive(t, token, '127.0.0.1');
  const viewer = await mustOpen(server, `/api/v1/recordings/${id}/watch`, { token });
  await viewer.waitFor((m) => m.type === 'ready');
  const arrivals: { end: number; at: number }[] = [];
  const errors: string[] = [];
  viewer.ws.on('message', (data) => {
    const m = JSON.parse(String(data)) as { type: string; end?: number; code?: string };
    if (m.type === 'segment') arrivals.push({ end: m.end!, at: performance.now() });
    if (m.type === 'error') errors.push(m.code ?? 'error');
  });
  const ingest = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token });
  ingest.ws.send(JSON.stringify({ type: 'start' }));
  const all = frames(pcm);
  const t0 = performance.now();
  for (let i = 0; i < all.length; i++) {
    const wait = t0 + i * 100 - performance.now();
    if (wait > 0) await sleep(wait);
    ingest.ws.send(all[i]!);
  }
  await ingest.waitFor((m) => m.type === 'ack' && m.seq === all.length - 1, 600_000);
  ingest.ws.send(JSON.stringify({ type: 'stop' }));
  await viewer.closed;
  return {
    file,
    delays: arrivals.map((a) => a.at - (t0 + a.end * 1000)),
    segments: arrivals.length,
    errors,
  };
}

async function level(
  t: TestApp,
  server: Listening,
  token: string,
  n: number,
  files: string[],
): Promise<{ results: SessionResult[]; engine: number[]; wallS: number }> {
  engineTimes.length = 0;
  const start = performance.now();
  const results = await Promise.all(
    Array.from({ length: n }, (_, i) => liveSession(t, server, token, files[i % files.length]!, i * 250)),
  );
  return { results, engine: [...engineTimes], wallS: (performance.now() - start) / 1000 };
}

async function main(): Promise<void> {
  if (!hasCorpus) throw new Error(noCorpusReason);
  const sphinx = sphinxAvailability();
  if (!sphinx.available) throw new Error(sphinx.reason);
  const maxN = Number(process.env.BENCH_LIVE_MAX_N ?? 8);
  const dataDir = mkdtempSync(path.join(tmpdir(), 'sotto-bench-live-'));
  const t = await startTestApp({
    env: {
      SOTTO_LOG_LEVEL: 'warn',
      SOTTO_DATA_DIR: dataDir,
      SOTTO_ASR_ENGINE: 'sphinx',
      SOTTO_RATE_LIMIT_API_PER_MINUTE: '1000000',
      SOTTO_LIVE_MAX_PER_ORG: '1000',
    },
  });
  const server = await listenTls(t.services);
  try {
    const timed = timeLiveEngine(t);
    const user = await createOrgWithUser(t.services, { role: 'owner' });
    const files = corpusIds();
    const seconds = files.map((f) => corpusEntry(f).duration);
    console.log(
      `# Live delay (sphinx, ${files.length} corpus files of ${seconds.map((s) => s.toFixed(0)).join('/')} s, ` +
        `${process.env.DATABASE_URL ? 'PostgreSQL' : 'PGlite'}, ${process.env.REDIS_URL ? 'Redis' : 'in-process'} fan-out)\n`,
    );
    // Warm-up: the engine is chosen and loaded on first use.
    await liveSession(t, server, user.accessToken, files.at(-1)!, 0);

    // One recording at a time, per file: the baseline.
    console.log('## One live recording at a time\n');
    console.log('| file | audio | segments | delay p50 | delay p95 | engine p50 | engine p95 |');
    console.log('| ---- | ----- | -------- | --------- | --------- | ---------- | ---------- |');
    const base: number[] = [];
    const baseEngine: number[] = [];
    for (const file of files) {
      const { results, engine } = await level(t, server, user.accessToken, 1, [file]);
      const r = results[0]!;
      base.push(...r.delays);
      baseEngine.push(...engine);
      console.log(
        `| ${file} | ${corpusEntry(file).duration.toFixed(1)} s | ${r.segments} | ${ms(quantile(r.delays, 0.5))} | ` +
          `${ms(quantile(r.delays, 0.95))} | ${ms(quantile(engine, 0.5))} | ${ms(quantile(engine, 0.95))} |`,
      );
    }
    console.log(
      `| **all** | | ${base.length} | **${ms(quantile(base, 0.5))}** | **${ms(quantile(base, 0.95))}** | ` +
        `${ms(quantile(baseEngine, 0.5))} | ${ms(quantile(baseEngine, 0.95))} |\n`,
    );

    console.log('## Concurrent live recordings on one node (all streaming in real time)\n');
    console.log('| N | segments | delay p50 | delay p95 | engine p50 | engine p95 | p50 vs N=1 | lagging |');
    console.log('| - | -------- | --------- | --------- | ---------- | ---------- | ---------- | ------- |');
    let p50at1 = NaN;
    let doubledAt: number | undefined;
    for (let n = 1; n <= maxN; n *= 2) {
      const { results, engine } = await level(t, server, user.accessToken, n, files);
      const delays = results.flatMap((r) => r.delays);
      const lagging = results.flatMap((r) => r.errors).filter((e) => e === 'live_lagging').length;
      const p50 = quantile(delays, 0.5);
      if (n === 1) p50at1 = p50;
      const ratio = p50 / p50at1;
      if (doubledAt === undefined && ratio >= 2) doubledAt = n;
      console.log(
        `| ${n} | ${delays.length} | ${ms(p50)} | ${ms(quantile(delays, 0.95))} | ${ms(quantile(engine, 0.5))} | ` +
          `${ms(quantile(engine, 0.95))} | ×${ratio.toFixed(2)} | ${lagging} |`,
      );
      if (doubledAt !== undefined && n > doubledAt) break;
    }
    console.log(
      doubledAt === undefined
        ? `\nThe p50 delay did not double up to N = ${maxN} (BENCH_LIVE_MAX_N raises the limit).`
        : `\nThe p50 delay doubles (vs N = 1) at N = ${doubledAt} concurrent real-time live recordings.`,
    );
    if (!timed) console.log('(engine times unavailable: the live service no longer exposes its engine)');
  } finally {
    await server.close();
    await t.close();
    rmSync(dataDir, { recursive: true, force: true });
  }
}

await main();
