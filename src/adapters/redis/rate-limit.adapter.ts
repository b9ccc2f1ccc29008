import { isIPv4, isIPv6 } from 'node:net';
import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  RateLimiterMemory,
  RateLimiterRedis,
  RateLimiterRes,
  RLWrapperTimeouts,
  type IRateLimiterOptions,
  type RateLimiterAbstract,
} from 'rate-limiter-flexible';

/**
 * The counters behind rate limits and brute-force protection (rate-limiter-flexible).
 *
 * With Redis configured, counters live in Redis so every API node enforces the same budget; keys
 * are `<SOTTO_REDIS_PREFIX>rl:<name>:<key>`. Without Redis (the embedded default) they live in
 * this process's memory.
 *
 * A Redis outage must neither open the gates (no limits) nor close them (every request fails):
 * each Redis limiter has an in-memory insurance limiter that takes over when Redis is not
 * connected or does not answer within `timeoutMs`. Counts start afresh in memory and are not
 * copied back when Redis returns; a warning is logged while the fallback is in use.
 */
export interface LimiterSpec {
  /** Names the counter; every spec with the same name and key shares one count. */
  name: string;
  points: number;
  /** Window in seconds, counted from the first point; 0 keeps the count until deleted. */
  durationSeconds: number;
  /**
   * Remember rejected keys in process memory until their window ends, so a flood of requests
   * that are already over the limit costs no Redis round trips. Only for counters that are never
   * deleted early (a delete on another node would not lift the local block).
   */
  inMemoryBlock?: boolean;
}

/** The state of one key after an operation. */
export interface LimitState {
  allowed: boolean;
  consumed: number;
  remaining: number;
  /** Milliseconds until the window (or a block) ends; -1 when it never ends. */
  msBeforeNext: number;
}

export interface RateLimitStoreOptions {
  redis: Redis | undefined;
  /** config.redisPrefix: several deployments or test runs can share one Redis. */
  keyPrefix: string;
  logger: Logger;
  /** A Redis call slower than this is answered by the insurance limiter instead. */
  timeoutMs?: number;
  /** Minimum interval between two "falling back to memory" warnings. */
  warnIntervalMs?: number;
}

/** The in-memory limiter used while Redis is unreachable; it reports every use. */
class InsuranceLimiter extends RateLimiterMemory {
  constructor(
    opts: IRateLimiterOptions,
    private readonly onUse: () => void,
  ) {
    super(opts);
  }
  override consume(...args: Parameters<RateLimiterMemory['consume']>): Promise<RateLimiterRes> {
    this.onUse();
    return super.consume(...args);
  }
  override penalty(...args: Parameters<RateLimiterMemory['penalty']>): Promise<RateLimiterRes> {
    this.onUse();
    return super.penalty(...args);
  }
  override get(...args: Parameters<RateLimiterMemory['get']>): Promise<RateLimiterRes | null> {
    this.onUse();
    return super.get(...args);
  }
  override set(...args: Parameters<RateLimiterMemory['set']>): Promise<RateLimiterRes> {
    this.onUse();
    return super.set(...args);
  }
  override block(...args: Parameters<RateLimiterMemory['block']>): Promise<RateLimiterRes> {
    this.onUse();
    return super.block(...args);
  }
  override delete(...args: Parameters<RateLimiterMemory['delete']>): Promise<boolean> {
    this.onUse();
    return super.delete(...args);
  }
}

/**
 * Longest window or block accepted. The in-memory store keeps expiry in Node timers, which cannot
 * exceed ~24.8 days; the same bound applies with Redis so both backends behave alike.
 */
export const MAX_LIMIT_SECONDS = 24 * 24 * 3600;
const clamp = (seconds: number): number => Math.min(seconds, MAX_LIMIT_SECONDS);

function toState(res: RateLimiterRes, allowed: boolean): LimitState {
  return {
    allowed,
    consumed: res.consumedPoints,
    remaining: res.remainingPoints,
    msBeforeNext: res.msBeforeNext,
  };
}

export class RateLimitStore {
  readonly backend: 'redis' | 'memory';
  private readonly limiters = new Map<string, RateLimiterAbstract>();
  private lastWarning = 0;

