/**
 * Organization deletion with crypto-shredding (issue 6, docs/lifecycle.md): the owner deletes the
 * org (slug + password), its KEK file and data keys are destroyed first, then every row and file
 * goes. The proof that shredding reaches backups: a copy of the database taken BEFORE the
 * deletion (pg_dump + restore on PostgreSQL, a copy of the data dir on PGlite), opened with the
 * same master key and key directory, can no longer decrypt the deleted org's transcript — while
 * another org in the same copy still decrypts.
 */
import { execFileSync } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import type { PGlite } from '@electric-sql/pglite';
import { PGlite as PGliteClass } from '@electric-sql/pglite';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { openDatabase, type Database } from '../src/db/database.js';
import { withTenant } from '../src/db/tenant.js';
import { KeyService } from '../src/services/keys/key.service.js';
import { transcriptLocation } from '../src/services/recordings/recording.service.js';
import { openSearchDoc } from '../src/services/search/search-index.service.js';
import { queryTerms, tokensOf } from '../src/services/search/search-tokens.js';
import { authed, call, login, signup, type Account } from './helpers/auth-client.js';
import { corpusFile, hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { addUser, bearer } from './helpers/fixtures.js';
import { recordingEnv, upload } from './helpers/recordings.js';
import { backendLabel, startTestApp, usingPostgres, type TestApp } from './helpers/test-app.js';

interface Org {
  account: Account;
  token: string;
  slug: string;
  recordingId: string;
}

describe.skipIf(!hasCorpus)(
  `organization deletion with crypto-shredding (${backendLabel}) ${hasCorpus ? '' : noCorpusReason}`,
  () => {
    let t: TestApp;
    let dataDir: string;
    let a: Org;
    let b: Org;
    let backup: Database;
    let dropBackup: () => Promise<void> = async () => undefined;

    async function makeOrg(name: string): Promise<Org> {
      const account = await signup(t, { organization: name });
      const { accessToken: token } = await login(t, account);
      const me = await authed(t, account.ip, token, { method: 'GET', url: '/api/v1/me' });
      const slug = me.json().organization.slug as string;
      const s = await authed(t, account.ip, token, {
        method: 'PATCH',
        url: '/api/v1/org/settings',
        payload: { storeAudio: true },
      });
      expect(s.statusCode, s.body).toBe(200);
      const res = await upload(t, token, account.ip, readFileSync(corpusFile('solo-03', 'wav')), {
        title: `${name} meeting`,
      });
      expect(res.statusCode, res.body).toBe(202);
      return { account, token, slug, recordingId: res.json().id };
    }

    const del = (o: Org, token: string, payload: unknown) =>
      call(t, o.account.ip, {
        method: 'DELETE',
        url: '/api/v1/org',
        headers: { authorization: `Bearer ${token}` },
        payload: payload as Record<string, unknown>,
      });

    /** A copy of the whole database as it is now (a "backup"), opened as its own Database. */
    async function copyDatabase(): Promise<{ db: Database; drop: () => Promise<void> }> {
      if (usingPostgres) {
        const dump = execFileSync('pg_dump', ['--no-owner', t.databaseUrl!], {
          maxBuffer: 512 * 1024 * 1024,
        });
        const name = `sotto_backup_${randomUUID().replace(/-/g, '')}`;
        const admin = await openDatabase({ databaseUrl: process.env.DATABASE_URL!, poolSize: 1 });
        await admin.exec(`CREATE DATABASE ${name}`);
        const url = new URL(process.env.DATABASE_URL!);
        url.pathname = `/${name}`;
        execFileSync('psql', ['-q', '-v', 'ON_ERROR_STOP=1', url.toString()], {
          input: dump,
          stdio: ['pipe', 'ignore', 'pipe'],
        });
        const db = await openDatabase({ databaseUrl: url.toString(), poolSize: 2 });
        return {
          db,
          drop: async () => {
            await db.close();
            await admin.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
            await admin.close();
          },
        };
      }
      // PGlite: its data dir as a tarball, loaded into a new on-disk instance, then reopened.
      const live = (t.db as unknown as { pg: PGlite }).pg;
      const tarball = await live.dumpDataDir('none');
      const dir = mkdtempSync(path.join(tmpdir(), 'sotto-backup-'));
      const loader = await PGliteClass.create(dir, { loadDataDir: tarball });
      await loader.close();
      const db = await openDatabase({ pgliteDir: dir });
      return {
        db,
        drop: async () => {
          await db.close();
          rmSync(dir, { recursive: true, force: true });
        },
      };
    }

    async function readTranscript(db: Database, keys: KeyService, org: Org): Promise<unknown> {
      return withTenant(db, { orgId: org.account.orgId, userId: null }, async (tx) => {
        const { rows } = await tx.query<{ body_enc: Uint8Array }>(
          'SELECT body_enc FROM transcripts WHERE recording_id = $1',
          [org.recordingId],
        );
        expect(rows).toHaveLength(1);
        return keys.decryptJson(
          tx,
          transcriptLocation(org.account.orgId, org.recordingId),
          rows[0]!.body_enc,
        );
      });
    }

    /**
     * The org's search index row in `db` (a transaction each: a failed step aborts it): whether its
     * index key can still be derived and its tokens hold the title word "meeting" under it, and
     * whether its sealed search text still opens.
     */
    async function readIndex(db: Database, keys: KeyService, org: Org) {
      const tenant = { orgId: org.account.orgId, userId: null };
      const row = await withTenant(db, tenant, async (tx) => {
        const { rows } = await tx.query<{ tokens: number[]; doc_enc: Uint8Array }>(
          'SELECT tokens, doc_enc FROM search_index WHERE recording_id = $1',
          [org.recordingId],
        );
        expect(rows).toHaveLength(1);
        return rows[0]!;
      });
      const tokens = () =>
        withTenant(db, tenant, async (tx) => {
          const wanted = tokensOf(await keys.searchKey(tx, org.account.orgId), queryTerms('meeting')!);
          return wanted.every((tok) => row.tokens.includes(tok));
        });
      const doc = () =>
        withTenant(db, tenant, (tx) =>
          openSearchDoc(tx, keys, org.account.orgId, org.recordingId, row.doc_enc),
        );
      return { tokens, doc };
    }

    beforeAll(async () => {
      const r = recordingEnv();
      dataDir = r.dataDir;
      t = await startTestApp({ env: r.env });
      a = await makeOrg(`Doomed ${randomUUID().slice(0, 6)}`);
      b = await makeOrg(`Survivor ${randomUUID().slice(0, 6)}`);
      while (await t.services.jobs.runOnce());
      for (const o of [a, b]) {
        const tr = await authed(t, o.account.ip, o.token, {
          method: 'GET',
          url: `/api/v1/recordings/${o.recordingId}/transcript`,
        });
        expect(tr.statusCode, tr.body).toBe(200);
      }
    }, 240_000);
    afterAll(async () => {
      await dropBackup();
      await t?.close();
      if (dataDir) rmSync(dataDir, { recursive: true, force: true });
    });

    it('wraps the data keys under a KEK file in the key directory, not the master key', async () => {
      const { rows } = await t.db.query<{ wrapped_by: string }>(
        'SELECT wrapped_by FROM org_keys WHERE org_id = $1',
        [a.account.orgId],
      );
      expect(rows.map((r) => r.wrapped_by)).toEqual(['kek']);
      expect(await t.services.keys.hasKek(a.account.orgId)).toBe(true);
    });

    it('refuses admins and members (403), without touching anything', async () => {
      for (const role of ['admin', 'member'] as const) {
        const u = await addUser(t.services, a.account.orgId, { role });
        const res = await del(a, u.accessToken, { confirm: a.slug, currentPassword: 'whatever-password' });
        expect(res.statusCode, res.body).toBe(403);
      }
      expect(await t.services.keys.hasKek(a.account.orgId)).toBe(true);
    });

    it('refuses a wrong slug, a wrong password and hostile bodies', async () => {
      const pw = a.account.password;
      expect((await del(a, a.token, { confirm: b.slug, currentPassword: pw })).statusCode).toBe(400);
      expect((await del(a, a.token, { confirm: a.slug.toUpperCase(), currentPassword: pw })).statusCode).toBe(
        400,
      );
      expect(
        (await del(a, a.token, { confirm: a.slug, currentPassword: 'wrong password 123' })).statusCode,
      ).toBe(401);
      expect((await del(a, a.token, { confirm: 'x'.repeat(5000), currentPassword: pw })).statusCode).toBe(
        400,
      );
      expect((await del(a, a.token, { confirm: a.slug })).statusCode).toBe(400);
      expect((await del(a, a.token, { confirm: a.slug, currentPassword: pw, extra: 1 })).statusCode).toBe(
        400,
      );
      expect((await del(a, a.token, { confirm: [a.slug], currentPassword: pw })).statusCode).toBe(400);
      const anon = await call(t, a.account.ip, {
        method: 'DELETE',
        url: '/api/v1/org',
        payload: { confirm: a.slug, currentPassword: pw },
      });
      expect(anon.statusCode).toBe(401);
      // Another org's owner typing this org's slug deletes nothing (the route acts on the caller's org).
      expect(
        (await del(b, b.token, { confirm: a.slug, currentPassword: b.account.password })).statusCode,
      ).toBe(400);
      expect(await t.services.keys.hasKek(a.account.orgId)).toBe(true);
      expect(await t.services.keys.hasKek(b.account.orgId)).toBe(true);
    });

    it('deletes the org: keys shredded, every row and file gone, sessions ended, receipt on the platform chain', async () => {
      const copy = await copyDatabase(); // the "backup", taken before the deletion
      backup = copy.db;
      dropBackup = copy.drop;
      const orgId = a.account.orgId;
      expect(existsSync(path.join(dataDir, 'audio', orgId, `${a.recordingId}.bin`))).toBe(true);

      const res = await del(a, a.token, { confirm: a.slug, currentPassword: a.account.password });
      expect(res.statusCode, res.body).toBe(200);
      expect(res.json()).toMatchObject({
        orgId,
        counts: { recordings: 1, transcripts: 1, searchIndexRows: 1, dataKeys: 1 },
      });

      expect(await t.services.keys.hasKek(orgId)).toBe(false);
      expect(readdirSync(t.services.config.keyDir).filter((f) => f.includes(orgId))).toEqual([]);
      // No row with this org id in any table that has an org_id column (found from the catalog).
      const tables = (
        await t.db.query<{ table_name: string }>(
          `SELECT table_name FROM information_schema.columns
            WHERE table_schema = 'public' AND column_name = 'org_id' ORDER BY 1`,
        )
      ).rows.map((r) => r.table_name);
      expect(tables.length).toBeGreaterThan(10);
      for (const table of tables) {
        const { rows } = await t.db.query<{ n: number }>(
          `SELECT count(*)::int AS n FROM "${table}" WHERE org_id = $1`,
          [orgId],
        );
        expect(rows[0]!.n, table).toBe(0);
      }
      expect((await t.db.query('SELECT 1 FROM orgs WHERE id = $1', [orgId])).rows).toEqual([]);
      expect(existsSync(path.join(dataDir, 'audio', orgId))).toBe(false);
      expect(existsSync(path.join(dataDir, 'live', orgId))).toBe(false);

      // Sessions ended at once; login refused.
      expect((await authed(t, a.account.ip, a.token, { method: 'GET', url: '/api/v1/me' })).statusCode).toBe(
        401,
      );
      const relogin = await call(t, a.account.ip, {
        method: 'POST',
        url: '/api/v1/auth/login',
        payload: { email: a.account.email, password: a.account.password },
      });
      expect(relogin.statusCode).toBe(401);

      // The receipt: platform chain (org_id NULL), ids and counts only; the chain verifies.
      const { rows: receipts } = await t.db.query<{
        actor_id: string;
        details: { counts: Record<string, number> };
      }>(
        `SELECT actor_id, details FROM audit_log WHERE org_id IS NULL AND action = 'org.deleted' AND target_id = $1`,
        [orgId],
      );
      expect(receipts).toHaveLength(1);
      expect(receipts[0]!.actor_id).toBe(a.account.userId);
      expect(receipts[0]!.details.counts).toMatchObject({ users: 3, recordings: 1 });
      expect(JSON.stringify(receipts[0])).not.toContain('meeting');
      expect((await t.services.audit.verify(null)).every((r) => r.ok)).toBe(true);

      // The other org is untouched.
      const other = await authed(t, b.account.ip, b.token, {
        method: 'GET',
        url: `/api/v1/recordings/${b.recordingId}/transcript`,
      });
      expect(other.statusCode).toBe(200);
      expect(await t.services.keys.hasKek(b.account.orgId)).toBe(true);
    });

    it("a database copy taken before the deletion can no longer decrypt that org's data; another org's still decrypts", async () => {
      expect(backup).toBeDefined();
      // A fresh node over the backup: same master key, same key directory, empty caches.
      const keys = new KeyService(backup, t.services.config.masterKeys, t.services.config.keyDir);
      const { rows } = await backup.query<{ n: number }>(
        'SELECT count(*)::int AS n FROM org_keys WHERE org_id = $1',
        [a.account.orgId],
      );
      expect(rows[0]!.n).toBe(1); // the wrapped data key is in the backup…
      await expect(readTranscript(backup, keys, a)).rejects.toMatchObject({
        name: 'AppError',
        code: 'decryption_failed',
      }); // …but its KEK no longer exists anywhere.
      const survivor = (await readTranscript(backup, keys, b)) as { segments: unknown[] };
      expect(survivor.segments.length).toBeGreaterThan(0);

      // The search index in the backup: the doomed org's row is there, but its index key (derived
      // from the KEK) is gone, so no guessed word can be tested against its tokens, and its sealed
      // text does not open; the survivor's index still answers "meeting" (its title) and opens.
      const doomed = await readIndex(backup, keys, a);
      await expect(doomed.tokens()).rejects.toMatchObject({ code: 'decryption_failed' });
      await expect(doomed.doc()).rejects.toMatchObject({ code: 'decryption_failed' });
      const kept = await readIndex(backup, keys, b);
      expect(await kept.tokens()).toBe(true);
      expect((await kept.doc()).title).toContain('meeting');
    });

    it('logged no content, password or token', () => {
      const logs = t.logs.join('\n');
      expect(logs).not.toContain(a.account.password);
      expect(logs).not.toContain(a.token);
      expect(logs).not.toContain('meeting');
    });

    it('the survivor still works through the API', async () => {
      const res = await t.app.inject({
        method: 'GET',
        url: `/api/v1/recordings/${b.recordingId}`,
        headers: bearer(b.token),
        remoteAddress: b.account.ip,
      });
      expect(res.statusCode).toBe(200);
    });
  },
);
