import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  addUser,
  bearer,
  createOrgWithUser,
  createSupportUserFixture,
  type TestUser,
} from './helpers/fixtures.js';
import { freshIp } from './helpers/auth-client.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';
import { dumpContains, rawDump, seedTranscript, seg, type TranscriptDoc } from './helpers/transcripts.js';

/**
 * PATCH /recordings/:id/transcript. Transcripts are written through the repository and key
 * service in setup (the edit logic does not depend on how the words were recognised; the
 * export/report spec runs the real pipeline end to end).
 */
const machine = [
  seg(1, 'S1', 0, 'good morning this is the clinic'),
  seg(2, 'S2', 3.5, 'hello I am calling about my apointment'),
  seg(3, 'S1', 8, 'sure let me check'),
];

describe(`transcript editing (${backendLabel})`, () => {
  let t: TestApp;
  let owner: TestUser;
  let member: TestUser;
  let colleague: TestUser;
  let other: TestUser;
  const ip = freshIp();

  const call = (
    u: TestUser | Record<string, string>,
    method: 'GET' | 'PATCH',
    url: string,
    payload?: unknown,
  ) =>
    t.app.inject({
      method,
      url,
      headers: 'accessToken' in u ? bearer(u.accessToken as string) : u,
      remoteAddress: ip,
      ...(payload !== undefined ? { payload: payload as object } : {}),
    });
  const patch = (u: TestUser | Record<string, string>, id: string, payload: unknown) =>
    call(u, 'PATCH', `/api/v1/recordings/${id}/transcript`, payload);
  const get = async (u: TestUser, id: string, query = ''): Promise<TranscriptDoc> => {
    const res = await call(u, 'GET', `/api/v1/recordings/${id}/transcript${query}`);
    expect(res.statusCode, res.body).toBe(200);
    return res.json();
  };
  const edits = async (id: string) =>
    (
      await t.db.query<{ action: string; details: unknown; actor_id: string }>(
        `SELECT action, details, actor_id FROM audit_log WHERE target_id = $1 AND action = 'transcript.edited' ORDER BY seq`,
        [id],
      )
    ).rows;

  beforeAll(async () => {
    t = await startTestApp({ env: { SOTTO_RATE_LIMIT_API_PER_MINUTE: '10000' } });
    owner = await createOrgWithUser(t.services, { role: 'owner' });
    member = await addUser(t.services, owner.orgId, { role: 'member' });
    colleague = await addUser(t.services, owner.orgId, { role: 'member' });
    other = await createOrgWithUser(t.services, { role: 'owner' });
  });
  afterAll(async () => t?.close());

  it('a fresh transcript is revision 0 with nothing edited', async () => {
    const id = await seedTranscript(t.services, member, { title: 'Clinic call', segments: machine });
    const doc = await get(member, id);
    expect(doc.revision).toBe(0);
    expect(doc.version).toBe('current');
    expect(doc.segments.every((s) => !s.edited)).toBe(true);
    expect(doc.speakers).toEqual([
      { id: 'S1', name: 'Speaker 1' },
      { id: 'S2', name: 'Speaker 2' },
    ]);
  });

  it('renames speakers and corrects text in one revision; words follow the new text', async () => {
    const id = await seedTranscript(t.services, member, { segments: machine });
    const res = await patch(member, id, {
      revision: 0,
      speakers: [{ id: 'S1', name: '  Dr. Émilie Zola  ' }],
      segments: [
        // Same word count: a spelling fix keeps the recognised timings.
        { id: 'seg-0002', text: 'hello I am calling about my appointment' },
        // Different word count: the span is shared out by word length.
        { id: 'seg-0003', text: 'sure, let me check the calendar for you' },
      ],
    });
    expect(res.statusCode, res.body).toBe(200);
    const doc: TranscriptDoc = res.json();
    expect(doc.revision).toBe(1);
    expect(doc.speakers[0]).toEqual({ id: 'S1', name: 'Dr. Émilie Zola' });
    expect(doc.segments.map((s) => s.edited)).toEqual([false, true, true]);

    const fixed = doc.segments[1]!;
    expect(fixed.words.map((w) => w.w).join(' ')).toBe(fixed.text);
    expect(fixed.words.map((w) => [w.start, w.end])).toEqual(machine[1]!.words.map((w) => [w.start, w.end]));
    expect(fixed.words[6]).toMatchObject({ w: 'appointment', conf: 1 });
    expect(fixed.words[0]!.conf).toBe(0.8); // unchanged word keeps the engine's confidence

    const longer = doc.segments[2]!;
    expect(longer.words.map((w) => w.w)).toEqual('sure, let me check the calendar for you'.split(' '));
    expect(longer.words[0]!.start).toBe(machine[2]!.start);
    expect(longer.words.at(-1)!.end).toBe(machine[2]!.end);
    for (let i = 1; i < longer.words.length; i++)
      expect(longer.words[i]!.start).toBeCloseTo(longer.words[i - 1]!.end, 3);
    // "calendar" (8 letters) takes longer than "me" (2).
    const dur = (w: { start: number; end: number }) => w.end - w.start;
    expect(dur(longer.words[5]!)).toBeGreaterThan(3 * dur(longer.words[2]!));
    expect(longer.words.every((w) => w.conf === 1)).toBe(true);

    // GET shows the same, and the machine original is kept.
    expect(await get(member, id)).toEqual(doc);
    const original = await get(member, id, '?version=original');
    expect(original.version).toBe('original');
    expect(original.revision).toBe(1);
    expect(original.segments.map((s) => s.text)).toEqual(machine.map((s) => s.text));
    expect(original.segments.map((s) => s.words)).toEqual(machine.map((s) => s.words));
    expect(original.segments.every((s) => !s.edited)).toBe(true);
  });

  it('a stale revision is 409 and changes nothing; the original stays the machine text', async () => {
    const id = await seedTranscript(t.services, member, { segments: machine });
    expect(
      (await patch(member, id, { revision: 0, segments: [{ id: 'seg-0001', text: 'first edit' }] }))
        .statusCode,
    ).toBe(200);
    const staleRes = await patch(member, id, {
      revision: 0,
      segments: [{ id: 'seg-0001', text: 'lost update' }],
    });
    expect(staleRes.statusCode).toBe(409);
    expect(staleRes.json()).toMatchObject({ code: 'conflict', revision: 1 });
    expect(staleRes.json().detail).toMatch(/revision 1.*reload/);
    expect((await get(member, id)).segments[0]!.text).toBe('first edit');

    const second = await patch(member, id, {
      revision: 1,
      segments: [{ id: 'seg-0001', text: 'second edit' }],
    });
    expect(second.statusCode, second.body).toBe(200);
    expect(second.json().revision).toBe(2);
    const original = await get(member, id, '?version=original');
    expect(original.segments[0]!.text).toBe(machine[0]!.text);
    expect(await edits(id)).toHaveLength(2);
  });

  it('two concurrent edits of one revision: exactly one wins', async () => {
    const id = await seedTranscript(t.services, member, { segments: machine });
    const results = await Promise.all(
      ['one', 'two', 'three'].map((text) =>
        patch(member, id, { revision: 0, segments: [{ id: 'seg-0001', text }] }),
      ),
    );
    expect(results.map((r) => r.statusCode).sort()).toEqual([200, 409, 409]);
    const doc = await get(member, id);
    expect(doc.revision).toBe(1);
    expect(await edits(id)).toHaveLength(1);
  });

  it('writes one audit entry per edit with ids only, never text or names', async () => {
    const id = await seedTranscript(t.services, member, { segments: machine });
    const res = await patch(member, id, {
      revision: 0,
      speakers: [{ id: 'S2', name: 'Quillonius Marchbanks' }],
      segments: [{ id: 'seg-0002', text: 'perfectly xylophonic correction' }],
    });
    expect(res.statusCode, res.body).toBe(200);
    const rows = await edits(id);
    expect(rows).toHaveLength(1);
    expect(rows[0]!.actor_id).toBe(member.userId);
    expect(rows[0]!.details).toEqual({ revision: 1, segments: ['seg-0002'], speakers: ['S2'] });
    const dump = await rawDump(t.services);
    for (const word of ['Quillonius', 'Marchbanks', 'xylophonic', 'apointment'])
      expect(dumpContains(dump, word), word).toBe(false);
    expect(t.logs.join('')).not.toMatch(/Quillonius|xylophonic/i);
  });

  it("owners and admins may edit a member's transcript; a colleague and another org get 404", async () => {
    const admin = await addUser(t.services, owner.orgId, { role: 'admin' });
    const id = await seedTranscript(t.services, member, { segments: machine });
    for (const u of [colleague, other]) {
      const res = await patch(u, id, { revision: 0, speakers: [{ id: 'S1', name: 'X' }] });
      expect(res.statusCode).toBe(404);
      expect(res.json().code).toBe('not_found');
    }
    expect(
      (await patch(owner, id, { revision: 0, speakers: [{ id: 'S1', name: 'Owner' }] })).statusCode,
    ).toBe(200);
    expect(
      (await patch(admin, id, { revision: 1, speakers: [{ id: 'S1', name: 'Admin' }] })).statusCode,
    ).toBe(200);
    expect((await get(member, id)).speakers[0]!.name).toBe('Admin');
  });

  it('support staff with a grant read the transcript but cannot edit it (403, as delete)', async () => {
    const id = await seedTranscript(t.services, member, { segments: machine });
    const support = await createSupportUserFixture(t.services);
    const created = await t.app.inject({
      method: 'POST',
      url: '/api/v1/org/support-grants',
      headers: bearer(owner.accessToken),
      payload: { hours: 1 },
      remoteAddress: ip,
    });
    expect(created.statusCode).toBe(201);
    const headers = bearer(support.accessToken, owner.orgId);
    expect((await call(headers, 'GET', `/api/v1/recordings/${id}/transcript`)).statusCode).toBe(200);
    const res = await patch(headers, id, { revision: 0, speakers: [{ id: 'S1', name: 'Support' }] });
    expect(res.statusCode).toBe(403);
    expect((await get(member, id)).revision).toBe(0);
    expect(await edits(id)).toHaveLength(0);
  });

  it('a transcript that is not done yet is 409', async () => {
    const id = await seedTranscript(t.services, member, { done: false });
    const res = await patch(member, id, { revision: 0, speakers: [{ id: 'S1', name: 'X' }] });
    expect(res.statusCode).toBe(409);
    expect(res.json().detail).toMatch(/not ready/);
  });

  describe('hostile bodies are refused and change nothing', () => {
    let id: string;
    beforeAll(async () => {
      id = await seedTranscript(t.services, member, { segments: machine });
    });

    const many = (n: number) => Array.from({ length: n }, (_, i) => ({ id: `seg-${i}`, text: 'x' }));
    const cases: [string, unknown, number, RegExp?][] = [
      [
        'text over 10k characters',
        { revision: 0, segments: [{ id: 'seg-0001', text: 'a'.repeat(10_001) }] },
        400,
      ],
      ['name over 100 characters', { revision: 0, speakers: [{ id: 'S1', name: 'n'.repeat(101) }] }, 400],
      ['empty name', { revision: 0, speakers: [{ id: 'S1', name: '   ' }] }, 400],
      ['newline in a name', { revision: 0, speakers: [{ id: 'S1', name: 'a\nb' }] }, 400],
      ['NUL in text', { revision: 0, segments: [{ id: 'seg-0001', text: 'a\u0000b' }] }, 400],
      [
        'escape sequence in text',
        { revision: 0, segments: [{ id: 'seg-0001', text: '\u001b[31mred' }] },
        400,
      ],
      ['revision as a string', { revision: '0', speakers: [{ id: 'S1', name: 'A' }] }, 400],
      ['negative revision', { revision: -1, speakers: [{ id: 'S1', name: 'A' }] }, 400],
      ['fractional revision', { revision: 0.5, speakers: [{ id: 'S1', name: 'A' }] }, 400],
      ['missing revision', { speakers: [{ id: 'S1', name: 'A' }] }, 400],
      ['speakers as an object', { revision: 0, speakers: { S1: 'A' } }, 400],
      ['text as a number', { revision: 0, segments: [{ id: 'seg-0001', text: 42 }] }, 400],
      ['an unexpected field', { revision: 0, speakers: [{ id: 'S1', name: 'A' }], owner: 'me' }, 400],
      ['an unexpected nested field', { revision: 0, speakers: [{ id: 'S1', name: 'A', role: 'x' }] }, 400],
      ['nothing to change', { revision: 0 }, 400],
      ['501 edits', { revision: 0, segments: many(501) }, 400],
      [
        '250 + 251 edits',
        { revision: 0, segments: many(250), speakers: many(251).map((s) => ({ id: s.id, name: 'n' })) },
        400,
      ],
      [
        'the same segment twice',
        {
          revision: 0,
          segments: [
            { id: 'seg-0001', text: 'a' },
            { id: 'seg-0001', text: 'b' },
          ],
        },
        400,
      ],
      ['an unknown segment id', { revision: 0, segments: [{ id: 'seg-9999', text: 'a' }] }, 400, /seg-9999/],
      ['an unknown speaker id', { revision: 0, speakers: [{ id: 'S7', name: 'a' }] }, 400, /S7/],
      [
        'a prototype key as speaker id',
        { revision: 0, speakers: [{ id: '__proto__', name: 'a' }] },
        400,
        /__proto__/,
      ],
      ['an array body', [{ revision: 0 }], 400],
    ];
    for (const [name, body, status, names] of cases) {
      it(name, async () => {
        const res = await patch(member, id, body);
        expect(res.statusCode, res.body).toBe(status);
        if (names) expect(JSON.stringify(res.json().errors)).toMatch(names);
      });
    }

    it('a body over the server limit is 413; malformed JSON is 400', async () => {
      const huge = await t.app.inject({
        method: 'PATCH',
        url: `/api/v1/recordings/${id}/transcript`,
        headers: { ...bearer(member.accessToken), 'content-type': 'application/json' },
        payload: JSON.stringify({ revision: 0, segments: [{ id: 'seg-0001', text: 'a'.repeat(3_000_000) }] }),
        remoteAddress: ip,
      });
      expect(huge.statusCode).toBe(413);
      const bad = await t.app.inject({
        method: 'PATCH',
        url: `/api/v1/recordings/${id}/transcript`,
        headers: { ...bearer(member.accessToken), 'content-type': 'application/json' },
        payload: '{"revision": 0, "speakers": [',
        remoteAddress: ip,
      });
      expect(bad.statusCode).toBe(400);
      const noAuth = await t.app.inject({
        method: 'PATCH',
        url: `/api/v1/recordings/${id}/transcript`,
        payload: { revision: 0, speakers: [{ id: 'S1', name: 'A' }] },
        remoteAddress: ip,
      });
      expect(noAuth.statusCode).toBe(401);
    });

    it('after all of them the transcript is untouched', async () => {
      const doc = await get(member, id);
      expect(doc.revision).toBe(0);
      expect(doc.segments.map((s) => s.text)).toEqual(machine.map((s) => s.text));
      expect(await edits(id)).toHaveLength(0);
    });

    it('the version query is checked', async () => {
      const res = await call(member, 'GET', `/api/v1/recordings/${id}/transcript?version=draft`);
      expect(res.statusCode).toBe(400);
    });
  });
});
