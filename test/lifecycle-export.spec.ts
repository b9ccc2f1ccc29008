import { execFileSync, spawnSync } from 'node:child_process';
import { createHash, randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { auditRows, freshIp } from './helpers/auth-client.js';
import { addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';
import { seedTranscript, seg } from './helpers/transcripts.js';
import { unzip } from './helpers/zip.js';

/**
 * Data-portability exports (docs/lifecycle.md), end to end through the HTTP routes: request →
 * background build → download of a zip whose files equal what the API answers, sealed at rest,
 * admins only, another org's export exactly 404, expiry deleting the file, restart recovery.
 */
const SECRET_WORDS = ['pelican', 'marmalade', 'zanzibar'];

const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');

describe(`org data export (${backendLabel})`, () => {
  let t: TestApp;
  let dataDir: string;
  const clock = new ManualClock(new Date('2026-03-01T10:00:00Z'));
  let owner: TestUser;
  let admin: TestUser;
  let member: TestUser;
  let other: TestUser;
  let rec1: string;
  let rec2: string;
  let otherExport: string;
  const audioBytes = randomBytes(150_000);
  const ip = freshIp();

  const call = (u: TestUser, method: 'GET' | 'POST' | 'DELETE' | 'PATCH', url: string, payload?: object) =>
    t.app.inject({
      method,
      url,
      headers: bearer(u.accessToken),
      remoteAddress: ip,
      ...(payload ? { payload } : {}),
    });
  const exportFile = (orgId: string, id: string) => path.join(dataDir, 'exports', orgId, `${id}.bin`);
  const ready = async (u: TestUser, id: string) => {
    await t.services.orgExports.idle();
    const res = await call(u, 'GET', `/api/v1/org/exports/${id}`);
    expect(res.statusCode, res.body).toBe(200);
    return res.json<{
      status: string;
      sha256: string;
      sizeBytes: number;
      progress: { done: number; total: number };
    }>();
  };

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'sotto-export-'));
    t = await startTestApp({ clock, env: { SOTTO_DATA_DIR: dataDir, SOTTO_EXPORT_TTL_HOURS: '24' } });
    owner = await createOrgWithUser(t.services);
    admin = await addUser(t.services, owner.orgId, { role: 'admin' });
    member = await addUser(t.services, owner.orgId, { role: 'member' });
    other = await createOrgWithUser(t.services);
    rec1 = await seedTranscript(t.services, owner, {
      title: 'Session one',
      segments: [seg(1, 'S1', 0, 'the pelican ate marmalade'), seg(2, 'S2', 3, 'quite so indeed')],
    });
    rec2 = await seedTranscript(t.services, member, {
      title: 'Session two',
      segments: [seg(1, 'S1', 0, 'zanzibar is far away')],
    });
    // An edit makes the current transcript differ from the machine original.
    const doc = (await call(owner, 'GET', `/api/v1/recordings/${rec1}/transcript`)).json<{
      revision: number;
    }>();
    const edit = await call(owner, 'PATCH', `/api/v1/recordings/${rec1}/transcript`, {
      revision: doc.revision,
      speakers: [{ id: 'S1', name: 'Dr Pelican' }],
      segments: [{ id: 'seg-0002', text: 'quite so indeed marmalade' }],
    });
    expect(edit.statusCode, edit.body).toBe(200);
    // Kept audio for rec1, sealed exactly as an upload is.
    const plain = path.join(dataDir, 'plain.wav');
    writeFileSync(plain, audioBytes);
    await t.services.audio.seal(owner.orgId, rec1, plain, 'audio/wav');
    const settings = await call(owner, 'PATCH', '/api/v1/org/settings', { storeAudio: true });
    expect(settings.statusCode, settings.body).toBe(200);
    // Another org's export, for the cross-tenant checks.
    await seedTranscript(t.services, other, { segments: [seg(1, 'S1', 0, 'other org words')] });
    const res = await call(other, 'POST', '/api/v1/org/export');
    expect(res.statusCode, res.body).toBe(202);
    otherExport = res.json<{ id: string }>().id;
    expect((await ready(other, otherExport)).status).toBe('ready');
  }, 120_000);

  afterAll(async () => {
    await t?.services.orgExports.stop();
    await t?.close();
  });

  it('exports the org: the zip equals the API, hashes match, sealed at rest, audited', async () => {
    const [a, b] = await Promise.all([
      call(owner, 'POST', '/api/v1/org/export'),
      call(admin, 'POST', '/api/v1/org/export'),
    ]);
    expect([a.statusCode, b.statusCode].sort()).toEqual([202, 409]);
    const created = (a.statusCode === 202 ? a : b).json<{ id: string; status: string }>();
    expect(created.status).toBe('queued');
    const done = await ready(owner, created.id);
    expect(done.status).toBe('ready');
    expect(done.progress.done).toBe(done.progress.total);
    expect(done.progress.total).toBeGreaterThan(5);

    const list = await call(admin, 'GET', '/api/v1/org/exports');
    expect(list.statusCode).toBe(200);
    const ids = list.json<{ items: { id: string }[] }>().items.map((i) => i.id);
    expect(ids).toContain(created.id);
    expect(ids).not.toContain(otherExport);

    const dl = await call(admin, 'GET', `/api/v1/org/exports/${created.id}/download`);
    expect(dl.statusCode, dl.body).toBe(200);
    expect(dl.headers['content-type']).toBe('application/zip');
    expect(dl.headers['content-disposition']).toBe(`attachment; filename="sotto-export-${created.id}.zip"`);
    const zipBytes = dl.rawPayload;
    expect(zipBytes.length).toBe(done.sizeBytes);
    expect(sha(zipBytes)).toBe(done.sha256);

    const zipPath = path.join(dataDir, 'download.zip');
    writeFileSync(zipPath, zipBytes);
    const listing = execFileSync('unzip', ['-l', zipPath], { encoding: 'utf8' });
    expect(listing).toContain('manifest.json');
    expect(listing).toContain(`audio/${rec1}.wav`);

    const files = await unzip(zipBytes);
    const parse = (name: string) => JSON.parse(files.get(name)!.toString('utf8')) as Record<string, unknown>;
    for (const id of [rec1, rec2]) {
      const t1 = parse(`transcripts/${id}.json`);
      const cur = await call(owner, 'GET', `/api/v1/recordings/${id}/transcript`);
      const orig = await call(owner, 'GET', `/api/v1/recordings/${id}/transcript?version=original`);
      expect(t1.current).toEqual(cur.json());
      expect(t1.original).toEqual(orig.json());
      const report = await call(owner, 'GET', `/api/v1/recordings/${id}/report`);
      expect(parse(`reports/${id}.json`)).toEqual(report.json());
    }
    expect(parse(`transcripts/${rec1}.json`).current).not.toEqual(parse(`transcripts/${rec1}.json`).original);
    const audio = await call(owner, 'GET', `/api/v1/recordings/${rec1}/audio`);
    expect(audio.statusCode).toBe(200);
    expect(files.get(`audio/${rec1}.wav`)!.equals(audio.rawPayload)).toBe(true);
    expect(files.get(`audio/${rec1}.wav`)!.equals(audioBytes)).toBe(true);
    expect([...files.keys()].some((k) => k.startsWith(`audio/${rec2}`))).toBe(false);

    const recs = JSON.parse(files.get('recordings.json')!.toString('utf8')) as {
      id: string;
      title: string;
    }[];
    expect(recs.map((r) => r.id).sort()).toEqual([rec1, rec2].sort());
    expect(recs.find((r) => r.id === rec1)!.title).toBe('Session one');
    const members = JSON.parse(files.get('members.json')!.toString('utf8')) as { id: string }[];
    expect(members.map((m) => m.id).sort()).toEqual([owner.userId, admin.userId, member.userId].sort());

    const manifest = parse('manifest.json') as {
      formatVersion: number;
      org: { id: string };
      requestedBy: string;
      counts: Record<string, number>;
      files: { path: string; size: number; sha256: string }[];
    };
    expect(manifest.formatVersion).toBe(1);
    expect(manifest.org.id).toBe(owner.orgId);
    expect([owner.userId, admin.userId]).toContain(manifest.requestedBy);
    expect(manifest.counts).toMatchObject({
      members: 3,
      recordings: 2,
      transcripts: 2,
      reports: 2,
      audio: 1,
    });
    expect(manifest.files.map((f) => f.path).sort()).toEqual(
      [...files.keys()].filter((k) => k !== 'manifest.json').sort(),
    );
    for (const f of manifest.files) {
      expect(sha(files.get(f.path)!), f.path).toBe(f.sha256);
      expect(files.get(f.path)!.length).toBe(f.size);
    }

    const auditLog = parse('audit-log.json') as {
      verification: { ok: boolean };
      entries: { seq: number; action: string }[];
    };
    expect(auditLog.verification.ok).toBe(true);
    expect(auditLog.entries.map((e) => e.action)).toContain('org.export_requested');
    expect(auditLog.entries.map((e) => e.seq)).toEqual(auditLog.entries.map((_, i) => i + 1));
    expect(manifest.counts.auditEntries).toBe(auditLog.entries.length);

    // At rest: sealed, not a zip, no transcript word, no audio window.
    const sealed = readFileSync(exportFile(owner.orgId, created.id));
    expect(sealed.subarray(0, 4).equals(Buffer.from('PK\x03\x04', 'latin1'))).toBe(false);
    for (const w of SECRET_WORDS) expect(sealed.includes(Buffer.from(w))).toBe(false);
    expect(sealed.includes(audioBytes.subarray(1000, 1064))).toBe(false);
    expect(spawnSync('unzip', ['-l', exportFile(owner.orgId, created.id)]).status).not.toBe(0);
    // No scratch file is left behind.
    expect(readdirSync(path.dirname(exportFile(owner.orgId, created.id)))).toEqual([`${created.id}.bin`]);

    const requested = (await auditRows(t, 'org.export_requested')).filter((r) => r.org_id === owner.orgId);
    expect(requested).toHaveLength(1);
    const downloaded = (await auditRows(t, 'org.export_downloaded')).filter((r) => r.org_id === owner.orgId);
    expect(downloaded.map((r) => r.actor_id)).toEqual([admin.userId]);
    for (const w of SECRET_WORDS) expect(t.logs.join('\n')).not.toContain(w);
  });

  it('members are refused (403) on every route', async () => {
    const id = otherExport;
    expect((await call(member, 'POST', '/api/v1/org/export')).statusCode).toBe(403);
    expect((await call(member, 'GET', '/api/v1/org/exports')).statusCode).toBe(403);
    expect((await call(member, 'GET', `/api/v1/org/exports/${id}`)).statusCode).toBe(403);
    expect((await call(member, 'GET', `/api/v1/org/exports/${id}/download`)).statusCode).toBe(403);
    expect((await call(member, 'DELETE', `/api/v1/org/exports/${id}`)).statusCode).toBe(403);
  });

  it("another org's export is exactly 404 on every route, and stays intact", async () => {
    for (const [method, url] of [
      ['GET', `/api/v1/org/exports/${otherExport}`],
      ['GET', `/api/v1/org/exports/${otherExport}/download`],
      ['DELETE', `/api/v1/org/exports/${otherExport}`],
    ] as const) {
      const res = await call(owner, method, url);
      expect(res.statusCode, `${method} ${url}`).toBe(404);
    }
    expect(existsSync(exportFile(other.orgId, otherExport))).toBe(true);
    expect((await call(other, 'GET', `/api/v1/org/exports/${otherExport}/download`)).statusCode).toBe(200);
  });

  it('hostile ids and bodies: 400 or 404, never a path', async () => {
    for (const bad of ['abc', '..%2F..%2Fetc%2Fpasswd', 'x'.repeat(5000), `${otherExport}x`, '%00']) {
      for (const url of [`/api/v1/org/exports/${bad}`, `/api/v1/org/exports/${bad}/download`]) {
        const res = await call(owner, 'GET', url);
        expect([400, 404], url).toContain(res.statusCode);
      }
      expect([400, 404]).toContain((await call(owner, 'DELETE', `/api/v1/org/exports/${bad}`)).statusCode);
    }
    const unknown = '5f0c8a2e-0000-4000-8000-000000000000';
    expect((await call(owner, 'GET', `/api/v1/org/exports/${unknown}/download`)).statusCode).toBe(404);
    const body = await call(owner, 'POST', '/api/v1/org/export', { org: other.orgId });
    expect(body.statusCode).toBe(400);
  });

  it('a build abandoned by a dead node is retried, then failed honestly', async () => {
    // As if the node building it died: still 'building', its lease long gone.
    await t.db.query(
      `UPDATE org_exports SET status = 'building', lease_until = $2, attempts = 1 WHERE id = $1`,
      [otherExport, new Date(clock.now().getTime() - 3600_000)],
    );
    await t.services.orgExports.sweep();
    expect((await ready(other, otherExport)).status).toBe('ready');
    await t.db.query(
      `UPDATE org_exports SET status = 'building', lease_until = $2, attempts = 2 WHERE id = $1`,
      [otherExport, new Date(clock.now().getTime() - 3600_000)],
    );
    await t.services.orgExports.sweep();
    const failed = await ready(other, otherExport);
    expect(failed.status).toBe('failed');
    expect(existsSync(exportFile(other.orgId, otherExport))).toBe(false);
  });

  it('shutdown mid-build hands the export back to the queue; the next start builds it', async () => {
    const res = await call(other, 'POST', '/api/v1/org/export');
    expect(res.statusCode, res.body).toBe(202);
    const id = res.json<{ id: string }>().id;
    await t.services.orgExports.stop();
    const after = await ready(other, id);
    expect(['queued', 'ready']).toContain(after.status);
    t.services.orgExports.start();
    await t.services.orgExports.sweep();
    expect((await ready(other, id)).status).toBe('ready');
  });

  it('expiry: after the TTL the sweep deletes the file; download is 404; DELETE removes an export', async () => {
    const res = await call(owner, 'POST', '/api/v1/org/export');
    expect(res.statusCode, res.body).toBe(202);
    const id = res.json<{ id: string }>().id;
    expect((await ready(owner, id)).status).toBe('ready');
    expect(existsSync(exportFile(owner.orgId, id))).toBe(true);
    clock.advance(23 * 3600_000);
    await t.services.orgExports.sweep();
    expect(existsSync(exportFile(owner.orgId, id))).toBe(true);
    clock.advance(2 * 3600_000);
    // A day later the fixtures' sessions are gone: a fresh admin signs in.
    const late = await addUser(t.services, owner.orgId, { role: 'admin' });
    // Past the TTL the download is refused even before the sweep ran.
    expect((await call(late, 'GET', `/api/v1/org/exports/${id}/download`)).statusCode).toBe(404);
    await t.services.orgExports.sweep();
    expect(existsSync(exportFile(owner.orgId, id))).toBe(false);
    expect((await ready(late, id)).status).toBe('expired');
    expect((await call(late, 'GET', `/api/v1/org/exports/${id}/download`)).statusCode).toBe(404);

    const again = await call(late, 'POST', '/api/v1/org/export');
    expect(again.statusCode, again.body).toBe(202);
    const second = again.json<{ id: string }>().id;
    expect((await ready(late, second)).status).toBe('ready');
    // A sealed file that does not match its record is never served.
    const file = exportFile(owner.orgId, second);
    writeFileSync(file, Buffer.concat([readFileSync(file), Buffer.from([0])]));
    const tampered = await call(late, 'GET', `/api/v1/org/exports/${second}/download`);
    expect(tampered.statusCode).toBe(500);
    expect(tampered.json<{ code: string }>().code).toBe('decryption_failed');
    expect((await call(late, 'DELETE', `/api/v1/org/exports/${second}`)).statusCode).toBe(204);
    expect(existsSync(exportFile(owner.orgId, second))).toBe(false);
    expect((await call(late, 'GET', `/api/v1/org/exports/${second}`)).statusCode).toBe(404);
    expect((await auditRows(t, 'org.export_deleted')).map((r) => r.actor_id)).toEqual([late.userId]);
  });

  it('not ready yet: download is 409; a requester who lost the admin role gets a failed export', async () => {
    const boss = await addUser(t.services, owner.orgId, { role: 'owner' });
    const asker = await addUser(t.services, owner.orgId, { role: 'admin' });
    await t.services.orgExports.stop();
    const res = await call(asker, 'POST', '/api/v1/org/export');
    expect(res.statusCode, res.body).toBe(202);
    const id = res.json<{ id: string }>().id;
    expect((await call(boss, 'GET', `/api/v1/org/exports/${id}/download`)).statusCode).toBe(409);
    const demote = await call(boss, 'PATCH', `/api/v1/org/members/${asker.userId}`, { role: 'member' });
    expect(demote.statusCode, demote.body).toBe(200);
    t.services.orgExports.start();
    await t.services.orgExports.sweep();
    const failed = await call(boss, 'GET', `/api/v1/org/exports/${id}`);
    expect(failed.json()).toMatchObject({ status: 'failed', errorCode: 'forbidden' });
    expect(existsSync(exportFile(owner.orgId, id))).toBe(false);
  });
});
