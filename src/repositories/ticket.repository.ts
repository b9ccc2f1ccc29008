import type { Redis } from 'ioredis';

/**
 * Short-lived tickets that stand in for the bearer token where a browser cannot send a header:
 * a live WebSocket handshake (`take`: single use) and an <audio> element's range requests (`get`:
 * reusable until expiry, since a player makes a request per seek). Stored under the SHA-256 of
 * the ticket, so the store (memory, or Redis shared by every API node) never holds a usable
 * ticket. `take` is atomic: two connections racing with one ticket cannot both win.
 */
export interface TicketStore {
  /**
   * `group`: whose ticket it is (the org). A capped store evicts within the group first, so one
   * tenant's flood of tickets cannot push out another's.
   */
  put(hash: string, value: string, ttlMs: number, group?: string): Promise<void>;
  /** The value, or undefined when unknown or expired. */
  get(hash: string): Promise<string | undefined>;
  /** The value, removed in the same step; undefined when unknown, used or expired. */
  take(hash: string): Promise<string | undefined>;
}

/** Which tickets a store holds: part of the Redis key, so the kinds never meet. */
export type TicketKind = 'live' | 'audio';

interface Entry {
  value: string;
  expiresAt: number;
  group: string;
}

export interface MemoryTicketLimits {
  /** All tickets (default: only expiry bounds the map). */
  maxEntries?: number;
  /** Tickets of one group (org); its oldest goes first when it is full. */
  maxPerGroup?: number;
}

export class MemoryTicketStore implements TicketStore {
  /** In insertion order: the first entry of a group is its oldest. */
  private readonly entries = new Map<string, Entry>();
  private readonly perGroup = new Map<string, number>();
  private readonly maxEntries: number;
  private readonly maxPerGroup: number;

  constructor(limits: MemoryTicketLimits = {}) {
    this.maxEntries = limits.maxEntries ?? Number.POSITIVE_INFINITY;
    this.maxPerGroup = limits.maxPerGroup ?? Number.POSITIVE_INFINITY;
  }

  /**
   * Expired entries are dropped on write, and the map is capped: a flood of requests for tickets
   * (each needs a valid login) costs at most a bounded amount of memory, and is paid by the
   * flooding group: its own oldest ticket goes when it holds `maxPerGroup`, and when the whole
   * store is full the oldest ticket of the group holding the most goes, never one of a group
   * holding fewer.
   */
  async put(hash: string, value: string, ttlMs: number, group = ''): Promise<void> {
    const now = Date.now();
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.delete(k);
    this.delete(hash); // a ticket written again (its body updated) keeps one place
    while ((this.perGroup.get(group) ?? 0) >= this.maxPerGroup && this.evictOldestOf(group));
    while (this.entries.size >= this.maxEntries && this.evictOldestOf(this.largestGroup(group)));
    this.entries.set(hash, { value, expiresAt: now + ttlMs, group });
    this.perGroup.set(group, (this.perGroup.get(group) ?? 0) + 1);
  }

  async get(hash: string): Promise<string | undefined> {
    const e = this.entries.get(hash);
    if (!e) return undefined;
    if (e.expiresAt > Date.now()) return e.value;
    this.delete(hash);
    return undefined;
  }

  async take(hash: string): Promise<string | undefined> {
    const e = this.entries.get(hash);
    this.delete(hash);
    return e && e.expiresAt > Date.now() ? e.value : undefined;
  }

  private delete(hash: string): void {
    const e = this.entries.get(hash);
    if (!e) return;
    this.entries.delete(hash);
    const left = (this.perGroup.get(e.group) ?? 1) - 1;
    if (left > 0) this.perGroup.set(e.group, left);
    else this.perGroup.delete(e.group);
  }

  private evictOldestOf(group: string): boolean {
    for (const [k, e] of this.entries)
      if (e.group === group) {
        this.delete(k);
        return true;
      }
    return false;
  }

  /** The group holding the most tickets; `prefer` (the writer's own) on a tie. */
  private largestGroup(prefer: string): string {
    let best = prefer;
    let most = this.perGroup.get(prefer) ?? 0;
    for (const [g, n] of this.perGroup)
      if (n > most) {
        best = g;
        most = n;
      }
    return best;
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

  /** No cap of its own: Redis memory and the expiry bound it, and nothing is evicted early. */
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
  memoryLimits: MemoryTicketLimits = {},
): TicketStore {
  return redis ? new RedisTicketStore(redis, prefix, kind) : new MemoryTicketStore(memoryLimits);
}
