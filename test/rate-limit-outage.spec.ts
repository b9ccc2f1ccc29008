import { randomUUID } from 'node:crypto';
import { createServer, type Server, type Socket } from 'node:net';
import { Writable } from 'node:stream';
import Fastify from 'fastify';
import { Redis, type RedisOptions } from 'ioredis';
import { afterAll, describe, expect, it } from 'vitest';
import { AppError } from '../src/domain/errors.js';
import { createLogger } from '../src/http/logger.js';
import { registerErrorHandler } from '../src/http/plugins/error-handler.js';
import { rateLimitPlugin } from '../src/http/plugins/rate-limit.js';
import { RateLimitStore, type LimiterSpec } from '../src/adapters/redis/rate-limit.adapter.js';
import { RateLimitedLoginGuard } from '../src/services/auth/login-guard.service.js';
import { usingRedis } from './helpers/test-app.js';

/**
 * When Redis goes away the limits keep working from process memory (rate-limiter-flexible's
 * insurance limiter): requests are neither let through unlimited nor failed, nothing crashes, and
 * a warning says so. Redis outages are made for real: a closed port, a server that accepts
 * connections and never answers, and (with REDIS_URL) the real Redis connection dropped mid-run.
 */
const spec: LimiterSpec = { name: 'outage', points: 3, durationSeconds: 60 };
const cleanup: (() => Promise<void> | void)[] = [];

afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

function capturingLogger() {
  const lines: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      lines.push(String(chunk));
      done();
    },
  });
  return { logger: createLogger('info', sink), lines };
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  if (!address || typeof address === 'string') throw new Error('no port');
  return address.port;
}

/** Takes one RESP command (an array of bulk strings) off the front of `buf`, if complete. */
function takeCommand(buf: string): { rest: string } | undefined {
  const header = /^\*(\d+)\r\n/.exec(buf);
  if (!header) return undefined;
  let at = header[0].length;
  for (let i = 0; i < Number(header[1]); i++) {
    const bulk = /^\$(\d+)\r\n/.exec(buf.slice(at));
    if (!bulk) return undefined;
    at += bulk[0].length + Number(bulk[1]) + 2;
    if (at > buf.length) return undefined;
  }
  return { rest: buf.slice(at) };
}

async function closedPort(): Promise<number> {
  const server = createServer();
  const port = await listen(server);
  await new Promise((resolve) => server.close(resolve));
  return port;
}

function quietRedis(url: string, extra: RedisOptions = {}): Redis {
  const client = new Redis(url, { maxRetriesPerRequest: 1, retryStrategy: () => 50, ...extra });
  client.on('error', () => undefined); // the outage is the point of these tests
  cleanup.push(() => client.disconnect());
  return client;
}

async function expectLimitStillEnforced(limits: RateLimitStore, key: string) {
  for (let i = 0; i < 3; i++) expect((await limits.consume(spec, key)).allowed).toBe(true);
  const over = await limits.consume(spec, key);
  expect(over.allowed).toBe(false);
  expect(over.msBeforeNext).toBeGreaterThan(0);
}

