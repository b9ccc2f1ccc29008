import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createSupportUser } from '../src/cli/commands/admin.js';
import { CliError } from '../src/cli/cli-error.js';
import { withSystem, withTenant } from '../src/db/tenant.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import {
  addUser,
  bearer,
  createOrgWithUser,
  createSupportUserFixture,
  eventually,
  type SupportUser,
  type TestUser,
} from './helpers/fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

const HOUR = 3600 * 1000;

describe(`support access (${backendLabel})`, () => {
  let t: TestApp;
  let clock: ManualClock;
  let owner: TestUser;
  let admin: TestUser;
  let member: TestUser;
  let otherAdmin: TestUser;
  let support: SupportUser;

  beforeAll(async () => {
    clock = new ManualClock(new Date('2031-05-01T08:00:00Z'));
    t = await startTestApp({ clock });
    owner = await createOrgWithUser(t.services);
    admin = await addUser(t.services, owner.orgId, { role: 'admin' });
    member = await addUser(t.services, owner.orgId, { role: 'member' });
    otherAdmin = await createOrgWithUser(t.services, { role: 'admin' });
    support = await createSupportUserFixture(t.services);
  });
  afterAll(async () => t?.close());

  /** Access tokens live 10 minutes; after moving the clock, everyone signs in again. */
  async function refreshTokens(): Promise<void> {
    for (const u of [owner, admin, member, otherAdmin]) {
      u.accessToken = await t.services.tokens.issue({ sub: u.userId, sid: u.sessionId, org: u.orgId });
    }
    support.accessToken = await t.services.tokens.issue({
      sub: support.userId,
      sid: support.sessionId,
      org: null,
    });
  }

  const asSupport = (url: string, method: 'GET' | 'POST' | 'PATCH' | 'DELETE' = 'GET', payload?: object) =>
    t.app.inject({
      method,
      url,
      headers: bearer(support.accessToken, owner.orgId),
      ...(payload ? { payload } : {}),
    });
  const grant = (u: TestUser, hours: unknown) =>
    t.app.inject({
      method: 'POST',
      url: '/api/v1/org/support-grants',
      headers: bearer(u.accessToken),
      payload: { hours },
    });
  const grants = (u: TestUser) =>
    t.app.inject({ url: '/api/v1/org/support-grants', headers: bearer(u.accessToken) });
  const revoke = (u: TestUser, id: string) =>
    t.app.inject({
      method: 'DELETE',
      url: `/api/v1/org/support-grants/${id}`,
      headers: bearer(u.accessToken),
    });
  const supportAudit = () =>
    withTenant(t.db, { orgId: owner.orgId, userId: null }, async (tx) => {
      const { rows } = await tx.query<{
        actor_id: string;
        actor_kind: string;
        details: Record<string, unknown>;
      }>(`SELECT actor_id, actor_kind, details FROM audit_log WHERE action = 'support.access' ORDER BY seq`);
      return rows;
    });

  it('without a grant, support sees nothing: 404 for the org, 403 without naming one', async () => {
    const res = await asSupport('/api/v1/org');
    expect(res.statusCode).toBe(404);
    expect((await asSupport('/api/v1/org/members')).statusCode).toBe(404);
    const noOrg = await t.app.inject({ url: '/api/v1/org', headers: bearer(support.accessToken) });
    expect(noOrg.statusCode).toBe(403);
    // An org with no grant and an org that does not exist answer alike.
    const ghost = await t.app.inject({
      url: '/api/v1/org',
      headers: bearer(support.accessToken, '00000000-0000-4000-8000-000000000000'),
    });
    expect(ghost.statusCode).toBe(404);
    expect(ghost.json().detail).toBe(res.json().detail);
    expect(await supportAudit()).toEqual([]);
  });

  it('only owners and admins grant (members 403), and hours must be 1–168', async () => {
    expect((await grant(member, 2)).statusCode).toBe(403);
    expect((await grants(member)).statusCode).toBe(403);
    for (const hours of [0, 169, -1, 1.5, '2', null, 1e308, '1; DROP TABLE support_grants']) {
      expect((await grant(admin, hours)).statusCode, String(hours)).toBe(400);
    }
    expect((await grants(admin)).json()).toEqual([]);
  });

  let grantId: string;

  it('with a grant, support reads the org and its members; each request is audited', async () => {
    const res = await grant(admin, 2);
    expect(res.statusCode).toBe(201);
    expect(res.json()).toEqual({
      id: expect.any(String),
      status: 'active',
      grantedBy: admin.userId,
      createdAt: '2031-05-01T08:00:00.000Z',
      expiresAt: '2031-05-01T10:00:00.000Z',
      revokedAt: null,
    });
    grantId = res.json().id;

    const org = await asSupport('/api/v1/org');
    expect(org.statusCode).toBe(200);
    expect(org.json().id).toBe(owner.orgId);
    const members = await asSupport('/api/v1/org/members');
    expect(members.statusCode).toBe(200);
    expect(members.json()).toHaveLength(3);

    const entries = await eventually(async () => {
      const rows = await supportAudit();
      return rows.length >= 2 ? rows : undefined;
    });
    expect(entries).toEqual([
      {
        actor_id: support.userId,
        actor_kind: 'support',
        details: { method: 'GET', route: '/api/v1/org', status: 200 },
      },
      {
        actor_id: support.userId,
        actor_kind: 'support',
        details: { method: 'GET', route: '/api/v1/org/members', status: 200 },
      },
    ]);
    // The grant covers this org only.
    const elsewhere = await t.app.inject({
      url: '/api/v1/org',
      headers: bearer(support.accessToken, otherAdmin.orgId),
    });
    expect(elsewhere.statusCode).toBe(404);
  });

  it('support can never change anything (403) — and those attempts are audited too', async () => {
    const before = (await supportAudit()).length;
    const attempts = [
      asSupport('/api/v1/org/settings', 'PATCH', { retentionDays: 1 }),
      asSupport('/api/v1/org/settings'),
      asSupport(`/api/v1/org/members/${member.userId}`, 'PATCH', { role: 'admin' }),
      asSupport(`/api/v1/org/members/${member.userId}`, 'DELETE'),
      asSupport('/api/v1/org/invitations', 'POST', { email: 'mole@example.test', role: 'admin' }),
      asSupport('/api/v1/org/invitations'),
      asSupport('/api/v1/org/support-grants', 'POST', { hours: 168 }),
      asSupport('/api/v1/org/support-grants'),
      asSupport(`/api/v1/org/support-grants/${grantId}`, 'DELETE'),
      asSupport('/api/v1/audit'),
    ];
    for (const res of await Promise.all(attempts)) {
      expect(res.statusCode).toBe(403);
    }
    await eventually(async () =>
      (await supportAudit()).length >= before + attempts.length ? true : undefined,
    );
    const roles = (
      await t.app.inject({ url: '/api/v1/org/members', headers: bearer(owner.accessToken) })
    ).json();
    expect(roles.find((m: { id: string }) => m.id === member.userId).role).toBe('member');
    expect((await grants(admin)).json()).toHaveLength(1);
  });

  it('access ends when the grant expires', async () => {
    clock.advance(2 * HOUR + 1000);
    await refreshTokens();
    expect((await asSupport('/api/v1/org')).statusCode).toBe(404);
    expect((await grants(admin)).json()[0].status).toBe('expired');
  });

  it('access ends the moment the grant is revoked; revocation is audited', async () => {
    const created = (await grant(owner, 24)).json();
    expect((await asSupport('/api/v1/org/members')).statusCode).toBe(200);
    expect((await revoke(admin, created.id)).statusCode).toBe(204);
    expect((await asSupport('/api/v1/org/members')).statusCode).toBe(404);
    expect((await revoke(admin, created.id)).statusCode).toBe(409);
    const listed = (await grants(owner)).json();
    expect(listed.find((g: { id: string }) => g.id === created.id)).toMatchObject({
      status: 'revoked',
      revokedAt: expect.any(String),
    });
    const audit = (await t.app.inject({ url: '/api/v1/audit', headers: bearer(owner.accessToken) })).json();
    const actions = audit.entries.map((e: { action: string }) => e.action);
    expect(actions).toContain('support.granted');
    expect(actions).toContain('support.revoked');
    const revoked = audit.entries.find((e: { action: string }) => e.action === 'support.revoked');
    expect(revoked).toMatchObject({
      actorId: admin.userId,
      targetId: created.id,
      details: { wasActive: true },
    });
  });

  it('another org’s admin gets exactly 404 for this org’s grant ids; members 403', async () => {
    const created = (await grant(admin, 1)).json();
    const res = await revoke(otherAdmin, created.id);
    expect(res.statusCode).toBe(404);
    expect(res.json().code).toBe('not_found');
    expect((await grants(otherAdmin)).json()).toEqual([]);
    expect((await revoke(member, created.id)).statusCode).toBe(403);
    expect((await grants(admin)).json().find((g: { id: string }) => g.id === created.id).status).toBe(
      'active',
    );
    expect((await revoke(admin, 'not-a-uuid')).statusCode).toBe(400);
  });

  it('a support header sent by an org member changes nothing: they stay in their own org', async () => {
    const res = await t.app.inject({
      url: '/api/v1/org',
      headers: bearer(otherAdmin.accessToken, owner.orgId),
    });
    expect(res.statusCode).toBe(200);
    expect(res.json().id).toBe(otherAdmin.orgId);
  });
});

