import { randomUUID } from 'node:crypto';
import Fastify, { type FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLogger } from '../src/http/logger.js';
import { registerErrorHandler } from '../src/http/plugins/error-handler.js';
import { rateLimitPlugin, type RateLimitPolicy } from '../src/http/plugins/rate-limit.js';
import { networkKey, RateLimitStore } from '../src/adapters/redis/rate-limit.adapter.js';
import { backendLabel, startTestApp, usingRedis, type TestApp } from './helpers/test-app.js';

/**
 * The per-route rate-limit plugin on a small Fastify app (so limits can be tiny), then on the real
 * app. Counters live in the real Redis when REDIS_URL is set, in memory otherwise.
 */
const prefix = `sotto-test-rl-${randomUUID()}:`;
let redis: Redis | undefined;

async function limitedApp(policy: Partial<RateLimitPolicy>): Promise<FastifyInstance> {
  const limits = new RateLimitStore({
    redis,
    keyPrefix: `${prefix}${randomUUID()}:`,
    logger: createLogger('silent'),
  });
  const app = Fastify();
  registerErrorHandler(app);
  await app.register(rateLimitPlugin, { limits, policy });
  const ok = async () => ({ ok: true });
  app.get('/api/v1/things', { config: { rateLimit: { points: 3, durationSeconds: 60 } } }, ok);
  app.get('/api/v1/other', { config: { rateLimit: { points: 3, durationSeconds: 60 } } }, ok);
  app.get('/api/v1/plain', ok);
  app.post('/api/v1/auth/thing', ok);
  app.get('/api/v1/exempt', { config: { rateLimit: false } }, ok);
  app.get('/outside', ok);
  app.get(
    '/api/v1/mine',
    {
      // Stands in for authentication: the real auth plugin sets req.actor the same way.
      preHandler: async (req) => {
        const user = req.headers['x-test-user'];
        if (typeof user === 'string') req.actor = { userId: user } as NonNullable<typeof req.actor>;
      },
      config: { rateLimit: { points: 2, durationSeconds: 60, key: 'user' } },
    },
    ok,
  );
  await app.ready();
  return app;
}

beforeAll(async () => {
  if (usingRedis) {
    redis = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 2 });
    await redis.ping();
  }
});

afterAll(async () => {
  if (!redis) return;
  const keys = await redis.keys(`${prefix}*`);
  if (keys.length > 0) await redis.del(...keys);
  redis.disconnect();
});

