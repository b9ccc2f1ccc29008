import { describe, expect, it, vi } from 'vitest';
import { MemoryTicketStore, type MemoryTicketLimits } from './ticket.adapter.js';

/**
 * The memory ticket store finds expired tickets through a heap instead of scanning every entry on
 * each write. Its observable behaviour must be the scan's: checked against the scan itself (the
 * store as it was written before, kept here as the model) over random workloads, and on its own
 * with many entries. The store reads Date.now, which the tests drive.
 */
let now = 1_000_000;
const driveClock = () => {
  now = 1_000_000;
  vi.spyOn(Date, 'now').mockImplementation(() => now);
};

/** The previous store: sweeps every entry on each put, evicts by scanning in insertion order. */
class ScanModel {
  private readonly entries = new Map<string, { value: string; expiresAt: number; group: string }>();
  private readonly perGroup = new Map<string, number>();
  constructor(private readonly limits: Required<MemoryTicketLimits>) {}

  put(hash: string, value: string, ttlMs: number, group = ''): void {
    for (const [k, e] of this.entries) if (e.expiresAt <= now) this.delete(k);
    this.delete(hash);
    while ((this.perGroup.get(group) ?? 0) >= this.limits.maxPerGroup && this.evictOldestOf(group));
    while (this.entries.size >= this.limits.maxEntries && this.evictOldestOf(this.largestGroup(group)));
    this.entries.set(hash, { value, expiresAt: now + ttlMs, group });
    this.perGroup.set(group, (this.perGroup.get(group) ?? 0) + 1);
  }
  get(hash: string): string | undefined {
    const e = this.entries.get(hash);
    if (e && e.expiresAt > now) return e.value;
    this.delete(hash);
    return undefined;
  }
  take(hash: string): string | undefined {
    const e = this.entries.get(hash);
    this.delete(hash);
    return e && e.expiresAt > now ? e.value : undefined;
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

/** A small seeded generator (mulberry32), so a failing workload can be replayed. */
function random(seed: number): (n: number) => number {
  let a = seed;
  return (n) => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return Math.floor((((t ^ (t >>> 14)) >>> 0) / 4294967296) * n);
  };
}

describe('memory ticket store', () => {
  it('answers every get and take as the full scan did, caps and expiry included', async () => {
    driveClock();
    const shapes: Required<MemoryTicketLimits>[] = [
      { maxEntries: Number.POSITIVE_INFINITY, maxPerGroup: Number.POSITIVE_INFINITY },
      { maxEntries: 40, maxPerGroup: 15 },
      { maxEntries: 25, maxPerGroup: Number.POSITIVE_INFINITY },
      { maxEntries: 7, maxPerGroup: 3 },
    ];
    let compared = 0;
    let found = 0;
    for (const [shape, limits] of shapes.entries())
      for (let seed = 1; seed <= 5; seed++) {
        const rnd = random(seed * 100 + shape);
        const store = new MemoryTicketStore(limits);
        const model = new ScanModel(limits);
        for (let step = 0; step < 4_000; step++) {
          const hash = `h${rnd(120)}`; // few enough that tickets are written again, taken and read
          const op = rnd(10);
          const where = `limits ${shape}, seed ${seed}, step ${step}`;
          if (op < 5) {
            // Mixed TTLs, as the audio store writes back an audited ticket with the time it has left.
            const ttl = [0, 1, 50, 200, 1_000][rnd(5)]!;
            const group = `org${rnd(6)}`;
            await store.put(hash, `v${step}`, ttl, group);
            model.put(hash, `v${step}`, ttl, group);
          } else if (op < 7) {
            const got = await store.get(hash);
            expect(got, where).toBe(model.get(hash));
            compared++;
            if (got !== undefined) found++;
          } else if (op < 9) {
            const got = await store.take(hash);
            expect(got, where).toBe(model.take(hash));
            compared++;
            if (got !== undefined) found++;
          } else now += rnd(120);
        }
      }
    // The workloads are not all misses: evictions and expiries both had live tickets to act on.
    expect(compared).toBeGreaterThan(20_000);
    expect(found).toBeGreaterThan(compared / 10);
  });

  it('with many entries, expired tickets stop counting against the caps and live ones stay', async () => {
    driveClock();
    const store = new MemoryTicketStore({ maxEntries: 30_000, maxPerGroup: 20_100 });
    // The oldest tickets of org a live long; 20,000 later ones of various short lives fill its cap.
    for (let i = 0; i < 100; i++) await store.put(`long${i}`, 'long', 60_000, 'a');
    for (let i = 0; i < 20_000; i++) await store.put(`short${i}`, 'short', 1_000 + (i % 7) * 100, 'a');
    for (let i = 0; i < 5_000; i++) await store.put(`b${i}`, 'b', 1_000, 'b');
    expect(await store.get('short19999')).toBe('short');
    // Every short ticket has expired: had they still counted, these 20,000 writes would evict
    // org a's long-lived tickets (its oldest) at the group cap, and b's at the store's cap.
    now += 1_600;
    for (let i = 0; i < 20_000; i++) await store.put(`again${i}`, 'again', 60_000, 'a');
    for (let i = 0; i < 100; i++) expect(await store.get(`long${i}`)).toBe('long');
    expect(await store.get('again0')).toBe('again');
    expect(await store.get('short0')).toBeUndefined();
    expect(await store.take('b0')).toBeUndefined();
    // Still capped: org a is at 20,100 now, so one more write evicts its oldest (long0).
    await store.put('one-more', 'x', 60_000, 'a');
    expect(await store.get('long0')).toBeUndefined();
    expect(await store.get('long1')).toBe('long');
  });
});
