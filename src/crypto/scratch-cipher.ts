import { createCipheriv, createDecipheriv, randomBytes } from 'node:crypto';
import type { Transform } from 'node:stream';

/**
 * A throw-away cipher for scratch files that live only for one process step (the export builder
 * writes its zip here before re-sealing it with the chunked format, which needs the plaintext
 * size up front). AES-256-CTR under a random in-memory key: the file on disk is unreadable, and
 * the key never leaves memory. CTR has no integrity of its own, so the caller must check the
 * plaintext's hash on the way back (org-export-seal.ts does).
 */
export interface ScratchCipher {
  /** Encrypting transform (one use). */
  encrypt(): Transform;
  /** Decrypting transform (one use) for what `encrypt()` produced. */
  decrypt(): Transform;
  /** Zeroes the key. */
  destroy(): void;
}

export function createScratchCipher(): ScratchCipher {
  const key = randomBytes(32);
  const iv = randomBytes(16);
  return {
    encrypt: () => createCipheriv('aes-256-ctr', key, iv),
    decrypt: () => createDecipheriv('aes-256-ctr', key, iv),
    destroy: () => key.fill(0),
  };
}
