import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../src/db/tenant.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { authed, login, refreshRaw, signup, type Account } from './helpers/auth-client.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

const MINUTE = 60_000;
const DAY = 24 * 60 * MINUTE;

describe(`token and session expiry (${backendLabel})`, () => {
  let t: TestApp;
  let clock: ManualClock;
  let a: Account;
  beforeAll(async () => {
    clock = new ManualClock(new Date('2030-01-01T00:00:00Z'));
    t = await startTestApp({ clock });
    a = await signup(t);
  });
  afterAll(async () => t?.close());

  const me = (token: string) => authed(t, a.ip, token, { url: '/api/v1/me' });
  const revokedReason = async (accessToken: string) => {
    const { sid } = JSON.parse(Buffer.from(accessToken.split('.')[1]!, 'base64url').toString()) as {
      sid: string;
    };
    const { rows } = await withSystem(t.db, (tx) =>
      tx.query<{ revoked_reason: string | null }>('SELECT revoked_reason FROM sessions WHERE id = $1', [sid]),
    );
    return rows[0]?.revoked_reason;
  };

  it('access tokens last 10 minutes; a refresh gives a fresh one', async () => {
    const s = await login(t, a);
    clock.advance(9 * MINUTE);
    expect((await me(s.accessToken)).statusCode).toBe(200);
    clock.advance(2 * MINUTE);
    const expired = await me(s.accessToken);
    expect(expired.statusCode).toBe(401);
    expect(expired.json().code).toBe('token_expired');
    const next = await refreshRaw(t, a.ip, s.refreshToken);
    expect(next.statusCode).toBe(200);
    expect((await me(next.json().accessToken)).statusCode).toBe(200);
  });

  it('ends a session left unused longer than the idle limit (7 days)', async () => {
    const s = await login(t, a);
    clock.advance(7 * DAY - MINUTE);
    const fresh = await refreshRaw(t, a.ip, s.refreshToken);
    expect(fresh.statusCode).toBe(200);
    // Idle time counts from the last refresh, not from the login.
    clock.advance(7 * DAY + MINUTE);
    const stale = await refreshRaw(t, a.ip, fresh.json().refreshToken);
    expect(stale.statusCode).toBe(401);
    expect(await revokedReason(s.accessToken)).toBe('idle');
  });

  it('ends every session 30 days after login, however active it is', async () => {
    const s = await login(t, a);
    let token = s.refreshToken;
    let access = s.accessToken;
    for (const days of [6, 6, 6, 6, 5]) {
      clock.advance(days * DAY);
      const res = await refreshRaw(t, a.ip, token);
      expect(res.statusCode, `after ${days} more days`).toBe(200);
      token = res.json().refreshToken;
      access = res.json().accessToken;
    }
    // Day 29: still alive. Day 30 and a minute: over, though the last refresh was a day ago.
    expect((await me(access)).statusCode).toBe(200);
    clock.advance(DAY + MINUTE);
    const res = await refreshRaw(t, a.ip, token);
    expect(res.statusCode).toBe(401);
    expect(res.json().code).toBe('unauthenticated');
  });

  it('stops honouring an unexpired access token once its session passed its absolute expiry', async () => {
    const s = await login(t, a);
    let token = s.refreshToken;
    for (let i = 0; i < 4; i++) {
      clock.advance(7 * DAY - MINUTE);
      token = (await refreshRaw(t, a.ip, token)).json().refreshToken;
    }
    clock.advance(2 * DAY + 3 * MINUTE); // 30 days minus 1 minute since login
    const last = await refreshRaw(t, a.ip, token);
    expect(last.statusCode).toBe(200);
    const access = last.json().accessToken as string;
    expect((await me(access)).statusCode).toBe(200);
    clock.advance(2 * MINUTE); // the token has 8 minutes left, the session none
    expect((await me(access)).statusCode).toBe(401);
  });
});