  constructor(private readonly opts: RateLimitStoreOptions) {
    this.backend = opts.redis ? 'redis' : 'memory';
  }

  /** Adds points; a key over its limit answers `allowed: false` (never throws for that). */
  async consume(spec: LimiterSpec, key: string, points = 1): Promise<LimitState> {
    try {
      return toState(await this.limiter(spec).consume(key, points), true);
    } catch (rejection) {
      if (rejection instanceof RateLimiterRes) return toState(rejection, false);
      throw rejection;
    }
  }

  /** The current state without counting anything; null when the key has no record. */
  async get(spec: LimiterSpec, key: string): Promise<LimitState | null> {
    const res = await this.limiter(spec).get(key);
    return res ? toState(res, res.consumedPoints <= spec.points) : null;
  }

  /** Marks the key as over its limit for `seconds` (replacing its count and window). */
  async block(spec: LimiterSpec, key: string, seconds: number): Promise<void> {
    await this.limiter(spec).block(key, clamp(seconds));
  }

  /** Sets the count and restarts the window (a sliding memory, unlike consume). */
  async set(spec: LimiterSpec, key: string, points: number, seconds: number): Promise<void> {
    await this.limiter(spec).set(key, points, clamp(seconds));
  }

  async delete(spec: LimiterSpec, key: string): Promise<void> {
    await this.limiter(spec).delete(key);
  }

  private limiter(spec: LimiterSpec): RateLimiterAbstract {
    const id = `${spec.name}|${spec.points}|${spec.durationSeconds}|${spec.inMemoryBlock ? 1 : 0}`;
    let limiter = this.limiters.get(id);
    if (!limiter) {
      limiter = this.build(spec);
      this.limiters.set(id, limiter);
    }
    return limiter;
  }

  private build(spec: LimiterSpec): RateLimiterAbstract {
    const base = {
      keyPrefix: `${this.opts.keyPrefix}rl:${spec.name}`,
      points: spec.points,
      duration: clamp(spec.durationSeconds),
    };
    const { redis } = this.opts;
    if (!redis) return new RateLimiterMemory(base);
    const insuranceLimiter = new InsuranceLimiter(base, () => this.warnFallback(spec.name));
    const store = new RateLimiterRedis({
      ...base,
      storeClient: redis,
      // Not connected (outage, reconnecting): answer from memory at once instead of queueing.
      rejectIfRedisNotReady: true,
      insuranceLimiter,
      ...(spec.inMemoryBlock ? { inMemoryBlockOnConsumed: spec.points + 1 } : {}),
    });
    // Connected but silent (a partition, a stalled server): do not hold requests hostage.
    return new RLWrapperTimeouts({
      limiter: store,
      insuranceLimiter,
      timeoutMs: this.opts.timeoutMs ?? 500,
    });
  }

  private warnFallback(name: string): void {
    const now = Date.now();
    if (now - this.lastWarning < (this.opts.warnIntervalMs ?? 30_000)) return;
    this.lastWarning = now;
    this.opts.logger.warn(
      { limiter: name },
      'rate-limit store (Redis) unavailable: enforcing limits from this process memory until it recovers',
    );
  }
}

/**
 * The key a client's network is counted under. IPv6 clients usually control a whole /64, so
 * counting single addresses would let one client rotate through billions of fresh budgets.
 */
export function networkKey(ip: string): string {
  const mapped = /^::ffff:(\d+\.\d+\.\d+\.\d+)$/i.exec(ip);
  if (mapped?.[1]) return mapped[1];
  if (isIPv4(ip)) return ip;
  if (!isIPv6(ip)) return `other:${ip.slice(0, 64)}`;
  const [head = '', tail = ''] = ip.toLowerCase().split('::');
  const left = head ? head.split(':') : [];
  const right = tail ? tail.split(':') : [];
  const missing = ip.includes('::') ? 8 - left.length - right.length : 0;
  const groups = [...left, ...Array<string>(missing).fill('0'), ...right];
  return `${groups
    .slice(0, 4)
    .map((g) => g.replace(/^0+(?=.)/, ''))
    .join(':')}::/64`;
}
