import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshIp } from './helpers/auth-client.js';
import {
  addUser,
  bearer,
  createOrgWithUser,
  createSupportUserFixture,
  type SupportUser,
  type TestUser,
} from './helpers/fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';
import { dumpContains, rawDump, seedTranscript, seg, type TranscriptDoc } from './helpers/transcripts.js';

/**
 * PATCH /recordings/:id/transcript beyond text corrections (issue 13): moving a segment to
 * another speaker, merging a segment with the next, splitting one at a caret position. The
 * transcript is stored through the repository and key service exactly as the worker stores it;
 * every answer is checked against what a following GET, the report and the export return.
 */
// S1 speaks twice in a row, then S2: merges within S1, not across.
const machine = [
  seg(1, 'S1', 0, 'good morning this is the clinic'),
  seg(2, 'S1', 3.5, 'how can we help'),
  seg(3, 'S2', 6, 'hello I am calling about my appointment'),
];

describe(`transcript edit operations (${backendLabel})`, () => {
  let t: TestApp;
  let owner: TestUser;
  let member: TestUser;
  let colleague: TestUser;
  let other: TestUser;
  let support: SupportUser;
  const ip = freshIp();

  const patch = (u: { accessToken: string }, id: string, payload: unknown, org?: string) =>
    t.app.inject({
      method: 'PATCH',
      url: `/api/v1/recordings/${id}/transcript`,
      headers: bearer(u.accessToken, org),
      payload: payload as object,
      remoteAddress: ip,
    });
  const get = async (u: TestUser, id: string, path = 'transcript') => {
    const res = await t.app.inject({
      method: 'GET',
      url: `/api/v1/recordings/${id}/${path}`,
      headers: bearer(u.accessToken),
      remoteAddress: ip,
    });
    expect(res.statusCode, res.body).toBe(200);
    return res;
  };
  const doc = async (u: TestUser, id: string): Promise<TranscriptDoc> => (await get(u, id)).json();
  const fresh = () => seedTranscript(t.services, member, { segments: machine });

  beforeAll(async () => {
    t = await startTestApp({ env: { SOTTO_RATE_LIMIT_API_PER_MINUTE: '10000' } });
    owner = await createOrgWithUser(t.services, { role: 'owner' });
    member = await addUser(t.services, owner.orgId, { role: 'member' });
    colleague = await addUser(t.services, owner.orgId, { role: 'member' });
    other = await createOrgWithUser(t.services, { role: 'owner' });
    support = await createSupportUserFixture(t.services);
  });
  afterAll(async () => t?.close());

  it('moves a segment to another speaker: text and timings stay, the report follows', async () => {
    const id = await fresh();
    const before = (await get(member, id, 'report')).json<{
      speakers: { speaker: string; talkSeconds: number }[];
    }>();
    const res = await patch(member, id, { revision: 0, segments: [{ id: 'seg-0002', speaker: 'S2' }] });
    expect(res.statusCode, res.body).toBe(200);
    const d = await doc(member, id);
    expect(d.revision).toBe(1);
    const moved = d.segments.find((s) => s.id === 'seg-0002')!;
    expect(moved.speaker).toBe('S2');
    expect(moved.text).toBe(machine[1]!.text);
    expect(moved.words).toEqual(machine[1]!.words);
    expect(moved.edited).toBe(true);
    expect(d.segments.find((s) => s.id === 'seg-0001')!.edited).toBe(false);
    const after = (await get(member, id, 'report')).json<{
      speakers: { speaker: string; talkSeconds: number }[];
    }>();
    const talk = (r: typeof before, s: string) => r.speakers.find((x) => x.speaker === s)!.talkSeconds;
    expect(talk(after, 'S2')).toBeGreaterThan(talk(before, 'S2'));
    expect(talk(after, 'S1')).toBeLessThan(talk(before, 'S1'));
    // Text and speaker in one correction.
    const both = await patch(member, id, {
      revision: 1,
      segments: [{ id: 'seg-0001', text: 'Good morning', speaker: 'S2' }],
    });
    expect(both.statusCode, both.body).toBe(200);
    expect(both.json<TranscriptDoc>().segments[0]).toMatchObject({ speaker: 'S2', text: 'Good morning' });
  });

  it('merges a segment with the next one of the same speaker, keeping every word timing', async () => {
    const id = await fresh();
    const res = await patch(member, id, { revision: 0, ops: [{ op: 'merge', id: 'seg-0001' }] });
    expect(res.statusCode, res.body).toBe(200);
    const d = await doc(member, id);
    expect(d.segments.map((s) => s.id)).toEqual(['seg-0001', 'seg-0003']);
    const m = d.segments[0]!;
    expect(m.text).toBe(`${machine[0]!.text} ${machine[1]!.text}`);
    expect(m.words).toEqual([...machine[0]!.words, ...machine[1]!.words]);
    expect(m.start).toBe(machine[0]!.start);
    expect(m.end).toBe(machine[1]!.end);
    expect(m.edited).toBe(true);
    // The export has one cue fewer.
    const srt = (await get(member, id, 'export?format=srt')).body;
    expect(srt.match(/-->/g)).toHaveLength(2);
  });

  it('splits at the caret: each half keeps its own words and times, the second gets a new id', async () => {
    const id = await fresh();
    const text = machine[2]!.text; // 'hello I am calling about my appointment'
    const at = text.indexOf(' calling'); // between "am" and "calling"
    const res = await patch(member, id, { revision: 0, ops: [{ op: 'split', id: 'seg-0003', at }] });
    expect(res.statusCode, res.body).toBe(200);
    const d = await doc(member, id);
    expect(d.segments.map((s) => s.id)).toEqual(['seg-0001', 'seg-0002', 'seg-0003', 'seg-0004']);
    const [a, b] = [d.segments[2]!, d.segments[3]!];
    expect(a.text).toBe('hello I am');
    expect(b.text).toBe('calling about my appointment');
    const w = machine[2]!.words;
    expect(a.words).toEqual(w.slice(0, 3));
    expect(b.words).toEqual(w.slice(3));
    expect([a.start, a.end, b.start, b.end]).toEqual([
      machine[2]!.start,
      w[2]!.end,
      w[3]!.start,
      machine[2]!.end,
    ]);
    expect([a.speaker, b.speaker]).toEqual(['S2', 'S2']);
    // The caret just after a space works as well; split then merge gives the text back.
    const again = await patch(member, id, {
      revision: 1,
      ops: [
        { op: 'split', id: 'seg-0001', at: 'good morning '.length },
        { op: 'merge', id: 'seg-0001' },
      ],
    });
    expect(again.statusCode, again.body).toBe(200);
    expect(again.json<TranscriptDoc>().segments[0]!.text).toBe(machine[0]!.text);
    expect(again.json<TranscriptDoc>().segments[0]!.words).toEqual(machine[0]!.words);
  });

  it('splits a corrected text in the same request (words re-timed first)', async () => {
    const id = await fresh();
    const text = 'Good morning, this is the Harbour clinic speaking';
    const res = await patch(member, id, {
      revision: 0,
      segments: [{ id: 'seg-0001', text }],
      ops: [{ op: 'split', id: 'seg-0001', at: text.indexOf(' this') }],
    });
    expect(res.statusCode, res.body).toBe(200);
    const [a, b] = res.json<TranscriptDoc>().segments;
    expect(a!.text).toBe('Good morning,');
    expect(b!.text).toBe('this is the Harbour clinic speaking');
    expect(a!.words.map((x) => x.w)).toEqual(['Good', 'morning,']);
    expect(b!.words.map((x) => x.w)).toEqual(text.split(' ').slice(2));
    expect(a!.end).toBeLessThanOrEqual(b!.start);
    expect(b!.end).toBe(machine[0]!.end);
  });

  describe('hostile and impossible operations are refused (400) and change nothing', () => {
    let id: string;
    let big: string;
    beforeAll(async () => {
      id = await fresh();
      big = await seedTranscript(t.services, member, {
        segments: [
          seg(1, 'S1', 0, 'word '.repeat(1200).trim(), 0.01),
          seg(2, 'S1', 20, 'talk '.repeat(1200).trim(), 0.01),
        ],
      });
    });
    const len = machine[0]!.text.length;
    const cases: [string, unknown, RegExp?][] = [
      ['merge across speakers', { ops: [{ op: 'merge', id: 'seg-0002' }] }, /different speakers/],
      ['merge of the last segment', { ops: [{ op: 'merge', id: 'seg-0003' }] }, /no next segment/],
      ['merge of an unknown id', { ops: [{ op: 'merge', id: 'seg-9999' }] }, /seg-9999/],
      ['split of an unknown id', { ops: [{ op: 'split', id: '../../etc', at: 3 }] }, /unknown segment/],
      ['split inside a word', { ops: [{ op: 'split', id: 'seg-0001', at: 2 }] }, /at a space/],
      ['split at the end', { ops: [{ op: 'split', id: 'seg-0001', at: len }] }, /inside the text/],
      ['split past the end', { ops: [{ op: 'split', id: 'seg-0001', at: len + 50 }] }, /inside the text/],
      ['split at 0', { ops: [{ op: 'split', id: 'seg-0001', at: 0 }] }],
      ['split at -1', { ops: [{ op: 'split', id: 'seg-0001', at: -1 }] }],
      ['split at 1.5', { ops: [{ op: 'split', id: 'seg-0001', at: 1.5 }] }],
      ['split at a huge number', { ops: [{ op: 'split', id: 'seg-0001', at: 1e300 }] }],
      ['split at a string', { ops: [{ op: 'split', id: 'seg-0001', at: '5' }] }],
      ['an unknown op', { ops: [{ op: 'delete', id: 'seg-0001' }] }],
      ['an op with an extra field', { ops: [{ op: 'merge', id: 'seg-0001', into: 'seg-0003' }] }],
      ['51 ops', { ops: Array.from({ length: 51 }, () => ({ op: 'merge', id: 'seg-0001' })) }],
      ['ops as an object', { ops: { op: 'merge', id: 'seg-0001' } }],
      ['an id over 100 characters', { ops: [{ op: 'merge', id: 'x'.repeat(101) }] }],
      ['move to an unknown speaker', { segments: [{ id: 'seg-0001', speaker: 'S9' }] }, /S9/],
      ['move to a prototype key', { segments: [{ id: 'seg-0001', speaker: '__proto__' }] }, /__proto__/],
      ['a segment edit with neither text nor speaker', { segments: [{ id: 'seg-0001' }] }],
      ['oversized text', { segments: [{ id: 'seg-0001', text: 'a'.repeat(10_001) }] }],
      // The second op fails: the first, valid one is not kept either.
      [
        'a valid op followed by an impossible one',
        {
          ops: [
            { op: 'merge', id: 'seg-0001' },
            { op: 'merge', id: 'seg-0001' },
          ],
        },
        /ops\.1/,
      ],
    ];
    for (const [name, body, detail] of cases) {
      it(name, async () => {
        const res = await patch(member, id, { revision: 0, ...(body as object) });
        expect(res.statusCode, res.body).toBe(400);
        if (detail) expect(JSON.stringify(res.json().errors)).toMatch(detail);
      });
    }

    it('a merge that would exceed the segment text limit', async () => {
      const res = await patch(member, big, { revision: 0, ops: [{ op: 'merge', id: 'seg-0001' }] });
      expect(res.statusCode, res.body).toBe(400);
      expect(JSON.stringify(res.json().errors)).toMatch(/longer than 10000/);
    });

    it('after all of them the transcript is untouched', async () => {
      const d = await doc(member, id);
      expect(d.revision).toBe(0);
      expect(d.segments.map((s) => [s.id, s.speaker, s.text])).toEqual(
        machine.map((s) => [s.id, s.speaker, s.text]),
      );
      expect((await doc(member, big)).revision).toBe(0);
    });
  });

  it('another org and a colleague get exactly 404, support staff 403; nothing changes', async () => {
    const id = await fresh();
    const body = {
      revision: 0,
      ops: [{ op: 'merge', id: 'seg-0001' }],
      segments: [{ id: 'seg-0003', speaker: 'S1' }],
    };
    for (const u of [other, colleague]) {
      const res = await patch(u, id, body);
      expect(res.statusCode).toBe(404);
      expect(res.json().code).toBe('not_found');
    }
    const grant = await patch(owner, id, body); // owner may edit a member's transcript
    expect(grant.statusCode, grant.body).toBe(200);
    const g = await t.app.inject({
      method: 'POST',
      url: '/api/v1/org/support-grants',
      headers: bearer(owner.accessToken),
      payload: { hours: 1 },
      remoteAddress: ip,
    });
    expect(g.statusCode).toBe(201);
    const viaSupport = await patch(support, id, { ...body, revision: 1 }, owner.orgId);
    expect(viaSupport.statusCode).toBe(403);
    expect((await doc(member, id)).revision).toBe(1);
  });

  it('audits operations with ids only, never text', async () => {
    const id = await fresh();
    const res = await patch(member, id, {
      revision: 0,
      segments: [
        { id: 'seg-0003', text: 'hello I am calling about my quinquagenarian appointment', speaker: 'S1' },
      ],
      ops: [{ op: 'split', id: 'seg-0003', at: 'hello I am'.length }],
    });
    expect(res.statusCode, res.body).toBe(200);
    const rows = (
      await t.db.query<{ details: unknown }>(
        `SELECT details FROM audit_log WHERE target_id = $1 AND action = 'transcript.edited'`,
        [id],
      )
    ).rows;
    expect(rows.map((r) => r.details)).toEqual([
      { revision: 1, segments: ['seg-0003'], speakers: [], ops: [{ op: 'split', id: 'seg-0003' }] },
    ]);
    expect(dumpContains(await rawDump(t.services), 'quinquagenarian')).toBe(false);
    expect(t.logs.join('')).not.toMatch(/quinquagenarian/);
  });
});
