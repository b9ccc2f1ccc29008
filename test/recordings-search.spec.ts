import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { RecordingSearchService } from '../src/services/search/recording-search.service.js';
import type { Actor } from '../src/domain/auth-context.js';
import {
  addUser,
  bearer,
  createOrgWithUser,
  createSupportUserFixture,
  type TestUser,
} from './helpers/fixtures.js';
import { freshIp } from './helpers/auth-client.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';
import { dumpContains, rawDump, seedTranscript, seg } from './helpers/transcripts.js';

/**
 * GET /recordings?q=: role scoping, folding, phrases, snippets, honest paging under a scan
 * budget, and that a search leaves no plaintext behind (tables, logs). Transcripts are written
 * through the repository and key service in setup: search works on stored transcripts, however
 * they were recognised.
 */
interface Item {
  id: string;
  title: string | null;
  match?: { title: boolean; snippets: { segmentId: string; start: number; text: string }[] };
}

describe(`recording search (${backendLabel})`, () => {
  let t: TestApp;
  let owner: TestUser;
  let member: TestUser;
  let colleague: TestUser;
  let other: TestUser;
  const ip = freshIp();
  const ids: Record<string, string> = {};

  const search = async (
    u: TestUser,
    q: string,
    extra = '',
  ): Promise<{ items: Item[]; next: string | null }> => {
    const res = await t.app.inject({
      method: 'GET',
      url: `/api/v1/recordings?q=${encodeURIComponent(q)}${extra}`,
      headers: bearer(u.accessToken),
      remoteAddress: ip,
    });
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  };
  const found = async (u: TestUser, q: string) => (await search(u, q)).items.map((i) => i.id);

  beforeAll(async () => {
    t = await startTestApp({ env: { SOTTO_RATE_LIMIT_API_PER_MINUTE: '10000' } });
    owner = await createOrgWithUser(t.services, { role: 'owner' });
    member = await addUser(t.services, owner.orgId, { role: 'member' });
    colleague = await addUser(t.services, owner.orgId, { role: 'member' });
    other = await createOrgWithUser(t.services, { role: 'owner' });
    const long = `${'filler words about nothing in particular '.repeat(10)}the Zanzibarian delegation arrived ${'and then more filler follows here '.repeat(10)}`;
    ids.mine = await seedTranscript(t.services, member, {
      title: 'Dessert planning',
      segments: [
        seg(1, 'S1', 0, 'we should order the Crème Brûlée for the Zanzibarian guests'),
        seg(2, 'S2', 5, 'fine but the meeting about the budget comes first'),
        seg(3, 'S1', 10, long),
      ],
    });
    ids.colleague = await seedTranscript(t.services, colleague, {
      title: 'Zanzibarian trade call',
      segments: [seg(1, 'S1', 0, 'the Zanzibarian trade office called again')],
    });
    ids.otherOrg = await seedTranscript(t.services, other, {
      title: 'Zanzibarian notes',
      segments: [seg(1, 'S1', 0, 'Zanzibarian notes from another company')],
    });
    ids.pending = await seedTranscript(t.services, member, {
      title: 'Zanzibarian upload pending',
      done: false,
    });
  });
  afterAll(async () => t?.close());

  it('a member finds only their own recordings (title or transcript)', async () => {
    expect((await found(member, 'zanzibarian')).sort()).toEqual([ids.mine, ids.pending].sort());
    expect(await found(colleague, 'zanzibarian')).toEqual([ids.colleague]);
    expect(await found(member, 'office')).toEqual([]);
  });

  it("an owner finds the whole org's; another org never sees them", async () => {
    expect((await found(owner, 'zanzibarian')).sort()).toEqual([ids.mine, ids.colleague, ids.pending].sort());
    expect(await found(other, 'zanzibarian')).toEqual([ids.otherOrg]);
    expect(await found(other, 'brulee')).toEqual([]);
  });

  it('support with a grant searches the org it was granted, and only it', async () => {
    const support = await createSupportUserFixture(t.services);
    const grant = await t.app.inject({
      method: 'POST',
      url: '/api/v1/org/support-grants',
      headers: bearer(owner.accessToken),
      payload: { hours: 1 },
      remoteAddress: ip,
    });
    expect(grant.statusCode).toBe(201);
    const res = await t.app.inject({
      method: 'GET',
      url: '/api/v1/recordings?q=zanzibarian',
      headers: bearer(support.accessToken, owner.orgId),
      remoteAddress: ip,
    });
    expect(res.statusCode).toBe(200);
    expect((res.json().items as Item[]).map((i) => i.id).sort()).toEqual(
      [ids.mine, ids.colleague, ids.pending].sort(),
    );
  });

  it('folds case and accents, matches word starts, needs every word', async () => {
    expect(await found(member, 'CREME brulee')).toEqual([ids.mine]);
    expect(await found(member, 'crème BRÛLÉE')).toEqual([ids.mine]);
    expect(await found(member, 'meet budg')).toEqual([ids.mine]); // word prefixes
    expect(await found(member, 'eting')).toEqual([]); // not inside a word
    expect(await found(member, 'brulee unicorn')).toEqual([]); // every word must appear
    expect(await found(member, 'dessert brulee')).toEqual([ids.mine]); // title + transcript
  });

  it('a quoted phrase needs its words in order', async () => {
    expect(await found(member, '"creme brulee"')).toEqual([ids.mine]);
    expect(await found(member, '"brulee creme"')).toEqual([]);
    expect(await found(member, 'brulee creme')).toEqual([ids.mine]);
  });

  it('hits carry the recording, whether the title matched, and ≤ 3 snippets around the match', async () => {
    const { items } = await search(member, 'zanzibarian');
    const hit = items.find((i) => i.id === ids.mine)!;
    expect(hit.title).toBe('Dessert planning');
    expect(hit.match!.title).toBe(false);
    expect(hit.match!.snippets).toHaveLength(2);
    expect(hit.match!.snippets[0]).toEqual({
      segmentId: 'seg-0001',
      start: 0,
      text: 'we should order the Crème Brûlée for the Zanzibarian guests',
    });
    const cut = hit.match!.snippets[1]!;
    expect(cut.segmentId).toBe('seg-0003');
    expect(cut.text).toContain('Zanzibarian delegation');
    expect(cut.text.length).toBeLessThanOrEqual(162);
    expect(cut.text.startsWith('…') && cut.text.endsWith('…')).toBe(true);
    expect(items.find((i) => i.id === ids.pending)!.match).toEqual({ title: true, snippets: [] });
    // A plain list has no match field.
    const list = await t.app.inject({
      method: 'GET',
      url: '/api/v1/recordings',
      headers: bearer(member.accessToken),
      remoteAddress: ip,
    });
    expect((list.json().items as Item[]).every((i) => i.match === undefined)).toBe(true);
  });

  it('refuses bad queries with 400', async () => {
    for (const q of ['', '   ', 'x'.repeat(201), 'a\u0000b', 'line\nbreak', '?!…', '""']) {
      const res = await t.app.inject({
        method: 'GET',
        url: `/api/v1/recordings?q=${encodeURIComponent(q)}`,
        headers: bearer(member.accessToken),
        remoteAddress: ip,
      });
      expect(res.statusCode, JSON.stringify(q)).toBe(400);
    }
    const twice = await t.app.inject({
      method: 'GET',
      url: '/api/v1/recordings?q=a&q=b',
      headers: bearer(member.accessToken),
      remoteAddress: ip,
    });
    expect(twice.statusCode).toBe(400);
  });

  it('never logs the query, and writes no plaintext anywhere', async () => {
    const word = 'Quixotically';
    await seedTranscript(t.services, member, {
      segments: [seg(1, 'S1', 0, `a ${word} distinctive sentence`)],
    });
    const before = t.logs.length;
    expect(await search(member, word.toLowerCase())).toMatchObject({ items: [{ match: { title: false } }] });
    await search(member, `${word} nothing`);
    const logged = t.logs.slice(before).join('');
    // The request was logged (so this check can fail) — by path only.
    expect(logged).toContain('"url":"/api/v1/recordings"');
    expect(logged.toLowerCase()).not.toContain(word.toLowerCase());
    expect(t.logs.join('').toLowerCase()).not.toContain('zanzibarian');
    const dump = await rawDump(t.services);
    expect(dump.length).toBeGreaterThan(20);
    for (const w of [word, 'Zanzibarian', 'Brûlée', 'Dessert']) expect(dumpContains(dump, w), w).toBe(false);
  });

  it('pages honestly under a scan budget: every hit once, in order, cursor where the scan stopped', async () => {
    const pager = await createOrgWithUser(t.services, { role: 'owner' });
    const base = Date.UTC(2026, 0, 1);
    const made: { id: string; hit: boolean }[] = [];
    for (let i = 0; i < 11; i++) {
      const hit = i % 4 === 0; // 0, 4, 8
      const id = await seedTranscript(t.services, pager, {
        createdAt: new Date(base + i * 60_000),
        segments: [
          seg(1, 'S1', 0, hit ? `item ${i} mentions the walrus` : `item ${i} is about something else`),
        ],
      });
      made.push({ id, hit });
    }
    const newestFirst = made.reverse();
    const service = new RecordingSearchService(t.services.db, t.services.keys, t.services.recordings, 3);
    const actor: Actor = {
      userId: pager.userId,
      orgId: pager.orgId,
      role: 'owner',
      sessionId: pager.sessionId,
      viaSupportGrant: false,
      ip: '127.0.0.1',
    };
    const seen: string[] = [];
    const pages: number[] = [];
    let after: string | undefined;
    for (let n = 0; n < 20; n++) {
      const page = await service.search(actor, { q: 'walrus', limit: 2, after });
      pages.push(page.items.length);
      seen.push(...page.items.map((i) => i.id));
      if (!page.next) break;
      after = page.next;
    }
    expect(seen).toEqual(newestFirst.filter((m) => m.hit).map((m) => m.id));
    // 11 recordings, 3 scanned per request: some pages are empty yet point further on.
    expect(pages).toContain(0);
    expect(pages.length).toBeGreaterThanOrEqual(4);

    // Through HTTP (default budget): limit bounds the page, and the cursor continues it.
    const p1 = await search(pager, 'walrus', '&limit=2');
    expect(p1.items).toHaveLength(2);
    const p2 = await search(pager, 'walrus', `&limit=2&after=${p1.next}`);
    expect([...p1.items, ...p2.items].map((i) => i.id)).toEqual(seen);
    expect(p2.next).toBeNull();
    const bad = await t.app.inject({
      method: 'GET',
      url: `/api/v1/recordings?q=walrus&after=${ids.mine}`,
      headers: bearer(pager.accessToken),
      remoteAddress: ip,
    });
    expect(bad.statusCode).toBe(400); // another org's id is no cursor
  });
});
