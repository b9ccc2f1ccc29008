/**
 * Search over an org of N thirty-minute transcripts through the encrypted search index
 * (docs/search.md): build time, index size, and p50/p95 of the first page (limit 20, default
 * budgets, snippets included — what GET /recordings?q= does) for one-word and phrase queries.
 *
 *   npm run bench:search                              # PGlite, N = 10,000
 *   BENCH_N=500 npm run bench:search                  # a smaller org
 *   BENCH_DATABASE_URL=postgres://… npm run bench:search   # PGlite, then PostgreSQL
 *   BENCH_BACKENDS=postgres BENCH_DATABASE_URL=… npm run bench:search
 *
 * Transcripts are generated from a vocabulary of 3,000 made-up words (2–10 letters, the frequent
 * ones short) drawn with Zipf frequencies
 * (300 segments × 15 words with word timings, as a 30-minute recording stores them), written
 * through the key service and indexed in the same transactions as the write paths do. Queries:
 * a *common* word (from rank 40, 3 letters or more: in nearly every transcript, the page fills at
 * once), a *rare* word (from rank 1,500: in about a third of them), and a *phrase* of two adjacent words copied
 * from a random transcript. Each kind runs with 20 different queries. Numbers for the README,
 * never pass/fail.
 *
 * BENCH_COMPARE=1 times every query twice, alternately through the current candidate query and the
 * one before "order first, join later" (legacyMatching below: every hit joined, then sorted), so
 * both see the same load on a shared machine. BENCH_EXPLAIN=1 prints both plans.
 */
import { loadavg } from 'node:os';
import pino from 'pino';
import { withTenant } from '../src/db/tenant.js';
import type { Actor } from '../src/domain/auth-context.js';
import type { Segment } from '../src/domain/transcript.js';
import type { Queryable } from '../src/db/database.js';
import {
  FILTER_SQL,
  KEYSET_SQL,
  filterParams,
  recordingRepository,
} from '../src/repositories/recordings/recording.repository.js';
import { searchIndexRepository } from '../src/repositories/recordings/search-index.repository.js';
import { transcriptLocation } from '../src/services/recordings/recording.service.js';
import {
  indexRecording,
  queryTokens,
  SearchIndexService,
} from '../src/services/search/search-index.service.js';
import { SEARCH_SCHEME } from '../src/services/search/search-tokens.js';
import { createOrgWithUser } from '../test/helpers/fixtures.js';
import { startTestApp, type TestApp } from '../test/helpers/test-app.js';
import { mulberry32 } from '../scripts/prng.js';

const N = Number(process.env.BENCH_N ?? 10_000);
const SEGMENTS = 300;
const WORDS_PER_SEGMENT = 15;
const VOCAB_SIZE = 3000;
const RUNS = 20;
const PER_TX = 10;

/** Deterministic pseudo-random numbers, so every run builds the same cases. */
const rng = mulberry32;

const CONSONANTS = 'bcdfghjklmnprstvwz';
const VOWELS = 'aeiou';
/**
 * Made-up words of 2–10 letters, consonants and vowels alternating (so prefixes spread about as
 * in a real language: hundreds of distinct three-letter starts), the frequent ranks short (as
 * function words are).
 */
function makeVocab(): string[] {
  const r = rng(7);
  const words = new Set<string>();
  while (words.size < VOCAB_SIZE) {
    const n = 2 + Math.floor(((words.size / VOCAB_SIZE) * 0.7 + r() * 0.3) * 9);
    let w = '';
    for (let i = 0; i < n; i++) {
      const set = (i + (words.size % 2)) % 2 ? VOWELS : CONSONANTS;
      w += set[Math.floor(r() * set.length)];
    }
    words.add(w);
  }
  return [...words];
}

/** Zipf (s = 1) sampler over ranks 0..size-1. */
function zipf(size: number, r: () => number): () => number {
  const cdf: number[] = [];
  let sum = 0;
  for (let k = 1; k <= size; k++) cdf.push((sum += 1 / k));
  return () => {
    const x = r() * sum;
    let lo = 0;
    let hi = size - 1;
    while (lo < hi) {
      const mid = (lo + hi) >> 1;
      if (cdf[mid]! < x) lo = mid + 1;
      else hi = mid;
    }
    return lo;
  };
}

function transcript(vocab: string[], draw: () => number): Segment[] {
  const segments: Segment[] = [];
  for (let s = 0; s < SEGMENTS; s++) {
    const start = s * 6;
    const words = Array.from({ length: WORDS_PER_SEGMENT }, (_, i) => ({
      w: vocab[draw()]!,
      start: start + i * 0.4,
      end: start + i * 0.4 + 0.3,
      conf: 0.9,
    }));
    segments.push({
      id: `seg-${String(s + 1).padStart(4, '0')}`,
      speaker: s % 2 ? 'S2' : 'S1',
      start,
      end: words.at(-1)!.end,
      text: words.map((w) => w.w).join(' '),
      words,
    });
  }
  return segments;
}

