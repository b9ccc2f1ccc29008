import { randomBytes } from 'node:crypto';
import type { Database, Queryable } from '../db/database.js';
import { withSystem } from '../db/tenant.js';
import { AppError } from '../domain/errors.js';
import {
  DecryptionError,
  dataKeyAad,
  fieldAad,
  keyVersionOf,
  open,
  seal,
  type FieldLocation,
} from '../crypto/envelope.js';
import type { MasterKeyring } from '../crypto/keyring.js';
import { keyRepository, type WrappedDataKey } from '../repositories/key.repository.js';

/**
 * Envelope encryption for tenant data. Each org has data keys (AES-256) wrapped by the master
 * key; fields are sealed with the org's newest data key and bound to their location.
 *
 * Unwrapped data keys are cached in memory: unwrapping is cheap but the key row read is not.
 * All reads go through the caller's transaction (PGlite has one connection: a second
 * transaction opened here would wait forever for the first).
 */
export class KeyService {
  private readonly cache = new Map<string, Buffer>();

  constructor(
    private readonly db: Database,
    private readonly master: MasterKeyring,
  ) {}

  get activeMasterVersion(): number {
    return this.master.active.version;
  }

  /** Creates the org's first data key; call inside the transaction that creates the org. */
  async createOrgKey(tx: Queryable, orgId: string): Promise<void> {
    const key = randomBytes(32);
    await keyRepository.insert(tx, this.wrap(orgId, 1, key));
    this.cache.set(`${orgId}:1`, key);
  }

  async encrypt(tx: Queryable, loc: FieldLocation, plaintext: string | Buffer): Promise<Buffer> {
    assertSameTenant(tx, loc, 'internal');
    const wrapped = await keyRepository.findActive(tx, loc.orgId);
    if (!wrapped) throw new AppError('internal', 'organization has no data key');
    const key = this.unwrapCached(wrapped);
    const data = typeof plaintext === 'string' ? Buffer.from(plaintext, 'utf8') : plaintext;
    return seal(key, wrapped.version, data, fieldAad(loc));
  }

  async decrypt(tx: Queryable, loc: FieldLocation, ciphertext: Uint8Array): Promise<Buffer> {
    assertSameTenant(tx, loc, 'decryption_failed');
    try {
      const version = keyVersionOf(ciphertext);
      let key = this.cache.get(`${loc.orgId}:${version}`);
      if (!key) {
        const wrapped = await keyRepository.find(tx, loc.orgId, version);
        if (!wrapped) throw new DecryptionError(`data key v${version} of this organization is gone`);
        key = this.unwrapCached(wrapped);
      }
      return open(key, ciphertext, fieldAad(loc));
    } catch (err) {
      if (err instanceof DecryptionError) {
        // Fail closed; the cause stays in the server log (location only, never content).
        throw new AppError('decryption_failed', `cannot decrypt ${loc.table}.${loc.field}`, undefined, {
          cause: err,
        });
      }
      throw err;
    }
  }

  async encryptJson(tx: Queryable, loc: FieldLocation, value: unknown): Promise<Buffer> {
    return this.encrypt(tx, loc, JSON.stringify(value));
  }

  async decryptJson<T>(tx: Queryable, loc: FieldLocation, ciphertext: Uint8Array): Promise<T> {
    return JSON.parse((await this.decrypt(tx, loc, ciphertext)).toString('utf8')) as T;
  }

  async decryptString(tx: Queryable, loc: FieldLocation, ciphertext: Uint8Array): Promise<string> {
    return (await this.decrypt(tx, loc, ciphertext)).toString('utf8');
  }

  /** Forget cached keys of an org (crypto-shredding, tests). */
  forgetOrg(orgId: string): void {
    for (const k of this.cache.keys()) if (k.startsWith(`${orgId}:`)) this.cache.delete(k);
  }

  /**
   * Re-wraps every data key still under an older master key with the active one. Online: small
   * batches, each its own transaction with SKIP LOCKED, so requests keep reading and several
   * nodes can share the work. Returns how many keys were re-wrapped.
   */
  async rewrapAll(batchSize = 100): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await withSystem(this.db, async (tx) => {
        const stale = await keyRepository.lockStale(tx, this.master.active.version, batchSize);
        for (const old of stale) {
          const key = this.unwrap(old);
          await keyRepository.rewrap(tx, this.wrap(old.orgId, old.version, key));
        }
        return stale.length;
      });
      total += n;
      if (n < batchSize) return total;
    }
  }

  async status(): Promise<{ activeMasterVersion: number; dataKeysByMasterVersion: Record<number, number> }> {
    const counts = await withSystem(this.db, (tx) => keyRepository.countByMasterVersion(tx));
    return {
      activeMasterVersion: this.master.active.version,
      dataKeysByMasterVersion: Object.fromEntries(counts.map((c) => [c.masterVersion, c.count])),
    };
  }

  /** Seal arbitrary platform secrets (JWT signing keys) directly under the master key. */
  sealPlatformSecret(label: string, secret: Buffer): { sealed: Buffer; masterVersion: number } {
    const m = this.master.active;
    return {
      sealed: seal(m.key, m.version, secret, Buffer.from(`sotto/platform/v1|${label}`)),
      masterVersion: m.version,
    };
  }

  openPlatformSecret(label: string, sealed: Uint8Array): Buffer {
    const m = this.master.byVersion.get(keyVersionOf(sealed));
    if (!m) throw new DecryptionError(`master key v${keyVersionOf(sealed)} is not configured`);
    return open(m.key, sealed, Buffer.from(`sotto/platform/v1|${label}`));
  }

  private wrap(orgId: string, version: number, key: Buffer): WrappedDataKey {
    const m = this.master.active;
    return {
      orgId,
      version,
      wrapped: seal(m.key, m.version, key, dataKeyAad(orgId, version)),
      masterVersion: m.version,
    };
  }

  private unwrap(w: WrappedDataKey): Buffer {
    const m = this.master.byVersion.get(w.masterVersion);
    if (!m) throw new DecryptionError(`master key v${w.masterVersion} is not configured`);
    return open(m.key, w.wrapped, dataKeyAad(w.orgId, w.version));
  }

  private unwrapCached(w: WrappedDataKey): Buffer {
    const id = `${w.orgId}:${w.version}`;
    let key = this.cache.get(id);
    if (!key) {
      key = this.unwrap(w);
      this.cache.set(id, key);
    }
    return key;
  }
}

/**
 * Keys are cached outside the database, where RLS cannot guard them: inside a tenant transaction,
 * only that tenant's keys may be used. (System transactions — rotation, verification — may use any.)
 */
function assertSameTenant(tx: Queryable, loc: FieldLocation, code: 'internal' | 'decryption_failed'): void {
  if (tx.tenantOrgId !== undefined && tx.tenantOrgId !== loc.orgId) {
    throw new AppError(code, 'data key of another organization requested inside a tenant transaction');
  }
}
