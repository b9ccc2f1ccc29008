import { createHash } from 'node:crypto';
import { AppError } from '../../domain/errors.js';
import {
  networkKey,
  type LimiterSpec,
  type LimitState,
  type RateLimitStore,
} from '../../adapters/redis/rate-limit.adapter.js';
import type { LoginGuard } from './login-guard.types.js';

/**
 * Brute-force protection for credential checks, after the login-endpoint pattern of
 * rate-limiter-flexible's documentation (a slow per-IP daily counter plus consecutive failures per
 * IP+account, checked with cheap reads before verifying), extended with:
 *
 * - progressive penalties: an IP that fails `ipBurstFailures` times within `ipBurstWindowSeconds`
 *   is blocked for `penaltyBaseSeconds`, doubled for each earlier block it earned within
 *   `penaltyMemorySeconds` (1 min, 2, 4, … up to `penaltyMaxSeconds`). A second counter remembers
 *   how many times the IP was blocked; each new block extends that memory.
 * - a slow per-account counter across all IPs. It never locks the account: past
 *   `accountFailures` failures within `accountWindowSeconds` the account is *throttled* for
 *   networks it has never logged in from — together they get one attempt per
 *   `accountThrottleSeconds` — while networks with a recent successful login to it (within
 *   `knownNetworkSeconds`) are not throttled at all. A botnet spraying one account from many
 *   addresses is slowed to a trickle; the real user on their usual network is not affected, and
 *   from a new network only waits a few seconds between tries.
 *
 * Per-account blocks are keyed by IP+account, so failures from an attacker's network never block
 * the same account at another network. A success clears only its IP+account counter: logging
 * into one's own account must not wash away the penalties an IP earned against others.
 *
 * IPv6 addresses count per /64 (see networkKey). Account keys are hashed so that stored keys do
 * not spell out email addresses (this keeps them out of Redis key listings, it is not secrecy).
 */
export interface LoginGuardOptions {
  ipDailyFailures: number;
  ipDailyWindowSeconds: number;
  ipDailyBlockSeconds: number;
  ipBurstFailures: number;
  ipBurstWindowSeconds: number;
  penaltyBaseSeconds: number;
  penaltyMaxSeconds: number;
  penaltyMemorySeconds: number;
  pairFailures: number;
  pairWindowSeconds: number;
  pairBlockSeconds: number;
  accountFailures: number;
  accountWindowSeconds: number;
  accountThrottleSeconds: number;
  knownNetworkSeconds: number;
}

const DAY = 24 * 3600;

export const defaultLoginGuardOptions: LoginGuardOptions = {
  ipDailyFailures: 100,
  ipDailyWindowSeconds: DAY,
  ipDailyBlockSeconds: DAY,
  ipBurstFailures: 10,
  ipBurstWindowSeconds: 15 * 60,
  penaltyBaseSeconds: 60,
  penaltyMaxSeconds: DAY,
  penaltyMemorySeconds: 7 * DAY,
  pairFailures: 10,
  pairWindowSeconds: 14 * DAY,
  pairBlockSeconds: 3600,
  accountFailures: 1000,
  accountWindowSeconds: DAY,
  accountThrottleSeconds: 10,
  knownNetworkSeconds: 24 * DAY,
};

export class RateLimitedLoginGuard implements LoginGuard {
  readonly options: LoginGuardOptions;
  private readonly ipDaily: LimiterSpec;
  private readonly ipBurst: LimiterSpec;
  private readonly ipBlocks: LimiterSpec;
  private readonly pair: LimiterSpec;
  private readonly account: LimiterSpec;
  private readonly accountThrottle: LimiterSpec;
  private readonly known: LimiterSpec;

