/**
 * Account deletion by the user (issue 6, docs/lifecycle.md): DELETE /api/v1/me with the current
 * password ends every session and refuses login at once; the queued job (processDue, as the
 * scheduler's `account-deletions` task runs it) removes the login data, transfers or deletes the
 * user's recordings per the org's departedUserRecordings policy, audits and e-mails a receipt.
 */
import { readFileSync } from 'node:fs';
import { existsSync, rmSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../src/db/tenant.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { authed, call, freshIp, login, signup, totp, type Account } from './helpers/auth-client.js';
import { corpusFile, hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { fakeSmtp, type FakeSmtp } from './helpers/fake-smtp.js';
import { addUser, type TestUser } from './helpers/fixtures.js';
import { recordingEnv, upload } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

const PASSWORD = 'a long and private passphrase 77';
const TITLE = 'Quarterly review with Philippa';

describe.skipIf(!hasCorpus)(`account deletion (${backendLabel}) ${hasCorpus ? '' : noCorpusReason}`, () => {
  let t: TestApp;
  let clock: ManualClock;
  let smtp: FakeSmtp;
  let dataDir: string;
  let owner: Account;
  let ownerToken: string;
  let otherOrgMember: TestUser & { password: string; ip: string };
  let otherOrgRecording: string;

  /** A member (fixture) whose password is PASSWORD, so it can log in and re-authenticate. */
  async function member(orgId: string, role: 'admin' | 'member' | 'owner' = 'member') {
    const u = await addUser(t.services, orgId, { role });
    await t.db.query('UPDATE users SET password_hash = $1 WHERE id = $2', [
      await t.services.hasher.hash(PASSWORD),
      u.userId,
    ]);
    return { ...u, password: PASSWORD, ip: freshIp() };
  }
  const deleteMe = (u: { accessToken: string; ip: string }, payload: unknown) =>
    call(t, u.ip, {
      method: 'DELETE',
      url: '/api/v1/me',
      headers: { authorization: `Bearer ${u.accessToken}` },
      payload: payload as Record<string, unknown>,
    });
  const loginStatus = async (email: string, password: string) =>
    (await call(t, freshIp(), { method: 'POST', url: '/api/v1/auth/login', payload: { email, password } }))
      .statusCode;
  const uploadAs = async (u: { accessToken: string; ip: string }) => {
    const res = await upload(t, u.accessToken, u.ip, readFileSync(corpusFile('solo-03', 'wav')), {
      title: TITLE,
    });
    expect(res.statusCode, res.body).toBe(202);
    return res.json().id as string;
  };
  const count = async (sql: string, params: unknown[]) =>
    (await t.db.query<{ n: number }>(sql, params)).rows[0]!.n;

  beforeAll(async () => {
    smtp = await fakeSmtp();
    clock = new ManualClock(new Date('2031-05-04T10:00:00Z'));
    const r = recordingEnv({ SOTTO_SMTP_URL: smtp.url });
    dataDir = r.dataDir;
    t = await startTestApp({ clock, env: r.env });
    owner = await signup(t, { organization: 'Departures Org', smtp });
    ownerToken = (await login(t, owner)).accessToken;
    // Another org with a member and a recording: nothing here may touch it.
    const other = await signup(t, { organization: 'Bystander Org', smtp });
    const o = await member(other.orgId);
    otherOrgMember = o;
    otherOrgRecording = await uploadAs(o);
  }, 60_000);
  afterAll(async () => {
    await t?.close();
    await smtp?.close();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('refuses a wrong password and hostile bodies, queueing nothing', async () => {
    const m = await member(owner.orgId);
    expect((await deleteMe(m, { currentPassword: 'not the password 1' })).statusCode).toBe(401);
    expect((await deleteMe(m, {})).statusCode).toBe(400);
    expect((await deleteMe(m, { currentPassword: 'x'.repeat(5000) })).statusCode).toBe(400);
    expect((await deleteMe(m, { currentPassword: 12345 })).statusCode).toBe(400);
    expect((await deleteMe(m, { currentPassword: PASSWORD, userId: otherOrgMember.userId })).statusCode).toBe(
      400,
    );
    const anon = await call(t, m.ip, {
      method: 'DELETE',
      url: '/api/v1/me',
      payload: { currentPassword: PASSWORD },
    });
    expect(anon.statusCode).toBe(401);
    expect(
      await count('SELECT count(*)::int AS n FROM account_deletions WHERE user_id = $1', [m.userId]),
    ).toBe(0);
    expect(await loginStatus(m.email, PASSWORD)).toBe(200);
  });

  it('refuses the last owner (409) with what to do instead', async () => {
    const res = await deleteMe(
      { accessToken: ownerToken, ip: owner.ip },
      { currentPassword: owner.password },
    );
    expect(res.statusCode).toBe(409);
    expect(res.json().detail).toMatch(/transfer ownership/);
    expect(res.json().detail).toMatch(/delete the organization/);
    expect(await loginStatus(owner.email, owner.password)).toBe(200);
  });

  it("default policy 'transfer': login refused at once; the job removes the account, hands the recordings to an owner, audits and mails", async () => {
    const m = await member(owner.orgId);
    const rec = await uploadAs(m);
    const res = await deleteMe(m, { currentPassword: PASSWORD });
    expect(res.statusCode, res.body).toBe(202);
    expect(new Date(res.json().completeBy).getTime()).toBe(clock.now().getTime() + 24 * 3600 * 1000);
    // Immediately: the session is over and the password no longer opens anything.
    expect((await authed(t, m.ip, m.accessToken, { method: 'GET', url: '/api/v1/me' })).statusCode).toBe(401);
    expect(await loginStatus(m.email, PASSWORD)).toBe(401);
    expect(await count('SELECT count(*)::int AS n FROM recovery_codes WHERE user_id = $1', [m.userId])).toBe(
      0,
    );
    // Every other way in (SSO, an invitation) ends in SessionService.open, which refuses too.
    await expect(
      withTenant(t.db, { orgId: owner.orgId, userId: m.userId }, (tx) =>
        t.services.sessions.open(tx, { id: m.userId, orgId: owner.orgId }, { ip: m.ip, userAgent: 'sso' }),
      ),
    ).rejects.toMatchObject({ code: 'invalid_credentials' });

    clock.advance(60_000);
    const sentBefore = smtp.messages.length;
    expect(await t.services.accountDeletion.processDue()).toBe(1);
    expect(await count('SELECT count(*)::int AS n FROM users WHERE id = $1', [m.userId])).toBe(0);
    expect(await count('SELECT count(*)::int AS n FROM sessions WHERE user_id = $1', [m.userId])).toBe(0);
    const owned = await t.db.query<{ owner_id: string }>('SELECT owner_id FROM recordings WHERE id = $1', [
      rec,
    ]);
    expect(owned.rows).toEqual([{ owner_id: owner.userId }]);
    const done = await t.db.query<{ email: string | null; completed_at: Date | null }>(
      'SELECT email, completed_at FROM account_deletions WHERE user_id = $1',
      [m.userId],
    );
    expect(done.rows[0]!.email).toBeNull();
    expect(done.rows[0]!.completed_at).not.toBeNull();
    const audit = await t.db.query<{ details: { recordings: Record<string, unknown> } }>(
      `SELECT details FROM audit_log WHERE action = 'account.deleted' AND target_id = $1`,
      [m.userId],
    );
    expect(audit.rows[0]!.details.recordings).toMatchObject({
      policy: 'transfer',
      transferred: 1,
      deleted: 0,
    });
    expect(smtp.messages.length).toBe(sentBefore + 1);
    const mail = smtp.messages.at(-1)!;
    expect(mail).toContain(`To: ${m.email}`);
    expect(mail).toMatch(/Subject: Your Sotto account has been deleted/);
    expect(mail).not.toContain(TITLE);
    // Running again does nothing.
    expect(await t.services.accountDeletion.processDue()).toBe(0);
  });

  it("policy 'delete': the recordings are hard-deleted with receipts (ciphertext hashes), blobs included", async () => {
    const set = await authed(t, owner.ip, ownerToken, {
      method: 'PATCH',
      url: '/api/v1/org/settings',
      payload: { departedUserRecordings: 'delete' },
    });
    expect(set.statusCode, set.body).toBe(200);
    expect(set.json().departedUserRecordings).toBe('delete');
    const bad = await authed(t, owner.ip, ownerToken, {
      method: 'PATCH',
      url: '/api/v1/org/settings',
      payload: { departedUserRecordings: 'keep-forever' },
    });
    expect(bad.statusCode).toBe(400);

    const m = await member(owner.orgId, 'admin');
    const rec = await uploadAs(m);
    const blob = path.join(dataDir, 'audio', owner.orgId, `${rec}.bin`);
    expect(existsSync(blob)).toBe(true);
    expect((await deleteMe(m, { currentPassword: PASSWORD })).statusCode).toBe(202);
    expect(await t.services.accountDeletion.processDue()).toBe(1);
    for (const table of ['recordings', 'recording_jobs', 'recording_audio', 'transcripts'])
      expect(
        await count(
          `SELECT count(*)::int AS n FROM ${table} WHERE ${table === 'recordings' ? 'id' : 'recording_id'} = $1`,
          [rec],
        ),
        table,
      ).toBe(0);
    expect(existsSync(blob)).toBe(false);
    const receipt = await t.db.query<{
      actor_kind: string;
      details: { reason: string; parts: string[]; sha256: Record<string, string> };
    }>(`SELECT actor_kind, details FROM audit_log WHERE action = 'recording.deleted' AND target_id = $1`, [
      rec,
    ]);
    expect(receipt.rows).toHaveLength(1);
    expect(receipt.rows[0]!.actor_kind).toBe('system');
    expect(receipt.rows[0]!.details.reason).toBe('account_deleted');
    expect(receipt.rows[0]!.details.parts).toContain('audio');
    expect(receipt.rows[0]!.details.sha256.audioBlob).toMatch(/^[0-9a-f]{64}$/);
    expect(receipt.rows[0]!.details.sha256.title).toMatch(/^[0-9a-f]{64}$/);
    expect(smtp.messages.at(-1)).toContain(`To: ${m.email}`);
    expect(smtp.messages.at(-1)).toMatch(/1 recording\(s\) you owned/);
  });

  it('an owner who is not the last may leave; another org is untouched throughout', async () => {
    const second = await member(owner.orgId, 'owner');
    expect((await deleteMe(second, { currentPassword: PASSWORD })).statusCode).toBe(202);
    expect(await t.services.accountDeletion.processDue()).toBe(1);
    expect(await count('SELECT count(*)::int AS n FROM users WHERE id = $1', [second.userId])).toBe(0);
    // The bystander org: its member, session and recording are all still there.
    expect(await count('SELECT count(*)::int AS n FROM users WHERE id = $1', [otherOrgMember.userId])).toBe(
      1,
    );
    expect(await count('SELECT count(*)::int AS n FROM recordings WHERE id = $1', [otherOrgRecording])).toBe(
      1,
    );
    expect(
      (await authed(t, otherOrgMember.ip, otherOrgMember.accessToken, { method: 'GET', url: '/api/v1/me' }))
        .statusCode,
    ).toBe(200);
  });

  it('with a second factor on, needs a valid code too; recovery codes go at once', async () => {
    const m = await member(owner.orgId);
    const session = await login(t, { email: m.email, password: PASSWORD, ip: m.ip });
    const s = { accessToken: session.accessToken, ip: m.ip };
    const post = (url: string, payload?: object) =>
      authed(t, m.ip, s.accessToken, { method: 'POST', url, ...(payload ? { payload } : {}) });
    const { secret } = (await post('/api/v1/auth/mfa/totp')).json() as { secret: string };
    const confirm = await post('/api/v1/auth/mfa/totp/confirm', {
      code: totp(secret, clock.now().getTime()),
    });
    expect(confirm.statusCode, confirm.body).toBe(200);
    clock.advance(30_000);
    const noCode = await deleteMe(s, { currentPassword: PASSWORD });
    expect(noCode.statusCode).toBe(401);
    expect(noCode.json().code).toBe('mfa_required');
    expect((await deleteMe(s, { currentPassword: PASSWORD, code: '000000' })).statusCode).toBe(401);
    expect(
      await count('SELECT count(*)::int AS n FROM account_deletions WHERE user_id = $1', [m.userId]),
    ).toBe(0);
    const ok = await deleteMe(s, { currentPassword: PASSWORD, code: totp(secret, clock.now().getTime()) });
    expect(ok.statusCode, ok.body).toBe(202);
    expect(await count('SELECT count(*)::int AS n FROM recovery_codes WHERE user_id = $1', [m.userId])).toBe(
      0,
    );
    expect(
      await count('SELECT count(*)::int AS n FROM users WHERE id = $1 AND totp_enabled', [m.userId]),
    ).toBe(0);
    expect(await t.services.accountDeletion.processDue()).toBe(1);
  });

  it('is registered with the maintenance scheduler', () => {
    expect(t.services.scheduler.taskNames).toContain('account-deletions');
  });

  it('logged no password, token or title', () => {
    const logs = t.logs.join('\n');
    expect(logs).not.toContain(PASSWORD);
    expect(logs).not.toContain(TITLE);
    expect(logs).not.toContain(ownerToken);
  });
});
