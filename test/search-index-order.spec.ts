import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import type { Actor } from '../src/domain/auth-context.js';
import { withTenant } from '../src/db/tenant.js';
import {
  recordingRepository,
  type ListFilter,
  type Visibility,
} from '../src/repositories/recordings/recording.repository.js';
import { searchIndexRepository } from '../src/repositories/recordings/search-index.repository.js';
import { RecordingSearchService, type SearchPage } from '../src/services/search/recording-search.service.js';
import { queryTokens, SearchIndexService } from '../src/services/search/search-index.service.js';
import { SEARCH_SCHEME } from '../src/services/search/search-tokens.js';
import { actorOf, addUser, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';
import { seedTranscript, seg } from './helpers/transcripts.js';

/**
 * The index's candidate query walks the org's recordings newest first and keeps those among the
 * hits ("order first, join later", docs/search.md). Pages of every size, after every cursor, with
 * the list's filters and a member's visibility, must be exactly the visible hits in list order —
 * checked against the list itself intersected with the index lookup — and the search answers
 * (paged by a small budget) must be those of the decrypting scan before the org was indexed.
 */
describe(`search candidates, newest first (${backendLabel})`, () => {
  let t: TestApp;
  let owner: TestUser;
  let member: TestUser;
  const base = Date.parse('2026-03-01T00:00:00Z');

  beforeAll(async () => {
    t = await startTestApp();
    owner = await createOrgWithUser(t.services, { role: 'owner' });
    member = await addUser(t.services, owner.orgId, { role: 'member' });
    // Another org with the same words: never a candidate.
    const other = await createOrgWithUser(t.services, { role: 'owner' });
    await seedTranscript(t.services, other, { segments: [seg(1, 'S1', 0, 'the osprey and the heron')] });
    for (let i = 0; i < 60; i++) {
      const text = i % 3 === 0 ? 'the osprey nests by the water' : i % 3 === 1 ? 'the heron waits' : 'osprey';
      await seedTranscript(t.services, i % 4 === 0 ? member : owner, {
        title: i % 7 === 0 ? 'Osprey notes' : undefined,
        segments: [seg(1, 'S1', 0, text)],
        // Pairs share a creation time: the id breaks the tie, as in the list.
        createdAt: new Date(base + Math.floor(i / 2) * 60_000),
        done: i % 11 !== 5,
      });
    }
  });
  afterAll(async () => t?.close());

  it('pages exactly the visible hits in list order, after every cursor', async () => {
    // Before the index, as the search saw the org: the decrypting scan's answers.
    const scan = new RecordingSearchService(
      t.services.db,
      t.services.keys,
      t.services.recordings,
      7,
      Infinity,
    );
    const everyPage = async (actor: Actor, q: string) => {
      const pages: SearchPage[] = [];
      let after: string | undefined;
      for (let n = 0; n < 100; n++) {
        const page = await scan.search(actor, { q, limit: 4, after });
        pages.push(page);
        if (!page.next) return pages.flatMap((p) => p.items);
        after = page.next;
      }
      throw new Error('never finished');
    };
    const queries = ['osprey', 'heron', '"the osprey"', 'osprey notes'];
    const actors = [actorOf(owner, 'owner'), actorOf(member, 'member')];
    const before = [];
    for (const q of queries) for (const a of actors) before.push(await everyPage(a, q));

    const indexed = await new SearchIndexService(
      t.services.db,
      t.services.keys,
      pino({ level: 'silent' }),
    ).backfill();
    // 60 and the other org's one, less the 4 neither transcribed nor titled (nothing to index).
    expect(indexed).toBe(57);

    let compared = 0;
    await withTenant(t.services.db, owner, async (tx) => {
      for (const q of queries) {
        const tokens = (await queryTokens(tx, t.services.keys, owner.orgId, q))!;
        expect(tokens.length).toBeGreaterThan(0);
        const hits = new Set(
          (
            await tx.query<{ recording_id: string }>(
              'SELECT recording_id FROM sotto_search_hits($1::int[], $2::smallint)',
              [tokens, SEARCH_SCHEME],
            )
          ).rows.map((r) => r.recording_id),
        );
        // An owner sees every recording, a member their own.
        const visibilities: Visibility[] = [{}, { ownerId: member.userId }];
        const filters: (ListFilter | undefined)[] = [
          undefined,
          { status: 'done' },
          { from: new Date(base + 5 * 60_000), to: new Date(base + 22 * 60_000) },
          { ownerId: member.userId },
        ];
        for (const vis of visibilities) {
          for (const filter of filters) {
            const listed = await recordingRepository.listForSearch(tx, vis, { limit: 1000, filter });
            const expected = listed.filter((r) => hits.has(r.id)).map((r) => r.id);
            for (const limit of [1, 3, 25]) {
              const got: string[] = [];
              let after: { createdAt: Date; id: string } | undefined;
              for (;;) {
                const page = await searchIndexRepository.matching(tx, vis, tokens, SEARCH_SCHEME, {
                  limit,
                  after,
                  filter,
                });
                // A page is full unless the hits ran out: nothing skipped by the limit.
                expect(page.length).toBe(Math.min(limit, expected.length - got.length));
                for (const c of page) expect(c.docEnc.length).toBeGreaterThan(0);
                got.push(...page.map((c) => c.id));
                if (page.length < limit) break;
                after = { createdAt: page.at(-1)!.createdAt, id: page.at(-1)!.id };
              }
              expect(got).toEqual(expected);
              compared += expected.length;
            }
          }
        }
      }
    });
    expect(compared).toBeGreaterThan(300); // not a comparison of empty lists

    // And the search, now from the index, pages the same answers as the scan did.
    const after = [];
    for (const q of queries) for (const a of actors) after.push(await everyPage(a, q));
    expect(after).toEqual(before);
    expect(after.flat().length).toBeGreaterThan(60);
  });
});
