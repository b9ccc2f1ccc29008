/**
 * KeyService's in-memory cache of unwrapped data keys (and derived search keys). Entries live at
 * most `ttlMs`: a data key version retired on another node (data-key rotation) — or an org shredded
 * there — must not stay usable here for the life of the process. After the TTL the key is read
 * from org_keys again (gone: decryption fails closed) and the stale copy is wiped. Expired entries
 * are wiped by a sweep on access too, so a key nobody asks for again does not linger either.
 */
export const KEY_CACHE_TTL_MS = 10 * 60 * 1000;

export class KeyCache {
  private readonly entries = new Map<string, { key: Buffer; at: number }>();
  private nextSweep: number;

  constructor(
    private readonly ttlMs = KEY_CACHE_TTL_MS,
    private readonly now: () => number = Date.now,
  ) {
    this.nextSweep = this.now() + this.ttlMs;
  }

  get(id: string): Buffer | undefined {
    const now = this.now();
    if (now >= this.nextSweep) this.sweep(now);
    const e = this.entries.get(id);
    if (!e) return undefined;
    if (now - e.at >= this.ttlMs) {
      this.delete(id);
      return undefined;
    }
    return e.key;
  }

  set(id: string, key: Buffer): void {
    this.entries.set(id, { key, at: this.now() });
  }

  /** Wipes and drops one entry. */
  delete(id: string): void {
    this.entries.get(id)?.key.fill(0);
    this.entries.delete(id);
  }

  /** Wipes and drops every entry whose id starts with `prefix`. */
  deletePrefix(prefix: string): void {
    for (const id of [...this.entries.keys()]) if (id.startsWith(prefix)) this.delete(id);
  }

  private sweep(now: number): void {
    for (const [id, e] of [...this.entries]) if (now - e.at >= this.ttlMs) this.delete(id);
    this.nextSweep = now + this.ttlMs;
  }
}
