import { describe, expect, it } from 'vitest';
import { mulberry32 } from '../../scripts/prng.js';
import { backoffMs } from './backoff.js';

const policy = { baseMs: 1000, capMs: 30_000 };

describe('backoffMs (capped exponential, full jitter)', () => {
  it('the ceiling doubles per attempt from base and stops at the cap', () => {
    const top = (attempt: number) => backoffMs(policy, attempt, () => 1);
    expect([1, 2, 3, 4, 5, 6, 7, 50].map(top)).toEqual([
      1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000,
    ]);
    // A source at 0 gives no wait, or the floor.
    expect(backoffMs(policy, 3, () => 0)).toBe(0);
    expect(backoffMs({ ...policy, minMs: 250 }, 3, () => 0)).toBe(250);
    expect(backoffMs({ ...policy, minMs: 250 }, 3, () => 1)).toBe(4000);
  });

  it('every delay lies within [floor, ceiling], whatever the attempt', () => {
    const random = mulberry32(7);
    for (let attempt = 1; attempt <= 40; attempt++) {
      const ceiling = Math.min(30_000, 1000 * 2 ** (attempt - 1));
      for (let i = 0; i < 50; i++) {
        const d = backoffMs({ ...policy, minMs: 100 }, attempt, random);
        expect(d).toBeGreaterThanOrEqual(100);
        expect(d).toBeLessThanOrEqual(ceiling);
        expect(Number.isInteger(d)).toBe(true);
      }
    }
  });

  it('spreads retries over the whole range instead of bunching them (the point of jitter)', () => {
    const random = mulberry32(42);
    const delays = Array.from({ length: 2000 }, () => backoffMs(policy, 4, random));
    // Uniform on [0, 8000]: every eighth of the range gets about an eighth of the retries.
    const buckets = Array.from({ length: 8 }, () => 0);
    for (const d of delays) buckets[Math.min(7, Math.floor(d / 1000))]!++;
    for (const n of buckets) expect(n).toBeGreaterThan(2000 / 8 / 2);
    expect(new Set(delays).size).toBeGreaterThan(1000);
    const mean = delays.reduce((a, b) => a + b, 0) / delays.length;
    expect(mean).toBeGreaterThan(3500);
    expect(mean).toBeLessThan(4500);
  });

  it('is deterministic for a given source, and survives nonsense input', () => {
    const a = Array.from({ length: 5 }, (_, i) => backoffMs(policy, i + 1, mulberry32(1)));
    const b = Array.from({ length: 5 }, (_, i) => backoffMs(policy, i + 1, mulberry32(1)));
    expect(a).toEqual(b);
    // Attempt 0 or negative counts as the first; a huge one is capped, not Infinity.
    expect(backoffMs(policy, 0, () => 1)).toBe(1000);
    expect(backoffMs(policy, -3, () => 1)).toBe(1000);
    expect(backoffMs(policy, 1e9, () => 1)).toBe(30_000);
    // A source outside [0, 1] or NaN is clamped: never negative, never beyond the ceiling.
    expect(backoffMs(policy, 2, () => -5)).toBe(0);
    expect(backoffMs(policy, 2, () => 7)).toBe(2000);
    expect(backoffMs(policy, 2, () => Number.NaN)).toBe(2000);
    // A cap below base wins.
    expect(backoffMs({ baseMs: 5000, capMs: 1000 }, 1, () => 1)).toBe(1000);
  });
});