/**
 * The candidate query before "order first, join later" (docs/search.md): every hit id joined to
 * `recordings` and `search_index`, then sorted. Kept here only to time against the current one.
 */
const currentMatching = searchIndexRepository.matching;
const legacyMatching: typeof currentMatching = async (tx, vis, tokens, scheme, page) =>
  (
    await tx.query<Awaited<ReturnType<typeof currentMatching>>[number]>(
      `WITH hit AS MATERIALIZED (
         SELECT recording_id FROM sotto_search_hits($9::int[], $10::smallint)
       )
       SELECT r.id, r.org_id AS "orgId", r.created_at AS "createdAt", s.doc_enc AS "docEnc"
         FROM hit
         JOIN recordings r ON r.id = hit.recording_id
         JOIN search_index s ON s.recording_id = hit.recording_id
        WHERE ${FILTER_SQL}
          AND ${KEYSET_SQL}
        ORDER BY r.created_at DESC, r.id DESC LIMIT $8`,
      [
        ...filterParams(vis, page.filter),
        page.after?.createdAt ?? null,
        page.after?.id ?? null,
        page.limit,
        tokens,
        scheme,
      ],
    )
  ).rows;

/** BENCH_EXPLAIN=1: the plans of the candidate queries (old and current) and of the unindexed check. */
async function explain(t: TestApp, owner: { orgId: string; userId: string }, qs: string[]): Promise<void> {
  await withTenant(t.services.db, owner, async (tx) => {
    // The repository's own SQL, run under EXPLAIN ANALYZE: the plan rows come back instead.
    const explaining: Queryable = {
      query: (text, params) => tx.query(`EXPLAIN (ANALYZE, COSTS OFF) ${text}`, params),
    };
    const print = (title: string, rows: unknown[]) =>
      console.log(`\n${title}:\n${rows.map((r) => (r as Record<string, string>)['QUERY PLAN']).join('\n')}`);
    print(
      'not indexed yet',
      await searchIndexRepository.unindexed(explaining, {}, SEARCH_SCHEME, { limit: 25 }),
    );
    print(
      'count',
      [await tx.query(`EXPLAIN (ANALYZE, COSTS OFF) SELECT count(*) FROM recordings`)].flatMap((r) => r.rows),
    );
    await searchIndexRepository.preferIndex(tx);
    for (const q of qs) {
      const tokens = (await queryTokens(tx, t.services.keys, owner.orgId, q)) ?? [];
      for (const [name, matching] of [
        ['before', legacyMatching],
        ['now', currentMatching],
      ] as const)
        print(`${q} (${name})`, await matching(explaining, {}, tokens, SEARCH_SCHEME, { limit: 25 }));
    }
  });
}

const pct = (xs: number[], p: number) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil((p / 100) * s.length) - 1)]!;
};

