import type { Redis } from 'ioredis';

/**
 * Short-lived, single-use tickets for opening a live WebSocket from a browser (which cannot set
 * an Authorization header on a WebSocket). Stored under the SHA-256 of the ticket, so the store
 * (memory or Redis, shared by every API node) never holds a usable ticket. `take` is atomic:
 * two connections racing with one ticket cannot both win.
 */
export interface LiveTicketStore {
  put(hash: string, value: string, ttlMs: number): Promise<void>;
  /** The value, removed in the same step; undefined when unknown, used or expired. */
  take(hash: string): Promise<string | undefined>;
}

export class MemoryLiveTicketStore implements LiveTicketStore {
  private readonly entries = new Map<string, { value: string; expiresAt: number }>();

  async put(hash: string, value: string, ttlMs: number): Promise<void> {
    const now = Date.now();
    // Expired entries are dropped on write: the map never outgrows the tickets of one TTL.
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
    this.entries.set(hash, { value, expiresAt: now + ttlMs });
  }

  async take(hash: string): Promise<string | undefined> {
    const e = this.entries.get(hash);
    this.entries.delete(hash);
    return e && e.expiresAt > Date.now() ? e.value : undefined;
  }
}

export class RedisLiveTicketStore implements LiveTicketStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(hash: string): string {
    return `${this.prefix}live-ticket:${hash}`;
  }

  async put(hash: string, value: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.key(hash), value, 'PX', ttlMs);
  }

  async take(hash: string): Promise<string | undefined> {
    const res = await this.redis.multi().get(this.key(hash)).del(this.key(hash)).exec();
    const value = res?.[0]?.[1];
    return typeof value === 'string' ? value : undefined;
  }
}

export function createLiveTicketStore(redis: Redis | undefined, prefix: string): LiveTicketStore {
  return redis ? new RedisLiveTicketStore(redis, prefix) : new MemoryLiveTicketStore();
}
