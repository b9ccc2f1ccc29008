import { hash, verify } from '@node-rs/argon2';
import pLimit from 'p-limit';

/**
 * argon2id at OWASP's minimum (19 MiB, 2 passes). Hashing is deliberately expensive, so the
 * number of hashes in flight is bounded: a burst of logins queues instead of exhausting memory.
 */
const PARAMS = {
  algorithm: 2 /* Argon2id (a const enum, unusable under verbatimModuleSyntax) */,
  memoryCost: 19456,
  timeCost: 2,
  parallelism: 1,
} as const;

export class PasswordHasher {
  private readonly limit;
  /** A real hash of a random string, verified against when the account does not exist. */
  private dummy: Promise<string> | undefined;

  constructor(concurrency: number) {
    this.limit = pLimit(concurrency);
  }

  hash(password: string): Promise<string> {
    return this.limit(() => hash(password, PARAMS));
  }

  verify(hashed: string, password: string): Promise<boolean> {
    return this.limit(async () => {
      try {
        return await verify(hashed, password);
      } catch {
        return false;
      }
    });
  }

  /** Spend the same time as a real verification so unknown emails cannot be told apart by timing. */
  async verifyDummy(password: string): Promise<false> {
    this.dummy ??= hash('sotto-timing-equaliser', PARAMS);
    await this.verify(await this.dummy, password);
    return false;
  }
}
