import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { keyVersionOf } from '../src/crypto/envelope.js';
import { withSystem, withTenant } from '../src/db/tenant.js';
import { loadConfig } from '../src/config/config.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { flipArchiveByte } from './helpers/archive.js';
import { freshIp } from './helpers/auth-client.js';
import { addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';
import { seedTranscript, seg } from './helpers/transcripts.js';

/**
 * Retention → cold archive → restore / hard delete (docs/lifecycle.md), on both archive stores.
 * Recordings are written as the worker stores them (helpers/transcripts.ts), with past creation
 * times against a ManualClock; the retention task runs through the scheduler's runDue().
 */
const DAY = 24 * 3600 * 1000;
const WORD = 'Quetzalcoatlus';

for (const store of ['dir', 'database'] as const) {
  describe(`retention and cold archive, ${store} store (${backendLabel})`, () => {
    let t: TestApp;
    let dataDir: string;
    let owner: TestUser;
    let admin: TestUser;
    let member: TestUser;
    let other: TestUser;
    // Starts at real time: the dir store's file times are real times.
    const clock = new ManualClock();
    const ip = freshIp();

    const api = (u: TestUser, method: 'GET' | 'POST' | 'DELETE' | 'PATCH', url: string, payload?: object) =>
      t.app.inject({
        method,
        url,
        headers: bearer(u.accessToken),
        remoteAddress: ip,
        ...(payload ? { payload } : {}),
      });
    const archiveList = async (u: TestUser) => {
      const res = await api(u, 'GET', '/api/v1/org/archive');
      expect(res.statusCode, res.body).toBe(200);
      return res.json<{
        items: { id: string; recordingId: string; title: string | null; hasAudio: boolean }[];
      }>().items;
    };
    const storedBytes = async (orgId: string, archiveId: string): Promise<Buffer[]> => {
      if (store === 'dir') {
        const dir = path.join(dataDir, 'archive', orgId);
        return existsSync(dir)
          ? readdirSync(dir)
              .filter((f) => f.startsWith(archiveId))
              .map((f) => readFileSync(path.join(dir, f)))
          : [];
      }
      return withSystem(t.db, async (tx) => {
        const { rows } = await tx.query<{ data: Uint8Array }>(
          'SELECT data FROM archive_objects WHERE archive_id = $1 ORDER BY part, seq',
          [archiveId],
        );
        return rows.map((r) => Buffer.from(r.data));
      });
    };
    const objectBytes = async (orgId: string, archiveId: string): Promise<Buffer> => {
      if (store === 'dir') return readFileSync(path.join(dataDir, 'archive', orgId, `${archiveId}.object`));
      return withSystem(t.db, async (tx) => {
        const { rows } = await tx.query<{ data: Uint8Array }>(
          `SELECT data FROM archive_objects WHERE archive_id = $1 AND part = 'object' ORDER BY seq`,
          [archiveId],
        );
        return Buffer.concat(rows.map((r) => Buffer.from(r.data)));
      });
    };

    beforeAll(async () => {
      dataDir = mkdtempSync(path.join(tmpdir(), 'sotto-archive-'));
      t = await startTestApp({
        clock,
        env: {
          SOTTO_DATA_DIR: dataDir,
          SOTTO_ARCHIVE_STORE: store,
          SOTTO_RATE_LIMIT_API_PER_MINUTE: '10000',
        },
      });
      owner = await createOrgWithUser(t.services, { role: 'owner' });
      admin = await addUser(t.services, owner.orgId, { role: 'admin' });
      member = await addUser(t.services, owner.orgId, { role: 'member' });
      other = await createOrgWithUser(t.services, { role: 'owner' });
      for (const u of [owner, other]) {
        const res = await api(u, 'PATCH', '/api/v1/org/settings', { retentionDays: 1 });
        expect(res.statusCode, res.body).toBe(200);
      }
    });
    afterAll(async () => {
      await t?.close();
    });

    it('archives finished recordings older than 1 day and nothing younger or unfinished', async () => {
      const now = clock.now().getTime();
      const segments = [seg(1, 'S1', 0, `the ${WORD} flew over the valley`)];
      const stays = await seedTranscript(t.services, member, {
        title: 'Young one',
        segments,
        createdAt: new Date(now - DAY + 60_000),
      });
      const goes = await seedTranscript(t.services, member, {
        title: `Old ${WORD} session`,
        segments,
        createdAt: new Date(now - DAY - 60_000),
      });
      const queued = await seedTranscript(t.services, member, {
        title: 'Still queued',
        createdAt: new Date(now - 10 * DAY),
        done: false,
      });
      const otherOrgs = await seedTranscript(t.services, other, {
        segments,
        createdAt: new Date(now - 0.5 * DAY),
      });

      expect(await t.services.scheduler.runDue()).toContain('retention');

      expect((await api(member, 'GET', `/api/v1/recordings/${goes}`)).statusCode).toBe(404);
      expect((await api(owner, 'GET', `/api/v1/recordings/${goes}`)).statusCode).toBe(404);
      expect((await api(member, 'GET', `/api/v1/recordings/${goes}/transcript`)).statusCode).toBe(404);
      for (const id of [stays, queued])
        expect((await api(member, 'GET', `/api/v1/recordings/${id}`)).statusCode).toBe(200);
      expect((await api(other, 'GET', `/api/v1/recordings/${otherOrgs}`)).statusCode).toBe(200);

      const listed = (await api(owner, 'GET', '/api/v1/recordings?limit=200')).json<{
        items: { id: string }[];
      }>();
      expect(listed.items.map((i) => i.id)).not.toContain(goes);
      expect(listed.items.map((i) => i.id)).toContain(stays);
      const search = (await api(owner, 'GET', `/api/v1/recordings?q=${WORD}`)).json<{
        items: { id: string }[];
      }>();
      expect(search.items.map((i) => i.id)).toEqual([stays]);

      const archived = await archiveList(admin);
      expect(archived.map((a) => a.recordingId)).toEqual([goes]);
      expect(archived[0]!.title).toBe(`Old ${WORD} session`);
      expect(await archiveList(other)).toEqual([]);

      // Sealed at rest: no word of the transcript or title, and not even readable as gzip.
      const bytes = await storedBytes(owner.orgId, archived[0]!.id);
      expect(bytes.length).toBeGreaterThan(0);
      for (const b of bytes) {
        expect(b.includes(Buffer.from(WORD))).toBe(false);
        expect(b.includes(Buffer.from(WORD.toLowerCase()))).toBe(false);
        expect(b.subarray(0, 2).equals(Buffer.from([0x1f, 0x8b]))).toBe(false);
      }
      const audit = await withSystem(t.db, (tx) =>
        tx.query<{ details: { count: number; recordingIds: string[] } }>(
          `SELECT details FROM audit_log WHERE action = 'retention.archived' AND org_id = $1`,
          [owner.orgId],
        ),
      );
      expect(audit.rows.map((r) => r.details.recordingIds)).toEqual([[goes]]);
      expect(JSON.stringify(audit.rows)).not.toContain(WORD);
      for (const line of t.logs) expect(line).not.toContain(WORD);

      // Clean up for the next tests: the young one is not due yet, and the task ran this interval.
      expect(await t.services.scheduler.runDue()).toEqual([]);
    });

    it('restores a recording byte for byte (transcript, original, speaker names, audio) and audits it', async () => {
      const now = clock.now().getTime();
      const id = await seedTranscript(t.services, member, {
        title: 'Kept with audio',
        segments: [
          seg(1, 'S1', 0, `first ${WORD} words here`),
          seg(2, 'S2', 3, 'a reply from the other side'),
        ],
        createdAt: new Date(now - 3 * DAY),
      });
      const edit = await api(member, 'PATCH', `/api/v1/recordings/${id}/transcript`, {
        revision: 0,
        speakers: [{ id: 'S1', name: 'Dr Rossi' }],
        segments: [{ id: 'seg-0002', text: 'a corrected reply' }],
      });
      expect(edit.statusCode, edit.body).toBe(200);
      const audio = randomBytes(200_000);
      const plain = path.join(dataDir, 'plain.bin');
      writeFileSync(plain, audio);
      await t.services.audio.seal(member.orgId, id, plain, 'audio/wav');

      const before = {
        rec: (await api(member, 'GET', `/api/v1/recordings/${id}`)).json<Record<string, unknown>>(),
        current: (await api(member, 'GET', `/api/v1/recordings/${id}/transcript`)).body,
        original: (await api(member, 'GET', `/api/v1/recordings/${id}/transcript?version=original`)).body,
        audio: (await api(member, 'GET', `/api/v1/recordings/${id}/audio`)).rawPayload,
      };
      expect(before.audio.equals(audio)).toBe(true);
      expect(before.current).toContain('Dr Rossi');

      const archiveId = await t.services.archive.archiveRecording(member.orgId, id);
      expect(archiveId).toBeDefined();
      expect((await api(member, 'GET', `/api/v1/recordings/${id}`)).statusCode).toBe(404);
      const audioDir = path.join(dataDir, 'audio', member.orgId);
      expect(existsSync(path.join(audioDir, `${id}.bin`))).toBe(false);
      const item = (await archiveList(owner)).find((a) => a.id === archiveId)!;
      expect(item.hasAudio).toBe(true);
      for (const b of await storedBytes(owner.orgId, archiveId!)) {
        expect(b.includes(Buffer.from(WORD))).toBe(false);
        expect(b.includes(Buffer.from('Dr Rossi'))).toBe(false);
        expect(b.includes(audio.subarray(1000, 1064))).toBe(false);
      }

      // Members may not see or restore the archive (403: a role rule, not a hidden resource).
      expect((await api(member, 'POST', `/api/v1/org/archive/${archiveId}/restore`)).statusCode).toBe(403);
      const res = await api(admin, 'POST', `/api/v1/org/archive/${archiveId}/restore`);
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toEqual({ recordingId: id });

      const after = {
        rec: (await api(member, 'GET', `/api/v1/recordings/${id}`)).json<Record<string, unknown>>(),
        current: (await api(member, 'GET', `/api/v1/recordings/${id}/transcript`)).body,
        original: (await api(member, 'GET', `/api/v1/recordings/${id}/transcript?version=original`)).body,
        audio: (await api(member, 'GET', `/api/v1/recordings/${id}/audio`)).rawPayload,
      };
      expect(after.current).toBe(before.current);
      expect(after.original).toBe(before.original);
      expect(after.rec).toEqual(before.rec);
      expect(after.audio.equals(audio)).toBe(true);
      expect((await archiveList(owner)).map((a) => a.id)).not.toContain(archiveId);
      expect(await storedBytes(owner.orgId, archiveId!)).toEqual([]);
      const audit = await withSystem(t.db, (tx) =>
        tx.query<{ actor_id: string; details: { archiveId: string } }>(
          `SELECT actor_id, details FROM audit_log WHERE action = 'recording.restored' AND target_id = $1`,
          [id],
        ),
      );
      expect(audit.rows).toEqual([{ actor_id: admin.userId, details: { archiveId } }]);

      // A restored recording gets a fresh window: the next retention pass leaves it alone.
      await t.services.archive.runRetention();
      expect((await api(member, 'GET', `/api/v1/recordings/${id}`)).statusCode).toBe(200);
      // An edit still works on the restored transcript (revision carried over).
      const again = await api(member, 'PATCH', `/api/v1/recordings/${id}/transcript`, {
        revision: 1,
        speakers: [{ id: 'S2', name: 'Client' }],
      });
      expect(again.statusCode, again.body).toBe(200);
    });

    it('hard-deletes an archived recording with a receipt of sealed-object hashes in the audit log', async () => {
      const id = await seedTranscript(t.services, owner, {
        title: 'To be destroyed',
        segments: [seg(1, 'S1', 0, `gone ${WORD}`)],
        createdAt: new Date(clock.now().getTime() - 5 * DAY),
      });
      const archiveId = (await t.services.archive.archiveRecording(owner.orgId, id))!;
      const sealed = await objectBytes(owner.orgId, archiveId);
      const sha = createHash('sha256').update(sealed).digest('hex');
      // Data-key rotation counts the object's key version from its row, not by reading the object.
      const recorded = await withSystem(t.db, (tx) =>
        tx.query<{ v: number }>('SELECT object_key_version AS v FROM recording_archive WHERE id = $1', [
          archiveId,
        ]),
      );
      expect(recorded.rows[0]?.v).toBe(keyVersionOf(sealed));

      expect((await api(member, 'DELETE', `/api/v1/org/archive/${archiveId}`)).statusCode).toBe(403);
      expect((await api(other, 'DELETE', `/api/v1/org/archive/${archiveId}`)).statusCode).toBe(404);
      const res = await api(owner, 'DELETE', `/api/v1/org/archive/${archiveId}`);
      expect(res.statusCode, res.body).toBe(200);
      const receipt = res.json<Record<string, unknown>>();
      expect(receipt).toMatchObject({
        archiveId,
        recordingId: id,
        deletedBy: owner.userId,
        contentSha256: sha,
        audioSha256: null,
        deletedAt: clock.now().toISOString(),
      });
      expect(await storedBytes(owner.orgId, archiveId)).toEqual([]);
      expect((await api(owner, 'DELETE', `/api/v1/org/archive/${archiveId}`)).statusCode).toBe(404);
      expect((await api(owner, 'POST', `/api/v1/org/archive/${archiveId}/restore`)).statusCode).toBe(404);
      expect((await api(owner, 'GET', `/api/v1/recordings/${id}`)).statusCode).toBe(404);
      const audit = await withSystem(t.db, (tx) =>
        tx.query<{ actor_id: string; details: Record<string, unknown> }>(
          `SELECT actor_id, details FROM audit_log WHERE action = 'archive.deleted' AND target_id = $1`,
          [id],
        ),
      );
      expect(audit.rows).toHaveLength(1);
      // The audit receipt also says why and how many ready exports expired with it (none here).
      expect(audit.rows[0]!.details).toEqual({ ...receipt, reason: 'requested', exportsInvalidated: 0 });
    });

    it('archives failed recordings too, and refuses to restore a tampered object (the item stays)', async () => {
      const failed = await seedTranscript(t.services, owner, {
        createdAt: new Date(clock.now().getTime() - 5 * DAY),
        done: false,
      });
      await withTenant(t.db, { orgId: owner.orgId, userId: null }, (tx) =>
        tx.query(`UPDATE recordings SET status = 'failed', error_code = 'engine_failed' WHERE id = $1`, [
          failed,
        ]),
      );
      expect((await api(owner, 'GET', `/api/v1/recordings/${failed}`)).json()).toMatchObject({
        status: 'failed',
      });
      const archiveId = (await t.services.archive.archiveRecording(owner.orgId, failed))!;
      expect(archiveId).toBeDefined();
      // Flip one byte of the sealed object where it is stored.
      await flipArchiveByte({
        t,
        store,
        dataDir,
        orgId: owner.orgId,
        archiveId,
        part: 'object',
        fromEnd: 5,
        dbOffset: 40,
      });
      const res = await api(owner, 'POST', `/api/v1/org/archive/${archiveId}/restore`);
      expect(res.statusCode).toBe(500);
      expect((await api(owner, 'GET', `/api/v1/recordings/${failed}`)).statusCode).toBe(404);
      expect((await archiveList(owner)).map((a) => a.id)).toContain(archiveId);
    });

    it('keeps every archive route to owners/admins of the same org, and refuses hostile ids', async () => {
      const id = await seedTranscript(t.services, owner, {
        createdAt: new Date(clock.now().getTime() - 5 * DAY),
      });
      const archiveId = (await t.services.archive.archiveRecording(owner.orgId, id))!;
      // Another org: exactly 404 on the item routes; its list is its own (empty of ours).
      expect((await api(other, 'POST', `/api/v1/org/archive/${archiveId}/restore`)).statusCode).toBe(404);
      expect((await api(other, 'DELETE', `/api/v1/org/archive/${archiveId}`)).statusCode).toBe(404);
      expect((await archiveList(other)).map((a) => a.id)).not.toContain(archiveId);
      expect((await api(other, 'GET', `/api/v1/org/archive?after=${archiveId}`)).statusCode).toBe(400);
      // Members: 403 on every route.
      expect((await api(member, 'GET', '/api/v1/org/archive')).statusCode).toBe(403);
      expect((await api(member, 'POST', `/api/v1/org/archive/${archiveId}/restore`)).statusCode).toBe(403);
      // Hostile ids and queries.
      for (const bad of ['not-a-uuid', "1'%20OR%201=1", 'a'.repeat(180), '..%2F..%2Fetc']) {
        expect((await api(owner, 'POST', `/api/v1/org/archive/${bad}/restore`)).statusCode).toBe(400);
        expect((await api(owner, 'DELETE', `/api/v1/org/archive/${bad}`)).statusCode).toBe(400);
      }
      expect((await api(owner, 'DELETE', `/api/v1/org/archive/${crypto.randomUUID()}`)).statusCode).toBe(404);
      for (const q of ['limit=0', 'limit=1000', 'limit=abc', 'after=zzz', 'extra=1'])
        expect((await api(owner, 'GET', `/api/v1/org/archive?${q}`)).statusCode).toBe(400);
      expect(
        (await t.app.inject({ method: 'GET', url: '/api/v1/org/archive', remoteAddress: ip })).statusCode,
      ).toBe(401);
      // Paging walks every item once.
      const all = await archiveList(owner);
      const seen: string[] = [];
      let after = '';
      for (;;) {
        const page = (await api(owner, 'GET', `/api/v1/org/archive?limit=1${after}`)).json<{
          items: { id: string }[];
          next: string | null;
        }>();
        seen.push(...page.items.map((i) => i.id));
        if (!page.next) break;
        after = `&after=${page.next}`;
      }
      expect(seen).toEqual(all.map((a) => a.id));
    });

    it('sweeps objects left without a row, and purges a whole org', async () => {
      const id = await seedTranscript(t.services, owner, {
        createdAt: new Date(clock.now().getTime() - 5 * DAY),
      });
      const archiveId = (await t.services.archive.archiveRecording(owner.orgId, id))!;
      const keptId = await seedTranscript(t.services, owner, {
        createdAt: new Date(clock.now().getTime() - 5 * DAY),
      });
      expect(await t.services.archive.archiveRecording(owner.orgId, keptId)).toBeDefined();
      // A crash between writing the object and committing its row: simulate by removing the row.
      await withTenant(t.db, { orgId: owner.orgId, userId: null }, (tx) =>
        tx.query('DELETE FROM recording_archive WHERE id = $1', [archiveId]),
      );
      expect((await storedBytes(owner.orgId, archiveId)).length).toBeGreaterThan(0);
      // Too young to sweep (a write may be in progress on another node)...
      expect(await t.services.archive.sweep(3600_000)).toBe(0);
      // ...two hours later it goes (the clock is put back: access tokens live 10 minutes).
      clock.advance(2 * 3600_000);
      expect(await t.services.archive.sweep(3600_000)).toBeGreaterThanOrEqual(1);
      clock.advance(-2 * 3600_000);
      expect(await storedBytes(owner.orgId, archiveId)).toEqual([]);
      // Still-listed items survive the sweep.
      const listed = await archiveList(owner);
      expect(listed.length).toBeGreaterThan(0);
      for (const a of listed) expect((await storedBytes(owner.orgId, a.id)).length).toBeGreaterThan(0);

      await t.services.archive.purgeOrg(owner.orgId);
      for (const a of listed) expect(await storedBytes(owner.orgId, a.id)).toEqual([]);
    });
  });
}

describe('archive configuration', () => {
  const base = { SOTTO_MASTER_KEY: randomBytes(32).toString('base64'), SOTTO_DATA_DIR: '/srv/sotto' };
  it('defaults to <dataDir>/archive, the dir store and a 300 s maintenance interval', () => {
    const c = loadConfig(base);
    expect(c.archive).toEqual({ store: 'dir', dir: '/srv/sotto/archive' });
    expect(c.maintenanceIntervalSeconds).toBe(300);
  });
  it('refuses an archive folder that is, holds or sits inside the active audio folder', () => {
    for (const dir of ['/srv/sotto/audio', '/srv/sotto/audio/cold', '/srv/sotto', '/'])
      expect(() => loadConfig({ ...base, SOTTO_ARCHIVE_DIR: dir })).toThrow(/SOTTO_ARCHIVE_DIR/);
    expect(loadConfig({ ...base, SOTTO_ARCHIVE_DIR: '/mnt/cold' }).archive.dir).toBe('/mnt/cold');
  });
  it('names bad values', () => {
    expect(() => loadConfig({ ...base, SOTTO_ARCHIVE_STORE: 's3' })).toThrow(/SOTTO_ARCHIVE_STORE/);
    expect(() => loadConfig({ ...base, SOTTO_MAINTENANCE_INTERVAL_SECONDS: '0' })).toThrow(
      /SOTTO_MAINTENANCE_INTERVAL_SECONDS/,
    );
  });
});
