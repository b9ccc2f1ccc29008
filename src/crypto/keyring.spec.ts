import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { KeyringError, formatKeyring, parseKeyring } from './keyring.js';

const b64 = (n = 32) => randomBytes(n).toString('base64');

describe('master keyring', () => {
  it('reads a single bare key as version 1', () => {
    const k = b64();
    const ring = parseKeyring(`${k}\n`);
    expect(ring.active.version).toBe(1);
    expect(ring.active.key.toString('base64')).toBe(k);
  });

  it('reads versioned entries separated by commas or newlines, with comments, highest active', () => {
    const ring = parseKeyring(`# rotated 2026\nv2:${b64()}, v10:${b64()}\nv1:${b64()}`);
    expect(ring.active.version).toBe(10);
    expect([...ring.byVersion.keys()].sort((a, b) => a - b)).toEqual([1, 2, 10]);
  });

  it('round-trips through formatKeyring, newest first', () => {
    const ring = parseKeyring(`v1:${b64()},v2:${b64()}`);
    const text = formatKeyring([...ring.byVersion.values()]);
    expect(text.startsWith('v2:')).toBe(true);
    const again = parseKeyring(text);
    for (const [v, k] of ring.byVersion) expect(again.byVersion.get(v)!.key.equals(k.key)).toBe(true);
  });

  it.each([
    ['', /no key found/],
    ['# only a comment', /no key found/],
    [b64(16), /32 bytes, got 16/],
    ['not base64 at all!', /not valid base64/],
    [`${b64()},${b64()}`, /must each be written v<N>/],
    [`v0:${b64()}`, /start at 1/],
    [`v1:${b64()},v1:${b64()}`, /appears twice/],
  ])('refuses %j', (text, message) => {
    expect(() => parseKeyring(text)).toThrow(KeyringError);
    expect(() => parseKeyring(text)).toThrow(message);
  });
});
