import type { Redis } from 'ioredis';

/**
 * Short-lived tickets that stand in for the bearer token where a browser cannot send a header:
 * a live WebSocket handshake (`take`: single use) and an <audio> element's range requests (`get`:
 * reusable until expiry, since a player makes a request per seek). Stored under the SHA-256 of
 * the ticket, so the store (memory, or Redis shared by every API node) never holds a usable
 * ticket. `take` is atomic: two connections racing with one ticket cannot both win.
 */
export interface TicketStore {
  put(hash: string, value: string, ttlMs: number): Promise<void>;
  /** The value, or undefined when unknown or expired. */
  get(hash: string): Promise<string | undefined>;
  /** The value, removed in the same step; undefined when unknown, used or expired. */
  take(hash: string): Promise<string | undefined>;
}

/** Which tickets a store holds: part of the Redis key, so the kinds never meet. */
export type TicketKind = 'live' | 'audio';

export class MemoryTicketStore implements TicketStore {
  private readonly entries = new Map<string, { value: string; expiresAt: number }>();

  /** `maxEntries`: older tickets go first when full (default: only expiry bounds the map). */
  constructor(private readonly maxEntries = Number.POSITIVE_INFINITY) {}

  async put(hash: string, value: string, ttlMs: number): Promise<void> {
    const now = Date.now();
    // Expired entries are dropped on write, and the map is capped: a flood of requests for
    // tickets (each needs a valid login) can cost at most a bounded amount of memory.
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
    while (this.entries.size >= this.maxEntries) {
      const oldest = this.entries.keys().next().value;
      if (oldest === undefined) break;
      this.entries.delete(oldest);
    }
    this.entries.set(hash, { value, expiresAt: now + ttlMs });
  }

  async get(hash: string): Promise<string | undefined> {
    const e = this.entries.get(hash);
    if (!e) return undefined;
    if (e.expiresAt > Date.now()) return e.value;
    this.entries.delete(hash);
    return undefined;
  }

  async take(hash: string): Promise<string | undefined> {
    const e = this.entries.get(hash);
    this.entries.delete(hash);
    return e && e.expiresAt > Date.now() ? e.value : undefined;
  }
}

export class RedisTicketStore implements TicketStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly kind: TicketKind,
  ) {}

  private key(hash: string): string {
    return `${this.prefix}${this.kind}-ticket:${hash}`;
  }

  async put(hash: string, value: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.key(hash), value, 'PX', ttlMs);
  }

  async get(hash: string): Promise<string | undefined> {
    return (await this.redis.get(this.key(hash))) ?? undefined;
  }

  async take(hash: string): Promise<string | undefined> {
    const res = await this.redis.multi().get(this.key(hash)).del(this.key(hash)).exec();
    const value = res?.[0]?.[1];
    return typeof value === 'string' ? value : undefined;
  }
}

export function createTicketStore(
  redis: Redis | undefined,
  prefix: string,
  kind: TicketKind,
  opts: { memoryMaxEntries?: number } = {},
): TicketStore {
  return redis ? new RedisTicketStore(redis, prefix, kind) : new MemoryTicketStore(opts.memoryMaxEntries);
}
