import { createHmac, createPublicKey, type JsonWebKey } from 'node:crypto';
import { SignJWT, exportJWK, generateKeyPair, type JWK } from 'jose';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../src/db/tenant.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { TokenService } from '../src/services/auth/token.service.js';
import { authed, freshIp, login, signup, type Account, type Tokens } from './helpers/auth-client.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

const b64 = (v: object | Buffer) =>
  (Buffer.isBuffer(v) ? v : Buffer.from(JSON.stringify(v))).toString('base64url');

/**
 * Forged access tokens. Each one names a real, live session of a real user, so the only thing
 * wrong with it is the forgery itself; every one must be refused with 401.
 */
describe(`forged and expired access tokens (${backendLabel})`, () => {
  let t: TestApp;
  let a: Account;
  let victim: Account;
  let session: Tokens;
  let header: { alg: string; kid: string; typ: string };
  let claims: Record<string, unknown>;
  let publicJwk: JWK;
  const issuer = 'https://sotto.test';
  const audience = 'https://sotto.test/api';

  beforeAll(async () => {
    t = await startTestApp();
    a = await signup(t);
    victim = await signup(t);
    session = await login(t, a);
    const [h, p] = session.accessToken.split('.') as [string, string];
    header = JSON.parse(Buffer.from(h, 'base64url').toString());
    claims = JSON.parse(Buffer.from(p, 'base64url').toString());
    const { rows } = await withSystem(t.db, (tx) =>
      tx.query<{ public_jwk: JWK }>('SELECT public_jwk FROM signing_keys WHERE kid = $1', [header.kid]),
    );
    publicJwk = rows[0]!.public_jwk;
  });
  afterAll(async () => t?.close());

  async function expectRefused(token: string, code = 'unauthenticated') {
    const ip = freshIp();
    for (const url of ['/api/v1/me', '/api/v1/auth/devices']) {
      const res = await authed(t, ip, token, { url });
      expect(res.statusCode, url).toBe(401);
      expect(res.json().code, url).toBe(code);
    }
  }

  const hmac = (key: Buffer | string, input: string) =>
    createHmac('sha256', key).update(input).digest('base64url');

  it('accepts the genuine token (control)', async () => {
    expect((await authed(t, a.ip, session.accessToken, { url: '/api/v1/me' })).statusCode).toBe(200);
    expect(header).toMatchObject({ alg: 'EdDSA', typ: 'at+jwt' });
  });

  it('refuses alg "none" (with and without a trailing signature)', async () => {
    for (const alg of ['none', 'None', 'NONE']) {
      const unsigned = `${b64({ ...header, alg })}.${b64(claims)}.`;
      await expectRefused(unsigned);
      await expectRefused(`${unsigned}${session.accessToken.split('.')[2]}`);
    }
  });

  it('refuses HS256 tokens MACed with the public key (algorithm confusion)', async () => {
    const pem = createPublicKey({ key: publicJwk as JsonWebKey, format: 'jwk' })
      .export({ type: 'spki', format: 'pem' })
      .toString();
    const keys: (Buffer | string)[] = [
      pem,
      JSON.stringify(publicJwk),
      Buffer.from(publicJwk.x!, 'base64url'),
      publicJwk.x!,
    ];
    for (const key of keys) {
      for (const alg of ['HS256', 'HS512']) {
        const input = `${b64({ ...header, alg })}.${b64(claims)}`;
        await expectRefused(`${input}.${hmac(key, input)}`);
      }
    }
  });

  it('refuses a key carried in the token: embedded jwk, jku, x5u, x5c', async () => {
    const attacker = await generateKeyPair('EdDSA', { crv: 'Ed25519', extractable: true });
    const attackerJwk = await exportJWK(attacker.publicKey);
    const sign = (extra: Record<string, unknown>) =>
      new SignJWT(claims)
        .setProtectedHeader({ alg: 'EdDSA', typ: 'at+jwt', ...extra })
        .sign(attacker.privateKey);
    await expectRefused(await sign({ jwk: attackerJwk }));
    await expectRefused(await sign({ kid: header.kid, jwk: attackerJwk }));
    await expectRefused(await sign({ kid: header.kid, jku: 'https://attacker.invalid/jwks.json' }));
    await expectRefused(await sign({ kid: header.kid, x5u: 'https://attacker.invalid/cert.pem' }));
    await expectRefused(await sign({ kid: header.kid, x5c: ['MIIB'] }));
    // Same key id, attacker's signature: the stored public key does not verify it.
    await expectRefused(await sign({ kid: header.kid }));
    await expectRefused(await sign({ kid: 'attacker-key' }));
  });

  it('refuses other algorithms even with a well-formed signature (ES256, RS256)', async () => {
    const es = await generateKeyPair('ES256');
    await expectRefused(
      await new SignJWT(claims)
        .setProtectedHeader({ alg: 'ES256', kid: header.kid, typ: 'at+jwt' })
        .sign(es.privateKey),
    );
    const rs = await generateKeyPair('RS256');
    await expectRefused(
      await new SignJWT(claims)
        .setProtectedHeader({ alg: 'RS256', kid: header.kid, typ: 'at+jwt' })
        .sign(rs.privateKey),
    );
  });

  it('refuses tokens signed with the real key for another issuer or audience, or of another type', async () => {
    const mint = async (opts: { issuer: string; audience: string }) => {
      const other = new TokenService(t.db, t.services.keys, t.services.clock, { ...opts, ttlSeconds: 600 });
      await other.init();
      return other.issue({ sub: a.userId, sid: claims.sid as string, org: a.orgId });
    };
    // Control: the same construction with the right issuer and audience is accepted.
    expect((await authed(t, a.ip, await mint({ issuer, audience }), { url: '/api/v1/me' })).statusCode).toBe(
      200,
    );
    await expectRefused(await mint({ issuer: 'https://evil.invalid', audience }));
    await expectRefused(await mint({ issuer, audience: 'https://sotto.test/other' }));
    await expectRefused(await mint({ issuer: 'https://sotto.test/', audience }));
  });

  it('refuses an expired token with token_expired', async () => {
    const past = new ManualClock(new Date(Date.now() - 11 * 60_000));
    const old = new TokenService(t.db, t.services.keys, past, { issuer, audience, ttlSeconds: 600 });
    await old.init();
    await expectRefused(
      await old.issue({ sub: a.userId, sid: claims.sid as string, org: a.orgId }),
      'token_expired',
    );
  });

  it('refuses a tampered payload (another user, another org, later expiry)', async () => {
    const [h, , s] = session.accessToken.split('.') as [string, string, string];
    for (const change of [
      { sub: victim.userId },
      { org: victim.orgId },
      { exp: (claims.exp as number) + 86_400 },
      { sid: '00000000-0000-4000-8000-000000000000' },
    ]) {
      await expectRefused(`${h}.${b64({ ...claims, ...change })}.${s}`);
    }
    // Flipping one character of the signature.
    const flipped = s.startsWith('A') ? `B${s.slice(1)}` : `A${s.slice(1)}`;
    await expectRefused(`${h}.${session.accessToken.split('.')[1]}.${flipped}`);
  });

  it('refuses malformed tokens and headers', async () => {
    for (const token of ['', 'a', 'a.b', 'a.b.c', `${'x'.repeat(5000)}.y.z`, "' OR 1=1 --"]) {
      const res = await t.app.inject({ url: '/api/v1/me', headers: { authorization: `Bearer ${token}` } });
      expect(res.statusCode).toBe(401);
    }
    const basic = await t.app.inject({ url: '/api/v1/me', headers: { authorization: 'Basic dXNlcjpwYXNz' } });
    expect(basic.statusCode).toBe(401);
  });
});
