import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { signup } from './helpers/auth-client.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Brute-force protection through the real login route, with the production thresholds (10
 * consecutive failures per network+account, 10 failures per network in 15 minutes) and the
 * per-route default for /api/v1/auth/* (20 per minute per network).
 */
const PASSWORD = 'correct horse battery staple 7';
const ATTACKER = '198.51.100.23';
const OWNER_NET = '192.0.2.44';

describe(`brute-force protection through POST /api/v1/auth/login (${backendLabel})`, () => {
  let t: TestApp;
  const email = `victim-${Date.now()}@example.test`;

  beforeAll(async () => {
    t = await startTestApp();
    await signup(t, { email, password: PASSWORD, organization: 'Victim Co', ip: OWNER_NET });
  });
  afterAll(async () => t?.close());

  const login = (ip: string, password: string, account = email) =>
    t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/login',
      remoteAddress: ip,
      payload: { email: account, password },
    });

  it('answers 429 with Retry-After after repeated failures, while the owner elsewhere still logs in', async () => {
    for (let i = 0; i < 10; i++) {
      const res = await login(ATTACKER, `wrong password ${i}`);
      expect(res.statusCode).toBe(401);
      expect(res.json().code).toBe('invalid_credentials');
    }
    // Even the right password is refused from the blocked network: the block is checked first.
    const blocked = await login(ATTACKER, PASSWORD);
    expect(blocked.statusCode).toBe(429);
    expect(blocked.headers['content-type']).toContain('application/problem+json');
    expect(blocked.json().code).toBe('rate_limited');
    // The longest of the blocks that apply: the network+account block of an hour.
    const retryAfter = Number(blocked.headers['retry-after']);
    expect(retryAfter).toBeGreaterThan(3500);
    expect(retryAfter).toBeLessThanOrEqual(3600);

    // The owner, on their own network, is not locked out by the attacker.
    const owner = await login(OWNER_NET, PASSWORD);
    expect(owner.statusCode).toBe(200);
    expect(owner.json().accessToken).toEqual(expect.any(String));

    // The attacker's network earned a progressive block for every account (1 minute the first time).
    const other = await login(ATTACKER, 'whatever', 'someone-else@example.test');
    expect(other.statusCode).toBe(429);
    const otherWait = Number(other.headers['retry-after']);
    expect(otherWait).toBeGreaterThan(0);
    expect(otherWait).toBeLessThanOrEqual(60);
  });

  it('applies the tighter per-network default to /api/v1/auth/* routes', async () => {
    const ip = '203.0.113.200';
    const first = await t.app.inject({ url: '/api/v1/auth/csrf', remoteAddress: ip });
    expect(first.headers['ratelimit-policy']).toBe('20;w=60');
    for (let i = 1; i < 20; i++) {
      expect((await t.app.inject({ url: '/api/v1/auth/csrf', remoteAddress: ip })).statusCode).toBe(200);
    }
    const over = await t.app.inject({ url: '/api/v1/auth/csrf', remoteAddress: ip });
    expect(over.statusCode).toBe(429);
    expect(Number(over.headers['retry-after'])).toBeGreaterThan(0);
    // The login route has its own budget.
    expect((await login(ip, PASSWORD)).statusCode).toBe(200);
  });
});
