import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../src/db/tenant.js';
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

/** GET /api/v1/support/orgs: the org picker of platform support accounts. */
describe(`support org list (${backendLabel})`, () => {
  let t: TestApp;
  let clock: ManualClock;
  let granted: TestUser;
  let member: TestUser;
  let expiring: TestUser;
  let revoked: TestUser;
  let never: TestUser;
  let support: SupportUser;

  beforeAll(async () => {
    clock = new ManualClock(new Date('2031-06-01T08:00:00Z'));
    t = await startTestApp({ clock });
    granted = await createOrgWithUser(t.services, { orgName: 'Bravo Clinic' });
    member = await addUser(t.services, granted.orgId, { role: 'member' });
    expiring = await createOrgWithUser(t.services, { orgName: 'Alpha Practice', role: 'admin' });
    revoked = await createOrgWithUser(t.services, { orgName: 'Charlie Care' });
    never = await createOrgWithUser(t.services, { orgName: 'Delta Health' });
    support = await createSupportUserFixture(t.services);
  });
  afterAll(async () => t?.close());

  const grant = async (u: TestUser, hours: number) => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/org/support-grants',
      headers: bearer(u.accessToken),
      payload: { hours },
    });
    expect(res.statusCode).toBe(201);
    return res.json().id as string;
  };
  const list = (token: string, org?: string) =>
    t.app.inject({ url: '/api/v1/support/orgs', headers: bearer(token, org) });
  const refreshTokens = async () => {
    for (const u of [granted, member, expiring, revoked, never]) {
      u.accessToken = await t.services.tokens.issue({ sub: u.userId, sid: u.sessionId, org: u.orgId });
    }
    support.accessToken = await t.services.tokens.issue({
      sub: support.userId,
      sid: support.sessionId,
      org: null,
    });
  };
  const auditOf = (orgId: string | null) =>
    withSystem(t.db, async (tx) => {
      const { rows } = await tx.query<{
        action: string;
        actor_id: string;
        actor_kind: string;
        details: Record<string, unknown>;
      }>(
        `SELECT action, actor_id, actor_kind, details FROM audit_log
          WHERE org_id IS NOT DISTINCT FROM $1 ORDER BY seq`,
        [orgId],
      );
      return rows;
    });

  it('is empty before any grant', async () => {
    const res = await list(support.accessToken);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual([]);
  });

  it('lists only orgs with an active grant: id, name, expiry, nothing else', async () => {
    await grant(granted, 24);
    await grant(granted, 2); // two grants: the latest expiry counts
    await grant(expiring, 1);
    const revokedId = await grant(revoked, 48);
    const del = await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/org/support-grants/${revokedId}`,
      headers: bearer(revoked.accessToken),
    });
    expect(del.statusCode).toBe(204);

    const res = await list(support.accessToken);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual([
      { id: expiring.orgId, name: 'Alpha Practice', grantExpiresAt: '2031-06-01T09:00:00.000Z' },
      { id: granted.orgId, name: 'Bravo Clinic', grantExpiresAt: '2031-06-02T08:00:00.000Z' },
    ]);
    // An X-Sotto-Org header changes nothing here (even naming an org without a grant).
    const withHeader = await list(support.accessToken, never.orgId);
    expect(withHeader.statusCode).toBe(200);
    expect(withHeader.json()).toEqual(res.json());
  });

  it('an expired grant is not listed', async () => {
    clock.advance(HOUR + 1000);
    await refreshTokens();
    const res = await list(support.accessToken);
    expect(res.json().map((o: { id: string }) => o.id)).toEqual([granted.orgId]);
  });

  it('is audited in the platform log; an org’s own log records what support does in it, not the listing', async () => {
    // Listing (the panel polls it) reads no org's data: no entry in any org's chain.
    for (const org of [granted, expiring, never, revoked])
      expect(
        (await auditOf(org.orgId)).some((e) => e.action === 'support.access'),
        org.orgId,
      ).toBe(false);
    const before = (await auditOf(granted.orgId)).length;
    for (let i = 0; i < 3; i++) expect((await list(support.accessToken)).statusCode).toBe(200);
    expect((await auditOf(granted.orgId)).length).toBe(before);
    // Acting in the org (X-Sotto-Org) is what the customer's log shows, once per request.
    const inOrg = await t.app.inject({
      url: '/api/v1/org',
      headers: bearer(support.accessToken, granted.orgId),
    });
    expect(inOrg.statusCode).toBe(200);
    // The entry is written once the response is sent (onResponse): wait for it.
    const entries = await eventually(async () => {
      const found = (await auditOf(granted.orgId)).filter((e) => e.action === 'support.access');
      return found.length > 0 ? found : undefined;
    });
    expect(entries).toHaveLength(1);
    expect(entries[0]).toMatchObject({
      actor_id: support.userId,
      actor_kind: 'support',
      details: { method: 'GET', route: '/api/v1/org', status: 200 },
    });
    const platform = (await auditOf(null)).filter((e) => e.action === 'support.orgs_listed');
    expect(platform.length).toBeGreaterThanOrEqual(4);
    expect(platform.at(-1)).toMatchObject({
      actor_id: support.userId,
      actor_kind: 'support',
      details: { orgIds: [granted.orgId] },
    });
    // The chains still verify.
    for (const report of await t.services.audit.verify(null)) expect(report.ok).toBe(true);
    const org = await t.app.inject({ url: '/api/v1/audit', headers: bearer(granted.accessToken) });
    expect(org.json().verification.ok).toBe(true);
  });

  it('org owners, admins and members are refused (403), even naming another org', async () => {
    for (const u of [granted, member, expiring]) {
      const res = await list(u.accessToken);
      expect(res.statusCode).toBe(403);
      expect(res.json().code).toBe('forbidden');
      expect(JSON.stringify(res.json())).not.toContain('Bravo');
      expect((await list(u.accessToken, granted.orgId)).statusCode).toBe(403);
    }
  });

  it('needs a live session: no token, a bad token or a revoked session is 401', async () => {
    expect((await t.app.inject({ url: '/api/v1/support/orgs' })).statusCode).toBe(401);
    expect((await list('not.a.token')).statusCode).toBe(401);
    expect(
      (await t.app.inject({ url: '/api/v1/support/orgs', headers: { authorization: 'Basic eDp5' } }))
        .statusCode,
    ).toBe(401);
    const other = await createSupportUserFixture(t.services);
    await withSystem(t.db, (tx) =>
      tx.query('UPDATE sessions SET revoked_at = $2 WHERE id = $1', [other.sessionId, clock.now()]),
    );
    expect((await list(other.accessToken)).statusCode).toBe(401);
  });

  it('takes no input: a query string or a body is refused or ignored, never echoed', async () => {
    const res = await t.app.inject({
      url: `/api/v1/support/orgs?org=${granted.orgId}&x=${'a'.repeat(5000)}`,
      headers: bearer(support.accessToken),
    });
    expect([200, 400, 414]).toContain(res.statusCode);
    if (res.statusCode === 200) expect(res.json().map((o: { id: string }) => o.id)).toEqual([granted.orgId]);
    const post = await t.app.inject({
      method: 'POST',
      url: '/api/v1/support/orgs',
      headers: bearer(support.accessToken),
      payload: { orgId: never.orgId },
    });
    expect(post.statusCode).toBe(404);
  });

  it('logs no tokens', () => {
    const logs = t.logs.join('');
    expect(logs).not.toContain(support.accessToken);
  });
});
