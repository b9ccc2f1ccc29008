import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { corpusEntry, corpusFile, hasCorpus, noCorpusReason } from './helpers/corpus.js';
import {
  addUser,
  bearer,
  createOrgWithUser,
  createSupportUserFixture,
  eventually,
  type TestUser,
} from './helpers/fixtures.js';
import { freshIp } from './helpers/auth-client.js';
import { multipart, pollRecording, recordingEnv, stagedFiles, upload } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

const MAX_UPLOAD = 3_000_000;

describe.skipIf(!hasCorpus)(
  `recordings: upload to transcript (${backendLabel}) ${hasCorpus ? '' : noCorpusReason}`,
  () => {
    let t: TestApp;
    let dataDir: string;
    let owner: TestUser;
    let member: TestUser;
    let colleague: TestUser;
    let other: TestUser;
    const ip = freshIp();
    const wav = () => readFileSync(corpusFile('call-02', 'wav'));

    const as = (u: TestUser, method: 'GET' | 'DELETE', url: string) =>
      t.app.inject({ method, url, headers: bearer(u.accessToken), remoteAddress: ip });

    beforeAll(async () => {
      const r = recordingEnv({
        SOTTO_MAX_UPLOAD_BYTES: String(MAX_UPLOAD),
        SOTTO_RATE_LIMIT_API_PER_MINUTE: '10000',
      });
      dataDir = r.dataDir;
      t = await startTestApp({ env: r.env });
      owner = await createOrgWithUser(t.services, { role: 'owner' });
      member = await addUser(t.services, owner.orgId, { role: 'member' });
      colleague = await addUser(t.services, owner.orgId, { role: 'member' });
      other = await createOrgWithUser(t.services, { role: 'owner' });
    });
    afterAll(async () => {
      await t?.services.jobs.stop();
      await t?.close();
    });

    const rowCount = async () =>
      Number((await t.db.query<{ n: string }>('SELECT count(*) AS n FROM recordings')).rows[0]!.n);

    describe('bad uploads leave nothing behind', () => {
      const cases: [string, () => Buffer, number, string][] = [
        ['zero length', () => Buffer.alloc(0), 422, 'undecodable_audio'],
        [
          'a text file',
          () => Buffer.from('just some text, not audio at all\n'.repeat(50)),
          415,
          'unsupported_media_type',
        ],
        [
          'garbage after a WAV-looking header',
          () => Buffer.concat([Buffer.from('RIFF\x10\x00\x00\x00WAVEjunk'), Buffer.alloc(3000, 0x41)]),
          422,
          'undecodable_audio',
        ],
        ['over the size limit', () => Buffer.alloc(MAX_UPLOAD + 10, 1), 413, 'payload_too_large'],
      ];
      for (const [name, data, status, code] of cases) {
        it(`${name} → ${status}`, async () => {
          const before = await rowCount();
          const res = await upload(t, member.accessToken, ip, data());
          expect(res.statusCode, res.body).toBe(status);
          expect(res.json().code).toBe(code);
          expect(res.json().detail.length).toBeGreaterThan(5);
          expect(await rowCount()).toBe(before);
          expect(stagedFiles(dataDir)).toEqual([]);
        });
      }

      it('a truncated WAV is accepted for what it holds, a header-only one is refused', async () => {
        const headerOnly = wav().subarray(0, 44);
        const res = await upload(t, member.accessToken, ip, headerOnly);
        expect(res.statusCode, res.body).toBe(422);
        expect(stagedFiles(dataDir)).toEqual([]);
      });

      it('hostile fields are refused with 400 and nothing is kept', async () => {
        const before = await rowCount();
        const hostile: Record<string, string>[] = [
          { speakers: 'two' },
          { speakers: '0' },
          { language: "en'; DROP TABLE recordings; --" },
          { title: 'x'.repeat(301) },
          { title: 'line\nbreak' },
          { unexpected: '1' },
        ];
        for (const fields of hostile) {
          const res = await upload(t, member.accessToken, ip, wav(), fields);
          expect(res.statusCode, JSON.stringify(fields)).toBe(400);
        }
        expect(await rowCount()).toBe(before);
        expect(stagedFiles(dataDir)).toEqual([]);
      });

      it('a JSON body or a missing audio field is refused', async () => {
        const json = await t.app.inject({
          method: 'POST',
          url: '/api/v1/recordings',
          headers: bearer(member.accessToken),
          payload: { audio: 'x' },
          remoteAddress: ip,
        });
        expect(json.statusCode).toBe(415);
        const body = multipart({ title: 'no file' });
        const none = await t.app.inject({
          method: 'POST',
          url: '/api/v1/recordings',
          headers: { ...bearer(member.accessToken), ...body.headers },
          payload: body.payload,
          remoteAddress: ip,
        });
        expect(none.statusCode, none.body).toBe(400);
        const wrongField = multipart({}, { field: 'file', data: wav() });
        const wrong = await t.app.inject({
          method: 'POST',
          url: '/api/v1/recordings',
          headers: { ...bearer(member.accessToken), ...wrongField.headers },
          payload: wrongField.payload,
          remoteAddress: ip,
        });
        expect(wrong.statusCode, wrong.body).toBe(400);
        expect(stagedFiles(dataDir)).toEqual([]);
      });

      it('needs authentication', async () => {
        const res = await t.app.inject({ method: 'POST', url: '/api/v1/recordings', remoteAddress: ip });
        expect(res.statusCode).toBe(401);
      });
    });

    describe('a corpus conversation end to end', () => {
      let id: string;
      const title = 'Quarterly review with Bartholomew Quince';

      beforeAll(async () => {
        const res = await upload(t, member.accessToken, ip, wav(), { title, speakers: '2', language: 'en' });
        expect(res.statusCode, res.body).toBe(202);
        expect(res.json().status).toBe('queued');
        id = res.json().id;
        await t.services.jobs.start();
        // Real sphinx on a shared 2-core machine: slow but bounded.
        await pollRecording(
          t,
          member.accessToken,
          ip,
          id,
          (b) => b.status === 'done' || b.status === 'failed',
          400_000,
        );
      }, 420_000);

      it('is transcribed by the real pipeline, with text, timings and two speakers', async () => {
        const rec = (await as(member, 'GET', `/api/v1/recordings/${id}`)).json();
        expect(rec).toMatchObject({
          id,
          title,
          status: 'done',
          progress: 1,
          error: null,
          engine: 'sphinx',
          channels: 1,
        });
        expect(rec.durationSeconds).toBeCloseTo(corpusEntry('call-02').duration, 0);
        const tr = await as(member, 'GET', `/api/v1/recordings/${id}/transcript`);
        expect(tr.statusCode, tr.body).toBe(200);
        const body = tr.json();
        expect(body.speakers).toHaveLength(2);
        expect(body.speakers[0].name).toBe('Speaker 1');
        const text = body.segments
          .map((s: { text: string }) => s.text)
          .join(' ')
          .toLowerCase();
        expect(text.split(/\s+/).length).toBeGreaterThan(30);
        expect(text).toMatch(/appointment|week|name|thank/);
        expect(new Set(body.segments.map((s: { speaker: string }) => s.speaker)).size).toBe(2);
        // The staged audio is removed right after the result is committed.
        await eventually(async () => (stagedFiles(dataDir).length === 0 ? true : undefined));
      });

      it('title and transcript are not readable in a raw dump of the tables', async () => {
        const words = [
          'Bartholomew',
          'Quince',
          ...corpusEntry('call-02')
            .text.split(/[^A-Za-z]+/)
            .filter((w) => w.length >= 7),
        ];
        expect(words.length).toBeGreaterThan(4);
        for (const table of ['recordings', 'transcripts', 'recording_jobs', 'audit_log']) {
          const rows = (await t.db.query<Record<string, unknown>>(`SELECT * FROM ${table}`)).rows;
          if (table !== 'recording_jobs') expect(rows.length, table).toBeGreaterThan(0);
          for (const row of rows) {
            for (const value of Object.values(row)) {
              const bytes =
                Buffer.isBuffer(value) || value instanceof Uint8Array
                  ? Buffer.from(value)
                  : Buffer.from(JSON.stringify(value) ?? '');
              for (const w of words) {
                expect(bytes.includes(Buffer.from(w)), `${table} contains "${w}"`).toBe(false);
                expect(bytes.includes(Buffer.from(w.toLowerCase())), `${table} contains "${w}"`).toBe(false);
              }
            }
          }
        }
      });

      it('the owner (admin) lists and reads it; the member lists only their own', async () => {
        const mine = (await as(member, 'GET', '/api/v1/recordings')).json();
        expect(mine.items.map((r: { id: string }) => r.id)).toContain(id);
        const all = (await as(owner, 'GET', '/api/v1/recordings')).json();
        expect(all.items.map((r: { id: string }) => r.id)).toContain(id);
        expect((await as(owner, 'GET', `/api/v1/recordings/${id}/transcript`)).statusCode).toBe(200);
        const theirs = (await as(colleague, 'GET', '/api/v1/recordings')).json();
        expect(theirs.items).toEqual([]);
      });

      it('a colleague and another org get exactly 404, and cannot delete it', async () => {
        for (const u of [colleague, other]) {
          for (const url of [`/api/v1/recordings/${id}`, `/api/v1/recordings/${id}/transcript`]) {
            const res = await as(u, 'GET', url);
            expect(res.statusCode, url).toBe(404);
            expect(res.json().code).toBe('not_found');
          }
          expect((await as(u, 'DELETE', `/api/v1/recordings/${id}`)).statusCode).toBe(404);
        }
        expect((await as(member, 'GET', `/api/v1/recordings/${id}`)).statusCode).toBe(200);
      });

      it('paging walks every recording once', async () => {
        const second = await upload(t, owner.accessToken, ip, wav());
        expect(second.statusCode).toBe(202);
        const p1 = (await as(owner, 'GET', '/api/v1/recordings?limit=1')).json();
        expect(p1.items).toHaveLength(1);
        const p2 = (await as(owner, 'GET', `/api/v1/recordings?limit=1&after=${p1.next}`)).json();
        expect(p2.items).toHaveLength(1);
        expect(p2.items[0].id).not.toBe(p1.items[0].id);
        expect((await as(owner, 'GET', '/api/v1/recordings?limit=0')).statusCode).toBe(400);
        expect((await as(owner, 'GET', "/api/v1/recordings?after=1' OR 1=1")).statusCode).toBe(400);
        expect((await as(owner, 'DELETE', `/api/v1/recordings/${second.json().id}`)).statusCode).toBe(204);
      });

      it('support staff with a grant may read but not upload or delete (403)', async () => {
        const support = await createSupportUserFixture(t.services);
        const grant = await t.app.inject({
          method: 'POST',
          url: '/api/v1/org/support-grants',
          headers: bearer(owner.accessToken),
          payload: { hours: 1 },
          remoteAddress: ip,
        });
        expect(grant.statusCode).toBe(201);
        const headers = bearer(support.accessToken, owner.orgId);
        const read = await t.app.inject({
          method: 'GET',
          url: `/api/v1/recordings/${id}`,
          headers,
          remoteAddress: ip,
        });
        expect(read.statusCode).toBe(200);
        const del = await t.app.inject({
          method: 'DELETE',
          url: `/api/v1/recordings/${id}`,
          headers,
          remoteAddress: ip,
        });
        expect(del.statusCode).toBe(403);
        const body = multipart({}, { data: wav() });
        const post = await t.app.inject({
          method: 'POST',
          url: '/api/v1/recordings',
          headers: { ...headers, ...body.headers },
          payload: body.payload,
          remoteAddress: ip,
        });
        expect(post.statusCode).toBe(403);
        expect(stagedFiles(dataDir)).toEqual([]);
      });

      it('delete is hard and audited', async () => {
        const res = await as(member, 'DELETE', `/api/v1/recordings/${id}`);
        expect(res.statusCode).toBe(204);
        expect((await as(member, 'GET', `/api/v1/recordings/${id}`)).statusCode).toBe(404);
        const left = await t.db.query('SELECT 1 FROM transcripts WHERE recording_id = $1', [id]);
        expect(left.rows).toHaveLength(0);
        const audit = await t.db.query<{ action: string }>(
          `SELECT action FROM audit_log WHERE target_id = $1 ORDER BY seq`,
          [id],
        );
        expect(audit.rows.map((r) => r.action)).toEqual(['recording.created', 'recording.deleted']);
        expect(stagedFiles(dataDir)).toEqual([]);
      });
    });
  },
);