async function bench(label: string): Promise<void> {
  const t: TestApp = await startTestApp({ env: { SOTTO_LOG_LEVEL: 'warn' } });
  try {
    const owner = await createOrgWithUser(t.services, { role: 'owner' });
    const actor: Actor = { ...owner, role: 'owner', viaSupportGrant: false, ip: '127.0.0.1' };
    const vocab = makeVocab();
    const r = rng(42);
    const draw = zipf(VOCAB_SIZE, r);
    const phrases: string[] = [];
    const base = Date.parse('2024-01-01T00:00:00Z');
    const started = performance.now();
    for (let i = 0; i < N; i += PER_TX) {
      await withTenant(t.services.db, owner, async (tx) => {
        for (let j = i; j < Math.min(N, i + PER_TX); j++) {
          const id = crypto.randomUUID();
          const segments = transcript(vocab, draw);
          if (phrases.length < RUNS && j % Math.max(1, Math.floor(N / RUNS)) === 0) {
            const seg = segments[Math.floor(r() * SEGMENTS)]!.text.split(' ');
            const at = Math.floor(r() * (seg.length - 1));
            phrases.push(`"${seg[at]} ${seg[at + 1]}"`);
          }
          const now = new Date(base + j * 3_600_000);
          await recordingRepository.insert(tx, {
            id,
            orgId: owner.orgId,
            ownerId: owner.userId,
            language: 'en',
            speakersHint: null,
            now,
          });
          await recordingRepository.upsertTranscript(tx, {
            recordingId: id,
            orgId: owner.orgId,
            bodyEnc: await t.services.keys.encryptJson(tx, transcriptLocation(owner.orgId, id), {
              segments,
              speakers: ['S1', 'S2'],
            }),
            now,
          });
          await recordingRepository.markDone(tx, id, {
            durationSeconds: 1800,
            channels: 1,
            engine: 'bench',
            now,
          });
          // What the job does when it stores a transcript.
          await indexRecording(tx, t.services.keys, owner.orgId, id);
        }
      });
      if ((i / PER_TX) % 50 === 0) process.stderr.write(`\r${label}: ${i + PER_TX}/${N} built`);
    }
    const buildSeconds = (performance.now() - started) / 1000;
    process.stderr.write('\n');
    // Nothing left for the backfill: every recording was indexed as it was written.
    const leftover = await new SearchIndexService(
      t.services.db,
      t.services.keys,
      pino({ level: 'silent' }),
    ).backfill(10);
    await t.services.db.query('ANALYZE');
    const size = await t.services.db.query<{ index: string; transcripts: string }>(
      `SELECT pg_size_pretty(pg_total_relation_size('search_index')) AS index,
              pg_size_pretty(pg_total_relation_size('transcripts')) AS transcripts`,
    );
    console.log(
      `\n${label}: ${N} recordings × ${SEGMENTS * WORDS_PER_SEGMENT} words built and indexed in ${buildSeconds.toFixed(0)} s ` +
        `(${((buildSeconds * 1000) / N).toFixed(1)} ms each; backfill found ${leftover}); ` +
        `search_index ${size.rows[0]!.index}, transcripts ${size.rows[0]!.transcripts}`,
    );
    if (process.env.BENCH_EXPLAIN) await explain(t, owner, [vocab[45]!, vocab[1501]!, phrases[0]!]);
    const kinds: [string, string[], string?][] = [
      // Words of 3 letters or more: shorter ones cannot be narrowed by the index (a scan, as before).
      [
        'one word, common',
        vocab
          .slice(40)
          .filter((w) => w.length >= 3)
          .slice(0, RUNS),
      ],
      [
        'one word, rare',
        vocab
          .slice(1500)
          .filter((w) => w.length >= 3)
          .slice(0, RUNS),
      ],
      ['phrase', phrases],
      // Narrowed to one of the two speakers (half the segments): the speaker's token beside the word's.
      [
        'one word, rare, speaker=',
        vocab
          .slice(1500)
          .filter((w) => w.length >= 3)
          .slice(0, RUNS),
        'Speaker 2',
      ],
    ];
    const compare = Boolean(process.env.BENCH_COMPARE);
    console.log(
      `load average (1 / 5 / 15 min) before the queries: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' / ')}`,
    );
    const paths = compare ? (['before', 'now'] as const) : (['now'] as const);
    console.log(
      `| query |${compare ? ' path |' : ''} p50 ms | p95 ms | max ms | hits on page (median) | decrypted (median) |`,
    );
    console.log(`| --- |${compare ? ' --- |' : ''} --- | --- | --- | --- | --- |`);
    for (const [kind, qs, speaker] of kinds) {
      await t.services.search.search(actor, { q: qs[0]!, speaker, limit: 20 }); // warm the key caches
      const runs = Object.fromEntries(
        paths.map((p) => [p, { ms: [] as number[], hits: [] as number[], scanned: [] as number[] }]),
      );
      for (const [i, q] of qs.entries()) {
        const answers = new Map<string, string>();
        const notes = new Map<string, string>();
        // Alternate which path goes first, so neither always runs on the other's warm cache.
        for (const path of i % 2 ? [...paths].reverse() : paths) {
          searchIndexRepository.matching = path === 'before' ? legacyMatching : currentMatching;
          const run = runs[path]!;
          const t0 = performance.now();
          const page = await t.services.search.search(actor, { q, speaker, limit: 20 });
          run.ms.push(performance.now() - t0);
          run.hits.push(page.items.length);
          run.scanned.push(page.scan.scanned);
          const ms = run.ms.at(-1)!;
          answers.set(path, `${JSON.stringify(page)}`);
          notes.set(
            path,
            `${page.items.length} hits, ${page.scan.scanned} decrypted, next ${page.next}, ${ms.toFixed(0)} ms`,
          );
        }
        // The same answer from both, unless a page stopped at the time budget (a slower run under
        // load stops earlier: honest paging, docs/search.md); printed, not thrown, so it shows.
        if (new Set(answers.values()).size > 1)
          console.log(
            `  ${q}: the paths answered differently: ${[...notes].map(([p, n]) => `${p} ${n}`).join('; ')}`,
          );
      }
      searchIndexRepository.matching = currentMatching;
      for (const path of paths) {
        const { ms, hits, scanned } = runs[path]!;
        console.log(
          `| ${kind} |${compare ? ` ${path} |` : ''} ${pct(ms, 50).toFixed(0)} | ${pct(ms, 95).toFixed(0)} | ${Math.max(...ms).toFixed(0)} | ${pct(hits, 50)} | ${pct(scanned, 50)} |`,
        );
      }
    }
    console.log(
      `load average (1 / 5 / 15 min) after the queries: ${loadavg()
        .map((l) => l.toFixed(1))
        .join(' / ')}`,
    );
  } finally {
    await t.close();
  }
}

const pgUrl = process.env.BENCH_DATABASE_URL ?? process.env.DATABASE_URL;
const backends = (process.env.BENCH_BACKENDS ?? (pgUrl ? 'pglite,postgres' : 'pglite')).split(',');
for (const b of backends) {
  if (b === 'postgres') {
    if (!pgUrl) throw new Error('BENCH_DATABASE_URL is not set');
    process.env.DATABASE_URL = pgUrl;
    await bench('PostgreSQL');
  } else {
    delete process.env.DATABASE_URL;
    await bench('PGlite');
  }
}
process.exit(0);
