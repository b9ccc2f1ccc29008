/**
 * SSO security fixes (docs/sso.md): accounts are bound to the IdP subject, never taken over by
 * an asserted email (the link step proves the password); issuer changes clear links; SSO admin
 * routes are session-only; require-SSO revokes non-owner API tokens; SSO-only accounts
 * re-authenticate with a recent SSO sign-in; OIDC discovery is cached and SSRF-guarded.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../src/db/tenant.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import type { OidcClient } from '../src/adapters/network/oidc-client.adapter.js';
import {
  guardedFetch,
  guardedFetchWith,
  SsrfBlockedError,
} from '../src/adapters/network/sso-guarded-fetch.adapter.js';
import { addUser } from './helpers/fixtures.js';
import {
  auditRows,
  authed,
  call,
  freshIp,
  login,
  signup,
  STRONG_PASSWORD,
  totp,
  type Account,
} from './helpers/auth-client.js';
import { followIdp, startIdp, type TestIdp } from './helpers/oidc-idp.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

const REDIRECT_URI = 'https://sotto.test/api/v1/auth/sso/callback';
const SSO_COOKIE = '__Host-sotto_sso';
const REFRESH_COOKIE = '__Host-sotto_refresh';

function cookieOf(setCookie: string | string[] | undefined, name: string): string | undefined {
  const all = Array.isArray(setCookie) ? setCookie : setCookie ? [setCookie] : [];
  const c = all.find((s) => s.startsWith(`${name}=`));
  return c ? c.slice(name.length + 1).split(';')[0] : undefined;
}

describe(`SSO account linking and hardening (${backendLabel})`, () => {
  let t: TestApp;
  const clock = new ManualClock();
  let idpA: TestIdp;
  let idpB: TestIdp;
  let owner: Account;
  let ownerAccess: string;
  let admin: { accessToken: string; userId: string };

  const put = (token: string, payload: object) =>
    call(t, freshIp(), {
      method: 'PUT',
      url: '/api/v1/org/sso',
      headers: { authorization: `Bearer ${token}` },
      payload,
    });
  const conn = (idp: TestIdp, extra: object = {}) => ({
    issuer: idp.issuer,
    clientId: idp.clientId,
    clientSecret: idp.clientSecret,
    allowedDomains: ['l.example'],
    ...extra,
  });

  async function ssoFlow(idp: TestIdp, account: string) {
    const ip = freshIp();
    idp.nextAccount = account;
    const s = await call(t, ip, { method: 'GET', url: '/api/v1/auth/sso/start?email=x%40l.example' });
    expect(s.statusCode, s.body).toBe(302);
    const handle = cookieOf(s.headers['set-cookie'], SSO_COOKIE)!;
    const back = await followIdp(String(s.headers.location), REDIRECT_URI);
    const cb = await call(t, ip, {
      method: 'GET',
      url: `/api/v1/auth/sso/callback${back.search}`,
      headers: { cookie: `${SSO_COOKIE}=${handle}`, 'user-agent': 'sso-browser/1.0' },
    });
    expect(cb.statusCode, cb.body).toBe(302);
    return {
      cb,
      ip,
      location: String(cb.headers.location),
      refresh: cookieOf(cb.headers['set-cookie'], REFRESH_COOKIE),
      linkHandle: cookieOf(cb.headers['set-cookie'], SSO_COOKIE),
    };
  }
  const link = (ip: string, handle: string | undefined, payload: object) =>
    call(t, ip, {
      method: 'POST',
      url: '/api/v1/auth/sso/link',
      headers: handle ? { cookie: `${SSO_COOKIE}=${handle}` } : {},
      payload,
    });
  const me = async (refreshToken: string) => {
    const r = await call(t, freshIp(), {
      method: 'POST',
      url: '/api/v1/auth/refresh',
      payload: { refreshToken },
    });
    expect(r.statusCode, r.body).toBe(200);
    const access = r.json().accessToken as string;
    const m = await call(t, freshIp(), {
      method: 'GET',
      url: '/api/v1/me',
      headers: { authorization: `Bearer ${access}` },
    });
    return { access, refresh: r.json().refreshToken as string, user: m.json().user as { id: string } };
  };
  const links = () =>
    withSystem(t.db, async (tx) => {
      const { rows } = await tx.query<{ subject: string; user_id: string }>(
        'SELECT subject, user_id FROM sso_identities ORDER BY subject',
      );
      return rows;
    });

  beforeAll(async () => {
    t = await startTestApp({ clock, env: { SOTTO_SSO_ALLOW_INSECURE_ISSUERS: 'true' } });
    idpA = await startIdp({ redirectUri: REDIRECT_URI });
    idpB = await startIdp({ redirectUri: REDIRECT_URI });
    owner = await signup(t, { email: 'owner@l.example', organization: 'Link Org' });
    ownerAccess = (await login(t, owner)).accessToken;
    const a = await addUser(t.services, owner.orgId, { role: 'admin', email: 'admin@l.example' });
    admin = { accessToken: a.accessToken, userId: a.userId };
    // The admin's own IdP: it asserts the owner's address (verified) for a subject of its choice.
    idpA.accounts.set('mallory', { email: 'owner@l.example', email_verified: true });
    idpA.accounts.set('owner-sub', { email: 'owner@l.example', email_verified: true });
    idpA.accounts.set('jit', { email: 'jit@l.example', email_verified: true });
    idpB.accounts.set('owner-sub', { email: 'owner@l.example', email_verified: true });
    const res = await put(admin.accessToken, conn(idpA));
    expect(res.statusCode, res.body).toBe(200);
  }, 60_000);

  afterAll(async () => {
    await idpA?.close();
    await idpB?.close();
    await t?.close();
  });

  it("an admin-controlled IdP asserting the owner's email gets the link step, not a session", async () => {
    const f = await ssoFlow(idpA, 'mallory');
    expect(f.location).toBe('/login?sso_link=1');
    expect(f.refresh).toBeUndefined();
    expect(f.linkHandle).toBeTruthy();
    // Without the owner's password nothing opens, and the pending link is single use.
    const wrong = await link(f.ip, f.linkHandle, { password: 'not the owner password 1' });
    expect(wrong.statusCode).toBe(401);
    expect(cookieOf(wrong.headers['set-cookie'], REFRESH_COOKIE)).toBeUndefined();
    const retry = await link(f.ip, f.linkHandle, { password: owner.password });
    expect(retry.statusCode).toBe(401);
    const none = await link(f.ip, undefined, { password: owner.password });
    expect(none.statusCode).toBe(401);
    expect(await links()).toHaveLength(0);
    const failed = await auditRows(t, 'auth.sso_link_failed');
    expect(failed.at(-1)).toMatchObject({ details: { reason: 'bad_password' } });
  });

  it('hostile link bodies are 400', async () => {
    for (const payload of [{}, { password: 123 }, { password: 'x'.repeat(5000) }, { password: 'x', more: 1 }])
      expect((await link(freshIp(), 'h', payload)).statusCode, JSON.stringify(payload)).toBe(400);
  });

  it('the link step with the right password links the subject and signs in', async () => {
    const f = await ssoFlow(idpA, 'owner-sub');
    expect(f.location).toBe('/login?sso_link=1');
    const ok = await link(f.ip, f.linkHandle, { password: owner.password });
    expect(ok.statusCode, ok.body).toBe(204);
    const refresh = cookieOf(ok.headers['set-cookie'], REFRESH_COOKIE)!;
    expect(refresh).toBeTruthy();
    expect((await me(refresh)).user.id).toBe(owner.userId);
    expect(await links()).toEqual([{ subject: 'owner-sub', user_id: owner.userId }]);
    expect((await auditRows(t, 'auth.sso_linked')).at(-1)).toMatchObject({ actor_id: owner.userId });
  });

  it('a linked subject signs in directly, even after its email changed at the IdP', async () => {
    const f = await ssoFlow(idpA, 'owner-sub');
    expect(f.location).toBe('/');
    expect((await me(f.refresh!)).user.id).toBe(owner.userId);
    idpA.accounts.set('owner-sub', { email: 'renamed@l.example', email_verified: true });
    try {
      const g = await ssoFlow(idpA, 'owner-sub');
      expect(g.location).toBe('/');
      expect((await me(g.refresh!)).user.id).toBe(owner.userId);
    } finally {
      idpA.accounts.set('owner-sub', { email: 'owner@l.example', email_verified: true });
    }
  });

  it('another subject with the same email cannot sign in, nor link a second time', async () => {
    const f = await ssoFlow(idpA, 'mallory');
    expect(f.location).toBe('/login?sso_link=1');
    expect(f.refresh).toBeUndefined();
    // Even the right password cannot attach a second subject to an already linked account.
    const again = await link(f.ip, f.linkHandle, { password: owner.password });
    expect(again.statusCode).toBe(409);
    expect(await links()).toEqual([{ subject: 'owner-sub', user_id: owner.userId }]);
  });

  it('the link step asks for the TOTP code too when the account has one', async () => {
    const m = await addUser(t.services, owner.orgId, { role: 'member', email: 'tess@l.example' });
    const hash = await t.services.hasher.hash(STRONG_PASSWORD);
    await withSystem(t.db, (tx) =>
      tx.query('UPDATE users SET password_hash = $1 WHERE id = $2', [hash, m.userId]),
    );
    const start = await authed(t, freshIp(), m.accessToken, { method: 'POST', url: '/api/v1/auth/mfa/totp' });
    const secret = start.json().secret as string;
    const confirm = await authed(t, freshIp(), m.accessToken, {
      method: 'POST',
      url: '/api/v1/auth/mfa/totp/confirm',
      payload: { code: totp(secret, clock.now().getTime()) },
    });
    expect(confirm.statusCode, confirm.body).toBe(200);
    clock.advance(30_000);
    idpA.accounts.set('tess-sub', { email: 'tess@l.example', email_verified: true });
    const f = await ssoFlow(idpA, 'tess-sub');
    expect(f.location).toBe('/login?sso_link=1');
    expect((await link(f.ip, f.linkHandle, { password: STRONG_PASSWORD })).statusCode).toBe(401);
    const g = await ssoFlow(idpA, 'tess-sub');
    const ok = await link(g.ip, g.linkHandle, {
      password: STRONG_PASSWORD,
      code: totp(secret, clock.now().getTime()),
    });
    expect(ok.statusCode, ok.body).toBe(204);
    expect((await links()).map((l) => l.subject)).toContain('tess-sub');
  });

  it('API tokens can neither change nor remove the SSO connection (session only)', async () => {
    const tok = await call(t, freshIp(), {
      method: 'POST',
      url: '/api/v1/tokens',
      headers: { authorization: `Bearer ${ownerAccess}` },
      payload: { name: 'admin script', scopes: ['org:admin', 'org:read'] },
    });
    expect(tok.statusCode, tok.body).toBe(201);
    const token = tok.json().token as string;
    expect((await put(token, conn(idpB))).statusCode).toBe(403);
    const del = await call(t, freshIp(), {
      method: 'DELETE',
      url: '/api/v1/org/sso',
      headers: { authorization: `Bearer ${token}` },
    });
    expect(del.statusCode).toBe(403);
  });

  it('the discovery document is cached per connection version', async () => {
    const repo = (t.services.sso.oidc as unknown as { idp: OidcClient }).idp;
    await ssoFlow(idpA, 'owner-sub');
    const before = repo.discoveries;
    await ssoFlow(idpA, 'owner-sub');
    await ssoFlow(idpA, 'owner-sub');
    expect(repo.discoveries).toBe(before);
    // A change of the connection (new updated_at) discovers again.
    clock.advance(1000);
    expect((await put(admin.accessToken, { ...conn(idpA), clientSecret: undefined })).statusCode).toBe(200);
    await ssoFlow(idpA, 'owner-sub');
    expect(repo.discoveries).toBe(before + 1);
    // Same issuer: the links stay.
    expect(await links()).toHaveLength(2);
  });

  it('changing the issuer deletes the identity links: the new IdP must re-link', async () => {
    const res = await put(admin.accessToken, conn(idpB));
    expect(res.statusCode, res.body).toBe(200);
    expect(await links()).toHaveLength(0);
    const f = await ssoFlow(idpB, 'owner-sub');
    expect(f.location).toBe('/login?sso_link=1');
    expect(f.refresh).toBeUndefined();
    const back = await put(admin.accessToken, conn(idpA));
    expect(back.statusCode).toBe(200);
    expect(await links()).toHaveLength(0);
  });

  it('JIT accounts are linked; SSO-only accounts re-authenticate with a recent SSO sign-in', async () => {
    const f = await ssoFlow(idpA, 'jit');
    expect(f.location).toBe('/');
    const first = await me(f.refresh!);
    expect((await links()).find((l) => l.subject === 'jit')?.user_id).toBe(first.user.id);
    const del = (access: string) =>
      call(t, freshIp(), {
        method: 'DELETE',
        url: '/api/v1/me',
        headers: { authorization: `Bearer ${access}` },
        payload: { currentPassword: 'I have no password' },
      });
    // The SSO session is older than 10 minutes: sign in with SSO again first.
    clock.advance(11 * 60_000);
    const later = await me(first.refresh);
    const stale = await del(later.access);
    expect(stale.statusCode, stale.body).toBe(403);
    expect(stale.json()).toMatchObject({ code: 'sso_required', reauth: 'sso' });
    // A fresh SSO sign-in stands in for the password.
    const g = await ssoFlow(idpA, 'jit');
    const fresh = await me(g.refresh!);
    const ok = await del(fresh.access);
    expect(ok.statusCode, ok.body).toBe(202);
  });

  it('a password account still needs its password to re-authenticate', async () => {
    const fresh = (await login(t, { ...owner, ip: freshIp() })).accessToken;
    const res = await call(t, freshIp(), {
      method: 'DELETE',
      url: '/api/v1/me',
      headers: { authorization: `Bearer ${fresh}` },
      payload: { currentPassword: 'definitely wrong password' },
    });
    expect(res.statusCode).toBe(401);
  });

  it('turning require-SSO on revokes non-owner API tokens, not the owner’s', async () => {
    // The clock moved on (re-auth test): fresh sessions.
    ownerAccess = (await login(t, { ...owner, ip: freshIp() })).accessToken;
    const member = await addUser(t.services, owner.orgId, { role: 'member', email: 'm@l.example' });
    const mk = async (access: string) => {
      const r = await call(t, freshIp(), {
        method: 'POST',
        url: '/api/v1/tokens',
        headers: { authorization: `Bearer ${access}` },
        payload: { name: 'script', scopes: ['org:read'] },
      });
      expect(r.statusCode, r.body).toBe(201);
      return r.json().token as string;
    };
    const memberTok = await mk(member.accessToken);
    const ownerTok = await mk(ownerAccess);
    const use = (tok: string) =>
      call(t, freshIp(), { method: 'GET', url: '/api/v1/org', headers: { authorization: `Bearer ${tok}` } });
    expect((await use(memberTok)).statusCode).toBe(200);
    const on = await put(ownerAccess, { ...conn(idpA), clientSecret: undefined, requireSso: true });
    expect(on.statusCode, on.body).toBe(200);
    expect((await use(memberTok)).statusCode).toBe(401);
    expect((await use(ownerTok)).statusCode).toBe(200);
    const updated = await auditRows(t, 'sso.updated');
    expect((updated.at(-1)!.details as { revokedTokens?: number }).revokedTokens).toBeGreaterThanOrEqual(1);
  });

  it('writes no password or token to the logs', () => {
    const all = t.logs.join('\n');
    expect(all).not.toContain(owner.password);
    expect(all).not.toContain(idpA.clientSecret);
    expect(all).not.toMatch(/sotto_pat_[0-9a-f]{32}_/);
  });
});

describe(`OIDC issuer SSRF guard (${backendLabel})`, () => {
  let t: TestApp;
  let access: string;
  beforeAll(async () => {
    // SOTTO_SSO_ALLOW_INSECURE_ISSUERS unset: https issuers only, and the guard is on.
    t = await startTestApp();
    const o = await signup(t, { email: 'owner@ssrf.example', organization: 'Ssrf Org' });
    access = (await login(t, o)).accessToken;
  }, 60_000);
  afterAll(async () => t?.close());

  const save = (issuer: string) =>
    call(t, freshIp(), {
      method: 'PUT',
      url: '/api/v1/org/sso',
      headers: { authorization: `Bearer ${access}` },
      payload: { issuer, clientId: 'c', clientSecret: 's', allowedDomains: ['ssrf.example'] },
    });

  it('refuses private, loopback and link-local issuers when they are saved', async () => {
    // Literal addresses and local names are refused as given; other names once resolved (the
    // guarded fetch checks every request to the IdP again, below).
    for (const issuer of [
      'https://10.20.30.40',
      'https://169.254.169.254/x',
      'https://localhost:9',
      'https://[::1]:9',
    ]) {
      const put = await save(issuer);
      expect(put.statusCode, issuer).toBe(400);
      expect(put.json().detail, issuer).toMatch(/private address/);
    }
  });

  it('the guarded fetch serves real answers (GET and form POST) when the address is allowed', async () => {
    const idp = await startIdp({ redirectUri: REDIRECT_URI });
    try {
      // Loopback allowed for this one check only: the local test IdP stands in for a public one.
      const f = guardedFetchWith(() => false);
      const doc = await f(`${idp.issuer}/.well-known/openid-configuration`, {
        method: 'GET',
        headers: { accept: 'application/json' },
        body: undefined,
        redirect: 'manual',
      });
      expect(doc.status).toBe(200);
      const meta = (await doc.json()) as { issuer: string; token_endpoint: string };
      expect(meta.issuer).toBe(idp.issuer);
      const tok = await f(meta.token_endpoint, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams({ grant_type: 'authorization_code', code: 'nope' }),
        redirect: 'manual',
      });
      expect(tok.status).toBeGreaterThanOrEqual(400);
      expect(((await tok.json()) as { error: string }).error).toBeTruthy();
      // The default rule refuses the very same loopback issuer.
      await expect(
        guardedFetch(`${idp.issuer}/.well-known/openid-configuration`, {
          method: 'GET',
          headers: {},
          body: undefined,
          redirect: 'manual',
        }),
      ).rejects.toBeInstanceOf(SsrfBlockedError);
    } finally {
      await idp.close();
    }
  });

  it('the guarded fetch itself refuses them', async () => {
    for (const url of [
      'http://127.0.0.1:9/.well-known/openid-configuration',
      'http://[fe80::1]/',
      'http://localhost:9/',
    ])
      await expect(
        guardedFetch(url, { method: 'GET', headers: {}, body: undefined, redirect: 'manual' }),
      ).rejects.toBeInstanceOf(SsrfBlockedError);
  });
});
