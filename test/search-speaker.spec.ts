import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import pino from 'pino';
import { withTenant } from '../src/db/tenant.js';
import { SearchIndexService } from '../src/services/search/search-index.service.js';
import { speakerTerm, tokenOf } from '../src/services/search/search-tokens.js';
import { actorOf, addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { freshIp } from './helpers/auth-client.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';
import { dumpContains, rawDump, seedTranscript, seg } from './helpers/transcripts.js';

/**
 * `speaker=` on GET /recordings (docs/search.md, "Narrowed to a speaker"): the words must be said
 * by that speaker (display name, case- and accent-insensitive, compared whole), the title does not
 * count, without `q` the recordings where they speak. Answered through the index (a keyed token
 * per speaker name, never the name) with the same answers as decrypting everything; a rename
 * re-indexes; another org's recordings and a colleague's (for a member) never answer; malformed
 * values are 400; no speaker name reaches the database in the clear.
 */
const ZOE = 'Zoë Okonkwo-Brandt';

describe(`search narrowed to a speaker (${backendLabel})`, () => {
  let t: TestApp;
  let owner: TestUser;
  let member: TestUser;
  let other: TestUser;
  let index: SearchIndexService;
  const ip = freshIp();
  const r: Record<string, string> = {};
  const base = Date.parse('2026-03-01T00:00:00Z');

  const get = (u: TestUser, query: Record<string, string | string[]>) =>
    t.app.inject({
      method: 'GET',
      url: '/api/v1/recordings',
      query: { limit: '200', ...query },
      headers: bearer(u.accessToken),
      remoteAddress: ip,
    });
  interface Page {
    items: { id: string; match: { title: boolean; snippets: { segmentId: string; text: string }[] } }[];
    next: string | null;
    scan: { scanned: number; total: number };
  }
  const found = async (u: TestUser, query: Record<string, string>): Promise<Page> => {
    const res = await get(u, query);
    expect(res.statusCode, res.body).toBe(200);
    const page = res.json<Page>();
    expect(page.next).toBeNull();
    return page;
  };
  const names = (page: Page) =>
    page.items.map((i) => Object.keys(r).find((k) => r[k] === i.id) ?? `unknown:${i.id}`).sort();
  /** Renames speakers the way the panel does (a transcript edit, which re-indexes the recording). */
  const rename = async (u: TestUser, id: string, speakers: { id: string; name: string }[]) => {
    const actor = actorOf(u, u === member ? 'member' : 'owner');
    const doc = await t.services.transcripts.get(actor, id, 'current');
    await t.services.transcripts.edit(actor, id, { revision: doc.revision, speakers });
  };

  beforeAll(async () => {
    t = await startTestApp({ env: { SOTTO_RATE_LIMIT_API_PER_MINUTE: '10000' } });
    owner = await createOrgWithUser(t.services, { role: 'owner' });
    member = await addUser(t.services, owner.orgId, { role: 'member' });
    other = await createOrgWithUser(t.services, { role: 'owner' });
    index = new SearchIndexService(t.services.db, t.services.keys, pino({ level: 'silent' }));
    let day = 0;
    const seed = async (u: TestUser, name: string, title: string | undefined, segs: [string, string][]) => {
      r[name] = await seedTranscript(t.services, u, {
        title,
        segments: segs.map(([speaker, text], i) => seg(i + 1, speaker, i * 5, text)),
        createdAt: new Date(base + day++ * 86_400_000),
      });
    };
    await seed(owner, 'zoeBudget', 'Budget call', [
      ['S1', 'the quarterly budget is late'],
      ['S2', 'no budget talk from me'],
      ['S2', 'harbour lights'],
    ]);
    await seed(owner, 'bobBudget', undefined, [
      ['S1', 'quarterly budget again'],
      ['S2', 'garden party'],
    ]);
    await seed(owner, 'unnamed', undefined, [
      ['S1', 'budget review'],
      ['S2', 'quarterly numbers'],
    ]);
    await seed(member, 'memberZoe', undefined, [['S1', 'budget for the garden']]);
    await seed(owner, 'titleOnly', `${ZOE} budget`, [['S1', 'hello there']]);
    await seed(other, 'otherOrg', undefined, [['S1', 'quarterly budget']]);
    await rename(owner, r.zoeBudget!, [
      { id: 'S1', name: ZOE },
      { id: 'S2', name: 'Bob' },
    ]);
    await rename(owner, r.bobBudget!, [
      { id: 'S1', name: 'Bob' },
      { id: 'S2', name: ZOE },
    ]);
    await rename(member, r.memberZoe!, [{ id: 'S1', name: ZOE }]);
    await rename(owner, r.titleOnly!, [{ id: 'S1', name: 'Ann' }]);
    await rename(other, r.otherOrg!, [{ id: 'S1', name: ZOE }]);
    await index.backfill(); // the recording left unnamed was not edited, so not indexed yet
  });
  afterAll(async () => t?.close());

  // [caller, query, expected recordings]
  const cases: [() => TestUser, Record<string, string>, string[]][] = [
    [() => owner, { q: 'budget', speaker: ZOE }, ['memberZoe', 'zoeBudget']],
    [() => owner, { q: 'BUDG', speaker: '  zoe   OKONKWO brandt ' }, ['memberZoe', 'zoeBudget']],
    [() => owner, { q: 'budget', speaker: 'Zoë' }, []], // a name is compared whole
    [() => owner, { q: '"quarterly budget"', speaker: 'bob' }, ['bobBudget']],
    [() => owner, { q: '"quarterly budget"', speaker: ZOE }, ['zoeBudget']],
    [() => owner, { q: 'garden', speaker: ZOE }, ['bobBudget', 'memberZoe']],
    [() => owner, { q: 'quarterly', speaker: 'Speaker 2' }, ['unnamed']], // the name the panel shows
    [() => owner, { q: 'budget', speaker: 'Speaker 2' }, []],
    [() => owner, { speaker: 'Bob' }, ['bobBudget', 'zoeBudget']], // no words: where they speak
    [() => owner, { q: 'a', speaker: 'Ann' }, []], // short words: the speaker's token still narrows
    [() => owner, { q: 'budget', speaker: 'Ann' }, []], // the title does not count
    [() => owner, { q: 'budget' }, ['bobBudget', 'memberZoe', 'titleOnly', 'unnamed', 'zoeBudget']],
    [() => member, { q: 'budget', speaker: ZOE }, ['memberZoe']], // a member: their own only
    [() => member, { speaker: 'Bob' }, []],
    [() => other, { q: 'budget', speaker: ZOE }, ['otherOrg']], // another org: its own only
    [() => other, { speaker: 'Bob' }, []],
  ];

  it('finds the words said by that speaker only, through the index, as decrypting everything would', async () => {
    const indexed: Page[] = [];
    for (const [who, query, expected] of cases) {
      const page = await found(who(), query);
      expect({ query, found: names(page) }).toEqual({ query, found: expected });
      indexed.push(page);
    }
    // A selective speaker search decrypts its candidates, not the org: the recordings holding
    // Bob's token and the phrase's — Zoë's call too (Bob speaks there, she said the phrase).
    const narrow = indexed[3]!;
    expect(narrow.scan.scanned).toBe(2);
    expect(narrow.scan.total).toBe(5);
    // Snippets come from that speaker's segments: Bob's "budget" line in Zoë's call, not hers.
    const bobs = await found(owner, { q: 'budget', speaker: 'Bob' });
    const hit = bobs.items.find((i) => i.id === r.zoeBudget)!;
    expect(hit.match).toEqual({
      title: false,
      snippets: [expect.objectContaining({ segmentId: 'seg-0002', text: 'no budget talk from me' })],
    });
    // Without words the snippets are the speaker's first segments.
    const where = await found(owner, { speaker: 'Bob' });
    expect(where.items.find((i) => i.id === r.zoeBudget)!.match.snippets.map((s) => s.segmentId)).toEqual([
      'seg-0002',
      'seg-0003',
    ]);

    // The same answers with no index row at all (recordings written before the index: decrypted
    // from their rows, speaker names included), only more decryption.
    await t.services.db.query('DELETE FROM search_index');
    for (const [i, [who, query, expected]] of cases.entries()) {
      const page = await found(who(), query);
      expect({ query, found: names(page) }).toEqual({ query, found: expected });
      expect(page.items).toEqual(indexed[i]!.items);
    }
    expect((await found(owner, cases[3]![1])).scan.scanned).toBe(5);
    expect(await index.backfill()).toBe(6);
  });

  it('holds a keyed token per speaker name, different per org, and no name in the clear', async () => {
    const tokenOfName = (u: TestUser, name: string) =>
      withTenant(t.services.db, u, async (tx) =>
        tokenOf(await t.services.keys.searchKey(tx, u.orgId), speakerTerm(name)),
      );
    const row = async (id: string) =>
      (
        await t.services.db.query<{ tokens: number[] }>(
          'SELECT tokens FROM search_index WHERE recording_id = $1',
          [id],
        )
      ).rows[0]!.tokens;
    const mine = await tokenOfName(owner, ZOE);
    const theirs = await tokenOfName(other, ZOE);
    expect(mine).not.toBe(theirs);
    expect(await tokenOfName(owner, 'zoe okonkwo brandt')).toBe(mine);
    expect(await row(r.zoeBudget!)).toContain(mine);
    expect(await row(r.unnamed!)).not.toContain(mine);
    expect(await row(r.otherOrg!)).toContain(theirs);
    expect(await row(r.otherOrg!)).not.toContain(mine);
    const dump = await rawDump(t.services);
    for (const word of ['Okonkwo', 'okonkwo brandt', 'Bob"', 'harbour'])
      expect(dumpContains(dump, word)).toBe(false);
  });

  it('follows a rename: the old name no longer finds the recording, the new one does', async () => {
    await rename(owner, r.zoeBudget!, [{ id: 'S1', name: 'Ann Lee' }]);
    expect(names(await found(owner, { q: 'budget', speaker: ZOE }))).toEqual(['memberZoe']);
    expect(names(await found(owner, { q: 'quarterly', speaker: 'ann lee' }))).toEqual(['zoeBudget']);
  });

  it('refuses malformed speakers before any query (400), and hostile ones are just names', async () => {
    for (const speaker of [
      '',
      '   ',
      '!!!',
      '%',
      '_',
      '—',
      'x'.repeat(101),
      'a\u0000b',
      'a\nb',
      ['Bob', 'Ann'],
    ]) {
      const res = await get(owner, { speaker });
      expect(res.statusCode, JSON.stringify(speaker)).toBe(400);
      expect(res.body).not.toContain('Okonkwo');
    }
    expect((await get(owner, { speakers: 'Bob' })).statusCode).toBe(400);
    for (const speaker of ["'; DROP TABLE search_index; --", 'B_b', 'Bo\\b', 'Bob OR 1=1'])
      expect((await found(owner, { speaker })).items).toEqual([]);
    // Punctuation and format characters fold away as in the text (O'Brien is "o brien"): still Bob.
    for (const speaker of ['Bob%', '\u202eBob', 'BOB!'])
      expect(names(await found(owner, { speaker }))).toEqual(['bobBudget', 'zoeBudget']);
    expect((await t.services.db.query('SELECT count(*)::int AS n FROM search_index')).rows[0]).toEqual({
      n: 6,
    });
  });

  it("another org's recording is never a page cursor (exactly 404 for the record, nothing listed)", async () => {
    // Its id as a cursor is refused like any unknown cursor; reading it directly is exactly 404.
    const res = await get(other, { speaker: ZOE, after: r.zoeBudget! });
    expect(res.statusCode).toBe(400);
    expect(res.body).not.toContain(r.zoeBudget);
    const direct = await t.app.inject({
      method: 'GET',
      url: `/api/v1/recordings/${r.zoeBudget}`,
      headers: bearer(other.accessToken),
      remoteAddress: ip,
    });
    expect(direct.statusCode).toBe(404);
  });
});