describe(`rate-limit plugin (${backendLabel || 'memory'})`, () => {
  it('answers 429 problem+json with Retry-After and RateLimit headers once the limit is spent', async () => {
    const app = await limitedApp({});
    const remaining: string[] = [];
    for (let i = 0; i < 3; i++) {
      const res = await app.inject({ url: '/api/v1/things' });
      expect(res.statusCode).toBe(200);
      expect(res.headers['ratelimit-limit']).toBe('3');
      expect(res.headers['ratelimit-policy']).toBe('3;w=60');
      remaining.push(String(res.headers['ratelimit-remaining']));
    }
    expect(remaining).toEqual(['2', '1', '0']);
    const res = await app.inject({ url: '/api/v1/things' });
    expect(res.statusCode).toBe(429);
    expect(res.headers['content-type']).toContain('application/problem+json');
    const retryAfter = Number(res.headers['retry-after']);
    expect(retryAfter).toBeGreaterThanOrEqual(1);
    expect(retryAfter).toBeLessThanOrEqual(60);
    expect(res.headers['ratelimit-remaining']).toBe('0');
    expect(Number(res.headers['ratelimit-reset'])).toBeGreaterThanOrEqual(1);
    expect(res.json()).toMatchObject({ status: 429, code: 'rate_limited', retryAfterSeconds: retryAfter });
    await app.close();
  });

  it('counts each route and each client network separately', async () => {
    const app = await limitedApp({});
    for (let i = 0; i < 3; i++) await app.inject({ url: '/api/v1/things' });
    expect((await app.inject({ url: '/api/v1/things' })).statusCode).toBe(429);
    // Another route, same client: its own budget.
    const other = await app.inject({ url: '/api/v1/other' });
    expect(other.statusCode).toBe(200);
    expect(other.headers['ratelimit-remaining']).toBe('2');
    // Same route, another client.
    expect((await app.inject({ url: '/api/v1/things', remoteAddress: '203.0.113.9' })).statusCode).toBe(200);
    await app.close();
  });

  it('applies the api default to undeclared /api routes, a tighter one under /api/v1/auth/, none elsewhere', async () => {
    const app = await limitedApp({
      api: { points: 4, durationSeconds: 60 },
      auth: { points: 2, durationSeconds: 30 },
    });
    const plain = await app.inject({ url: '/api/v1/plain' });
    expect(plain.headers['ratelimit-policy']).toBe('4;w=60');
    const auth = await app.inject({ method: 'POST', url: '/api/v1/auth/thing' });
    expect(auth.headers['ratelimit-policy']).toBe('2;w=30');
    await app.inject({ method: 'POST', url: '/api/v1/auth/thing' });
    expect((await app.inject({ method: 'POST', url: '/api/v1/auth/thing' })).statusCode).toBe(429);
    for (let i = 0; i < 3; i++) expect((await app.inject({ url: '/api/v1/plain' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/api/v1/plain' })).statusCode).toBe(429);
    for (let i = 0; i < 6; i++) {
      const exempt = await app.inject({ url: '/api/v1/exempt' });
      expect(exempt.statusCode).toBe(200);
      expect(exempt.headers['ratelimit-limit']).toBeUndefined();
      expect((await app.inject({ url: '/outside' })).statusCode).toBe(200);
    }
    await app.close();
  });

  it('limits unknown /api paths too (scanners), with one shared budget', async () => {
    const app = await limitedApp({ api: { points: 2, durationSeconds: 60 } });
    expect((await app.inject({ url: '/api/v1/nope-1' })).statusCode).toBe(404);
    expect((await app.inject({ url: '/api/v1/nope-2' })).statusCode).toBe(404);
    const res = await app.inject({ url: '/api/v1/nope-3' });
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBeDefined();
    await app.close();
  });

  it('keys per-user limits on the authenticated user across networks, on top of the per-network default', async () => {
    const app = await limitedApp({ api: { points: 100, durationSeconds: 60 } });
    const as = (user: string, ip: string) =>
      app.inject({ url: '/api/v1/mine', headers: { 'x-test-user': user }, remoteAddress: ip });
    expect((await as('u1', '198.51.100.1')).statusCode).toBe(200);
    const second = await as('u1', '198.51.100.2');
    expect(second.statusCode).toBe(200);
    // The tighter (per-user) limit is the one reported.
    expect(second.headers['ratelimit-limit']).toBe('2');
    expect(second.headers['ratelimit-remaining']).toBe('0');
    expect((await as('u1', '198.51.100.3')).statusCode).toBe(429);
    expect((await as('u2', '198.51.100.1')).statusCode).toBe(200);
    await app.close();
  });

  it('counts an IPv6 client per /64 and IPv4-mapped addresses as IPv4', async () => {
    expect(networkKey('2001:db8:1:2:aaaa::1')).toBe('2001:db8:1:2::/64');
    expect(networkKey('2001:db8:1:2:ffff:ffff:ffff:ffff')).toBe('2001:db8:1:2::/64');
    expect(networkKey('2001:db8::1')).toBe('2001:db8:0:0::/64');
    expect(networkKey('::ffff:192.0.2.7')).toBe('192.0.2.7');
    expect(networkKey('192.0.2.7')).toBe('192.0.2.7');
    const app = await limitedApp({});
    for (const ip of ['2001:db8:5:6::1', '2001:db8:5:6::2', '2001:db8:5:6:1::9']) {
      expect((await app.inject({ url: '/api/v1/things', remoteAddress: ip })).statusCode).toBe(200);
    }
    expect((await app.inject({ url: '/api/v1/things', remoteAddress: '2001:db8:5:6::77' })).statusCode).toBe(
      429,
    );
    expect((await app.inject({ url: '/api/v1/things', remoteAddress: '2001:db8:5:7::1' })).statusCode).toBe(
      200,
    );
    await app.close();
  });
});

describe(`rate limits in the real app (${backendLabel})`, () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => t?.close());

  it('limits real /api routes per route with the default policy and leaves /healthz alone', async () => {
    const docs = await t.app.inject({ url: '/api/docs/json' });
    expect(docs.statusCode).toBe(200);
    expect(docs.headers['ratelimit-policy']).toBe('300;w=60');
    expect(docs.headers['ratelimit-remaining']).toBe('299');
    const health = await t.app.inject({ url: '/healthz' });
    expect(health.headers['ratelimit-limit']).toBeUndefined();
  });
});

describe(`two app instances on one store (${backendLabel})`, () => {
  const shared = `sotto-test-shared-${randomUUID()}:`;
  let a: TestApp;
  let b: TestApp;
  beforeAll(async () => {
    a = await startTestApp({ env: { SOTTO_REDIS_PREFIX: shared } });
    b = await startTestApp({ env: { SOTTO_REDIS_PREFIX: shared } });
    // Limiters skip Redis while the client is still connecting; start counting once both are ready.
    await Promise.all([a.services.redis?.ping(), b.services.redis?.ping()]);
  });
  afterAll(async () => {
    if (a?.services.redis) {
      const keys = await a.services.redis.keys(`${shared}*`);
      if (keys.length > 0) await a.services.redis.del(...keys);
    }
    await a?.close();
    await b?.close();
  });

  it(
    usingRedis
      ? 'adds up the counts of both instances through Redis'
      : 'counts per process without Redis (the embedded single-node default)',
    async () => {
      const url = '/api/docs/json';
      expect((await a.app.inject({ url })).headers['ratelimit-remaining']).toBe('299');
      expect((await b.app.inject({ url })).headers['ratelimit-remaining']).toBe(usingRedis ? '298' : '299');
      // Spend the rest alternately on both; with Redis the 301st request overall is refused.
      for (let i = 0; i < 298; i++) {
        const res = await (i % 2 === 0 ? a : b).app.inject({ url });
        expect(res.statusCode).toBe(200);
      }
      const last = await a.app.inject({ url });
      expect(last.statusCode).toBe(usingRedis ? 429 : 200);
      if (usingRedis) expect(last.headers['retry-after']).toBeDefined();
    },
  );
});
