import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { stableProblem } from './helpers/auth-client.js';
import { addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * POST /api/v1/auth/accept-invitation/preview (issue 13): the accept page names the organization
 * and who invited the person before anything is typed. The token is the credential: only a
 * pending invitation's token answers, with its own organization's name and nobody else's; every
 * unusable token (unknown, another's, used, revoked, expired) gets exactly the same 404.
 */
const tokenOf = (inviteUrl: string) => /#token=([A-Za-z0-9_-]+)$/.exec(inviteUrl)![1]!;
let nextIp = 1;
const freshIp = () => `198.51.100.${nextIp++ % 250}`;

describe(`invitation preview (${backendLabel})`, () => {
  let t: TestApp;
  let clock: ManualClock;
  let owner: TestUser;
  let otherOwner: TestUser;

  beforeAll(async () => {
    clock = new ManualClock(new Date('2031-03-01T09:00:00Z'));
    t = await startTestApp({ clock });
    owner = await createOrgWithUser(t.services, { orgName: 'Harbour Practice' });
    otherOwner = await createOrgWithUser(t.services, { orgName: 'Lighthouse Clinic' });
  });
  afterAll(async () => t?.close());

  const invite = async (u: TestUser, email: string, role = 'member') => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/org/invitations',
      headers: bearer(u.accessToken),
      payload: { email, role },
    });
    expect(res.statusCode).toBe(201);
    const body = res.json() as { id: string; inviteUrl: string };
    return { id: body.id, token: tokenOf(body.inviteUrl) };
  };
  const preview = (payload: unknown) =>
    t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/accept-invitation/preview',
      payload: payload as object,
      remoteAddress: freshIp(),
    });

  it('names the organization, the inviter, the address and the role of a pending invitation', async () => {
    const admin = await addUser(t.services, owner.orgId, { role: 'admin', name: 'Ada Admin' });
    const { token } = await invite(admin, 'nurse@example.test', 'admin');
    const res = await preview({ token });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      organization: { name: 'Harbour Practice' },
      invitedBy: { name: 'Ada Admin' },
      email: 'nurse@example.test',
      role: 'admin',
      expiresAt: '2031-03-08T09:00:00.000Z',
    });
    // The other organization's invitation names the other organization only.
    const theirs = await preview({ token: (await invite(otherOwner, 'porter@example.test')).token });
    expect(theirs.json()).toMatchObject({ organization: { name: 'Lighthouse Clinic' } });
    expect(theirs.body).not.toContain('Harbour');
  });

  it('an inviter who left is not named', async () => {
    const admin = await addUser(t.services, owner.orgId, { role: 'admin', name: 'Gone Admin' });
    const { token } = await invite(admin, 'locum@example.test');
    const removed = await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/org/members/${admin.userId}`,
      headers: bearer(owner.accessToken),
    });
    expect(removed.statusCode).toBe(204);
    const res = await preview({ token });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toMatchObject({ invitedBy: null, organization: { name: 'Harbour Practice' } });
  });

  it('every unusable token gets exactly the same 404: unknown, used, revoked, expired', async () => {
    const unknown = await preview({ token: 'A'.repeat(43) });
    expect(unknown.statusCode).toBe(404);
    const expected = stableProblem(unknown.body);

    const used = await invite(owner, 'used@example.test');
    const accepted = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/accept-invitation',
      payload: { token: used.token, name: 'Used Once', password: 'correct horse battery staple 42' },
      remoteAddress: freshIp(),
    });
    expect(accepted.statusCode).toBe(201);
    const revoked = await invite(owner, 'revoked@example.test');
    expect(
      (
        await t.app.inject({
          method: 'DELETE',
          url: `/api/v1/org/invitations/${revoked.id}`,
          headers: bearer(owner.accessToken),
        })
      ).statusCode,
    ).toBe(204);
    const expiring = await invite(owner, 'late@example.test');
    clock.advance(8 * 24 * 3600 * 1000);
    for (const token of [used.token, revoked.token, expiring.token]) {
      const res = await preview({ token });
      expect(res.statusCode).toBe(404);
      expect(stableProblem(res.body)).toEqual(expected);
      expect(res.body).not.toContain('Harbour');
    }
  });

  it('refuses hostile bodies with 400 and never echoes the token', async () => {
    const cases: unknown[] = [
      {},
      { token: '' },
      { token: 'short' },
      { token: 'A'.repeat(201) },
      { token: "AAAAAAAAAAAAAAAAAAAAAAAA' OR '1'='1" },
      { token: 'A'.repeat(43), extra: true },
      { token: ['A'.repeat(43)] },
      { token: 'AAAAAAAAAAAAAAAAAAAAAAAA\u0000' },
    ];
    for (const payload of cases) {
      const res = await preview(payload);
      expect(res.statusCode, JSON.stringify(payload)).toBe(400);
    }
    const noisy = await preview({ token: 'B'.repeat(43), password: 'x' });
    expect(noisy.statusCode).toBe(400);
  });
});