describe('Redis outage: limits fall back to memory (insurance)', () => {
  it('keeps enforcing limits and logs a warning when Redis refuses connections', async () => {
    const redis = quietRedis(`redis://127.0.0.1:${await closedPort()}`);
    const { logger, lines } = capturingLogger();
    const limits = new RateLimitStore({ redis, keyPrefix: `t-${randomUUID()}:`, logger });
    expect(limits.backend).toBe('redis');
    await expectLimitStillEnforced(limits, '192.0.2.1');
    const warnings = lines.filter((l) => l.includes('rate-limit store (Redis) unavailable'));
    // Logged, but not once per request.
    expect(warnings).toHaveLength(1);
    expect(JSON.parse(warnings[0]!)).toMatchObject({ level: 40, limiter: 'outage' });
  });

  it('answers from memory within the timeout when Redis is connected but stops replying', async () => {
    // A stand-in Redis that completes the client's handshake, then goes silent (a stalled server
    // or a network partition that leaves the TCP connection up).
    let silent = false;
    const sockets: Socket[] = [];
    const stalled = createServer((socket) => {
      sockets.push(socket);
      let buffered = '';
      socket.on('data', (chunk) => {
        buffered += chunk.toString('latin1');
        let parsed: { rest: string } | undefined;
        while ((parsed = takeCommand(buffered))) {
          buffered = parsed.rest;
          if (!silent) socket.write('+OK\r\n');
        }
      });
    });
    const port = await listen(stalled);
    cleanup.push(
      () =>
        new Promise<void>((resolve) => {
          for (const s of sockets) s.destroy();
          stalled.close(() => resolve());
        }),
    );
    const redis = quietRedis(`redis://127.0.0.1:${port}`, { enableReadyCheck: false });
    await new Promise((resolve) => (redis.status === 'ready' ? resolve(null) : redis.once('ready', resolve)));
    silent = true;
    const { logger, lines } = capturingLogger();
    const limits = new RateLimitStore({
      redis,
      keyPrefix: `t-${randomUUID()}:`,
      logger,
      timeoutMs: 100,
    });
    const started = Date.now();
    await expectLimitStillEnforced(limits, '192.0.2.2');
    // Four operations, each cut off at ~100 ms rather than waiting on the silent server.
    const elapsed = Date.now() - started;
    expect(elapsed).toBeGreaterThanOrEqual(400);
    expect(elapsed).toBeLessThan(2000);
    expect(redis.status).toBe('ready');
    expect(lines.some((l) => l.includes('rate-limit store (Redis) unavailable'))).toBe(true);
  });

  it('serves HTTP through an outage: 200s, then 429 at the limit, never 500', async () => {
    const redis = quietRedis(`redis://127.0.0.1:${await closedPort()}`);
    const limits = new RateLimitStore({
      redis,
      keyPrefix: `t-${randomUUID()}:`,
      logger: createLogger('silent'),
    });
    const app = Fastify();
    registerErrorHandler(app);
    await app.register(rateLimitPlugin, { limits, policy: { api: { points: 2, durationSeconds: 60 } } });
    app.get('/api/v1/x', async () => ({ ok: true }));
    await app.ready();
    cleanup.push(() => app.close());
    expect((await app.inject({ url: '/api/v1/x' })).statusCode).toBe(200);
    expect((await app.inject({ url: '/api/v1/x' })).statusCode).toBe(200);
    const res = await app.inject({ url: '/api/v1/x' });
    expect(res.statusCode).toBe(429);
    expect(res.headers['retry-after']).toBeDefined();
  });

  it('keeps the login guard working through an outage', async () => {
    const redis = quietRedis(`redis://127.0.0.1:${await closedPort()}`);
    const limits = new RateLimitStore({
      redis,
      keyPrefix: `t-${randomUUID()}:`,
      logger: createLogger('silent'),
    });
    const guard = new RateLimitedLoginGuard(limits, { pairFailures: 2 });
    for (let i = 0; i < 2; i++) {
      await guard.check('192.0.2.3', 'a@example.com');
      await guard.failed('192.0.2.3', 'a@example.com');
    }
    const err = await guard.check('192.0.2.3', 'a@example.com').catch((e: unknown) => e);
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('rate_limited');
    await guard.succeeded('192.0.2.4', 'a@example.com');
  });

  it.runIf(usingRedis)(
    'switches to memory when the real Redis connection drops mid-run, and back when it returns (runs only with REDIS_URL)',
    async () => {
      const redis = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 1 });
      redis.on('error', () => undefined);
      const prefix = `sotto-test-outage-${randomUUID()}:`;
      cleanup.push(async () => {
        const admin = new Redis(process.env.REDIS_URL!);
        const keys = await admin.keys(`${prefix}*`);
        if (keys.length > 0) await admin.del(...keys);
        admin.disconnect();
      });
      await redis.ping();
      const { logger, lines } = capturingLogger();
      const limits = new RateLimitStore({ redis, keyPrefix: prefix, logger });
      const key = '192.0.2.5';
      expect((await limits.consume(spec, key)).consumed).toBe(1);
      expect((await limits.consume(spec, key)).consumed).toBe(2);
      expect(await redis.get(`${prefix}rl:outage:${key}`)).toBe('2');

      redis.disconnect(); // the outage
      // Memory starts afresh (counts are not copied) but still enforces the limit.
      await expectLimitStillEnforced(limits, key);
      expect(lines.some((l) => l.includes('rate-limit store (Redis) unavailable'))).toBe(true);

      await redis.connect(); // recovery: the Redis count resumes where it was
      const after = await limits.consume(spec, key);
      expect(after.consumed).toBe(3);
      expect(after.allowed).toBe(true);
      expect((await limits.consume(spec, key)).allowed).toBe(false);
      redis.disconnect();
    },
  );
});
