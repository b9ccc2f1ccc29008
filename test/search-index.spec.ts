import { createHash } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { Actor } from '../src/domain/auth-context.js';
import { withSystem, withTenant } from '../src/db/tenant.js';
import { deletionRepository } from '../src/repositories/orgs/deletion.repository.js';
import { recordingJobRepository } from '../src/repositories/transcription/recording-job.repository.js';
import { AppError } from '../src/domain/errors.js';
import type { Segment } from '../src/domain/transcript.js';
import { RecordingSearchService, type SearchPage } from '../src/services/search/recording-search.service.js';
import {
  indexRecording,
  openSearchDoc,
  SearchIndexService,
} from '../src/services/search/search-index.service.js';
import { SEARCH_SCHEME, tokenOf } from '../src/services/search/search-tokens.js';
import type { ListQueryFilter } from '../src/services/recordings/recording.service.js';
import { actorOf, addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { freshIp } from './helpers/auth-client.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';
import { dumpContains, rawDump, seedTranscript, seg } from './helpers/transcripts.js';

/**
 * The encrypted search index (docs/search.md): the same answers as decrypting every transcript,
 * for words, prefixes, phrases, short words, accents and the SQL filters, while decrypting only
 * candidates; kept in step with jobs, edits and deletion; another org's tokens differ and never
 * answer; the database holds no transcript word; hostile queries are just queries.
 */
// Words that appear in a few recordings each, so a query narrows; plus accents and non-Latin text.
const VOCAB = [
  'budget',
  'quarterly',
  'meeting',
  'meetings',
  'review',
  'planning',
  'therapy',
  'session',
  'anxiety',
  'sleep',
  'contract',
  'renewal',
  'invoice',
  'garden',
  'delegation',
  'harbour',
  'Crème',
  'Brûlée',
  'Zoë',
  'naïve',
  'straße',
  'Ελλάδα',
  '東京',
  'of',
  'the',
  'a',
  'is',
  'to',
];

function textFor(i: number, j: number): string {
  const words: string[] = [];
  for (let k = 0; k < 9; k++) words.push(VOCAB[(i * 7 + j * 13 + k * k * 3 + k) % VOCAB.length]!);
  return words.join(j % 3 === 0 ? ' ' : ', ');
}

describe(`encrypted search index (${backendLabel})`, () => {
  let t: TestApp;
  let owner: TestUser;
  let member: TestUser;
  let other: TestUser;
  let search: RecordingSearchService;
  let index: SearchIndexService;
  const ip = freshIp();
  const base = Date.parse('2026-02-01T00:00:00Z');
  const ids: string[] = [];
  let otherId = '';

  const all = async (actor: Actor, q: string, filter?: ListQueryFilter): Promise<SearchPage> => {
    const page = await search.search(actor, { q, limit: 200, filter });
    expect(page.next).toBeNull();
    return page;
  };
  const indexRows = async (where: string, params: unknown[]) =>
    (
      await t.services.db.query<{ recording_id: string; org_id: string; tokens: number[] }>(
        `SELECT recording_id, org_id, tokens FROM search_index WHERE ${where}`,
        params,
      )
    ).rows;

  beforeAll(async () => {
    t = await startTestApp({ env: { SOTTO_RATE_LIMIT_API_PER_MINUTE: '10000' } });
    owner = await createOrgWithUser(t.services, { role: 'owner' });
    member = await addUser(t.services, owner.orgId, { role: 'member' });
    other = await createOrgWithUser(t.services, { role: 'owner' });
    search = new RecordingSearchService(
      t.services.db,
      t.services.keys,
      t.services.recordings,
      Infinity,
      Infinity,
    );
    index = new SearchIndexService(t.services.db, t.services.keys, pino({ level: 'silent' }));
    for (let i = 0; i < 24; i++) {
      const segments: Segment[] = [];
      for (let j = 0; j < 4; j++) segments.push(seg(j + 1, j % 2 ? 'S2' : 'S1', j * 10, textFor(i, j)));
      ids.push(
        await seedTranscript(t.services, i % 3 === 0 ? member : owner, {
          title: i % 5 === 0 || i === 23 ? `Quarterly ${VOCAB[i % VOCAB.length]} call` : undefined,
          segments,
          createdAt: new Date(base + i * 86_400_000),
          done: i !== 23, // one still being transcribed: matches by title only
        }),
      );
    }
    // The same words in another org.
    otherId = await seedTranscript(t.services, other, {
      title: 'Quarterly budget call',
      segments: [seg(1, 'S1', 0, textFor(1, 1)), seg(2, 'S1', 5, 'quarterly budget review')],
    });
  });
  afterAll(async () => t?.close());

  const queries = [
    'budget',
    'BUDGET',
    'budg',
    'meet',
    'meeting',
    'meetings',
    'eting',
    'creme brulee',
    'Crème',
    '"quarterly budget"',
    '"the budget"',
    '"budget of"',
    '"of the"',
    '"review planning session"',
    'zoe',
    'naive',
    'strasse',
    'straße',
    'ελλαδα',
    '東京',
    'a',
    'of',
    '"a"',
    'anxiety sleep',
    'walrus',
    '"sleep anxiety therapy"',
    'quarterly call',
    '"quarterly b"',
  ];

  it('answers exactly as the decrypting scan did, decrypting only candidates once indexed', async () => {
    const ownerActor = actorOf(owner, 'owner');
    const memberActor = actorOf(member, 'member');
    const filters: (ListQueryFilter | undefined)[] = [
      undefined,
      { from: new Date(base + 5 * 86_400_000), to: new Date(base + 15 * 86_400_000) },
      { owner: member.userId, status: 'done' },
    ];
    const runAll = async () => {
      const out: { page: SearchPage; key: string }[] = [];
      for (const q of queries)
        for (const [a, actor] of [ownerActor, memberActor].entries())
          for (const [f, filter] of filters.entries())
            out.push({ key: `${q}|${a}|${f}`, page: await all(actor, q, filter) });
      return out;
    };
    // Nothing indexed yet (as after the migration): every recording is decrypted, as before.
    const before = await runAll();
    expect(await indexRows('org_id = $1', [owner.orgId])).toHaveLength(0);
    expect(await index.backfill()).toBe(25);
    expect(await index.backfill()).toBe(0); // idempotent
    const after = await runAll();
    let hits = 0;
    let scannedBefore = 0;
    let scannedAfter = 0;
    for (const [i, b] of before.entries()) {
      const a = after[i]!;
      expect({ key: a.key, items: a.page.items }).toEqual({ key: b.key, items: b.page.items });
      expect(a.page.scan.total).toBe(b.page.scan.total);
      hits += a.page.items.length;
      scannedBefore += b.page.scan.scanned;
      scannedAfter += a.page.scan.scanned;
    }
    expect(hits).toBeGreaterThan(50); // the comparison is not of empty lists
    // The index narrows: far fewer decryptions (short-word queries still scan).
    expect(scannedAfter).toBeLessThan(scannedBefore / 2);
    const selective = await all(ownerActor, '"review planning session"');
    expect(selective.scan.scanned).toBeLessThanOrEqual(selective.items.length + 1);
  });

  it('merges indexed and not-yet-indexed recordings, page by page, newest first', async () => {
    const org = await createOrgWithUser(t.services, { role: 'owner' });
    const made: string[] = [];
    for (let i = 0; i < 40; i++) {
      const id = await seedTranscript(t.services, org, {
        segments: [seg(1, 'S1', 0, `entry ${i} about the kestrel`)],
        createdAt: new Date(base + i * 60_000),
      });
      // Every other one indexed (as the backfill would leave them half way).
      if (i % 2 === 0)
        await withTenant(t.services.db, org, (tx) => indexRecording(tx, t.services.keys, org.orgId, id));
      made.push(id);
    }
    const newestFirst = [...made].reverse();
    const actor = actorOf(org, 'owner');
    const one = await all(actor, 'kestrel');
    expect(one.items.map((i) => i.id)).toEqual(newestFirst);
    expect(one.scan.scanned).toBe(40);
    const paged = new RecordingSearchService(
      t.services.db,
      t.services.keys,
      t.services.recordings,
      9,
      Infinity,
    );
    const seen: string[] = [];
    let after: string | undefined;
    for (let n = 0; n < 20; n++) {
      const page = await paged.search(actor, { q: 'kestrel', limit: 6, after });
      seen.push(...page.items.map((i) => i.id));
      if (!page.next) break;
      after = page.next;
    }
    expect(seen).toEqual(newestFirst);
    // The backfill finishes the job: the same answer, now all from the index.
    expect(await index.backfill()).toBe(20);
    const indexed = await all(actor, 'kestrel');
    expect(indexed.items).toEqual(one.items);
  });

  it('keeps the index in step with a finished job and an edit', async () => {
    const ownerActor = actorOf(owner, 'owner');
    // A job's transcript: indexed in the transaction that stores it.
    const recordingId = await seedTranscript(t.services, owner, { title: 'Pending upload', done: false });
    await withTenant(t.services.db, owner, async (tx) => {
      await recordingJobRepository.enqueue(tx, { recordingId, orgId: owner.orgId, now: new Date() });
    });
    const job = await t.services.jobQueue.claim();
    expect(job?.recordingId).toBe(recordingId);
    expect(
      await t.services.jobQueue.complete(job!, {
        body: { segments: [seg(1, 'S1', 0, 'the Zanzibarian delegation arrived')], speakers: ['S1'] },
        durationSeconds: 3,
        channels: 1,
        engine: 'test',
      }),
    ).toBe(true);
    const found = await all(ownerActor, 'zanzibarian');
    expect(found.items.map((i) => i.id)).toEqual([recordingId]);
    expect(found.scan.scanned).toBe(1); // from the index, not a scan

    // An edit: the new word is found, the replaced one no longer.
    const res = await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/recordings/${recordingId}/transcript`,
      headers: { ...bearer(owner.accessToken), 'content-type': 'application/json' },
      payload: { revision: 0, segments: [{ id: 'seg-0001', text: 'the Mauritanian delegation arrived' }] },
      remoteAddress: ip,
    });
    expect(res.statusCode, res.body).toBe(200);
    expect((await all(ownerActor, 'mauritanian')).items.map((i) => i.id)).toEqual([recordingId]);
    const gone = await all(ownerActor, 'zanzibarian');
    expect(gone.items).toEqual([]);
    expect(gone.scan.scanned).toBe(0);

    // Deletion: the row and its tokens go with the recording, and the receipt says so.
    expect(await indexRows('recording_id = $1', [recordingId])).toHaveLength(1);
    const stored = (
      await t.services.db.query<{ doc_enc: Uint8Array; tokens: string }>(
        `SELECT doc_enc, encode(sha256(array_send(tokens)), 'hex') AS tokens FROM search_index
          WHERE recording_id = $1`,
        [recordingId],
      )
    ).rows[0]!;
    const del = await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/recordings/${recordingId}`,
      headers: bearer(owner.accessToken),
      remoteAddress: ip,
    });
    expect(del.statusCode, del.body).toBe(204);
    expect(await indexRows('recording_id = $1', [recordingId])).toHaveLength(0);
    const receipt = (
      await t.services.db.query<{
        details: { parts: string[]; sha256: Record<string, string>; searchIndexRowsLeft: number };
      }>(`SELECT details FROM audit_log WHERE action = 'recording.deleted' AND target_id = $1`, [recordingId])
    ).rows[0]!.details;
    expect(receipt.parts).toContain('searchIndex');
    expect(receipt.sha256.searchIndexDoc).toBe(createHash('sha256').update(stored.doc_enc).digest('hex'));
    expect(receipt.sha256.searchIndexTokens).toBe(stored.tokens);
    expect(receipt.searchIndexRowsLeft).toBe(0);
    expect((await all(ownerActor, 'mauritanian')).items).toEqual([]);
  });

  it('follows a live title, the archive and a restore', async () => {
    const ownerActor = actorOf(owner, 'owner');
    // A live recording is searchable by its title while it streams.
    const live = await t.services.live.create(ownerActor, { title: 'Okapi standup' });
    expect(await indexRows('recording_id = $1', [live.id])).toHaveLength(1);
    expect((await all(ownerActor, 'okapi')).items.map((i) => i.id)).toEqual([live.id]);
    // Retention archives: the row cascades away; a restore indexes it again in its transaction.
    const id = await seedTranscript(t.services, owner, {
      segments: [seg(1, 'S1', 0, 'the pangolin budget')],
    });
    expect(await index.backfill()).toBe(1);
    const archiveId = await t.services.archive.archiveRecording(owner.orgId, id);
    expect(archiveId).toBeDefined();
    expect(await indexRows('recording_id = $1', [id])).toHaveLength(0);
    expect((await all(ownerActor, 'pangolin')).items).toEqual([]);
    await t.services.archive.restore(ownerActor, archiveId!);
    expect(await indexRows('recording_id = $1', [id])).toHaveLength(1);
    const back = await all(ownerActor, 'pangolin');
    expect(back.items.map((i) => i.id)).toEqual([id]);
    expect(back.scan.scanned).toBe(1);
  });

  it('never answers across orgs, and the same word has different tokens in two orgs', async () => {
    const mine = await all(actorOf(owner, 'owner'), '"quarterly budget"');
    const theirs = await all(actorOf(other, 'owner'), '"quarterly budget"');
    expect(theirs.items.map((i) => i.id)).toEqual([otherId]);
    expect(mine.items.length).toBeGreaterThan(0);
    expect(mine.items.every((i) => ids.includes(i.id))).toBe(true);
    const tokenIn = (u: TestUser) =>
      withTenant(t.services.db, u, async (tx) =>
        tokenOf(await t.services.keys.searchKey(tx, u.orgId), 'p\u0000budget'),
      );
    const a = await tokenIn(owner);
    const b = await tokenIn(other);
    expect(a).not.toBe(b);
    const rowsA = await indexRows('org_id = $1', [owner.orgId]);
    const rowsB = await indexRows('org_id = $1', [other.orgId]);
    expect(rowsA.some((r) => r.tokens.includes(a))).toBe(true);
    expect(rowsB.some((r) => r.tokens.includes(b))).toBe(true);
    expect(rowsB.some((r) => r.tokens.includes(a))).toBe(false);
    // The index lookup function (it runs as its owner to use the GIN index) pins the caller's
    // tenant: org B's token asked from org A's transaction finds nothing, and nothing without one.
    const hits = (u: TestUser, token: number) =>
      withTenant(t.services.db, u, async (tx) =>
        (
          await tx.query<{ recording_id: string }>(
            'SELECT recording_id FROM sotto_search_hits($1::int[], $2::smallint)',
            [[token], SEARCH_SCHEME],
          )
        ).rows.map((r) => r.recording_id),
      );
    expect(await hits(other, b)).toEqual([otherId]);
    expect(await hits(owner, b)).toEqual([]);
    expect(
      (
        await t.services.db.query('SELECT recording_id FROM sotto_search_hits($1::int[], $2::smallint)', [
          [b],
          SEARCH_SCHEME,
        ])
      ).rows,
    ).toEqual([]);
    // Under RLS a tenant sees only its own rows, and may not use another org's index key.
    const visible = await withTenant(t.services.db, owner, async (tx) => {
      await expect(
        Promise.resolve().then(() => t.services.keys.searchKey(tx, other.orgId)),
      ).rejects.toThrow();
      return (await tx.query<{ org_id: string }>('SELECT DISTINCT org_id FROM search_index')).rows;
    });
    expect(visible).toEqual([{ org_id: owner.orgId }]);
  });

  it('holds no transcript word in the database', async () => {
    const dump = await rawDump(t.services);
    const indexDump = (await indexRows('true', [])).map((r) => Buffer.from(JSON.stringify(r)));
    expect(indexDump.length).toBeGreaterThan(20);
    for (const word of ['quarterly', 'delegation', 'budget', 'Brûlée', 'Ελλάδα', '東京', 'meeting']) {
      expect(dumpContains(dump, word), word).toBe(false);
      expect(dumpContains(indexDump, word), word).toBe(false);
    }
  });

  it('treats hostile queries as queries', async () => {
    const actor = actorOf(owner, 'owner');
    await index.backfill(); // (when run alone)
    const hostile = [
      "'); DROP TABLE search_index; --",
      '" OR 1=1 --',
      '%_\\%',
      'z͑͗̈́a̐l͖g̼o',
      '‮budget‬',
      '😀😀 budget',
      'x'.repeat(5000),
      Array.from({ length: 500 }, (_, i) => `w${i}`).join(' '),
      '"' + 'budget '.repeat(300) + '"',
    ];
    for (const q of hostile) {
      // A page, or (nothing searchable left after folding) a plain bad_request.
      const page = await search.search(actor, { q, limit: 20 }).catch((err: unknown) => {
        expect(err instanceof AppError && err.code === 'bad_request', String(err)).toBe(true);
        return undefined;
      });
      if (page) expect(page.items.map((i) => i.id)).not.toContain(otherId); // its org has "budget" too
    }
    // The injection attempt found nothing and dropped nothing.
    expect((await search.search(actor, { q: hostile[0]!, limit: 20 })).items).toEqual([]);
    expect((await indexRows('org_id = $1', [owner.orgId])).length).toBeGreaterThan(0);
    // Over HTTP the schema bounds it first.
    for (const q of ['x'.repeat(201), 'budget\u0000', '   ']) {
      const res = await t.app.inject({
        method: 'GET',
        url: `/api/v1/recordings?q=${encodeURIComponent(q)}`,
        headers: bearer(owner.accessToken),
        remoteAddress: ip,
      });
      expect(res.statusCode, q.slice(0, 20)).toBe(400);
    }
    const ok = await t.app.inject({
      method: 'GET',
      url: `/api/v1/recordings?q=${encodeURIComponent("budget'; SELECT 1; --")}`,
      headers: bearer(owner.accessToken),
      remoteAddress: ip,
    });
    expect(ok.statusCode).toBe(200);
  });

  it('an org shredded: its index key is gone, its rows purged', async () => {
    const victim = await createOrgWithUser(t.services, { role: 'owner' });
    await seedTranscript(t.services, victim, { segments: [seg(1, 'S1', 0, 'confidential budget')] });
    expect(await index.backfill()).toBe(1);
    expect(await indexRows('org_id = $1', [victim.orgId])).toHaveLength(1);
    const [row] = (
      await t.services.db.query<{ recording_id: string; doc_enc: Uint8Array }>(
        'SELECT recording_id, doc_enc FROM search_index WHERE org_id = $1',
        [victim.orgId],
      )
    ).rows;
    const open = () =>
      withTenant(t.services.db, victim, (tx) =>
        openSearchDoc(tx, t.services.keys, victim.orgId, row!.recording_id, row!.doc_enc),
      );
    expect((await open()).segments[0]!.text).toBe('confidential budget');
    await withSystem(t.services.db, async (tx) => {
      // The org-deletion receipt counts the index rows it purges.
      expect(await deletionRepository.orgCounts(tx, victim.orgId)).toMatchObject({ searchIndexRows: 1 });
      await t.services.keys.shredOrg(tx, victim.orgId);
    });
    // Shredded: a copy of the row (a backup) no longer opens, before the purge as after it.
    await expect(open()).rejects.toMatchObject({ code: 'decryption_failed' });
    await withSystem(t.services.db, (tx) => deletionRepository.purgeOrg(tx, victim.orgId));
    expect(await indexRows('org_id = $1', [victim.orgId])).toHaveLength(0);
    await withTenant(t.services.db, victim, async (tx) => {
      await expect(t.services.keys.searchKey(tx, victim.orgId)).rejects.toThrow(/search index key/);
    });
  });
});
