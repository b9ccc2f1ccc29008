import type { LightMyRequestResponse } from 'fastify';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { call, loginRaw, refreshRaw, signup, type Account } from './helpers/auth-client.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

const REFRESH = '__Host-sotto_refresh';
const CSRF = '__Host-sotto_csrf';

function setCookie(res: LightMyRequestResponse, name: string) {
  return (res.cookies as { name: string; value: string; [k: string]: unknown }[]).find(
    (c) => c.name === name,
  );
}

describe(`browser clients: refresh cookie and CSRF (${backendLabel})`, () => {
  let t: TestApp;
  let a: Account;
  beforeAll(async () => {
    t = await startTestApp();
    a = await signup(t);
  });
  afterAll(async () => t?.close());

  /** A browser session: the refresh cookie from a login, a CSRF secret cookie and its token. */
  async function browser() {
    const login = await loginRaw(
      t,
      a.ip,
      { email: a.email, password: a.password },
      { 'x-sotto-client': 'browser' },
    );
    expect(login.statusCode).toBe(200);
    const csrf = await call(t, a.ip, { url: '/api/v1/auth/csrf' });
    expect(csrf.statusCode).toBe(200);
    return {
      login,
      refresh: setCookie(login, REFRESH)!.value,
      csrfSecret: setCookie(csrf, CSRF)!.value,
      csrfToken: csrf.json().token as string,
    };
  }

  const refreshWithCookie = (cookies: Record<string, string>, headers: Record<string, string> = {}) =>
    call(t, a.ip, { method: 'POST', url: '/api/v1/auth/refresh', cookies, headers });

  it('puts the refresh token in a __Host- Secure HttpOnly SameSite=Strict cookie, not in the body', async () => {
    const { login } = await browser();
    expect(login.json().refreshToken).toBeUndefined();
    expect(login.json()).toMatchObject({
      accessToken: expect.any(String),
      tokenType: 'Bearer',
      expiresIn: 600,
    });
    const raw = ([] as string[])
      .concat(login.headers['set-cookie'] as string | string[])
      .find((c) => c.startsWith(REFRESH))!;
    expect(raw).toMatch(/; Secure/);
    expect(raw).toMatch(/; HttpOnly/);
    expect(raw).toMatch(/; SameSite=Strict/);
    expect(raw).toMatch(/; Path=\/(;|$)/);
    expect(raw).not.toMatch(/Domain=/i);
    // Lives as long as the session may (30 days absolute), give or take the request's duration.
    const maxAge = Number(/Max-Age=(\d+)/.exec(raw)?.[1]);
    expect(Math.abs(maxAge - 30 * 24 * 3600)).toBeLessThan(60);
    // The body flag works as well as the header.
    const viaBody = await loginRaw(t, a.ip, { email: a.email, password: a.password, client: 'browser' });
    expect(viaBody.json().refreshToken).toBeUndefined();
    expect(setCookie(viaBody, REFRESH)).toBeTruthy();
  });

  it('refuses a cookie refresh without a valid CSRF token (403 csrf_failed)', async () => {
    const b = await browser();
    const none = await refreshWithCookie({ [REFRESH]: b.refresh });
    expect(none.statusCode).toBe(403);
    expect(none.json().code).toBe('csrf_failed');
    const noSecret = await refreshWithCookie({ [REFRESH]: b.refresh }, { 'x-csrf-token': b.csrfToken });
    expect(noSecret.json().code).toBe('csrf_failed');
    const wrongToken = await refreshWithCookie(
      { [REFRESH]: b.refresh, [CSRF]: b.csrfSecret },
      { 'x-csrf-token': `${b.csrfToken.slice(0, -2)}xx` },
    );
    expect(wrongToken.json().code).toBe('csrf_failed');
    // A token minted for another browser's secret does not fit this one.
    const other = await call(t, a.ip, { url: '/api/v1/auth/csrf' });
    const foreign = await refreshWithCookie(
      { [REFRESH]: b.refresh, [CSRF]: b.csrfSecret },
      { 'x-csrf-token': other.json().token },
    );
    expect(foreign.json().code).toBe('csrf_failed');
    // None of the refusals consumed the refresh token.
    const ok = await refreshWithCookie(
      { [REFRESH]: b.refresh, [CSRF]: b.csrfSecret },
      { 'x-csrf-token': b.csrfToken },
    );
    expect(ok.statusCode).toBe(200);
  });

  it('rotates the cookie on a CSRF-checked refresh; the old cookie value is then reuse', async () => {
    const b = await browser();
    const res = await refreshWithCookie(
      { [REFRESH]: b.refresh, [CSRF]: b.csrfSecret },
      { 'x-csrf-token': b.csrfToken },
    );
    expect(res.statusCode).toBe(200);
    expect(res.json().refreshToken).toBeUndefined();
    const rotated = setCookie(res, REFRESH)!.value;
    expect(rotated).not.toBe(b.refresh);
    const reuse = await refreshWithCookie(
      { [REFRESH]: b.refresh, [CSRF]: b.csrfSecret },
      { 'x-csrf-token': b.csrfToken },
    );
    expect(reuse.statusCode).toBe(401);
    // Reuse killed the family, so the rotated cookie is dead too, and the cookie gets cleared.
    const after = await refreshWithCookie(
      { [REFRESH]: rotated, [CSRF]: b.csrfSecret },
      { 'x-csrf-token': b.csrfToken },
    );
    expect(after.statusCode).toBe(401);
    expect(setCookie(after, REFRESH)?.value).toBe('');
  });

  it('logs out by cookie only with a CSRF token, and clears the cookie', async () => {
    const b = await browser();
    const forged = await call(t, a.ip, {
      method: 'POST',
      url: '/api/v1/auth/logout',
      cookies: { [REFRESH]: b.refresh },
    });
    expect(forged.statusCode).toBe(403);
    expect(forged.json().code).toBe('csrf_failed');
    const res = await call(t, a.ip, {
      method: 'POST',
      url: '/api/v1/auth/logout',
      cookies: { [REFRESH]: b.refresh, [CSRF]: b.csrfSecret },
      headers: { 'x-csrf-token': b.csrfToken },
    });
    expect(res.statusCode).toBe(204);
    expect(setCookie(res, REFRESH)?.value).toBe('');
    const accessToken = b.login.json().accessToken as string;
    expect(
      (await call(t, a.ip, { url: '/api/v1/me', headers: { authorization: `Bearer ${accessToken}` } }))
        .statusCode,
    ).toBe(401);
  });

  it('API clients need no CSRF token: the refresh token in the body is their own credential', async () => {
    const login = await loginRaw(t, a.ip, { email: a.email, password: a.password });
    const res = await refreshRaw(t, a.ip, login.json().refreshToken);
    expect(res.statusCode).toBe(200);
    expect(res.json().refreshToken).toEqual(expect.any(String));
    expect(setCookie(res, REFRESH)).toBeUndefined();
  });

  it('sets the CSRF secret as a __Host- HttpOnly cookie and reuses it for later tokens', async () => {
    const first = await call(t, a.ip, { url: '/api/v1/auth/csrf' });
    const raw = ([] as string[])
      .concat(first.headers['set-cookie'] as string | string[])
      .find((c) => c.startsWith(CSRF))!;
    expect(raw).toMatch(/; Secure/);
    expect(raw).toMatch(/; HttpOnly/);
    expect(raw).toMatch(/; SameSite=Strict/);
    const secret = setCookie(first, CSRF)!.value;
    const second = await call(t, a.ip, { url: '/api/v1/auth/csrf', cookies: { [CSRF]: secret } });
    expect(setCookie(second, CSRF)).toBeUndefined();
    expect(second.json().token).not.toBe(first.json().token);
  });
});
