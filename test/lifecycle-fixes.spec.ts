import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Readable } from 'node:stream';
import { buffer } from 'node:stream/consumers';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem, withTenant } from '../src/db/tenant.js';
import { AppError } from '../src/domain/errors.js';
import { DatabaseArchiveStore } from '../src/repositories/lifecycle/archive-store.repository.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { deletionRepository } from '../src/repositories/orgs/deletion.repository.js';
import { recordingJobRepository } from '../src/repositories/transcription/recording-job.repository.js';
import { streamZip, type ExportPlan } from '../src/services/org-export/org-export-builder.js';
import { flipArchiveByte } from './helpers/archive.js';
import { freshIp } from './helpers/auth-client.js';
import { addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { backendLabel, startTestApp, usingPostgres, type TestApp } from './helpers/test-app.js';
import { seedTranscript, seg } from './helpers/transcripts.js';
import { unzip } from './helpers/zip.js';

/**
 * Fixes of the data-lifecycle review (docs/lifecycle.md): account deletion covers archived
 * recordings, retention failures do not stall other orgs, hard deletions expire ready exports,
 * the database archive store writes in short transactions, org deletion removes staged uploads
 * and tokens first, restore checks the audio part's hash, the export builder stops promptly and
 * skips recordings that vanish mid-build.
 */
const DAY = 24 * 3600 * 1000;
const PASSWORD = 'a long and private passphrase 91';

for (const store of ['dir', 'database'] as const) {
  describe(`data-lifecycle fixes, ${store} archive store (${backendLabel})`, () => {
    let t: TestApp;
    let dataDir: string;
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
    const old = () => new Date(clock.now().getTime() - 3 * DAY);
    const count = async (sql: string, params: unknown[]) =>
      (await t.db.query<{ n: number }>(sql, params)).rows[0]!.n;
    const readyExport = async (u: TestUser): Promise<string> => {
      const res = await api(u, 'POST', '/api/v1/org/export');
      expect(res.statusCode, res.body).toBe(202);
      const id = res.json<{ id: string }>().id;
      await t.services.orgExports.idle();
      const got = await api(u, 'GET', `/api/v1/org/exports/${id}`);
      expect(got.json<{ status: string }>().status).toBe('ready');
      return id;
    };
    const exportFile = (orgId: string, id: string) => path.join(dataDir, 'exports', orgId, `${id}.bin`);
    const exportRow = async (id: string) =>
      (
        await t.db.query<{ status: string; error_code: string | null }>(
          'SELECT status, error_code FROM org_exports WHERE id = $1',
          [id],
        )
      ).rows[0]!;
    const newOrg = async () => {
      const owner = await createOrgWithUser(t.services, { role: 'owner' });
      const res = await api(owner, 'PATCH', '/api/v1/org/settings', { retentionDays: 1 });
      expect(res.statusCode, res.body).toBe(200);
      return owner;
    };
    const queueAccountDeletion = (u: TestUser) =>
      withTenant(t.db, { orgId: u.orgId, userId: null }, (tx) =>
        deletionRepository.queueAccountDeletion(tx, {
          userId: u.userId,
          orgId: u.orgId,
          email: u.email,
          now: clock.now(),
          dueAt: clock.now(),
        }),
      );

    beforeAll(async () => {
      dataDir = mkdtempSync(path.join(tmpdir(), 'sotto-lcfix-'));
      t = await startTestApp({
        clock,
        env: {
          SOTTO_DATA_DIR: dataDir,
          SOTTO_ARCHIVE_STORE: store,
          SOTTO_RATE_LIMIT_API_PER_MINUTE: '10000',
        },
      });
    });
    afterAll(async () => {
      await t?.close();
      rmSync(dataDir, { recursive: true, force: true });
    });

    it("account deletion, policy 'delete': archived recordings go too (receipts, parts), counted in the receipt", async () => {
      const owner = await newOrg();
      const leaver = await addUser(t.services, owner.orgId, { role: 'member' });
      await withTenant(t.db, { orgId: owner.orgId, userId: null }, (tx) =>
        deletionRepository.setDepartedPolicy(tx, owner.orgId, 'delete'),
      );
      const archivedRec = await seedTranscript(t.services, leaver, { title: 'Cold one', createdAt: old() });
      const archiveId = (await t.services.archive.archiveRecording(owner.orgId, archivedRec))!;
      expect(archiveId).toBeDefined();
      await queueAccountDeletion(leaver);
      // Created after the request (an upload in flight): handled by the policy too, with a receipt.
      const late = await seedTranscript(t.services, leaver, { title: 'Late one' });

      expect(await t.services.accountDeletion.processDue()).toBe(1);
      expect(await count('SELECT count(*)::int AS n FROM recording_archive WHERE id = $1', [archiveId])).toBe(
        0,
      );
      expect(await count('SELECT count(*)::int AS n FROM recordings WHERE id = $1', [late])).toBe(0);
      if (store === 'dir')
        expect(existsSync(path.join(dataDir, 'archive', owner.orgId, `${archiveId}.object`))).toBe(false);
      else
        expect(
          await count('SELECT count(*)::int AS n FROM archive_objects WHERE archive_id = $1', [archiveId]),
        ).toBe(0);
      const receipts = await t.db.query<{ action: string; target_id: string; details: { reason?: string } }>(
        `SELECT action, target_id, details FROM audit_log WHERE org_id = $1 AND action IN ('archive.deleted', 'recording.deleted')`,
        [owner.orgId],
      );
      expect(receipts.rows.map((r) => [r.action, r.target_id, r.details.reason]).sort()).toEqual(
        [
          ['archive.deleted', archivedRec, 'account_deleted'],
          ['recording.deleted', late, 'account_deleted'],
        ].sort(),
      );
      const done = await t.db.query<{ details: Record<string, unknown> }>(
        `SELECT details FROM audit_log WHERE action = 'account.deleted' AND target_id = $1`,
        [leaver.userId],
      );
      expect(done.rows[0]!.details).toMatchObject({
        recordings: { policy: 'delete', deleted: 1 },
        archivedRecordings: { deleted: 1, transferred: 0 },
      });
    });

    it("account deletion, policy 'transfer': archived items pass to the successor, so a restore keeps them there", async () => {
      const owner = await newOrg();
      const leaver = await addUser(t.services, owner.orgId, { role: 'member' });
      const rec = await seedTranscript(t.services, leaver, { createdAt: old() });
      const archiveId = (await t.services.archive.archiveRecording(owner.orgId, rec))!;
      await queueAccountDeletion(leaver);
      expect(await t.services.accountDeletion.processDue()).toBe(1);
      const row = await t.db.query<{ owner_id: string }>(
        'SELECT owner_id FROM recording_archive WHERE id = $1',
        [archiveId],
      );
      expect(row.rows[0]!.owner_id).toBe(owner.userId);
      const done = await t.db.query<{ details: Record<string, unknown> }>(
        `SELECT details FROM audit_log WHERE action = 'account.deleted' AND target_id = $1`,
        [leaver.userId],
      );
      expect(done.rows[0]!.details).toMatchObject({ archivedRecordings: { transferred: 1, deleted: 0 } });
    });

    it('retention: a recording that always fails to archive does not block another org (small batch)', async () => {
      const a = await newOrg();
      const b = await newOrg();
      const broken = await seedTranscript(t.services, a, {
        segments: [seg(1, 'S1', 0, 'some words')],
        createdAt: new Date(clock.now().getTime() - 30 * DAY),
      });
      // Damage its ciphertext: archiving it fails every time.
      await t.db.query(
        `UPDATE transcripts SET body_enc = set_byte(body_enc, 30, get_byte(body_enc, 30) # 1) WHERE recording_id = $1`,
        [broken],
      );
      const fine = await seedTranscript(t.services, b, {
        createdAt: new Date(clock.now().getTime() - 2 * DAY),
      });
      expect(await t.services.archive.runRetention(1)).toEqual({ archived: 0 });
      expect(await t.services.archive.runRetention(1)).toEqual({ archived: 1 });
      expect(
        await count('SELECT count(*)::int AS n FROM recording_archive WHERE recording_id = $1', [fine]),
      ).toBe(1);
      const failed = await t.db.query<{ archive_failures: number; archive_next_try_at: Date }>(
        'SELECT archive_failures, archive_next_try_at FROM recordings WHERE id = $1',
        [broken],
      );
      expect(failed.rows[0]!.archive_failures).toBe(1);
      expect(new Date(failed.rows[0]!.archive_next_try_at).getTime()).toBe(clock.now().getTime() + 3600_000);
      // Due again after its back-off: tried (and fails) once more, with a longer wait.
      clock.advance(3600_000);
      expect(await t.services.archive.runRetention(1)).toEqual({ archived: 0 });
      expect(await count('SELECT archive_failures AS n FROM recordings WHERE id = $1', [broken])).toBe(2);
      for (const line of t.logs) expect(line).not.toContain('some words');
    });

    it('deleting a recording or an archived item expires the ready export: download 404, file gone, receipt says so', async () => {
      const owner = await newOrg();
      const rec = await seedTranscript(t.services, owner, { title: 'Exported then deleted' });
      const exp = await readyExport(owner);
      expect(existsSync(exportFile(owner.orgId, exp))).toBe(true);
      const del = await api(owner, 'DELETE', `/api/v1/recordings/${rec}`);
      expect(del.statusCode, del.body).toBeLessThan(300);
      expect((await api(owner, 'GET', `/api/v1/org/exports/${exp}/download`)).statusCode).toBe(404);
      expect(existsSync(exportFile(owner.orgId, exp))).toBe(false);
      expect(await exportRow(exp)).toEqual({ status: 'expired', error_code: 'recording_deleted' });
      const receipt = await t.db.query<{ details: { exportsInvalidated: number } }>(
        `SELECT details FROM audit_log WHERE action = 'recording.deleted' AND target_id = $1`,
        [rec],
      );
      expect(receipt.rows[0]!.details.exportsInvalidated).toBe(1);

      const cold = await seedTranscript(t.services, owner, { createdAt: old() });
      const archiveId = (await t.services.archive.archiveRecording(owner.orgId, cold))!;
      const exp2 = await readyExport(owner);
      const gone = await api(owner, 'DELETE', `/api/v1/org/archive/${archiveId}`);
      expect(gone.statusCode, gone.body).toBe(200);
      expect((await api(owner, 'GET', `/api/v1/org/exports/${exp2}/download`)).statusCode).toBe(404);
      expect(existsSync(exportFile(owner.orgId, exp2))).toBe(false);
      expect(await exportRow(exp2)).toEqual({ status: 'expired', error_code: 'archive_deleted' });

      // Account deletion: the member list of an export names the user.
      const leaver = await addUser(t.services, owner.orgId, { role: 'member' });
      const exp3 = await readyExport(owner);
      await queueAccountDeletion(leaver);
      expect(await t.services.accountDeletion.processDue()).toBe(1);
      expect(existsSync(exportFile(owner.orgId, exp3))).toBe(false);
      expect(await exportRow(exp3)).toEqual({ status: 'expired', error_code: 'account_deleted' });
      // Another org's export is untouched by all of it.
      const other = await newOrg();
      const otherExp = await readyExport(other);
      await seedTranscript(t.services, owner, {}).then((id) =>
        api(owner, 'DELETE', `/api/v1/recordings/${id}`),
      );
      expect((await exportRow(otherExp)).status).toBe('ready');
    });

    it("a deletion's webhook event carries the injected clock's time", async () => {
      const owner = await newOrg();
      const hook = await api(owner, 'POST', '/api/v1/org/webhooks', {
        url: 'https://hooks.example.com/sotto',
        events: ['recording.deleted'],
      });
      expect(hook.statusCode, hook.body).toBe(201);
      // Away from the wall clock (within the access token's lifetime).
      clock.advance(5 * 60_000);
      const rec = await seedTranscript(t.services, owner, {});
      expect((await api(owner, 'DELETE', `/api/v1/recordings/${rec}`)).statusCode).toBeLessThan(300);
      const { rows } = await t.db.query<{ payload: { recordingId: string; occurredAt: string } }>(
        'SELECT payload FROM webhook_deliveries WHERE org_id = $1',
        [owner.orgId],
      );
      expect(rows.map((r) => r.payload)).toEqual([
        expect.objectContaining({ recordingId: rec, occurredAt: clock.now().toISOString() }),
      ]);
    });

    it('restore refuses an audio part whose bytes do not match the record (the item stays)', async () => {
      const owner = await newOrg();
      const rec = await seedTranscript(t.services, owner, { createdAt: old() });
      const plain = path.join(dataDir, `plain-${randomUUID()}.bin`);
      writeFileSync(plain, randomBytes(100_000));
      await t.services.audio.seal(owner.orgId, rec, plain, 'audio/wav');
      const archiveId = (await t.services.archive.archiveRecording(owner.orgId, rec))!;
      await flipArchiveByte({
        t,
        store,
        dataDir,
        orgId: owner.orgId,
        archiveId,
        part: 'audio',
        fromEnd: 100,
        dbOffset: 5000,
      });
      const res = await api(owner, 'POST', `/api/v1/org/archive/${archiveId}/restore`);
      expect(res.statusCode).toBe(500);
      expect((await api(owner, 'GET', `/api/v1/recordings/${rec}`)).statusCode).toBe(404);
      expect(await count('SELECT count(*)::int AS n FROM recording_archive WHERE id = $1', [archiveId])).toBe(
        1,
      );
      expect(existsSync(path.join(dataDir, 'audio', owner.orgId, `${rec}.bin`))).toBe(false);
    });

    it('org deletion removes staged uploads of its jobs and deletes its tokens before the purge', async () => {
      const owner = await newOrg();
      await t.db.query('UPDATE users SET password_hash = $1 WHERE id = $2', [
        await t.services.hasher.hash(PASSWORD),
        owner.userId,
      ]);
      const bystander = await newOrg();
      const uploads = path.join(dataDir, 'tmp', 'uploads');
      mkdirSync(uploads, { recursive: true });
      const staged = path.join(uploads, `${randomUUID()}.upload`);
      const kept = path.join(uploads, `${randomUUID()}.upload`);
      writeFileSync(staged, 'plain audio');
      writeFileSync(kept, 'plain audio of another org');
      for (const [u, file] of [
        [owner, staged],
        [bystander, kept],
      ] as const) {
        const rec = await seedTranscript(t.services, u, { done: false });
        await withTenant(t.db, { orgId: u.orgId, userId: null }, (tx) =>
          recordingJobRepository.enqueue(tx, {
            recordingId: rec,
            orgId: u.orgId,
            audioPath: file,
            now: clock.now(),
          }),
        );
      }
      for (const u of [owner, bystander]) {
        await t.db.query(
          `INSERT INTO api_tokens (org_id, user_id, name_enc, scopes, token_hash, created_at, expires_at)
           VALUES ($1, $2, '\\x00', ARRAY['recordings:read'], $3, $4, $5)`,
          [
            u.orgId,
            u.userId,
            randomBytes(32).toString('hex'),
            clock.now(),
            new Date(clock.now().getTime() + DAY),
          ],
        );
        await t.db.query(`INSERT INTO worker_tokens (org_id, name, token_hash) VALUES ($1, 'w', $2)`, [
          u.orgId,
          randomBytes(32).toString('hex'),
        ]);
      }
      // What the purge step sees: no token of the org may still exist when it starts.
      const tokensAtPurge: number[] = [];
      const purge = deletionRepository.purgeOrg;
      deletionRepository.purgeOrg = async (tx, orgId) => {
        const { rows } = await tx.query<{ n: number }>(
          `SELECT (SELECT count(*) FROM api_tokens WHERE org_id = $1)::int
                + (SELECT count(*) FROM worker_tokens WHERE org_id = $1)::int AS n`,
          [orgId],
        );
        tokensAtPurge.push(rows[0]!.n);
        return purge(tx, orgId);
      };
      try {
        const slug = (
          await t.db.query<{ slug: string }>('SELECT slug FROM orgs WHERE id = $1', [owner.orgId])
        ).rows[0]!.slug;
        const res = await api(owner, 'DELETE', '/api/v1/org', { confirm: slug, currentPassword: PASSWORD });
        expect(res.statusCode, res.body).toBe(200);
        expect(res.json<{ counts: { tokens: number } }>().counts.tokens).toBe(2);
      } finally {
        deletionRepository.purgeOrg = purge;
      }
      expect(tokensAtPurge).toEqual([0]);
      expect(existsSync(staged)).toBe(false);
      expect(existsSync(kept)).toBe(true);
      expect(
        await count(
          `SELECT (SELECT count(*) FROM api_tokens WHERE org_id = $1)::int
                + (SELECT count(*) FROM worker_tokens WHERE org_id = $1)::int AS n`,
          [bystander.orgId],
        ),
      ).toBe(2);
    });

    it('export builder: a recording archived mid-build is skipped and listed in the manifest', async () => {
      const owner = await newOrg();
      const keep = await seedTranscript(t.services, owner, { segments: [seg(1, 'S1', 0, 'stays here')] });
      const vanish = await seedTranscript(t.services, owner, {
        segments: [seg(1, 'S1', 0, 'goes away')],
        createdAt: old(),
      });
      // Retention archives `vanish` just as the builder reaches its transcript.
      const transcripts = t.services.transcripts;
      const get = transcripts.get.bind(transcripts);
      let archived = false;
      transcripts.get = async (actor, id, version) => {
        if (id === vanish && !archived) {
          archived = true;
          expect(await t.services.archive.archiveRecording(owner.orgId, vanish)).toBeDefined();
        }
        return get(actor, id, version);
      };
      let id: string;
      try {
        id = await readyExport(owner);
      } finally {
        transcripts.get = get;
      }
      const dl = await api(owner, 'GET', `/api/v1/org/exports/${id}/download`);
      expect(dl.statusCode).toBe(200);
      const files = await unzip(dl.rawPayload);
      expect(files.has(`transcripts/${keep}.json`)).toBe(true);
      expect(files.has(`transcripts/${vanish}.json`)).toBe(false);
      const manifest = JSON.parse(files.get('manifest.json')!.toString()) as {
        skipped: { path: string; recordingId: string; reason: string }[];
      };
      expect(manifest.skipped).toEqual([
        { path: `transcripts/${vanish}.json`, recordingId: vanish, reason: 'not_found' },
        { path: `reports/${vanish}.json`, recordingId: vanish, reason: 'not_found' },
      ]);
    });

    it('export builder: stop() during planning hands the export back without building it', async () => {
      const owner = await newOrg();
      await seedTranscript(t.services, owner, {});
      const members = t.services.members;
      const list = members.list.bind(members);
      let stopping: Promise<void> | undefined;
      members.list = async (actor, page) => {
        stopping ??= t.services.orgExports.stop();
        return list(actor, page);
      };
      let id: string;
      try {
        const res = await api(owner, 'POST', '/api/v1/org/export');
        expect(res.statusCode, res.body).toBe(202);
        id = res.json<{ id: string }>().id;
        await t.services.orgExports.idle();
        await stopping;
      } finally {
        members.list = list;
      }
      expect((await exportRow(id)).status).toBe('queued');
      t.services.orgExports.start();
      await t.services.orgExports.idle();
      await t.services.orgExports.stop();
      expect((await exportRow(id)).status).toBe('ready');
    });
  });
}

describe(`export zip stream (${backendLabel})`, () => {
  const entry = (p: string, body: string) => ({
    path: p,
    compress: true,
    produce: async () => Readable.from([Buffer.from(body)]),
  });

  it('skips entries of a recording that is gone, and stops between entries when asked', async () => {
    const plan: ExportPlan = {
      counts: {},
      skipped: [],
      entries: [
        entry('a.json', '{"a":1}'),
        {
          path: 'transcripts/x.json',
          compress: true,
          recordingId: 'x',
          produce: async () => {
            throw new AppError('not_found', 'Recording not found');
          },
        },
        entry('b.json', '{"b":2}'),
      ],
    };
    const files = await unzip(await buffer(streamZip(plan, new Date(), () => undefined)));
    expect([...files.keys()]).toEqual(['a.json', 'b.json']);
    expect(plan.skipped).toEqual([{ path: 'transcripts/x.json', recordingId: 'x', reason: 'not_found' }]);

    // Any other failure still fails the whole zip.
    const broken: ExportPlan = {
      counts: {},
      skipped: [],
      entries: [
        {
          path: 'members.json',
          compress: true,
          produce: async () => {
            throw new AppError('not_found', 'gone');
          },
        },
      ],
    };
    await expect(buffer(streamZip(broken, new Date(), () => undefined))).rejects.toThrow();

    let done = 0;
    const stopped: ExportPlan = {
      counts: {},
      skipped: [],
      entries: [entry('a.json', '1'), entry('b.json', '2')],
    };
    await expect(
      buffer(
        streamZip(
          stopped,
          new Date(),
          () => done++,
          () => done >= 1,
        ),
      ),
    ).rejects.toMatchObject({ code: 'unavailable' });
    expect(done).toBe(1);
  });
});

describe.skipIf(usingPostgres)(
  `database archive store on PGlite's single connection (${backendLabel})`,
  () => {
    let t: TestApp;
    beforeAll(async () => {
      t = await startTestApp({ env: { SOTTO_ARCHIVE_STORE: 'database' } });
    });
    afterAll(async () => {
      await t?.close();
    });

    it('writes a big part without holding the connection while it reads the source; partial parts are invisible', async () => {
      const owner = await createOrgWithUser(t.services, { role: 'owner' });
      const storeDb = new DatabaseArchiveStore(t.db);
      const archiveId = randomUUID();
      const chunk = randomBytes(1024 * 1024 + 10);
      const db = t.db;
      // Between chunks the source itself needs the database (as a file read needs the event loop):
      // with one transaction around the whole copy this would wait forever on PGlite.
      async function* source() {
        yield chunk;
        await withSystem(db, (tx) => tx.query('SELECT 1'));
        yield chunk;
      }
      const put = storeDb.put(owner.orgId, archiveId, 'audio', Readable.from(source()), new Date());
      const timeout = new Promise((_, reject) =>
        setTimeout(() => reject(new Error('put held the connection')), 10_000),
      );
      const stored = await Promise.race([put, timeout]);
      expect(stored).toMatchObject({ size: chunk.length * 2 });
      const back = await buffer((await storeDb.get(owner.orgId, archiveId, 'audio'))!);
      expect(back.equals(Buffer.concat([chunk, chunk]))).toBe(true);

      // A part whose write failed midway leaves nothing; one still being written is not readable.
      const failing = randomUUID();
      async function* broken() {
        yield chunk;
        throw new Error('source failed');
      }
      await expect(
        storeDb.put(owner.orgId, failing, 'audio', Readable.from(broken()), new Date()),
      ).rejects.toThrow('source failed');
      expect(
        (await t.db.query('SELECT 1 FROM archive_objects WHERE archive_id = $1', [failing])).rows,
      ).toHaveLength(0);
      const partial = randomUUID();
      await t.db.query(
        `INSERT INTO archive_objects (archive_id, org_id, part, seq, data, complete) VALUES ($1, $2, 'object', 0, '\\x01', false)`,
        [partial, owner.orgId],
      );
      expect(await storeDb.get(owner.orgId, partial, 'object')).toBeUndefined();
      expect((await storeDb.list()).map((e) => e.archiveId)).toContain(partial);
    });
  },
);
