/**
 * OIDC single sign-on against a real OpenID Provider (`oidc-provider`) started in the test:
 * admin routes, the sign-in flow with PKCE, ID-token checks, tenant boundaries, require-SSO.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem, withTenant } from '../src/db/tenant.js';
import { addUser, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import {
  auditRows,
  call,
  freshIp,
  login,
  loginRaw,
  signup,
  STRONG_PASSWORD,
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

describe(`OIDC SSO (${backendLabel})`, () => {
  let t: TestApp;
  let idpA: TestIdp;
  let idpB: TestIdp;
  let ownerA: Account;
  let adminA: { accessToken: string };
  let ownerB: TestUser;

  const put = (token: string, payload: unknown) =>
    call(t, freshIp(), {
      method: 'PUT',
      url: '/api/v1/org/sso',
      headers: { authorization: `Bearer ${token}` },
      payload: payload as object,
    });
  const connection = (idp: TestIdp, domains: string[], extra: object = {}) => ({
    issuer: idp.issuer,
    clientId: idp.clientId,
    clientSecret: idp.clientSecret,
    allowedDomains: domains,
    ...extra,
  });

  /** start → IdP (real HTTP) → callback; returns the callback answer and what led to it. */
  async function ssoFlow(
    idp: TestIdp,
    account: string,
    start: string,
    opts: { mangle?: (u: URL) => void; handle?: string } = {},
  ) {
    const ip = freshIp();
    idp.nextAccount = account;
    const s = await call(t, ip, { method: 'GET', url: `/api/v1/auth/sso/start?${start}` });
    expect(s.statusCode, s.body).toBe(302);
    const handle = cookieOf(s.headers['set-cookie'], SSO_COOKIE)!;
    expect(handle).toBeTruthy();
    const back = await followIdp(String(s.headers.location), REDIRECT_URI);
    opts.mangle?.(back);
    const cb = await call(t, ip, {
      method: 'GET',
      url: `/api/v1/auth/sso/callback${back.search}`,
      headers: { cookie: `${SSO_COOKIE}=${opts.handle ?? handle}`, 'user-agent': 'sso-browser/1.0' },
    });
    return { cb, handle, back, ip, ratelimit: s.headers['ratelimit-limit'] };
  }
  const ssoError = (res: { statusCode: number; headers: Record<string, unknown> }) => {
    expect(res.statusCode).toBe(302);
    const loc = String(res.headers.location);
    return loc.startsWith('/login?sso_error=') ? loc.slice('/login?sso_error='.length) : `ok:${loc}`;
  };

  beforeAll(async () => {
    t = await startTestApp({ env: { SOTTO_SSO_ALLOW_INSECURE_ISSUERS: 'true' } });
    idpA = await startIdp({ redirectUri: REDIRECT_URI });
    idpB = await startIdp({ redirectUri: REDIRECT_URI });
    ownerA = await signup(t, { email: `owner@a.example`, organization: 'Org A' });
    const tokens = await login(t, ownerA);
    adminA = { accessToken: tokens.accessToken };
    ownerB = await createOrgWithUser(t.services);
    for (const [sub, email, verified, groups] of [
      ['alice', 'alice@a.example', true, []],
      ['bob', 'bob@a.example', true, ['sotto-admins']],
      ['carol', 'carol@other.example', true, []],
      ['erin', 'erin@a.example', false, []],
      ['frank', 'frank@a.example', true, []],
    ] as const) {
      idpA.accounts.set(sub, { email, email_verified: verified, name: sub, groups: [...groups] });
    }
    idpB.accounts.set('dave', { email: 'dave@shared.example', email_verified: true });
    idpB.accounts.set('alice-b', { email: 'alice@a.example', email_verified: true });
  }, 60_000);

  afterAll(async () => {
    await idpA?.close();
    await idpB?.close();
    await t?.close();
  });

  describe('admin routes', () => {
    it('404 before configuration, member 403, hostile bodies 400', async () => {
      const get = await call(t, freshIp(), {
        method: 'GET',
        url: '/api/v1/org/sso',
        headers: { authorization: `Bearer ${adminA.accessToken}` },
      });
      expect(get.statusCode).toBe(404);
      const member = await addUser(t.services, ownerA.orgId, { role: 'member' });
      expect((await put(member.accessToken, connection(idpA, ['a.example']))).statusCode).toBe(403);
      const bad = [
        { ...connection(idpA, ['a.example']), issuer: 'ftp://idp.example' },
        { ...connection(idpA, ['a.example']), issuer: 'not a url' },
        { ...connection(idpA, ['not_a_domain!']) },
        { ...connection(idpA, []) },
        { ...connection(idpA, ['a.example']), clientSecret: 'x'.repeat(10_000) },
        { ...connection(idpA, ['a.example']), roleMapping: { g: 'owner' } },
        { ...connection(idpA, ['a.example']), surprise: true },
        { ...connection(idpA, ['a.example']), allowedDomains: 'a.example' },
      ];
      for (const b of bad) expect((await put(adminA.accessToken, b)).statusCode, JSON.stringify(b)).toBe(400);
      const noSecret = { ...connection(idpA, ['a.example']), clientSecret: undefined };
      expect((await put(adminA.accessToken, noSecret)).statusCode).toBe(400);
    });

    it('stores the connection with the secret write-only and sealed at rest', async () => {
      const res = await put(
        adminA.accessToken,
        connection(idpA, ['A.example', 'shared2.example'], {
          roleClaim: 'groups',
          roleMapping: { 'sotto-admins': 'admin' },
        }),
      );
      expect(res.statusCode, res.body).toBe(200);
      expect(res.body).not.toContain(idpA.clientSecret);
      expect(res.json()).toMatchObject({
        issuer: idpA.issuer,
        allowedDomains: ['a.example', 'shared2.example'],
        hasClientSecret: true,
        requireSso: false,
        redirectUri: REDIRECT_URI,
      });
      // Updating without a secret keeps the stored one.
      const upd = await put(adminA.accessToken, {
        ...connection(idpA, ['a.example'], { roleClaim: 'groups', roleMapping: { 'sotto-admins': 'admin' } }),
        clientSecret: undefined,
      });
      expect(upd.statusCode, upd.body).toBe(200);
      const dump = await withSystem(t.db, async (tx) => {
        const { rows } = await tx.query<{ j: string }>(
          'SELECT row_to_json(c)::text AS j FROM sso_connections c',
        );
        return rows.map((r) => r.j).join('\n');
      });
      expect(dump).toContain(idpA.clientId);
      expect(dump).not.toContain(idpA.clientSecret);
      expect(dump).not.toContain(Buffer.from(idpA.clientSecret).toString('hex'));
    });

    it('another org sees nothing of it (404) and cannot claim its domain', async () => {
      const hdr = { authorization: `Bearer ${ownerB.accessToken}` };
      expect(
        (await call(t, freshIp(), { method: 'GET', url: '/api/v1/org/sso', headers: hdr })).statusCode,
      ).toBe(404);
      expect(
        (await call(t, freshIp(), { method: 'DELETE', url: '/api/v1/org/sso', headers: hdr })).statusCode,
      ).toBe(404);
      expect((await put(ownerB.accessToken, connection(idpB, ['a.example']))).statusCode).toBe(409);
      const ok = await put(ownerB.accessToken, connection(idpB, ['b.example', 'shared.example']));
      expect(ok.statusCode, ok.body).toBe(200);
      const mine = await call(t, freshIp(), {
        method: 'GET',
        url: '/api/v1/org/sso',
        headers: { authorization: `Bearer ${adminA.accessToken}` },
      });
      expect(mine.json().issuer).toBe(idpA.issuer);
    });
  });

  describe('sign-in', () => {
    it('signs in with PKCE, provisions a member, lists the device and audits it', async () => {
      const { cb, back, ratelimit } = await ssoFlow(idpA, 'alice', 'email=alice%40a.example');
      expect(ratelimit).toBeDefined();
      expect(back.searchParams.get('code')).toBeTruthy();
      expect(cb.headers.location).toBe('/');
      const refresh = cookieOf(cb.headers['set-cookie'], REFRESH_COOKIE)!;
      expect(refresh).toBeTruthy();
      const r = await call(t, freshIp(), {
        method: 'POST',
        url: '/api/v1/auth/refresh',
        payload: { refreshToken: refresh },
      });
      expect(r.statusCode, r.body).toBe(200);
      const auth = { authorization: `Bearer ${r.json().accessToken}` };
      const me = await call(t, freshIp(), { method: 'GET', url: '/api/v1/me', headers: auth });
      expect(me.json()).toMatchObject({ user: { email: 'alice@a.example', role: 'member' } });
      expect(me.json().organization.id).toBe(ownerA.orgId);
      const devices = await call(t, freshIp(), { method: 'GET', url: '/api/v1/auth/devices', headers: auth });
      expect(devices.json()).toHaveLength(1);
      expect(devices.json()[0].userAgent).toBe('sso-browser/1.0');
      const logins = await auditRows(t, 'auth.sso_login');
      expect(logins.at(-1)).toMatchObject({ org_id: ownerA.orgId, details: { provisioned: true } });
      expect((await auditRows(t, 'user.sso_provisioned')).length).toBe(1);
      // Second sign-in: same account, nothing new provisioned.
      const again = await ssoFlow(idpA, 'alice', 'org=org-a');
      expect(again.cb.headers.location).toBe('/');
      expect((await auditRows(t, 'user.sso_provisioned')).length).toBe(1);
    });

    it('maps the role claim (admin at most)', async () => {
      const { cb } = await ssoFlow(idpA, 'bob', 'email=bob%40a.example');
      expect(cb.headers.location).toBe('/');
      const role = await withTenant(t.db, { orgId: ownerA.orgId, userId: null }, async (tx) => {
        const { rows } = await tx.query<{ role: string }>('SELECT role FROM users WHERE email = $1', [
          'bob@a.example',
        ]);
        return rows[0]?.role;
      });
      expect(role).toBe('admin');
    });

    it('refuses replayed, missing and mismatched state', async () => {
      const first = await ssoFlow(idpA, 'alice', 'email=alice%40a.example');
      expect(first.cb.headers.location).toBe('/');
      const replay = await call(t, first.ip, {
        method: 'GET',
        url: `/api/v1/auth/sso/callback${first.back.search}`,
        headers: { cookie: `${SSO_COOKIE}=${first.handle}` },
      });
      expect(ssoError(replay)).toBe('state_invalid');
      const noCookie = await call(t, first.ip, {
        method: 'GET',
        url: `/api/v1/auth/sso/callback${first.back.search}`,
      });
      expect(ssoError(noCookie)).toBe('state_invalid');
      const wrongState = await ssoFlow(idpA, 'alice', 'email=alice%40a.example', {
        mangle: (u) => u.searchParams.set('state', 'forged-state'),
      });
      expect(ssoError(wrongState.cb)).toBe('token_rejected');
    });

    it('accepts a re-signed but unchanged ID token (control for the tampering tests)', async () => {
      idpA.tamper = (c) => c;
      try {
        const { cb } = await ssoFlow(idpA, 'alice', 'email=alice%40a.example');
        expect(cb.headers.location).toBe('/');
      } finally {
        idpA.tamper = undefined;
      }
    });

    it.each([
      ['a wrong nonce', (c: Record<string, unknown>) => ({ ...c, nonce: 'not-the-nonce' })],
      ['a wrong audience', (c: Record<string, unknown>) => ({ ...c, aud: 'someone-else' })],
      ['a wrong issuer', (c: Record<string, unknown>) => ({ ...c, iss: 'https://evil.example' })],
      [
        'an expired token',
        (c: Record<string, unknown>) => ({
          ...c,
          iat: Math.floor(Date.now() / 1000) - 7200,
          exp: Math.floor(Date.now() / 1000) - 3600,
        }),
      ],
    ])('refuses an ID token with %s', async (_label, tamper) => {
      idpA.tamper = tamper;
      try {
        const { cb } = await ssoFlow(idpA, 'frank', 'email=frank%40a.example');
        expect(ssoError(cb)).toBe('token_rejected');
      } finally {
        idpA.tamper = undefined;
      }
    });

    it('refuses an ID token signed with a key the IdP never published', async () => {
      idpA.foreignKey = true;
      try {
        const { cb } = await ssoFlow(idpA, 'frank', 'email=frank%40a.example');
        expect(ssoError(cb)).toBe('token_rejected');
      } finally {
        idpA.foreignKey = false;
      }
      const users = await withSystem(t.db, async (tx) => {
        const { rows } = await tx.query('SELECT 1 FROM users WHERE email = $1', ['frank@a.example']);
        return rows.length;
      });
      expect(users).toBe(0);
    });

    it('requires a verified email within the allowed domains', async () => {
      expect(ssoError((await ssoFlow(idpA, 'erin', 'email=erin%40a.example')).cb)).toBe('email_unverified');
      expect(ssoError((await ssoFlow(idpA, 'carol', 'email=x%40a.example')).cb)).toBe('domain_not_allowed');
      const failed = await auditRows(t, 'auth.sso_login_failed');
      expect(failed.some((r) => (r.details as { reason: string }).reason === 'domain_not_allowed')).toBe(
        true,
      );
    });

    it('turns an error answer of the IdP into idp_error', async () => {
      const { cb } = await ssoFlow(idpA, 'alice', 'email=alice%40a.example', {
        mangle: (u) => {
          // The IdP names itself in its answers (RFC 9207): keep iss and state, drop the code.
          const state = u.searchParams.get('state')!;
          const iss = u.searchParams.get('iss')!;
          u.search = new URLSearchParams({ error: 'access_denied', state, iss }).toString();
        },
      });
      expect(ssoError(cb)).toBe('idp_error');
    });

    it('bounds hostile input on both routes', async () => {
      const long = await call(t, freshIp(), {
        method: 'GET',
        url: `/api/v1/auth/sso/start?email=${'a'.repeat(5000)}%40a.example`,
      });
      expect(long.statusCode).toBe(400);
      const weird = await call(t, freshIp(), {
        method: 'GET',
        url: '/api/v1/auth/sso/start?org=..%2F..%2Fetc',
      });
      expect(weird.statusCode).toBe(400);
      // A NUL used to reach PostgreSQL's domain lookup (an encoding error, logged; bench/fuzz.ts).
      const nul = await call(t, freshIp(), {
        method: 'GET',
        url: '/api/v1/auth/sso/start?email=a%00%40a.example',
      });
      expect(nul.statusCode).toBe(400);
      const junk = await call(t, freshIp(), {
        method: 'GET',
        url: `/api/v1/auth/sso/callback?code=x&state=y&extra=${'z'.repeat(9000)}`,
        headers: { cookie: `${SSO_COOKIE}=not-a-handle` },
      });
      expect(ssoError(junk)).toBe('state_invalid');
      const bigCode = await call(t, freshIp(), {
        method: 'GET',
        url: `/api/v1/auth/sso/callback?code=${'c'.repeat(3000)}`,
      });
      expect(bigCode.statusCode).toBe(400);
    });

    it('unknown domains and slugs end on the login page', async () => {
      const r = await call(t, freshIp(), {
        method: 'GET',
        url: '/api/v1/auth/sso/start?email=z%40nowhere.example',
      });
      expect(ssoError(r)).toBe('not_configured');
      const s = await call(t, freshIp(), { method: 'GET', url: '/api/v1/auth/sso/start?org=no-such-org' });
      expect(ssoError(s)).toBe('not_configured');
    });

    it("never lets another org's IdP sign anyone in to the first org", async () => {
      // An account of org A whose domain org B's connection accepts.
      await addUser(t.services, ownerA.orgId, { role: 'member', email: 'dave@shared.example' });
      const dave = await ssoFlow(idpB, 'dave', 'email=dave%40shared.example');
      expect(ssoError(dave.cb)).toBe('account_not_allowed');
      // Org A's domain through org B's IdP (started from B's slug): not in B's allowed domains.
      const slugB = await withSystem(t.db, async (tx) => {
        const { rows } = await tx.query<{ slug: string }>('SELECT slug FROM orgs WHERE id = $1', [
          ownerB.orgId,
        ]);
        return rows[0]!.slug;
      });
      const alice = await ssoFlow(idpB, 'alice-b', `org=${slugB}`);
      expect(ssoError(alice.cb)).toBe('domain_not_allowed');
      // B's IdP answer presented to A's flow (A's handle): state and code belong elsewhere.
      const aStart = await call(t, freshIp(), {
        method: 'GET',
        url: '/api/v1/auth/sso/start?email=alice%40a.example',
      });
      const aHandle = cookieOf(aStart.headers['set-cookie'], SSO_COOKIE)!;
      const crossed = await ssoFlow(idpB, 'dave', `org=${slugB}`, { handle: aHandle });
      expect(ssoError(crossed.cb)).toBe('token_rejected');
      const inB = await withTenant(t.db, { orgId: ownerB.orgId, userId: null }, async (tx) => {
        const { rows } = await tx.query('SELECT email FROM users');
        return rows.length;
      });
      expect(inB).toBe(1);
    });
  });

  describe('require SSO', () => {
    it('refuses password login for members, keeps an audited break-glass for owners', async () => {
      const memberEmail = 'member-pw@a.example';
      const m = await addUser(t.services, ownerA.orgId, { role: 'member', email: memberEmail });
      const hash = await t.services.hasher.hash(STRONG_PASSWORD);
      await withTenant(t.db, { orgId: ownerA.orgId, userId: null }, (tx) =>
        tx.query('UPDATE users SET password_hash = $1 WHERE id = $2', [hash, m.userId]),
      );
      const before = await login(t, { email: memberEmail, password: STRONG_PASSWORD, ip: freshIp() });

      const on = await put(adminA.accessToken, {
        ...connection(idpA, ['a.example'], { roleClaim: 'groups', roleMapping: { 'sotto-admins': 'admin' } }),
        clientSecret: undefined,
        requireSso: true,
      });
      expect(on.statusCode, on.body).toBe(200);
      // Existing non-owner sessions end when the rule is turned on.
      const r = await call(t, freshIp(), {
        method: 'POST',
        url: '/api/v1/auth/refresh',
        payload: { refreshToken: before.refreshToken },
      });
      expect(r.statusCode).toBe(401);

      const refused = await loginRaw(t, freshIp(), { email: memberEmail, password: STRONG_PASSWORD });
      expect(refused.statusCode).toBe(403);
      expect(refused.json()).toMatchObject({ code: 'sso_required', sso: '/api/v1/auth/sso/start' });
      // A wrong password still says nothing about SSO (no enumeration).
      const wrong = await loginRaw(t, freshIp(), { email: memberEmail, password: 'wrong password 123 x' });
      expect(wrong.statusCode).toBe(401);
      expect(wrong.body).not.toContain('sso');

      const owner = await loginRaw(t, freshIp(), { email: ownerA.email, password: ownerA.password });
      expect(owner.statusCode, owner.body).toBe(200);
      const glass = await auditRows(t, 'auth.break_glass_login');
      expect(glass.at(-1)).toMatchObject({ org_id: ownerA.orgId, actor_id: ownerA.userId });

      // SSO itself still works for members.
      expect((await ssoFlow(idpA, 'alice', 'email=alice%40a.example')).cb.headers.location).toBe('/');
    });
  });

  it('writes no secret, code or token to the logs', () => {
    const all = t.logs.join('\n');
    expect(all).not.toContain(idpA.clientSecret);
    expect(all).not.toContain(idpB.clientSecret);
    expect(all).not.toMatch(/code=[A-Za-z0-9_-]{20,}/);
    expect(all).not.toMatch(/eyJ[A-Za-z0-9_-]{20,}\.eyJ/);
  });
});
