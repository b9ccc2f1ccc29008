import { randomBytes } from 'node:crypto';
import { describe, expect, it } from 'vitest';
import { DecryptionError, dataKeyAad, fieldAad, keyVersionOf, open, seal } from './envelope.js';

const loc = { orgId: 'org-a', table: 'users', rowId: 'row-1', field: 'totp_secret_enc' };

describe('envelope (AES-256-GCM)', () => {
  const key = randomBytes(32);
  const aad = fieldAad(loc);
  const plaintext = Buffer.from('a secret worth keeping');

  it('round-trips and names its key version in the header', () => {
    const ct = seal(key, 7, plaintext, aad);
    expect(keyVersionOf(ct)).toBe(7);
    expect(open(key, ct, aad).equals(plaintext)).toBe(true);
    expect(ct.includes(plaintext)).toBe(false);
  });

  it('uses a fresh IV each time', () => {
    expect(seal(key, 1, plaintext, aad).equals(seal(key, 1, plaintext, aad))).toBe(false);
  });

  it('rejects every single-bit flip anywhere in the ciphertext', () => {
    const ct = seal(key, 1, plaintext, aad);
    for (let i = 5; i < ct.length; i++) {
      const bad = Buffer.from(ct);
      bad[i] = bad[i]! ^ 0x80;
      expect(() => open(key, bad, aad), `byte ${i}`).toThrow(DecryptionError);
    }
  });

  it('rejects the wrong key, the wrong location and the wrong format', () => {
    const ct = seal(key, 1, plaintext, aad);
    expect(() => open(randomBytes(32), ct, aad)).toThrow(DecryptionError);
    for (const other of [
      { ...loc, orgId: 'org-b' },
      { ...loc, rowId: 'row-2' },
      { ...loc, table: 'orgs' },
      { ...loc, field: 'name_enc' },
    ]) {
      expect(() => open(key, ct, fieldAad(other))).toThrow(DecryptionError);
    }
    const wrongFormat = Buffer.from(ct);
    wrongFormat[0] = 2;
    expect(() => open(key, wrongFormat, aad)).toThrow(/not a Sotto ciphertext/);
    expect(() => open(key, ct.subarray(0, 20), aad)).toThrow(/not a Sotto ciphertext/);
  });

  it('keeps field and data-key associated data apart (no confusion between the two uses)', () => {
    expect(fieldAad(loc).equals(dataKeyAad('org-a', 1))).toBe(false);
  });

  it('refuses keys that are not 32 bytes', () => {
    expect(() => seal(randomBytes(16), 1, plaintext, aad)).toThrow(/32-byte/);
  });
});
