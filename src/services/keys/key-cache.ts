import { systemClock } from '../../adapters/system/clock.adapter.js';

/**
 * KeyService's in-memory caches of key material: unwrapped data keys (and derived search keys) in
 * a KeyCache, and the orgs' unwrapped KEKs in a cache made `alike` it, so one lifetime and one
 * clock govern both. Entries live at most `ttlMs`: a data key version retired on another node
 * (data-key rotation) — or an org shredded there — must not stay usable here for the life of the
 * process. After the TTL the key is read from org_keys (the KEK from the key store) again (gone:
 * decryption fails closed) and the stale copy is wiped. Expired entries are wiped by a sweep on
 * access too (a KeyCache's sweep sweeps its alike caches), so a key nobody asks for again does not
 * linger either. Every value dropped — expired, deleted or replaced — is wiped.
 *
 * An expired or replaced value is wiped on the next turn of the event loop, not at once: a caller
 * that got it just before (`const key = await …; seal(key, …)`) resumes in the microtasks that run
 * first, and must not seal with a key zeroed under it (that data would be unreadable). `delete` —
 * an org shredded or forgotten — wipes at once.
 */
export const KEY_CACHE_TTL_MS = 10 * 60 * 1000;

export class ExpiringKeyCache<V> {
  private readonly entries = new Map<string, { value: V; at: number }>();
  private nextSweep: number;
  /** Caches swept together with this one (`KeyCache.alike`). */
  protected readonly linked: ExpiringKeyCache<unknown>[] = [];

  constructor(
    protected readonly ttlMs: number,
    protected readonly now: () => number,
    private readonly wipe: (value: V) => void,
  ) {
    this.nextSweep = this.now() + this.ttlMs;
  }

  get(id: string): V | undefined {
    const now = this.now();
    if (now >= this.nextSweep) this.sweep(now);
    const e = this.entries.get(id);
    if (!e) return undefined;
    if (now - e.at >= this.ttlMs) {
      this.retire(id);
      return undefined;
    }
    return e.value;
  }

  /** Caches `value`, replacing (and wiping) whatever the id held. */
  set(id: string, value: V): void {
    const old = this.entries.get(id);
    this.entries.set(id, { value, at: this.now() });
    if (old && old.value !== value) this.wipeSoon(old.value);
  }

  /**
   * Caches a value just loaded, unless a concurrent load cached one first: then the newcomer is
   * wiped and the cached one returned — never the other way round, since the first may already be
   * in a caller's hands (sealing with a key wiped under it would write unreadable data).
   */
  keep(id: string, value: V): V {
    const cached = this.get(id);
    if (cached === undefined) {
      this.set(id, value);
      return value;
    }
    if (cached !== value) this.wipe(value);
    return cached;
  }

  /** Drops one entry and wipes it once the callers that may hold it have run (see above). */
  private retire(id: string): void {
    const e = this.entries.get(id);
    this.entries.delete(id);
    if (e) this.wipeSoon(e.value);
  }

  private wipeSoon(value: V): void {
    setImmediate(() => this.wipe(value));
  }

  /** Wipes and drops one entry. */
  delete(id: string): void {
    const e = this.entries.get(id);
    this.entries.delete(id);
    if (e) this.wipe(e.value);
  }

  /** Wipes and drops every entry whose id starts with `prefix`. */
  deletePrefix(prefix: string): void {
    for (const id of [...this.entries.keys()]) if (id.startsWith(prefix)) this.delete(id);
  }

  private sweep(now: number): void {
    for (const [id, e] of [...this.entries]) if (now - e.at >= this.ttlMs) this.retire(id);
    this.nextSweep = now + this.ttlMs;
    for (const c of this.linked) c.sweep(now);
  }
}

/** The data-key cache (buffers, zero-filled when dropped). */
export class KeyCache extends ExpiringKeyCache<Buffer> {
  // Real time by default, not the app's clock: how long plaintext keys stay in memory is memory
  // hygiene, and a monotonic source keeps a wall-clock step from stretching it.
  constructor(ttlMs = KEY_CACHE_TTL_MS, now: () => number = () => systemClock.monotonicMs()) {
    super(ttlMs, now, (key) => key.fill(0));
  }

  /** Another cache with this one's lifetime and clock (the org KEKs), swept with it. */
  alike<V>(wipe: (value: V) => void): ExpiringKeyCache<V> {
    const cache = new ExpiringKeyCache<V>(this.ttlMs, this.now, wipe);
    this.linked.push(cache as ExpiringKeyCache<unknown>);
    return cache;
  }
}
