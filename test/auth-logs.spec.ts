import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { authed, call, freshIp, login, loginRaw, refreshRaw, signup, totp } from './helpers/auth-client.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Runs every auth flow and then reads everything the server logged: no password, token, TOTP
 * secret or code may appear in it, whatever path (success, refusal, error) a request took.
 */
describe(`auth flows leave no secret in the logs (${backendLabel})`, () => {
  let t: TestApp;
  let clock: ManualClock;
  const secrets = new Map<string, string>();
  const keep = (label: string, value: string) => {
    secrets.set(`${label}#${secrets.size}`, value);
    return value;
  };

  beforeAll(async () => {
    clock = new ManualClock(new Date('2031-03-03T10:00:05Z'));
    t = await startTestApp({ clock });
  });
  afterAll(async () => t?.close());

  it('runs signup, login, refresh, MFA, browser mode, password change and failures', async () => {
    const password = keep('password', 'Sturdy passphrase for logging 1');
    const a = await signup(t, { password });
    keep('weak password', 'qwertyuiop123');
    await call(t, freshIp(), {
      method: 'POST',
      url: '/api/v1/auth/signup',
      payload: { email: 'weak@example.test', password: 'qwertyuiop123', name: 'W', organization: 'W' },
    });
    await loginRaw(t, freshIp(), {
      email: a.email,
      password: keep('wrong password', 'Wrong-Guess-Password-1'),
    });
    await loginRaw(t, freshIp(), {
      email: 'ghost@example.test',
      password: keep('ghost password', 'Ghost-Password-22'),
    });

    const s = await login(t, a);
    keep('access', s.accessToken);
    keep('refresh', s.refreshToken);
    const r = (await refreshRaw(t, a.ip, s.refreshToken)).json();
    keep('access', r.accessToken);
    keep('refresh', r.refreshToken);
    await refreshRaw(t, a.ip, s.refreshToken); // reuse: revokes the family

    const s2 = await login(t, a);
    keep('access', s2.accessToken);
    keep('refresh', s2.refreshToken);
    const start = (
      await authed(t, a.ip, s2.accessToken, { method: 'POST', url: '/api/v1/auth/mfa/totp' })
    ).json();
    keep('totp secret', start.secret);
    keep('otpauth', start.otpauthUri);
    const enrolCode = keep('totp code', totp(start.secret, clock.now().getTime()));
    const confirm = await authed(t, a.ip, s2.accessToken, {
      method: 'POST',
      url: '/api/v1/auth/mfa/totp/confirm',
      payload: { code: enrolCode },
    });
    expect(confirm.statusCode).toBe(200);
    const recovery = confirm.json().recoveryCodes as string[];
    for (const c of recovery) keep('recovery code', c);

    clock.advance(30_000);
    await loginRaw(t, a.ip, { email: a.email, password }); // mfa_required
    const code = keep('totp code', totp(start.secret, clock.now().getTime()));
    const s3 = (await loginRaw(t, a.ip, { email: a.email, password, code })).json();
    keep('access', s3.accessToken);
    keep('refresh', s3.refreshToken);
    await loginRaw(t, a.ip, { email: a.email, password, code }); // replay, refused
    const s4 = (await loginRaw(t, a.ip, { email: a.email, password, code: recovery[0] })).json();
    keep('access', s4.accessToken);

    // Browser mode with cookies and CSRF.
    const browser = await loginRaw(
      t,
      a.ip,
      { email: a.email, password, code: recovery[1] },
      { 'x-sotto-client': 'browser' },
    );
    const cookie = (browser.cookies as { name: string; value: string }[]).find(
      (c) => c.name === '__Host-sotto_refresh',
    )!;
    keep('refresh cookie', cookie.value);
    keep('access', browser.json().accessToken);
    const csrf = await call(t, a.ip, { url: '/api/v1/auth/csrf' });
    const csrfSecret = (csrf.cookies as { name: string; value: string }[])[0]!.value;
    keep('csrf secret', csrfSecret);
    keep('csrf token', csrf.json().token);
    await call(t, a.ip, {
      method: 'POST',
      url: '/api/v1/auth/refresh',
      cookies: { '__Host-sotto_refresh': cookie.value },
    });
    const rotated = await call(t, a.ip, {
      method: 'POST',
      url: '/api/v1/auth/refresh',
      cookies: { '__Host-sotto_refresh': cookie.value, '__Host-sotto_csrf': csrfSecret },
      headers: { 'x-csrf-token': csrf.json().token },
    });
    expect(rotated.statusCode).toBe(200);
    keep('refresh cookie', (rotated.cookies as { name: string; value: string }[])[0]!.value);

    // Password change: wrong, weak, then right.
    const newPassword = keep('new password', 'Another sturdy passphrase 2');
    for (const body of [
      { currentPassword: keep('wrong current', 'Not-The-Current-One-3'), newPassword },
      { currentPassword: password, newPassword: 'password1234' },
      { currentPassword: password, newPassword },
    ]) {
      await authed(t, a.ip, s4.accessToken, { method: 'POST', url: '/api/v1/auth/password', payload: body });
    }
    clock.advance(30_000);
    const disableCode = keep('totp code', totp(start.secret, clock.now().getTime()));
    const off = await authed(t, a.ip, s4.accessToken, {
      method: 'DELETE',
      url: '/api/v1/auth/mfa/totp',
      payload: { code: disableCode },
    });
    expect(off.statusCode).toBe(204);
    await authed(t, a.ip, s4.accessToken, { method: 'POST', url: '/api/v1/auth/logout' });
    await authed(t, a.ip, s4.accessToken, { url: '/api/v1/me' }); // 401 after logout
  });

  it('logged the requests, and none of the secrets', () => {
    const logs = t.logs.join('');
    // The test is only meaningful if requests were logged at all.
    expect(logs).toContain('/api/v1/auth/login');
    expect(logs).toContain('/api/v1/auth/mfa/totp/confirm');
    for (const [label, value] of secrets) {
      if (/^\d{6}$/.test(value)) {
        // Six digits could occur by chance inside a number (e.g. a response time): look for the
        // code as a value of its own.
        expect(new RegExp(`(?<![\\d.])${value}(?![\\d])`).test(logs), label).toBe(false);
      } else {
        expect(logs.includes(value), label).toBe(false);
      }
      // Tokens are long; a logged fragment would also be a leak.
      const mid = Math.floor(value.length / 2);
      if (value.length > 40)
        expect(logs.includes(value.slice(mid, mid + 24)), `${label} (fragment)`).toBe(false);
    }
  });
});
