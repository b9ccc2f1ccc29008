import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../src/db/tenant.js';
import { recordingRepository } from '../src/repositories/recordings/recording.repository.js';
import { addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { freshIp } from './helpers/auth-client.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';
import { seedTranscript, seg } from './helpers/transcripts.js';

/**
 * GET /recordings filters (status, owner, from/to) and keyset paging: in SQL, under RLS, on top
 * of the member/admin visibility rule, combined with the decrypt-and-scan `q`; hostile input is a
 * 400 before any query runs.
 */
interface Item {
  id: string;
  status: string;
  ownerId: string;
  createdAt: string;
}
interface Page {
  items: Item[];
  next: string | null;
  scan?: { scanned: number; total: number };
}

const DAY = 86_400_000;
// In the future on purpose: the live sweep fails 'live' rows nobody touched for a while, and
// would turn the seeded live ones into failed ones mid-test.
const T0 = Date.parse('2030-03-01T12:00:00Z');
const at = (days: number) => new Date(T0 + days * DAY);

describe(`recordings list filters (${backendLabel})`, () => {
  let t: TestApp;
  let owner: TestUser;
  let member: TestUser;
  let colleague: TestUser;
  let other: TestUser;
  const ip = freshIp();
  /** id → what it was seeded with */
  const seeded = new Map<string, { owner: string; status: string; day: number }>();
  let otherOrgId = '';

  const list = async (u: TestUser, query: string): Promise<Page> => {
    const res = await t.app.inject({
      method: 'GET',
      url: `/api/v1/recordings?${query}`,
      headers: bearer(u.accessToken),
      remoteAddress: ip,
    });
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  };
  const status = async (u: TestUser, query: string) =>
    (
      await t.app.inject({
        method: 'GET',
        url: `/api/v1/recordings?${query}`,
        headers: bearer(u.accessToken),
        remoteAddress: ip,
      })
    ).statusCode;
  const ids = (p: Page) => p.items.map((i) => i.id);
  /** What the filter should return, newest first, from what was seeded. */
  const expected = (pred: (s: { owner: string; status: string; day: number }) => boolean) =>
    [...seeded.entries()]
      .filter(([, s]) => pred(s))
      .sort(([a, x], [b, y]) => y.day - x.day || (b > a ? 1 : -1))
      .map(([id]) => id);

  async function seed(u: TestUser, day: number, state: 'done' | 'queued' | 'processing' | 'failed' | 'live') {
    const id = await seedTranscript(t.services, u, {
      title: `Day ${day} ${state}`,
      segments: state === 'done' ? [seg(1, 'S1', 0, `walrus notes for day ${day}`)] : [],
      createdAt: at(day),
      done: state === 'done',
    });
    await withTenant(t.services.db, u, async (tx) => {
      if (state === 'processing') await recordingRepository.markProcessing(tx, id, at(day));
      if (state === 'failed') await recordingRepository.markFailed(tx, id, 'engine_failed', at(day));
      if (state === 'live') await tx.query(`UPDATE recordings SET status = 'live' WHERE id = $1`, [id]);
    });
    seeded.set(id, { owner: u.userId, status: state, day });
    return id;
  }

  beforeAll(async () => {
    t = await startTestApp({ env: { SOTTO_RATE_LIMIT_API_PER_MINUTE: '10000' } });
    owner = await createOrgWithUser(t.services, { role: 'owner' });
    member = await addUser(t.services, owner.orgId, { role: 'member' });
    colleague = await addUser(t.services, owner.orgId, { role: 'member' });
    other = await createOrgWithUser(t.services, { role: 'owner' });
    const states = ['done', 'queued', 'processing', 'failed', 'live'] as const;
    for (let i = 0; i < 12; i++) await seed(member, i, states[i % 5]!);
    for (let i = 0; i < 6; i++) await seed(colleague, i + 0.5, states[(i + 2) % 5]!);
    await seed(owner, 20, 'done');
    // Two on the very same instant: paging must order them by id too.
    await seed(owner, 21, 'done');
    await seed(owner, 21, 'done');
    // Another organization's, in the same time range and with the same words.
    otherOrgId = await seedTranscript(t.services, other, {
      title: 'Other org walrus',
      segments: [seg(1, 'S1', 0, 'walrus notes for another company')],
      createdAt: at(3),
    });
  });
  afterAll(async () => t?.close());

  it('filters by status, each one', async () => {
    for (const s of ['done', 'queued', 'processing', 'failed', 'live']) {
      const page = await list(owner, `status=${s}&limit=200`);
      expect(ids(page)).toEqual(expected((x) => x.status === s));
      expect(page.items.every((i) => i.status === s)).toBe(true);
    }
  });

  it('filters by owner: me, a colleague, and a member never sees past their own', async () => {
    expect(ids(await list(owner, 'owner=me&limit=200'))).toEqual(expected((x) => x.owner === owner.userId));
    expect(ids(await list(owner, `owner=${member.userId}&limit=200`))).toEqual(
      expected((x) => x.owner === member.userId),
    );
    expect(ids(await list(member, 'owner=me&limit=200'))).toEqual(expected((x) => x.owner === member.userId));
    // A member asking for a colleague's: the visibility rule still applies, so nothing.
    expect(ids(await list(member, `owner=${colleague.userId}&limit=200`))).toEqual([]);
    // The member's unfiltered list is their own only; the owner's is everyone's.
    expect(ids(await list(member, 'limit=200'))).toEqual(expected((x) => x.owner === member.userId));
    expect(ids(await list(owner, 'limit=200'))).toEqual(expected(() => true));
  });

  it('filters by date range: from inclusive, to exclusive, a bare date to its end', async () => {
    const from = at(3).toISOString();
    const to = at(8).toISOString();
    expect(ids(await list(owner, `from=${from}&to=${to}&limit=200`))).toEqual(
      expected((x) => x.day >= 3 && x.day < 8),
    );
    // Dates only: from the 4th 00:00 UTC (day 2.5, inclusive) to the end of the 6th (day 5.5, excluded).
    expect(ids(await list(owner, 'from=2030-03-04&to=2030-03-06&limit=200'))).toEqual(
      expected((x) => x.day >= 2.5 && x.day < 5.5),
    );
    // An offset is honoured: 14:00+02:00 is 12:00Z, so day 3's recording is included.
    expect(
      ids(await list(owner, `from=${encodeURIComponent('2030-03-04T14:00:00+02:00')}&limit=200`)),
    ).toEqual(expected((x) => x.day >= 3));
  });

  it('combines filters with each other and with q (decrypt-and-scan)', async () => {
    const page = await list(
      owner,
      `status=done&owner=${member.userId}&from=${at(2).toISOString()}&limit=200`,
    );
    expect(ids(page)).toEqual(
      expected((x) => x.status === 'done' && x.owner === member.userId && x.day >= 2),
    );
    const found = await list(owner, `q=walrus&owner=${member.userId}&limit=200`);
    expect(ids(found)).toEqual(expected((x) => x.status === 'done' && x.owner === member.userId));
    expect(found.next).toBeNull();
    // The honest count: every recording the filters let through was scanned.
    const total = expected((x) => x.owner === member.userId).length;
    expect(found.scan).toEqual({ scanned: total, total });
    const dated = await list(owner, `q=walrus&from=${at(5).toISOString()}&status=done&limit=200`);
    expect(ids(dated)).toEqual(expected((x) => x.status === 'done' && x.day >= 5));
    // Without q there is no scan object.
    expect((await list(owner, 'limit=5')).scan).toBeUndefined();
  });

  it('pages with the cursor without duplicates or gaps, also with filters and with q', async () => {
    for (const query of ['limit=4', 'limit=3&status=done', `limit=2&owner=me`, 'limit=1&q=walrus']) {
      const seen: string[] = [];
      let after = '';
      for (let i = 0; i < 50; i++) {
        const page = await list(owner, `${query}${after ? `&after=${after}` : ''}`);
        seen.push(...ids(page));
        if (!page.next) break;
        after = page.next;
      }
      const all = await list(owner, `${query.replace(/limit=\d+/, 'limit=200')}`);
      expect(seen, query).toEqual(ids(all));
      expect(new Set(seen).size).toBe(seen.length);
    }
  });

  it("is bounded by the tenant: another org's owner id yields nothing, its recording is exactly 404", async () => {
    expect(ids(await list(owner, `owner=${other.userId}&limit=200`))).toEqual([]);
    expect(ids(await list(owner, `q=walrus&owner=${other.userId}&limit=200`))).toEqual([]);
    expect(ids(await list(other, `owner=${owner.userId}&limit=200`))).toEqual([]);
    expect(ids(await list(other, 'limit=200'))).toEqual([otherOrgId]);
    // Another org's recording as a cursor is refused like an unknown one; fetching it is 404.
    expect(await status(owner, `after=${otherOrgId}`)).toBe(400);
    const res = await t.app.inject({
      method: 'GET',
      url: `/api/v1/recordings/${otherOrgId}`,
      headers: bearer(owner.accessToken),
      remoteAddress: ip,
    });
    expect(res.statusCode).toBe(404);
  });

  it('refuses hostile input with 400 and runs nothing', async () => {
    const bad = [
      'status=deleted',
      'status=done,failed',
      "status=done'%20OR%201=1--",
      'owner=someone',
      "owner=me'%20OR%20'1'='1",
      'owner=00000000-0000-0000-0000-00000000000g',
      'from=yesterday',
      'from=2026-13-01',
      'from=2026-02-30',
      'to=2026-03-01T25:00:00Z',
      'from=1970-01-01',
      'to=9999-12-31',
      'from=2026-03-05&to=2026-03-01',
      'limit=0',
      'limit=201',
      'limit=100000000000000000000',
      'limit=-1',
      'limit=abc',
      'after=not-a-uuid',
      'sort=title',
      'status=done&unknown=1',
      `q=${'a'.repeat(201)}`,
      'q=%00',
      `from=${'2'.repeat(5000)}`,
    ];
    for (const q of bad) expect(await status(owner, q), q).toBe(400);
    // An SQL-looking search is only text: searched, not executed.
    expect((await list(owner, `q=${encodeURIComponent("walrus'; DROP TABLE recordings;--")}`)).items).toEqual(
      [],
    );
    expect((await list(owner, 'limit=200')).items.length).toBe(seeded.size);
  });

  it('needs a token', async () => {
    const res = await t.app.inject({
      method: 'GET',
      url: '/api/v1/recordings?status=done',
      remoteAddress: ip,
    });
    expect(res.statusCode).toBe(401);
  });
});
