import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../src/db/tenant.js';
import { addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

describe(`organization members and roles (${backendLabel})`, () => {
  let t: TestApp;
  let owner: TestUser;
  let admin: TestUser;
  let member: TestUser;
  let otherAdmin: TestUser;

  beforeAll(async () => {
    t = await startTestApp();
    owner = await createOrgWithUser(t.services);
    admin = await addUser(t.services, owner.orgId, { role: 'admin' });
    member = await addUser(t.services, owner.orgId, { role: 'member' });
    otherAdmin = await createOrgWithUser(t.services, { role: 'admin' });
  });
  afterAll(async () => t?.close());

  const list = (u: TestUser, query = '') =>
    t.app.inject({ url: `/api/v1/org/members${query}`, headers: bearer(u.accessToken) });
  const setRole = (u: TestUser, id: string, role: unknown) =>
    t.app.inject({
      method: 'PATCH',
      url: `/api/v1/org/members/${id}`,
      headers: bearer(u.accessToken),
      payload: { role },
    });
  const remove = (u: TestUser, id: string) =>
    t.app.inject({ method: 'DELETE', url: `/api/v1/org/members/${id}`, headers: bearer(u.accessToken) });
  const auditActions = async (action: string) =>
    (await t.app.inject({ url: `/api/v1/audit?action=${action}`, headers: bearer(owner.accessToken) })).json()
      .entries as { targetId: string; details: Record<string, unknown>; actorId: string }[];

  it('lists the members of the caller’s org (every role may read it)', async () => {
    const res = await list(member);
    expect(res.statusCode).toBe(200);
    const members = res.json() as { id: string; role: string }[];
    expect(members.map((m) => m.id).sort()).toEqual([owner.userId, admin.userId, member.userId].sort());
    expect(members[0]).toEqual({
      id: owner.userId,
      email: owner.email,
      name: 'Test owner',
      role: 'owner',
      mfaEnabled: false,
      createdAt: expect.any(String),
    });
    expect(JSON.stringify(members)).not.toContain('password');
    expect((await list(otherAdmin)).json().map((m: { id: string }) => m.id)).toEqual([otherAdmin.userId]);
  });

  it('pages with limit and after', async () => {
    const first = (await list(owner, '?limit=2')).json() as { id: string }[];
    expect(first).toHaveLength(2);
    const second = (await list(owner, `?limit=2&after=${first[1]!.id}`)).json() as { id: string }[];
    expect(second).toHaveLength(1);
    expect(new Set([...first, ...second].map((m) => m.id)).size).toBe(3);
    // A cursor from another org matches nothing here.
    expect((await list(otherAdmin, `?after=${owner.userId}`)).json()).toEqual([]);
    for (const q of ['?limit=0', '?limit=201', '?limit=abc', "?after=1' OR '1'='1", '?after=x', '?foo=1']) {
      expect((await list(owner, q)).statusCode, q).toBe(400);
    }
  });

  it('members cannot change roles or remove anyone (403)', async () => {
    expect((await setRole(member, admin.userId, 'member')).statusCode).toBe(403);
    expect((await setRole(member, member.userId, 'admin')).statusCode).toBe(403);
    expect((await remove(member, admin.userId)).statusCode).toBe(403);
  });

  it('admins manage admins and members but cannot touch or create owners (403)', async () => {
    const extra = await addUser(t.services, owner.orgId, { role: 'member' });
    const up = await setRole(admin, extra.userId, 'admin');
    expect(up.statusCode).toBe(200);
    expect(up.json()).toMatchObject({ id: extra.userId, role: 'admin' });
    expect((await setRole(admin, extra.userId, 'owner')).statusCode).toBe(403);
    expect((await setRole(admin, owner.userId, 'member')).statusCode).toBe(403);
    expect((await remove(admin, owner.userId)).statusCode).toBe(403);
    const down = await setRole(admin, extra.userId, 'member');
    expect(down.json().role).toBe('member');
    const entries = await auditActions('member.role_changed');
    expect(entries[0]).toMatchObject({
      targetId: extra.userId,
      actorId: admin.userId,
      details: { from: 'admin', to: 'member' },
    });
    expect(entries[1]).toMatchObject({ targetId: extra.userId, details: { from: 'member', to: 'admin' } });
    expect((await remove(admin, extra.userId)).statusCode).toBe(204);
  });

  it('nobody can demote or remove the last owner (409), but a second owner makes it possible', async () => {
    const res = await setRole(owner, owner.userId, 'admin');
    expect(res.statusCode).toBe(409);
    expect(res.json().code).toBe('conflict');
    expect((await remove(owner, owner.userId)).statusCode).toBe(409);

    const second = await addUser(t.services, owner.orgId, { role: 'admin' });
    expect((await setRole(owner, second.userId, 'owner')).json().role).toBe('owner');
    // Now the first owner may step down, and the second becomes the last one.
    expect((await setRole(second, owner.userId, 'admin')).statusCode).toBe(200);
    expect((await setRole(second, second.userId, 'member')).statusCode).toBe(409);
    // Restore: the original owner is owner again, the second one leaves.
    expect((await setRole(second, owner.userId, 'owner')).statusCode).toBe(200);
    expect((await remove(owner, second.userId)).statusCode).toBe(204);
  });

  it('two owners demoting each other at once: exactly one succeeds, an owner remains', async () => {
    const org = await createOrgWithUser(t.services);
    const b = await addUser(t.services, org.orgId, { role: 'owner' });
    const [r1, r2] = await Promise.all([setRole(org, b.userId, 'admin'), setRole(b, org.userId, 'admin')]);
    const statuses = [r1.statusCode, r2.statusCode].sort();
    // The loser either finds the org would have no owner left (409) or has just lost its own
    // owner role, so it may no longer touch an owner (403).
    expect(statuses[0]).toBe(200);
    expect([403, 409]).toContain(statuses[1]);
    const owners = (await list(org)).json().filter((m: { role: string }) => m.role === 'owner');
    expect(owners).toHaveLength(1);
  });

  it('a role change takes effect on the very next request (a demoted admin gets 403)', async () => {
    const a2 = await addUser(t.services, owner.orgId, { role: 'admin' });
    expect(
      (await t.app.inject({ url: '/api/v1/org/invitations', headers: bearer(a2.accessToken) })).statusCode,
    ).toBe(200);
    expect((await setRole(owner, a2.userId, 'member')).statusCode).toBe(200);
    // Same access token, still unexpired: the role is read from the database per request.
    const res = await t.app.inject({ url: '/api/v1/org/invitations', headers: bearer(a2.accessToken) });
    expect(res.statusCode).toBe(403);
    expect((await setRole(a2, member.userId, 'admin')).statusCode).toBe(403);
  });

  it('removing a member revokes their sessions at once and is audited', async () => {
    const leaver = await addUser(t.services, owner.orgId, { role: 'member', email: 'leaver@example.test' });
    expect((await list(leaver)).statusCode).toBe(200);
    const res = await remove(admin, leaver.userId);
    expect(res.statusCode).toBe(204);
    expect(res.body).toBe('');
    expect((await list(leaver)).statusCode).toBe(401);
    const sessions = await withSystem(t.db, (tx) =>
      tx.query('SELECT 1 FROM sessions WHERE user_id = $1 AND revoked_at IS NULL', [leaver.userId]),
    );
    expect(sessions.rows).toHaveLength(0);
    const [entry] = await auditActions('member.removed');
    expect(entry).toMatchObject({
      targetId: leaver.userId,
      actorId: admin.userId,
      details: { email: 'leaver@example.test', role: 'member', sessionsRevoked: 1 },
    });
    expect((await remove(admin, leaver.userId)).statusCode).toBe(404);
  });

  it('another org’s admin gets exactly 404 for this org’s member ids, and changes nothing', async () => {
    for (const target of [owner, admin, member]) {
      const patched = await setRole(otherAdmin, target.userId, 'member');
      expect(patched.statusCode).toBe(404);
      expect(patched.json().code).toBe('not_found');
      expect((await remove(otherAdmin, target.userId)).statusCode).toBe(404);
    }
    const roles = (await list(owner)).json().map((m: { id: string; role: string }) => [m.id, m.role]);
    expect(roles).toEqual(
      expect.arrayContaining([
        [owner.userId, 'owner'],
        [admin.userId, 'admin'],
        [member.userId, 'member'],
      ]),
    );
  });

  it('rejects malformed ids and bodies (400), never a 500', async () => {
    for (const id of ["1' OR '1'='1", 'not-a-uuid', '%27%3B%20DROP%20TABLE%20users%3B--', 'x'.repeat(150)]) {
      const res = await setRole(owner, id, 'member');
      expect(res.statusCode, id).toBe(400);
    }
    for (const role of ['superuser', 'OWNER', 1, null, ['admin'], { role: 'admin' }, 'support']) {
      expect((await setRole(owner, member.userId, role)).statusCode, JSON.stringify(role)).toBe(400);
    }
    const extraKey = await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/org/members/${member.userId}`,
      headers: bearer(owner.accessToken),
      payload: { role: 'admin', orgId: otherAdmin.orgId },
    });
    expect(extraKey.statusCode).toBe(400);
    expect((await list(owner)).json().find((m: { id: string }) => m.id === member.userId).role).toBe(
      'member',
    );
  });

  it('without a token: 401 before any body is looked at', async () => {
    const res = await t.app.inject({
      method: 'PATCH',
      url: `/api/v1/org/members/${member.userId}`,
      payload: { role: 'nonsense' },
    });
    expect(res.statusCode).toBe(401);
  });
});
