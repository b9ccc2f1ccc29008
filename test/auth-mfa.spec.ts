import { afterAll, beforeAll, describe, expect, it, vi } from 'vitest';
import { withSystem } from '../src/db/tenant.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import {
  STRONG_PASSWORD,
  authed,
  freshIp,
  login,
  loginRaw,
  signup,
  totp,
  type Account,
  type Tokens,
} from './helpers/auth-client.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

const STEP = 30_000;

describe(`TOTP second factor and recovery codes (${backendLabel})`, () => {
  let t: TestApp;
  let clock: ManualClock;
  beforeAll(async () => {
    // Mid-step, so a code computed "now" is not at a step boundary.
    clock = new ManualClock(new Date('2030-06-01T12:00:10Z'));
    t = await startTestApp({ clock });
  });
  afterAll(async () => t?.close());

  const post = (a: Account, s: Tokens, url: string, payload?: object) =>
    authed(t, a.ip, s.accessToken, { method: 'POST', url, ...(payload ? { payload } : {}) });
  const disable = (a: Account, s: Tokens, code: string) =>
    authed(t, a.ip, s.accessToken, { method: 'DELETE', url: '/api/v1/auth/mfa/totp', payload: { code } });
  const userRow = (id: string) =>
    withSystem(t.db, async (tx) => {
      const { rows } = await tx.query<{ totp_enabled: boolean; totp_secret_enc: Uint8Array | null }>(
        'SELECT totp_enabled, totp_secret_enc FROM users WHERE id = $1',
        [id],
      );
      return rows[0]!;
    });
  const audits = (action: string, actorId: string) =>
    withSystem(t.db, async (tx) => {
      const { rows } = await tx.query<{ details: Record<string, unknown> }>(
        'SELECT details FROM audit_log WHERE action = $1 AND actor_id = $2 ORDER BY seq',
        [action, actorId],
      );
      return rows;
    });

  /** Enrols TOTP for a fresh account; returns the secret and recovery codes (clock moves a step). */
  async function enrolled() {
    const a = await signup(t);
    const s = await login(t, a);
    const start = (await post(a, s, '/api/v1/auth/mfa/totp')).json() as { secret: string };
    const confirm = await post(a, s, '/api/v1/auth/mfa/totp/confirm', {
      code: totp(start.secret, clock.now().getTime()),
    });
    expect(confirm.statusCode).toBe(200);
    clock.advance(STEP);
    return { a, s, secret: start.secret, recoveryCodes: confirm.json().recoveryCodes as string[] };
  }

  it('enrols: a pending encrypted secret, then confirmation with a code gives 10 hashed recovery codes', async () => {
    const a = await signup(t);
    const s = await login(t, a);
    const start = await post(a, s, '/api/v1/auth/mfa/totp');
    expect(start.statusCode).toBe(200);
    const { secret, otpauthUri } = start.json() as { secret: string; otpauthUri: string };
    expect(secret).toMatch(/^[A-Z2-7]{32}$/);
    expect(otpauthUri).toContain(`secret=${secret}`);
    expect(otpauthUri).toContain('issuer=Sotto');
    expect(otpauthUri).toContain(encodeURIComponent(a.email));
    // Stored encrypted, not yet enabled: logging in still needs no code.
    const pending = await userRow(a.userId);
    expect(pending.totp_enabled).toBe(false);
    expect(Buffer.from(pending.totp_secret_enc!).toString('latin1')).not.toContain(secret);
    await login(t, a);

    const wrong = await post(a, s, '/api/v1/auth/mfa/totp/confirm', { code: '000000' });
    expect(wrong.statusCode).toBe(422);
    expect(wrong.json().code).toBe('invalid_code');
    const ok = await post(a, s, '/api/v1/auth/mfa/totp/confirm', {
      code: totp(secret, clock.now().getTime()),
    });
    expect(ok.statusCode).toBe(200);
    const codes = ok.json().recoveryCodes as string[];
    expect(codes).toHaveLength(10);
    expect(new Set(codes).size).toBe(10);
    for (const c of codes) expect(c).toMatch(/^[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}-[a-z2-9]{4}$/);
    const stored = await withSystem(t.db, (tx) =>
      tx.query<{ code_hash: string }>('SELECT code_hash FROM recovery_codes WHERE user_id = $1', [a.userId]),
    );
    expect(stored.rows).toHaveLength(10);
    expect(JSON.stringify(stored.rows)).not.toContain(codes[0]!.replace(/-/g, ''));
    expect((await userRow(a.userId)).totp_enabled).toBe(true);
    expect((await authed(t, a.ip, s.accessToken, { url: '/api/v1/me' })).json().mfaEnabled).toBe(true);
    expect(await audits('mfa.totp_enabled', a.userId)).toHaveLength(1);
    // Enrolling again while enabled is refused.
    expect((await post(a, s, '/api/v1/auth/mfa/totp')).statusCode).toBe(409);
  });

  it('asks for a code only after the password is right', async () => {
    const { a } = await enrolled();
    const noCode = await loginRaw(t, freshIp(), { email: a.email, password: a.password });
    expect(noCode.statusCode).toBe(401);
    expect(noCode.json().code).toBe('mfa_required');
    const wrongPassword = await loginRaw(t, freshIp(), { email: a.email, password: 'wrong wrong wrong' });
    expect(wrongPassword.statusCode).toBe(401);
    expect(wrongPassword.json().code).toBe('invalid_credentials');
    const wrongBoth = await loginRaw(t, freshIp(), {
      email: a.email,
      password: 'wrong wrong wrong',
      code: '123456',
    });
    expect(wrongBoth.json().code).toBe('invalid_credentials');
  });

  it('accepts a current code once: a replayed or older code is refused', async () => {
    const { a, secret } = await enrolled();
    const code = totp(secret, clock.now().getTime());
    const first = await loginRaw(t, a.ip, { email: a.email, password: a.password, code });
    expect(first.statusCode).toBe(200);
    const replay = await loginRaw(t, a.ip, { email: a.email, password: a.password, code });
    expect(replay.statusCode).toBe(401);
    expect(replay.json().code).toBe('invalid_credentials');
    // The previous step's code is still inside the drift window, but older than the accepted one.
    const older = totp(secret, clock.now().getTime() - STEP);
    expect((await loginRaw(t, a.ip, { email: a.email, password: a.password, code: older })).statusCode).toBe(
      401,
    );
    clock.advance(STEP);
    const next = totp(secret, clock.now().getTime());
    expect((await loginRaw(t, a.ip, { email: a.email, password: a.password, code: next })).statusCode).toBe(
      200,
    );
    // A code from a different secret never works.
    const foreign = totp('JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP', clock.now().getTime());
    if (foreign !== next) {
      expect(
        (await loginRaw(t, a.ip, { email: a.email, password: a.password, code: foreign })).statusCode,
      ).toBe(401);
    }
  });

  it('accepts each recovery code once, in any case or spacing, and audits the use', async () => {
    const { a, recoveryCodes } = await enrolled();
    const [c1, c2] = recoveryCodes as [string, string];
    expect((await loginRaw(t, a.ip, { email: a.email, password: a.password, code: c1 })).statusCode).toBe(
      200,
    );
    expect((await loginRaw(t, a.ip, { email: a.email, password: a.password, code: c1 })).statusCode).toBe(
      401,
    );
    const typed = ` ${c2.toUpperCase().replace(/-/g, ' ')} `;
    expect((await loginRaw(t, a.ip, { email: a.email, password: a.password, code: typed })).statusCode).toBe(
      200,
    );
    const uses = await audits('mfa.recovery_code_used', a.userId);
    expect(uses.map((u) => u.details.remaining)).toEqual([9, 8]);
    // A recovery code of another account is useless here.
    const other = await enrolled();
    const foreign = other.recoveryCodes[0]!;
    expect(
      (await loginRaw(t, a.ip, { email: a.email, password: a.password, code: foreign })).statusCode,
    ).toBe(401);
  });

  it('disables only with a current code; afterwards login needs the password alone', async () => {
    const { a, s, secret, recoveryCodes } = await enrolled();
    expect((await disable(a, s, '999999')).statusCode).toBe(422);
    expect((await disable(a, s, 'abcd-efgh-ijkm-npqr')).statusCode).toBe(422);
    const missing = await authed(t, a.ip, s.accessToken, {
      method: 'DELETE',
      url: '/api/v1/auth/mfa/totp',
      payload: {},
    });
    expect(missing.statusCode).toBe(400);
    const ok = await disable(a, s, totp(secret, clock.now().getTime()));
    expect(ok.statusCode).toBe(204);
    expect(await userRow(a.userId)).toEqual({ totp_enabled: false, totp_secret_enc: null });
    expect(await audits('mfa.totp_disabled', a.userId)).toHaveLength(1);
    await login(t, a);
    // Recovery codes died with it.
    const { rows } = await withSystem(t.db, (tx) =>
      tx.query('SELECT 1 FROM recovery_codes WHERE user_id = $1', [a.userId]),
    );
    expect(rows).toHaveLength(0);
    expect((await disable(a, s, recoveryCodes[0]!)).statusCode).toBe(409);
  });

  it('disables with a recovery code too', async () => {
    const { a, s, recoveryCodes } = await enrolled();
    expect((await disable(a, s, recoveryCodes[3]!)).statusCode).toBe(204);
    expect((await userRow(a.userId)).totp_enabled).toBe(false);
  });

  it('reports wrong confirmation and disable codes to the login guard', async () => {
    const { a, s } = await enrolled();
    const failed = vi.spyOn(t.services.loginGuard, 'failed');
    await disable(a, s, '111111');
    expect(failed).toHaveBeenCalledWith(a.ip, a.email);
    failed.mockRestore();
  });

  it('lets a platform support account enrol, log in with a code and use recovery codes', async () => {
    const hash = await t.services.hasher.hash(STRONG_PASSWORD);
    const email = 'support-mfa@sotto.test';
    await withSystem(t.db, (tx) =>
      tx.query(
        `INSERT INTO users (org_id, email, name, role, platform_role, password_hash)
         VALUES (NULL, $1, 'Support', NULL, 'support', $2)`,
        [email, hash],
      ),
    );
    const ip = freshIp();
    const acct = { email, password: STRONG_PASSWORD, ip, userId: '', orgId: '' };
    const s = await login(t, acct);
    const { secret } = (await post(acct, s, '/api/v1/auth/mfa/totp')).json();
    const confirm = await post(acct, s, '/api/v1/auth/mfa/totp/confirm', {
      code: totp(secret, clock.now().getTime()),
    });
    expect(confirm.statusCode).toBe(200);
    clock.advance(STEP);
    expect((await loginRaw(t, ip, { email, password: STRONG_PASSWORD })).json().code).toBe('mfa_required');
    const code = totp(secret, clock.now().getTime());
    expect((await loginRaw(t, ip, { email, password: STRONG_PASSWORD, code })).statusCode).toBe(200);
    const rc = confirm.json().recoveryCodes[0];
    expect((await loginRaw(t, ip, { email, password: STRONG_PASSWORD, code: rc })).statusCode).toBe(200);
    expect((await loginRaw(t, ip, { email, password: STRONG_PASSWORD, code: rc })).statusCode).toBe(401);
  });

  it('rejects hostile code input', async () => {
    const { a } = await enrolled();
    const pending = await signup(t);
    const ps = await login(t, pending);
    expect((await post(pending, ps, '/api/v1/auth/mfa/totp')).statusCode).toBe(200);
    for (const code of ["' OR '1'='1", '1'.repeat(65), 123456, null, ['123456'], '']) {
      const confirm = await post(pending, ps, '/api/v1/auth/mfa/totp/confirm', { code });
      expect(typeof code === 'string' && code.length > 0 && code.length <= 64 ? 422 : 400).toBe(
        confirm.statusCode,
      );
      const res = await loginRaw(t, a.ip, { email: a.email, password: a.password, code });
      expect(res.statusCode === 400 || res.statusCode === 401).toBe(true);
    }
    expect((await userRow(pending.userId)).totp_enabled).toBe(false);
  });
});
