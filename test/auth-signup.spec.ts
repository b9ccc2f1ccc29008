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
  type Account,
  auditRows as auditRowsOf,
  stableProblem,
  verificationToken,
  verifySignup,
} from './helpers/auth-client.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

describe(`signup and login (${backendLabel})`, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => t?.close());

  const me = (ip: string, token: string) => authed(t, ip, token, { url: '/api/v1/me' });
  const auditRows = (action: string) => auditRowsOf(t, action);
  const stable = stableProblem;

  describe('signup', () => {
    it('creates an org with its owner, a data key, a unique slug, and audits both, once the email is verified', async () => {
      const ip = freshIp();
      const res = await call(t, ip, {
        method: 'POST',
        url: '/api/v1/auth/signup',
        payload: {
          email: '  Mixed.Case@Example.TEST ',
          password: STRONG_PASSWORD,
          name: ' Ada ',
          organization: 'Ærø Thérapie & Co',
        },
      });
      expect(res.statusCode).toBe(202);
      expect(res.json()).toEqual({ status: 'check_email' });
      const verified = await verifySignup(t, ip, await verificationToken(t, 'mixed.case@example.test'));
      expect(verified.statusCode, verified.body).toBe(201);
      const body = verified.json();
      expect(body).toEqual({
        user: { id: expect.any(String), email: 'mixed.case@example.test', name: 'Ada', role: 'owner' },
        organization: { id: expect.any(String), name: 'Ærø Thérapie & Co', slug: 'r-therapie-co' },
      });
      const again = await signup(t, { organization: 'Ærø Thérapie & Co' });
      const { rows } = await withSystem(t.db, (tx) =>
        tx.query<{ slug: string; keys: number }>(
          `SELECT o.slug, (SELECT count(*)::int FROM org_keys k WHERE k.org_id = o.id) AS keys
             FROM orgs o WHERE o.id = $1`,
          [again.orgId],
        ),
      );
      expect(rows[0]).toEqual({ slug: 'r-therapie-co-2', keys: 1 });
      const created = await auditRows('org.created');
      expect(created.some((r) => r.org_id === body.organization.id && r.actor_id === body.user.id)).toBe(
        true,
      );
      expect((await auditRows('user.signup')).some((r) => r.actor_id === body.user.id)).toBe(true);
      // The normalised email logs in, whatever case it is typed in.
      await login(t, { email: 'MIXED.case@example.test', password: STRONG_PASSWORD, ip });
    });

    it('answers a second signup with the same email like a new one (202) and creates no org for it', async () => {
      // Enumeration and verification in depth: test/auth-signup-verification.spec.ts.
      const a = await signup(t);
      const before = await withSystem(t.db, (tx) => tx.query('SELECT id FROM orgs'));
      const res = await call(t, freshIp(), {
        method: 'POST',
        url: '/api/v1/auth/signup',
        payload: { email: a.email.toUpperCase(), password: STRONG_PASSWORD, name: 'X', organization: 'Dup' },
      });
      expect(res.statusCode).toBe(202);
      expect(res.json()).toEqual({ status: 'check_email' });
      const after = await withSystem(t.db, (tx) => tx.query('SELECT id FROM orgs'));
      expect(after.rows.length).toBe(before.rows.length);
    });

    it.each([
      ['short1!', 'too_short'],
      ['x'.repeat(257), 'too_long'],
      ['qwertyuiop123', 'common'],
      ['QWERTYUIOP123', 'common'],
      ['1q2w3e4r5t6y', 'common'],
      ['jane.doe.rocks.2024', 'contains_email'],
      ['jane.doe@example.test', 'contains_email'],
    ])('rejects the password %j (422 weak_password, %s)', async (password, reason) => {
      const res = await call(t, freshIp(), {
        method: 'POST',
        url: '/api/v1/auth/signup',
        payload: { email: 'jane.doe@example.test', password, name: 'Jane', organization: 'Jane Co' },
      });
      expect(res.statusCode).toBe(422);
      expect(res.json()).toMatchObject({ code: 'weak_password', reason });
    });

    it('counts length in characters: 12 emoji are enough, 11 are not', async () => {
      const ok = await signup(t, { password: '🔐🌊🦉🍋🚲🎻🧭🌵🪁🐙🍄🛶' });
      expect(ok.userId).toBeTruthy();
      const res = await call(t, freshIp(), {
        method: 'POST',
        url: '/api/v1/auth/signup',
        payload: { email: 'emoji@example.test', password: '🔐'.repeat(11), name: 'E', organization: 'E' },
      });
      expect(res.json()).toMatchObject({ code: 'weak_password', reason: 'too_short' });
    });

    it.each([
      [{ email: 'not-an-email', password: STRONG_PASSWORD, name: 'N', organization: 'O' }],
      [{ email: 42, password: STRONG_PASSWORD, name: 'N', organization: 'O' }],
      [{ email: ['a@b.test'], password: STRONG_PASSWORD, name: 'N', organization: 'O' }],
      [{ email: 'a@b.test', password: { $ne: '' }, name: 'N', organization: 'O' }],
      [{ email: 'a@b.test', password: STRONG_PASSWORD, name: '', organization: 'O' }],
      [{ email: 'a@b.test', password: STRONG_PASSWORD, name: 'N', organization: 'O'.repeat(201) }],
      [{ email: `${'a'.repeat(320)}@b.test`, password: STRONG_PASSWORD, name: 'N', organization: 'O' }],
      [{ email: 'a@b.test', password: 'p'.repeat(2000), name: 'N', organization: 'O' }],
    ])('rejects malformed input %# with 400 validation_failed', async (payload) => {
      const res = await call(t, freshIp(), { method: 'POST', url: '/api/v1/auth/signup', payload });
      expect(res.statusCode).toBe(400);
      expect(res.json().code).toBe('validation_failed');
    });

    it('stores SQL metacharacters literally and derives a safe slug from them', async () => {
      const org = `Robert'); DROP TABLE users;-- "x" \\ %_`;
      const res = await call(t, freshIp(), {
        method: 'POST',
        url: '/api/v1/auth/signup',
        payload: {
          email: `o'brien+sql@example.test`,
          password: STRONG_PASSWORD,
          name: `O'Brien`,
          organization: org,
        },
      });
      expect(res.statusCode).toBe(202);
      const verified = await verifySignup(
        t,
        freshIp(),
        await verificationToken(t, `o'brien+sql@example.test`),
      );
      expect(verified.statusCode).toBe(201);
      expect(verified.json().organization).toMatchObject({ name: org, slug: 'robert-drop-table-users-x' });
      expect(verified.json().user).toMatchObject({ email: `o'brien+sql@example.test`, name: `O'Brien` });
      const { rows } = await withSystem(t.db, (tx) => tx.query('SELECT count(*)::int AS n FROM users'));
      expect((rows[0] as { n: number }).n).toBeGreaterThan(0);
    });

    it('rejects a body that is not JSON', async () => {
      const res = await call(t, freshIp(), {
        method: 'POST',
        url: '/api/v1/auth/signup',
        headers: { 'content-type': 'application/json' },
        payload: '{"email": "a@b.test", ',
      });
      expect(res.statusCode).toBe(400);
    });
  });

  describe('login', () => {
    let a: Account;
    beforeAll(async () => {
      a = await signup(t);
    });

    it('returns a bearer access token and a refresh token; /me answers with them', async () => {
      const tokens = await login(t, a);
      expect(tokens).toEqual({
        accessToken: expect.any(String),
        refreshToken: expect.any(String),
        expiresIn: 600,
        tokenType: 'Bearer',
      });
      const res = await me(a.ip, tokens.accessToken);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toEqual({
        user: { id: a.userId, email: a.email, name: 'Test User', role: 'owner' },
        organization: { id: a.orgId, name: `Org ${a.email}`, slug: expect.any(String) },
        role: 'owner',
        mfaEnabled: false,
      });
      // The refresh token is stored only as its hash.
      const { rows } = await withSystem(t.db, (tx) =>
        tx.query('SELECT 1 FROM refresh_tokens WHERE token_hash = $1', [tokens.refreshToken]),
      );
      expect(rows).toHaveLength(0);
    });

    it('answers an unknown email exactly like a wrong password, after a dummy hash verification', async () => {
      const dummy = vi.spyOn(t.services.hasher, 'verifyDummy');
      const unknown = await loginRaw(t, freshIp(), {
        email: 'nobody-here@example.test',
        password: a.password,
      });
      expect(dummy).toHaveBeenCalledTimes(1);
      dummy.mockRestore();
      const wrong = await loginRaw(t, freshIp(), { email: a.email, password: 'not the password at all' });
      expect(unknown.statusCode).toBe(401);
      expect(wrong.statusCode).toBe(401);
      expect(stable(unknown.body)).toEqual(stable(wrong.body));
      expect(stable(wrong.body)).toMatchObject({ code: 'invalid_credentials' });
      expect(unknown.headers['content-type']).toBe(wrong.headers['content-type']);
    });

    it('audits failures (unknown email on the platform chain) without the attempted password', async () => {
      const secret = 'Attempted-Secret-Password-77';
      await loginRaw(t, freshIp(), { email: 'ghost-user@example.test', password: secret });
      await loginRaw(t, freshIp(), { email: a.email, password: secret });
      const rows = await auditRows('auth.login_failed');
      expect(
        rows.find((r) => r.org_id === null && JSON.stringify(r.details).includes('ghost-user')),
      ).toBeTruthy();
      expect(rows.find((r) => r.org_id === a.orgId && r.actor_id === a.userId)).toBeTruthy();
      const all = await withSystem(t.db, (tx) => tx.query('SELECT details::text AS d FROM audit_log'));
      expect(JSON.stringify(all.rows)).not.toContain(secret);
      expect((await auditRows('auth.login')).some((r) => r.actor_id === a.userId)).toBe(true);
    });

    it('reports failures and successes to the login guard, keyed by the normalised email', async () => {
      const failed = vi.spyOn(t.services.loginGuard, 'failed');
      const succeeded = vi.spyOn(t.services.loginGuard, 'succeeded');
      const ip = freshIp();
      await loginRaw(t, ip, { email: a.email.toUpperCase(), password: 'wrong password here' });
      await loginRaw(t, ip, { email: a.email, password: a.password });
      expect(failed).toHaveBeenCalledWith(ip, a.email);
      expect(succeeded).toHaveBeenCalledWith(ip, a.email);
      failed.mockRestore();
      succeeded.mockRestore();
    });

    it('lets platform support accounts log in; their token carries no org', async () => {
      const ip = freshIp();
      const hash = await t.services.hasher.hash(STRONG_PASSWORD);
      await withSystem(t.db, (tx) =>
        tx.query(
          `INSERT INTO users (org_id, email, name, role, platform_role, password_hash)
           VALUES (NULL, 'helpdesk@sotto.test', 'Help Desk', NULL, 'support', $1)`,
          [hash],
        ),
      );
      const tokens = await login(t, { email: 'helpdesk@sotto.test', password: STRONG_PASSWORD, ip });
      expect((await t.services.tokens.verify(tokens.accessToken)).org).toBeNull();
      const res = await me(ip, tokens.accessToken);
      expect(res.statusCode).toBe(200);
      expect(res.json()).toMatchObject({
        organization: null,
        role: 'support',
        support: { platformRole: 'support' },
        user: { email: 'helpdesk@sotto.test', role: 'support' },
      });
      const devices = await authed(t, ip, tokens.accessToken, { url: '/api/v1/auth/devices' });
      expect(devices.json()).toHaveLength(1);
      const next = await refreshRaw(t, ip, tokens.refreshToken);
      expect(next.statusCode).toBe(200);
    });
  });
});
