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
  hash: string;
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

/**
 * Entries by expiry, soonest first (a binary min-heap). Removing an entry from the store leaves
 * its node here: it is skipped when it surfaces, and the heap is rebuilt from the live entries
 * once such nodes outnumber them, so each write costs O(log n) amortised and, after each write,
 * the heap holds at most twice the store's entries (plus 64).
 */
class ExpiryHeap {
  private nodes: Entry[] = [];

  get size(): number {
    return this.nodes.length;
  }

  peek(): Entry | undefined {
    return this.nodes[0];
  }

  push(e: Entry): void {
    const h = this.nodes;
    let i = h.push(e) - 1;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (h[parent]!.expiresAt <= e.expiresAt) break;
      h[i] = h[parent]!;
      i = parent;
    }
    h[i] = e;
  }

  pop(): void {
    const last = this.nodes.pop();
    if (last && this.nodes.length > 0) this.siftDown(last, 0);
  }

  rebuild(live: Iterable<Entry>): void {
    this.nodes = [...live];
    for (let i = (this.nodes.length >> 1) - 1; i >= 0; i--) this.siftDown(this.nodes[i]!, i);
  }

  private siftDown(e: Entry, at: number): void {
    const h = this.nodes;
    let i = at;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= h.length) break;
      if (child + 1 < h.length && h[child + 1]!.expiresAt < h[child]!.expiresAt) child++;
      if (h[child]!.expiresAt >= e.expiresAt) break;
      h[i] = h[child]!;
      i = child;
    }
    h[i] = e;
  }
}

export class MemoryTicketStore implements TicketStore {
  private readonly entries = new Map<string, Entry>();
  /**
   * Each group's entries in insertion order (its first is its oldest), groups in the order they
   * last came to hold a ticket: the largest group's tie-break below depends on that order.
   */
  private readonly groups = new Map<string, Map<string, Entry>>();
  /** How many groups hold n tickets, and the most any group holds: kept on every change. */
  private readonly groupsHolding = new Map<number, number>();
  private most = 0;
  private readonly expiry = new ExpiryHeap();
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
   * holding fewer. The expired are found through the expiry heap, not a scan of every entry:
   * thousands of viewers asking for tickets at once must not cost O(n²).
   */
  async put(hash: string, value: string, ttlMs: number, group = ''): Promise<void> {
    const now = Date.now();
    this.sweep(now);
    this.delete(hash); // a ticket written again (its body updated) keeps one place
    while (this.held(group) >= this.maxPerGroup && this.evictOldestOf(group));
    while (this.entries.size >= this.maxEntries && this.evictOldestOf(this.largestGroup(group)));
    const e: Entry = { hash, value, expiresAt: now + ttlMs, group };
    this.entries.set(hash, e);
    let own = this.groups.get(group);
    if (!own) this.groups.set(group, (own = new Map()));
    own.set(hash, e);
    this.counted(own.size - 1, own.size);
    this.expiry.push(e);
    if (this.expiry.size > 2 * this.entries.size + 64) this.expiry.rebuild(this.entries.values());
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

  /** Every entry expired by `now`, as a scan of the whole map would find them. */
  private sweep(now: number): void {
    for (let e = this.expiry.peek(); e && e.expiresAt <= now; e = this.expiry.peek()) {
      this.expiry.pop();
      // A node whose entry was taken, evicted or written again is only skipped.
      if (this.entries.get(e.hash) === e) this.delete(e.hash);
    }
  }

  private held(group: string): number {
    return this.groups.get(group)?.size ?? 0;
  }

  private delete(hash: string): void {
    const e = this.entries.get(hash);
    if (!e) return;
    this.entries.delete(hash);
    const own = this.groups.get(e.group)!;
    own.delete(hash);
    if (own.size === 0) this.groups.delete(e.group);
    this.counted(own.size + 1, own.size);
  }

  /** A group went from `was` to `now` tickets (one more or one fewer). */
  private counted(was: number, now: number): void {
    if (was > 0) {
      const left = this.groupsHolding.get(was)! - 1;
      if (left > 0) this.groupsHolding.set(was, left);
      else this.groupsHolding.delete(was);
    }
    if (now > 0) this.groupsHolding.set(now, (this.groupsHolding.get(now) ?? 0) + 1);
    if (now > this.most) this.most = now;
    // The only group at the top came down one: the top is where it is now.
    else if (was === this.most && !this.groupsHolding.has(was)) this.most = now;
  }

  private evictOldestOf(group: string): boolean {
    const oldest = this.groups.get(group)?.keys().next();
    if (!oldest || oldest.done) return false;
    this.delete(oldest.value);
    return true;
  }

  /**
   * The group holding the most tickets; `prefer` (the writer's own) on a tie, else the first such
   * group in `groups`' order. Without a scan when the writer is the largest (a flood's usual case).
   */
  private largestGroup(prefer: string): string {
    if (this.held(prefer) >= this.most) return prefer;
    for (const [g, own] of this.groups) if (own.size === this.most) return g;
    return prefer;
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
