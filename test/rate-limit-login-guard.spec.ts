import { randomUUID } from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError } from '../src/domain/errors.js';
import { createLogger } from '../src/http/logger.js';
import { RateLimitStore } from '../src/adapters/redis/rate-limit.adapter.js';
import {
  defaultLoginGuardOptions,
  RateLimitedLoginGuard,
  type LoginGuardOptions,
} from '../src/services/auth/login-guard.service.js';
import { backendLabel, usingRedis } from './helpers/test-app.js';

/**
 * The brute-force guard itself, with small thresholds. Against the real Redis when REDIS_URL is
 * set, in memory otherwise. Thresholds not under test are set out of reach.
 */
const prefix = `sotto-test-guard-${randomUUID()}:`;
let redis: Redis | undefined;

const relaxed: LoginGuardOptions = {
  ...defaultLoginGuardOptions,
  ipDailyFailures: 1000,
  ipBurstFailures: 1000,
  pairFailures: 1000,
  accountFailures: 1000,
};

function guard(options: Partial<LoginGuardOptions>): RateLimitedLoginGuard {
  const limits = new RateLimitStore({
    redis,
    keyPrefix: `${prefix}${randomUUID()}:`,
    logger: createLogger('silent'),
  });
  return new RateLimitedLoginGuard(limits, { ...relaxed, ...options });
}

/** The retry-after seconds of a refused check, or null when the check passed. */
async function refusal(g: RateLimitedLoginGuard, ip: string, account: string): Promise<number | null> {
  try {
    await g.check(ip, account);
    return null;
  } catch (err) {
    expect(err).toBeInstanceOf(AppError);
    expect((err as AppError).code).toBe('rate_limited');
    const seconds = (err as AppError).details?.retryAfterSeconds;
    expect(Number.isInteger(seconds)).toBe(true);
    return seconds as number;
  }
}

async function failTimes(g: RateLimitedLoginGuard, n: number, ip: string, account: (i: number) => string) {
  for (let i = 0; i < n; i++) {
    expect(await refusal(g, ip, account(i))).toBeNull();
    await g.failed(ip, account(i));
  }
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

describe(`login guard (${usingRedis ? 'Redis' : 'memory'}${backendLabel ? `; ${backendLabel}` : ''})`, () => {
  it('blocks an IP+account pair after consecutive failures, without blocking that account elsewhere', async () => {
    const g = guard({ pairFailures: 3, pairBlockSeconds: 600 });
    const attacker = '198.51.100.66';
    const user = '192.0.2.10';
    await failTimes(g, 3, attacker, () => 'Victim@Example.com');
    const wait = await refusal(g, attacker, 'victim@example.com');
    expect(wait).toBeGreaterThan(590);
    expect(wait).toBeLessThanOrEqual(600);
    // The real user, from their own network, is not locked out by the attacker's failures.
    expect(await refusal(g, user, 'victim@example.com')).toBeNull();
    // The attacker's network is not blocked for other accounts by the pair counter.
    expect(await refusal(g, attacker, 'someone-else@example.com')).toBeNull();
  });

  it('clears the consecutive-failure count of a pair on success', async () => {
    const g = guard({ pairFailures: 3 });
    const ip = '192.0.2.20';
    await failTimes(g, 2, ip, () => 'ann@example.com');
    await g.succeeded(ip, 'ann@example.com');
    await failTimes(g, 2, ip, () => 'ann@example.com');
    expect(await refusal(g, ip, 'ann@example.com')).toBeNull();
    await g.failed(ip, 'ann@example.com');
    expect(await refusal(g, ip, 'ann@example.com')).not.toBeNull();
  });

  it('blocks an IP that fails slowly across many accounts (daily counter)', async () => {
    const g = guard({ ipDailyFailures: 5, ipDailyBlockSeconds: 3600 });
    const ip = '203.0.113.50';
    await failTimes(g, 5, ip, (i) => `user${i}@example.com`);
    const wait = await refusal(g, ip, 'fresh@example.com');
    expect(wait).toBeGreaterThan(3500);
    expect(await refusal(g, '203.0.113.51', 'fresh@example.com')).toBeNull();
  });

  it('gives an IP that keeps failing growing blocks: the second block is longer than the first', async () => {
    const g = guard({ ipBurstFailures: 2, penaltyBaseSeconds: 1, penaltyMaxSeconds: 3 });
    const ip = '203.0.113.77';
    const account = (i: number) => `spray${i}@example.com`;

    await failTimes(g, 2, ip, account);
    const first = await refusal(g, ip, 'any@example.com');
    expect(first).toBe(1);
    await sleep(1150);

    await failTimes(g, 2, ip, account);
    const second = await refusal(g, ip, 'any@example.com');
    expect(second).toBe(2);
    expect(second!).toBeGreaterThan(first!);
    await sleep(2150);

    await failTimes(g, 2, ip, account);
    // 4 s would be next; the cap holds it at 3.
    expect(await refusal(g, ip, 'any@example.com')).toBe(3);
    // Other networks are untouched throughout.
    expect(await refusal(g, '203.0.113.78', 'any@example.com')).toBeNull();
  });

  it('does not let a success wash away the penalties of the IP', async () => {
    const g = guard({ ipBurstFailures: 2, penaltyBaseSeconds: 60 });
    const ip = '203.0.113.90';
    await failTimes(g, 2, ip, (i) => `target${i}@example.com`);
    await g.succeeded(ip, 'attackers-own@example.com');
    expect(await refusal(g, ip, 'attackers-own@example.com')).not.toBeNull();
  });

  it('throttles (never locks) an account sprayed from many networks; known networks pass', async () => {
    const g = guard({ accountFailures: 4, accountThrottleSeconds: 1 });
    const account = 'popular@example.com';
    const home = '192.0.2.200';
    await g.check(home, account);
    await g.succeeded(home, account);
    for (let i = 0; i < 4; i++) {
      const ip = `198.51.100.${100 + i}`;
      await g.check(ip, account);
      await g.failed(ip, account);
    }
    // New networks share one attempt per throttle window.
    expect(await refusal(g, '198.51.100.150', account)).toBeNull();
    expect(await refusal(g, '198.51.100.151', account)).toBe(1);
    // The owner's usual network is never throttled.
    for (let i = 0; i < 5; i++) expect(await refusal(g, home, account)).toBeNull();
    // Other accounts are not affected.
    expect(await refusal(g, '198.51.100.151', 'other@example.com')).toBeNull();
    // A throttle, not a lockout: the next window admits an attempt again.
    await sleep(1100);
    expect(await refusal(g, '198.51.100.152', account)).toBeNull();
  });

  it.runIf(usingRedis)(
    'keeps email addresses out of Redis key names (runs only with REDIS_URL)',
    async () => {
      const g = guard({});
      await g.failed('192.0.2.99', 'Secret.Person@Example.com');
      const keys = await redis!.keys(`${prefix}*`);
      expect(keys.length).toBeGreaterThan(0);
      expect(keys.join('\n').toLowerCase()).not.toContain('secret.person');
    },
  );
});
