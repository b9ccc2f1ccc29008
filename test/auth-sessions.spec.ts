import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { withSystem } from '../src/db/tenant.js';
import {
  STRONG_PASSWORD,
  authed,
  call,
  freshIp,
  login,
  loginRaw,
  refreshRaw,
  signup,
  auditRows as auditRowsOf,
  stableProblem,
} from './helpers/auth-client.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

describe(`refresh tokens, logout, devices and password (${backendLabel})`, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => t?.close());

  const me = (ip: string, token: string) => authed(t, ip, token, { url: '/api/v1/me' });
  const auditRows = (action: string) => auditRowsOf(t, action);
  const stable = stableProblem;

  describe('refresh tokens', () => {
    it('rotates: the new pair works, the old refresh token is dead', async () => {
      const a = await signup(t);
      const first = await login(t, a);
      const res = await refreshRaw(t, a.ip, first.refreshToken);
      expect(res.statusCode).toBe(200);
      const second = res.json();
      expect(second.refreshToken).not.toBe(first.refreshToken);
      expect(second.accessToken).not.toBe(first.accessToken);
      expect((await me(a.ip, second.accessToken)).statusCode).toBe(200);
      const third = await refreshRaw(t, a.ip, second.refreshToken);
      expect(third.statusCode).toBe(200);
    });

    it('treats a rotated token presented again as theft: the whole family is revoked and audited', async () => {
      const a = await signup(t);
      const other = await login(t, a); // another device of the same user: must survive
      const first = await login(t, a);
      const second = (await refreshRaw(t, a.ip, first.refreshToken)).json();
      const reuse = await refreshRaw(t, freshIp(), first.refreshToken);
      expect(reuse.statusCode).toBe(401);
      // Everything issued from that login is dead now: the latest refresh token and access tokens.
      expect((await refreshRaw(t, a.ip, second.refreshToken)).statusCode).toBe(401);
      expect((await me(a.ip, second.accessToken)).statusCode).toBe(401);
      expect((await me(a.ip, first.accessToken)).statusCode).toBe(401);
      expect((await me(a.ip, other.accessToken)).statusCode).toBe(200);
      const audits = await auditRows('auth.refresh_reuse');
      expect(audits.some((r) => r.org_id === a.orgId && JSON.stringify(r.details).includes(a.userId))).toBe(
        true,
      );
    });

    it('lets only one of two simultaneous refreshes with the same token through', async () => {
      const a = await signup(t);
      const s = await login(t, a);
      const results = await Promise.all([
        refreshRaw(t, a.ip, s.refreshToken),
        refreshRaw(t, a.ip, s.refreshToken),
      ]);
      const codes = results.map((r) => r.statusCode).sort();
      expect(codes).toEqual([200, 401]);
      // The loser presented a rotated token: the family is gone, the winner's new token included.
      const winner = results.find((r) => r.statusCode === 200)!.json();
      expect((await refreshRaw(t, a.ip, winner.refreshToken)).statusCode).toBe(401);
    });

    it('rejects unknown, empty and malformed refresh tokens', async () => {
      const ip = freshIp();
      expect((await refreshRaw(t, ip, 'x'.repeat(43))).statusCode).toBe(401);
      expect((await refreshRaw(t, ip, `' OR 1=1 --`)).statusCode).toBe(401);
      expect(
        (await call(t, ip, { method: 'POST', url: '/api/v1/auth/refresh', payload: {} })).statusCode,
      ).toBe(401);
      const wrongType = await call(t, ip, {
        method: 'POST',
        url: '/api/v1/auth/refresh',
        payload: { refreshToken: 5 },
      });
      expect(wrongType.statusCode).toBe(400);
    });
  });

  describe('logout, devices, password', () => {
    it('logout with the access token ends that session only', async () => {
      const a = await signup(t);
      const one = await login(t, a);
      const two = await login(t, a);
      const res = await authed(t, a.ip, one.accessToken, { method: 'POST', url: '/api/v1/auth/logout' });
      expect(res.statusCode).toBe(204);
      expect((await me(a.ip, one.accessToken)).statusCode).toBe(401);
      expect((await refreshRaw(t, a.ip, one.refreshToken)).statusCode).toBe(401);
      expect((await me(a.ip, two.accessToken)).statusCode).toBe(200);
    });

    it('logout with the refresh token in the body ends its session', async () => {
      const a = await signup(t);
      const s = await login(t, a);
      const res = await call(t, a.ip, {
        method: 'POST',
        url: '/api/v1/auth/logout',
        payload: { refreshToken: s.refreshToken },
      });
      expect(res.statusCode).toBe(204);
      expect((await me(a.ip, s.accessToken)).statusCode).toBe(401);
      const none = await call(t, a.ip, { method: 'POST', url: '/api/v1/auth/logout' });
      expect(none.statusCode).toBe(401);
    });

    it('lists my devices with the current one marked, and revokes one of them', async () => {
      const a = await signup(t);
      const laptop = await login(t, a);
      const phoneIp = freshIp();
      const phone = (
        await loginRaw(t, phoneIp, { email: a.email, password: a.password }, { 'user-agent': 'PhoneApp/2' })
      ).json();
      const res = await authed(t, a.ip, laptop.accessToken, { url: '/api/v1/auth/devices' });
      expect(res.statusCode).toBe(200);
      const devices = res.json() as { id: string; userAgent: string; ip: string; current: boolean }[];
      expect(devices).toHaveLength(2);
      expect(devices.filter((d) => d.current)).toHaveLength(1);
      const phoneDevice = devices.find((d) => d.userAgent === 'PhoneApp/2')!;
      expect(phoneDevice).toMatchObject({ ip: phoneIp, current: false });
      expect(devices[0]).toEqual({
        id: expect.any(String),
        userAgent: expect.any(String),
        ip: expect.any(String),
        createdAt: expect.any(String),
        lastSeenAt: expect.any(String),
        expiresAt: expect.any(String),
        current: expect.any(Boolean),
      });
      const del = await authed(t, a.ip, laptop.accessToken, {
        method: 'DELETE',
        url: `/api/v1/auth/devices/${phoneDevice.id}`,
      });
      expect(del.statusCode).toBe(204);
      expect((await me(phoneIp, phone.accessToken)).statusCode).toBe(401);
      expect((await refreshRaw(t, phoneIp, phone.refreshToken)).statusCode).toBe(401);
      const again = await authed(t, a.ip, laptop.accessToken, {
        method: 'DELETE',
        url: `/api/v1/auth/devices/${phoneDevice.id}`,
      });
      expect(again.statusCode).toBe(404);
      const bad = await authed(t, a.ip, laptop.accessToken, {
        method: 'DELETE',
        url: `/api/v1/auth/devices/1%27%20OR%201=1`,
      });
      expect(bad.statusCode).toBe(400);
    });

    it('gives exactly 404 for another org’s device, and for another user’s in my own org', async () => {
      const a = await signup(t);
      const b = await signup(t);
      const aSession = await login(t, a);
      const bSession = await login(t, b);
      const aDeviceId = (
        await authed(t, a.ip, aSession.accessToken, { url: '/api/v1/auth/devices' })
      ).json()[0].id;
      const cross = await authed(t, b.ip, bSession.accessToken, {
        method: 'DELETE',
        url: `/api/v1/auth/devices/${aDeviceId}`,
      });
      expect(cross.statusCode).toBe(404);
      expect(cross.json().code).toBe('not_found');
      const missing = await authed(t, b.ip, bSession.accessToken, {
        method: 'DELETE',
        url: '/api/v1/auth/devices/00000000-0000-4000-8000-000000000000',
      });
      expect(stable(cross.body)).toEqual(stable(missing.body));
      // A colleague in the same org (added through the tenant) cannot end my sessions either.
      const colleagueHash = await t.services.hasher.hash(STRONG_PASSWORD);
      const colleagueEmail = `colleague-${a.userId.slice(0, 8)}@example.test`;
      await withSystem(t.db, (tx) =>
        tx.query(
          `INSERT INTO users (org_id, email, name, role, password_hash) VALUES ($1, $2, 'C', 'admin', $3)`,
          [a.orgId, colleagueEmail, colleagueHash],
        ),
      );
      const c = await login(t, { email: colleagueEmail, password: STRONG_PASSWORD, ip: freshIp() });
      const same = await authed(t, a.ip, c.accessToken, {
        method: 'DELETE',
        url: `/api/v1/auth/devices/${aDeviceId}`,
      });
      expect(same.statusCode).toBe(404);
      expect((await me(a.ip, aSession.accessToken)).statusCode).toBe(200);
      // And B's device list never shows A's sessions.
      const bList = (await authed(t, b.ip, bSession.accessToken, { url: '/api/v1/auth/devices' })).json();
      expect(bList.map((d: { id: string }) => d.id)).not.toContain(aDeviceId);
    });

    it('revoke-all ends every session of mine, the current one included', async () => {
      const a = await signup(t);
      const sessions = [await login(t, a), await login(t, a), await login(t, a)];
      const res = await authed(t, a.ip, sessions[0]!.accessToken, {
        method: 'POST',
        url: '/api/v1/auth/devices/revoke-all',
      });
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({ revoked: 3 });
      for (const s of sessions) {
        expect((await me(a.ip, s.accessToken)).statusCode).toBe(401);
        expect((await refreshRaw(t, a.ip, s.refreshToken)).statusCode).toBe(401);
      }
      expect((await auditRows('auth.devices_revoked_all')).some((r) => r.actor_id === a.userId)).toBe(true);
    });

    it('changes the password, ends every other session and keeps this one', async () => {
      const a = await signup(t);
      const current = await login(t, a);
      const other = await login(t, a);
      const newPassword = 'a completely new passphrase 9';
      const res = await authed(t, a.ip, current.accessToken, {
        method: 'POST',
        url: '/api/v1/auth/password',
        payload: { currentPassword: a.password, newPassword },
      });
      expect(res.statusCode).toBe(204);
      expect((await me(a.ip, current.accessToken)).statusCode).toBe(200);
      expect((await me(a.ip, other.accessToken)).statusCode).toBe(401);
      expect((await refreshRaw(t, a.ip, other.refreshToken)).statusCode).toBe(401);
      expect((await loginRaw(t, freshIp(), { email: a.email, password: a.password })).statusCode).toBe(401);
      await login(t, { ...a, password: newPassword });
      const audits = await auditRows('auth.password_changed');
      expect(audits.find((r) => r.actor_id === a.userId)?.details).toEqual({ revokedSessions: 1 });
    });

    it('refuses a wrong current password (401, counted by the login guard) and a weak new one (422)', async () => {
      const a = await signup(t);
      const s = await login(t, a);
      const failed = vi.spyOn(t.services.loginGuard, 'failed');
      const wrong = await authed(t, a.ip, s.accessToken, {
        method: 'POST',
        url: '/api/v1/auth/password',
        payload: { currentPassword: 'not my password!', newPassword: 'another fine passphrase' },
      });
      expect(wrong.statusCode).toBe(401);
      expect(wrong.json().code).toBe('invalid_credentials');
      expect(failed).toHaveBeenCalledWith(a.ip, a.email);
      failed.mockRestore();
      const weak = await authed(t, a.ip, s.accessToken, {
        method: 'POST',
        url: '/api/v1/auth/password',
        payload: { currentPassword: a.password, newPassword: 'password1234' },
      });
      expect(weak.statusCode).toBe(422);
      expect(weak.json()).toMatchObject({ code: 'weak_password', reason: 'common' });
      // The session survived both refusals and the old password still works.
      expect((await me(a.ip, s.accessToken)).statusCode).toBe(200);
      await login(t, a);
    });

    it('requires a live session on every self-service route', async () => {
      const ip = freshIp();
      for (const [method, url] of [
        ['GET', '/api/v1/me'],
        ['GET', '/api/v1/auth/devices'],
        ['POST', '/api/v1/auth/devices/revoke-all'],
        ['DELETE', '/api/v1/auth/devices/00000000-0000-4000-8000-000000000000'],
        ['POST', '/api/v1/auth/password'],
        ['POST', '/api/v1/auth/mfa/totp'],
        ['POST', '/api/v1/auth/mfa/totp/confirm'],
        ['DELETE', '/api/v1/auth/mfa/totp'],
      ] as const) {
        const res = await call(t, ip, { method, url });
        expect(res.statusCode, `${method} ${url}`).toBe(401);
        const garbage = await call(t, ip, { method, url, headers: { authorization: 'Bearer abc.def.ghi' } });
        expect(garbage.statusCode, `${method} ${url}`).toBe(401);
      }
    });
  });
});
