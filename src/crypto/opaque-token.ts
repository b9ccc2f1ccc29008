import { randomBytes, randomUUID } from 'node:crypto';
import { safeEqual, sha256Hex } from './random.js';

/**
 * The credential format shared by worker tokens and personal API tokens:
 * `<prefix><id: 32 hex>_<secret: 43 base64url>`.
 *
 * The fixed prefix lets secret scanners (GitHub, gitleaks) recognise a leaked token; the id finds
 * the row without a scan; the secret is 256 random bits, stored only as its SHA-256 and compared
 * in constant time. Why SHA-256 and not argon2: argon2 makes guessing a *low-entropy* password
 * expensive; a 256-bit random secret cannot be guessed, so a slow hash would only cost every
 * request tens of milliseconds of CPU and memory.
 */
export interface MintedToken {
  /** The row id (a UUID). */
  id: string;
  /** The whole credential: shown once, never stored. */
  secret: string;
  /** What is stored (hex SHA-256 of the secret part). */
  tokenHash: string;
}

export interface PresentedToken {
  id: string;
  /** Hex SHA-256 of the presented secret part, to compare with `matches`. */
  hash: string;
}

/** How often a token's last_used_at is written: a busy caller must not cost a write per request. */
export const LAST_USED_WRITE_INTERVAL_MS = 60_000;

const toUuid = (hex: string) =>
  `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;

export class OpaqueTokenCodec {
  private readonly format: RegExp;

  constructor(readonly prefix: string) {
    if (!/^[a-z]+_[a-z]+_$/.test(prefix)) throw new Error(`bad token prefix ${prefix}`);
    this.format = new RegExp(`^${prefix}([0-9a-f]{32})_([A-Za-z0-9_-]{43})$`);
  }

  /** Whether a bearer credential has this kind's shape (routes use it to pick the check). */
  looksLike(token: string): boolean {
    return token.startsWith(this.prefix);
  }

  mint(): MintedToken {
    const id = randomUUID();
    const secretPart = randomBytes(32).toString('base64url');
    return {
      id,
      secret: `${this.prefix}${id.replace(/-/g, '')}_${secretPart}`,
      tokenHash: sha256Hex(secretPart),
    };
  }

  /** The id and the hash of the secret, or undefined when the token is not of this shape. */
  parse(token: string): PresentedToken | undefined {
    const m = this.format.exec(token);
    return m ? { id: toUuid(m[1]!), hash: sha256Hex(m[2]!) } : undefined;
  }

  /** Constant-time comparison of a stored hash with a presented one. */
  matches(storedHash: string, presented: PresentedToken): boolean {
    return safeEqual(storedHash, presented.hash);
  }
}

/** Whether last_used_at is stale enough to be written again (at most once a minute per token). */
export function lastUsedIsStale(lastUsedAt: Date | null, now: Date): boolean {
  return !lastUsedAt || now.getTime() - lastUsedAt.getTime() >= LAST_USED_WRITE_INTERVAL_MS;
}
