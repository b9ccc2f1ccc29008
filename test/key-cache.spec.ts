import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyCache } from '../src/services/keys/key-cache.js';

/**
 * KeyService's key caches (src/services/keys/key-cache.ts): entries expire after the lifetime and every
 * value dropped — expired, swept, deleted or replaced — is zero-filled; the KEK cache made `alike`
 * the data-key cache shares its lifetime, its clock and its sweep.
 */
describe('key caches', () => {
  const isZero = (b: Buffer) => b.every((x) => x === 0);
  const kek = () => ({ key: randomBytes(32), masterVersion: 1 });
  /** Expired and replaced values are wiped on the next turn of the event loop. */
  const nextTurn = () => new Promise((r) => setImmediate(r));

  it('expires entries after the lifetime and wipes them', async () => {
    let now = 0;
    const cache = new KeyCache(1_000, () => now);
    const key = randomBytes(32);
    cache.set('a:1', key);
    now = 999;
    expect(cache.get('a:1')).toBe(key);
    now = 1_000;
    expect(cache.get('a:1')).toBeUndefined();
    await nextTurn();
    expect(isZero(key)).toBe(true);
  });

  it('a key handed out just before it expires is still whole where its caller uses it', async () => {
    let now = 0;
    const cache = new KeyCache(1_000, () => now);
    const key = randomBytes(32);
    const copy = Buffer.from(key);
    cache.set('a:1', key);
    now = 999;
    // One caller awaits the key; meanwhile the lifetime ends and another lookup sweeps it.
    const user = (async () => {
      const got = await Promise.resolve(cache.get('a:1'));
      return Buffer.from(got!);
    })();
    now = 1_000;
    expect(cache.get('b:1')).toBeUndefined();
    expect(cache.get('a:1')).toBeUndefined();
    expect(await user).toEqual(copy);
    await nextTurn();
    expect(isZero(key)).toBe(true);
  });

  it('a KEK cache made alike shares the lifetime, the clock and the sweep', async () => {
    let now = 0;
    const cache = new KeyCache(1_000, () => now);
    const keks = cache.alike<{ key: Buffer; masterVersion: number }>((k) => k.key.fill(0));
    const asked = kek();
    const forgotten = kek();
    keks.set('asked', asked);
    keks.set('forgotten', forgotten);
    now = 999;
    expect(keks.get('asked')).toBe(asked);
    now = 1_000;
    // Nobody asks for a KEK again; a data-key lookup sweeps both caches all the same.
    expect(cache.get('nothing')).toBeUndefined();
    await nextTurn();
    expect(isZero(asked.key)).toBe(true);
    expect(isZero(forgotten.key)).toBe(true);
    expect(keks.get('asked')).toBeUndefined();
  });

  it('wipes a replaced or deleted value; keep keeps the first and wipes the newcomer', async () => {
    const cache = new KeyCache(1_000, () => 0);
    const first = randomBytes(32);
    const second = randomBytes(32);
    cache.set('a:1', first);
    cache.set('a:1', second);
    await nextTurn();
    expect(isZero(first)).toBe(true);
    expect(cache.get('a:1')).toBe(second);
    cache.set('a:1', second); // the same buffer again: not wiped
    expect(isZero(second)).toBe(false);

    const late = randomBytes(32);
    expect(cache.keep('a:1', late)).toBe(second);
    expect(isZero(late)).toBe(true);
    expect(isZero(second)).toBe(false);
    const fresh = randomBytes(32);
    expect(cache.keep('b:1', fresh)).toBe(fresh);

    cache.deletePrefix('a:');
    expect(isZero(second)).toBe(true);
    expect(cache.get('a:1')).toBeUndefined();
    cache.delete('b:1');
    expect(isZero(fresh)).toBe(true);
  });
});