  constructor(
    private readonly limits: RateLimitStore,
    options: Partial<LoginGuardOptions> = {},
  ) {
    const o = { ...defaultLoginGuardOptions, ...options };
    this.options = o;
    this.ipDaily = {
      name: 'login:ip-day',
      points: o.ipDailyFailures,
      durationSeconds: o.ipDailyWindowSeconds,
    };
    this.ipBurst = {
      name: 'login:ip-burst',
      points: o.ipBurstFailures,
      durationSeconds: o.ipBurstWindowSeconds,
    };
    this.ipBlocks = { name: 'login:ip-blocks', points: 1_000_000, durationSeconds: o.penaltyMemorySeconds };
    this.pair = { name: 'login:ip-account', points: o.pairFailures, durationSeconds: o.pairWindowSeconds };
    this.account = {
      name: 'login:account',
      points: o.accountFailures,
      durationSeconds: o.accountWindowSeconds,
    };
    this.accountThrottle = {
      name: 'login:account-throttle',
      points: 1,
      durationSeconds: o.accountThrottleSeconds,
    };
    this.known = { name: 'login:known', points: 1, durationSeconds: o.knownNetworkSeconds };
  }

  async check(ip: string, accountKey: string): Promise<void> {
    const net = networkKey(ip);
    const acct = accountHash(accountKey);
    const pairKey = `${net}|${acct}`;
    const [daily, burst, pair, account, known] = await Promise.all([
      this.limits.get(this.ipDaily, net),
      this.limits.get(this.ipBurst, net),
      this.limits.get(this.pair, pairKey),
      this.limits.get(this.account, acct),
      this.limits.get(this.known, pairKey),
    ]);
    const blocked = [daily, burst, pair].filter((s): s is LimitState => s !== null && !s.allowed);
    if (blocked.length > 0) throw limited(Math.max(...blocked.map(untilMs)));
    if (account && account.consumed >= this.options.accountFailures && !known) {
      const slot = await this.limits.consume(this.accountThrottle, acct);
      if (!slot.allowed) throw limited(untilMs(slot));
    }
  }

  async failed(ip: string, accountKey: string): Promise<void> {
    const net = networkKey(ip);
    const acct = accountHash(accountKey);
    const pairKey = `${net}|${acct}`;
    const o = this.options;
    const [daily, burst, pair] = await Promise.all([
      this.limits.consume(this.ipDaily, net),
      this.limits.consume(this.ipBurst, net),
      this.limits.consume(this.pair, pairKey),
      this.limits.consume(this.account, acct),
    ]);
    // Block once, on the failure that reaches a threshold (later concurrent ones see a higher count).
    const blocks: Promise<void>[] = [];
    if (daily.consumed === o.ipDailyFailures)
      blocks.push(this.limits.block(this.ipDaily, net, o.ipDailyBlockSeconds));
    if (pair.consumed === o.pairFailures)
      blocks.push(this.limits.block(this.pair, pairKey, o.pairBlockSeconds));
    if (burst.consumed === o.ipBurstFailures) blocks.push(this.penalise(net));
    await Promise.all(blocks);
  }

  async succeeded(ip: string, accountKey: string): Promise<void> {
    const pairKey = `${networkKey(ip)}|${accountHash(accountKey)}`;
    await Promise.all([
      this.limits.delete(this.pair, pairKey),
      this.limits.set(this.known, pairKey, 1, this.options.knownNetworkSeconds),
    ]);
  }

  /** The seconds of the next progressive block for this network: base × 2^(earlier blocks). */
  private async penalise(net: string): Promise<void> {
    const o = this.options;
    const earlier = (await this.limits.get(this.ipBlocks, net))?.consumed ?? 0;
    const seconds = Math.min(o.penaltyBaseSeconds * 2 ** Math.min(earlier, 30), o.penaltyMaxSeconds);
    await Promise.all([
      this.limits.block(this.ipBurst, net, seconds),
      this.limits.set(this.ipBlocks, net, earlier + 1, o.penaltyMemorySeconds),
    ]);
  }
}

function accountHash(accountKey: string): string {
  return createHash('sha256').update(accountKey.trim().toLowerCase()).digest('base64url').slice(0, 22);
}

function untilMs(state: LimitState): number {
  return state.msBeforeNext < 0 ? DAY * 1000 : state.msBeforeNext;
}

function limited(ms: number): AppError {
  return new AppError('rate_limited', 'Too many attempts. Try again later.', {
    retryAfterSeconds: Math.max(1, Math.ceil(ms / 1000)),
  });
}
