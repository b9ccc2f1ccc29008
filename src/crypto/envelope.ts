import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';

/**
 * AES-256-GCM with a self-describing header, used both for field ciphertexts (under an org data
 * key) and for wrapped data keys (under a master key).
 *
 *   byte 0      format (1)
 *   bytes 1-4   key version, uint32 big-endian (names the key that can open it)
 *   bytes 5-16  96-bit random IV
 *   bytes 17-32 GCM tag
 *   bytes 33-   ciphertext
 *
 * The associated data is not stored: the reader recomputes it from where the ciphertext is found
 * (org, table, row, field), so a ciphertext copied to another row or org fails authentication.
 */
const FORMAT = 1;
const HEADER = 1 + 4 + 12 + 16;

export class DecryptionError extends Error {
  override name = 'DecryptionError';
}

export interface FieldLocation {
  orgId: string;
  table: string;
  rowId: string;
  field: string;
}

export function fieldAad(loc: FieldLocation): Buffer {
  return Buffer.from(`sotto/field/v1|${loc.orgId}|${loc.table}|${loc.rowId}|${loc.field}`, 'utf8');
}

export function dataKeyAad(orgId: string, dataKeyVersion: number): Buffer {
  return Buffer.from(`sotto/data-key/v1|${orgId}|${dataKeyVersion}`, 'utf8');
}

export function seal(key: Buffer, keyVersion: number, plaintext: Buffer, aad: Buffer): Buffer {
  if (key.length !== 32) throw new Error('AES-256 needs a 32-byte key');
  const iv = randomBytes(12);
  const cipher = createCipheriv('aes-256-gcm', key, iv);
  cipher.setAAD(aad);
  const body = Buffer.concat([cipher.update(plaintext), cipher.final()]);
  const header = Buffer.alloc(5);
  header.writeUInt8(FORMAT, 0);
  header.writeUInt32BE(keyVersion, 1);
  return Buffer.concat([header, iv, cipher.getAuthTag(), body]);
}

export function keyVersionOf(ciphertext: Uint8Array): number {
  const buf = Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength);
  if (buf.length < HEADER || buf.readUInt8(0) !== FORMAT) throw new DecryptionError('not a Sotto ciphertext');
  return buf.readUInt32BE(1);
}

export function open(key: Buffer, ciphertext: Uint8Array, aad: Buffer): Buffer {
  const buf = Buffer.from(ciphertext.buffer, ciphertext.byteOffset, ciphertext.byteLength);
  keyVersionOf(buf);
  const decipher = createDecipheriv('aes-256-gcm', key, buf.subarray(5, 17));
  decipher.setAAD(aad);
  decipher.setAuthTag(buf.subarray(17, HEADER));
  try {
    return Buffer.concat([decipher.update(buf.subarray(HEADER)), decipher.final()]);
  } catch {
    // Wrong key, wrong place (AAD) or tampered bytes: GCM cannot tell which, and neither do we.
    throw new DecryptionError('ciphertext failed authentication (tampered, moved, or wrong key)');
  }
}
