import type { Redis } from 'ioredis';

/**
 * Short-lived playback tickets: an <audio> element cannot send an Authorization header, and the
 * access token must never travel in a URL. Unlike live tickets they are reusable until they
 * expire, because a player makes several range requests for one source (metadata, then one per
 * seek). Stored under the SHA-256 of the ticket, so the store (memory, or Redis shared by every
 * API node) never holds a usable ticket.
 */
export interface AudioTicketStore {
  put(hash: string, value: string, ttlMs: number): Promise<void>;
  /** The value, or undefined when unknown or expired. */
  get(hash: string): Promise<string | undefined>;
}

/** Enough for every open player of a busy node; older tickets go first when it is full. */
const MEMORY_MAX_ENTRIES = 10_000;

export class MemoryAudioTicketStore implements AudioTicketStore {
  private readonly entries = new Map<string, { value: string; expiresAt: number }>();

  async put(hash: string, value: string, ttlMs: number): Promise<void> {
    const now = Date.now();
    // Expired entries are dropped on write, and the map is capped: a flood of requests for
    // tickets (each needs a valid login) can cost at most a bounded amount of memory.
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.entries.delete(k);
    while (this.entries.size >= MEMORY_MAX_ENTRIES) {
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
}

export class RedisAudioTicketStore implements AudioTicketStore {
  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
  ) {}

  private key(hash: string): string {
    return `${this.prefix}audio-ticket:${hash}`;
  }

  async put(hash: string, value: string, ttlMs: number): Promise<void> {
    await this.redis.set(this.key(hash), value, 'PX', ttlMs);
  }

  async get(hash: string): Promise<string | undefined> {
    return (await this.redis.get(this.key(hash))) ?? undefined;
  }
}

export function createAudioTicketStore(redis: Redis | undefined, prefix: string): AudioTicketStore {
  return redis ? new RedisAudioTicketStore(redis, prefix) : new MemoryAudioTicketStore();
}
