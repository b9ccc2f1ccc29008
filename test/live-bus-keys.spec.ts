import { randomUUID } from 'node:crypto';
import { Redis } from 'ioredis';
import { describe, expect, it } from 'vitest';
import { RedisLiveBus } from '../src/adapters/redis/live-bus.adapter.js';
import { CLAIM_SCRIPT } from '../src/adapters/redis/live-bus.scripts.js';
import { backendLabel, usingRedis } from './helpers/test-app.js';

/**
 * Issue 16: every key a live bus script touches is passed in KEYS, as Redis Cluster requires (it
 * routes a script by its KEYS and does not let it reach other keys). Checked on a real Redis with
 * MONITOR, which lists each command a script runs (source `lua`) right after its EVAL: each key
 * those commands name must be among that EVAL's KEYS. The claim script learns its owner's
 * liveness key from the caller, who read the owner first; it refuses when the owner changed since.
 */

/** Commands the scripts run, and which of their arguments are keys. */
const KEY_ARGS: Record<string, (args: string[]) => string[]> = {
  get: (a) => a.slice(0, 1),
  set: (a) => a.slice(0, 1),
  exists: (a) => a,
  pttl: (a) => a.slice(0, 1),
  pexpire: (a) => a.slice(0, 1),
  incr: (a) => a.slice(0, 1),
  rpush: (a) => a.slice(0, 1),
  hset: (a) => a.slice(0, 1),
  del: (a) => a,
  time: () => [],
  publish: () => [], // a channel, not a key
};

describe.skipIf(!usingRedis)(`live bus scripts name every key in KEYS (${backendLabel})`, () => {
  it('claim (free, renewed, refused, taken over), beat, publish and bury touch only their KEYS', async () => {
    const redis = new Redis(process.env.REDIS_URL!);
    const monitor = await redis.duplicate().monitor();
    const prefix = `sotto-keys-${randomUUID()}:`;
    const bus = new RedisLiveBus(redis, prefix, { warn: () => undefined }, 300);
    const seen: { source: string; args: string[] }[] = [];
    monitor.on('monitor', (_time: string, args: string[], source: string) => seen.push({ source, args }));
    const sleep = (ms: number) => new Promise((res) => setTimeout(res, ms));
    try {
      await sleep(100); // MONITOR is on before the first command
      await bus.beat('A');
      expect(await bus.claim('r', 'A', 10_000)).toBe(true); // free
      expect(await bus.claim('r', 'A', 10_000)).toBe(true); // ours: renewed
      await bus.beat('B');
      expect(await bus.claim('r', 'B', 10_000)).toBe(false); // A alive: refused
      // A stops beating; liveness has been tracked for a TTL and A's claim is a TTL old.
      const beats = setInterval(() => void bus.beat('B'), 50);
      await sleep(500);
      clearInterval(beats);
      await bus.beat('B');
      await redis.pexpire(`${prefix}live-owner:r`, 5_000);
      expect(await bus.claim('r', 'B', 10_000)).toBe(true); // taken over
      await bus.publish('r', Buffer.from('x'), { kind: 'final', ttlMs: 10_000 });
      await bus.publish('r', Buffer.from('y'), { kind: 'partial', slot: 's', ttlMs: 10_000 });
      await bus.bury('r');
      await sleep(200); // the last MONITOR lines arrive

      // Each EVAL of this test and the commands its script ran (nothing interleaves a script).
      const evals: { keys: string[]; ran: string[][] }[] = [];
      let current: { keys: string[]; ran: string[][] } | undefined;
      for (const { source, args } of seen) {
        if (source === 'lua') {
          current?.ran.push(args);
          continue;
        }
        current = undefined;
        if (args[0]?.toLowerCase() !== 'eval') continue;
        const keys = args.slice(3, 3 + Number(args[2]));
        if (!keys.some((k) => k.startsWith(prefix))) continue;
        evals.push((current = { keys, ran: [] }));
      }
      // beat ×(at least 4), claim ×4, publish ×2, bury: all of them seen, each with its commands.
      expect(evals.length).toBeGreaterThanOrEqual(11);
      const touched = evals.flatMap(({ keys, ran }) =>
        ran.map(([cmd, ...rest]) => {
          const keyArgs = KEY_ARGS[cmd!.toLowerCase()];
          expect(keyArgs, `a command the test does not know: ${cmd}`).toBeDefined();
          return { cmd, outside: keyArgs!(rest).filter((k) => !keys.includes(k)) };
        }),
      );
      expect(touched.filter((t) => t.outside.length > 0)).toEqual([]);
      // The takeover read the owner's liveness key through KEYS.
      expect(touched.some((t) => t.cmd?.toLowerCase() === 'exists')).toBe(true);
    } finally {
      monitor.disconnect();
      const left = await redis.keys(`${prefix}*`);
      if (left.length > 0) await redis.del(...left);
      redis.disconnect();
    }
  }, 20_000);

  it('refuses a claim whose owner changed after the caller read it (its liveness key was not named)', async () => {
    const redis = new Redis(process.env.REDIS_URL!);
    const prefix = `sotto-keys-${randomUUID()}:`;
    const claim = `${prefix}live-owner:r`;
    const since = `${prefix}node-alive-since`;
    try {
      // C holds an old claim, no node is alive, liveness has been tracked for long: takeable.
      await redis.set(since, String(Date.now() - 60_000));
      await redis.set(claim, 'C', 'PX', 1_000);
      const run = (expectedOwner: string) =>
        redis.eval(
          CLAIM_SCRIPT,
          3,
          claim,
          `${prefix}node-alive:${expectedOwner}`,
          since,
          'B',
          '10000',
          '300',
          expectedOwner,
        );
      // B read "A" (the owner before C), and A's liveness key is what it named: refused, C keeps it.
      expect(await run('A')).toBe(0);
      expect(await redis.get(claim)).toBe('C');
      // Read again: C, whose liveness key is gone: taken over.
      expect(await run('C')).toBe(2);
      expect(await redis.get(claim)).toBe('B');
    } finally {
      const left = await redis.keys(`${prefix}*`);
      if (left.length > 0) await redis.del(...left);
      redis.disconnect();
    }
  });
});