describe(`sotto admin create-support-user (${backendLabel})`, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => t?.close());

  it('creates a platform support account with a generated password printed once', async () => {
    const lines: string[] = [];
    const created = await createSupportUser(
      t.services,
      { email: 'Helper@Sotto.test', name: 'Helpful Person' },
      (l) => lines.push(l),
    );
    expect(created.generatedPassword).toMatch(/^[A-Za-z0-9_-]{24}$/);
    expect(lines.filter((l) => l.includes(created.generatedPassword!))).toHaveLength(1);
    const row = await withSystem(t.db, async (tx) => {
      const { rows } = await tx.query<{
        email: string;
        org_id: string | null;
        role: string | null;
        platform_role: string;
        password_hash: string;
      }>('SELECT email, org_id, role, platform_role, password_hash FROM users WHERE id = $1', [created.id]);
      return rows[0]!;
    });
    expect(row).toMatchObject({
      email: 'helper@sotto.test',
      org_id: null,
      role: null,
      platform_role: 'support',
    });
    expect(row.password_hash).toMatch(/^\$argon2id\$/);
    expect(await t.services.hasher.verify(row.password_hash, created.generatedPassword!)).toBe(true);
    const [platform] = await t.services.audit.verify(null);
    expect(platform).toMatchObject({ orgId: null, ok: true, entries: 1 });
    expect(t.logs.join('')).not.toContain(created.generatedPassword!);
  });

  it('refuses a duplicate email, a bad email, a weak typed password', async () => {
    const quiet = () => undefined;
    await expect(
      createSupportUser(t.services, { email: 'helper@sotto.test', name: 'Again' }, quiet),
    ).rejects.toThrow(CliError);
    await expect(
      createSupportUser(t.services, { email: "x' OR 1=1 --", name: 'Bad' }, quiet),
    ).rejects.toThrow(/--email/);
    await expect(
      createSupportUser(t.services, { email: 'typed@sotto.test', name: 'Typed', password: 'short' }, quiet),
    ).rejects.toThrow(/at least 12/);
    await expect(
      createSupportUser(
        t.services,
        { email: 'typed@sotto.test', name: 'Typed', password: 'qwerty123456' },
        quiet,
      ),
    ).rejects.toThrow(/commonly used/);
    const typed = await createSupportUser(
      t.services,
      { email: 'typed@sotto.test', name: 'Typed', password: 'a long secret passphrase' },
      quiet,
    );
    expect(typed.generatedPassword).toBeUndefined();
  });
});
