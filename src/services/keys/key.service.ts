import { hkdfSync, randomBytes } from 'node:crypto';
import type { Database, Queryable } from '../../db/database.js';
import { withSystem } from '../../db/tenant.js';
import { AppError } from '../../domain/errors.js';
import {
  DecryptionError,
  dataKeyAad,
  fieldAad,
  keyVersionOf,
  open,
  seal,
  type FieldLocation,
} from '../../crypto/envelope.js';
import type { MasterKey, MasterKeyring } from '../../crypto/keyring.js';
import { keyRepository, type WrappedDataKey } from '../../repositories/keys/key.repository.js';
import { DirKekStore, type OrgKekStore } from '../../adapters/storage/org-kek.adapter.js';
import { KeyCache, type ExpiringKeyCache } from './key-cache.js';

/** An org's unwrapped KEK and the master key version its key-store copy is sealed under. */
type Kek = { key: Buffer; masterVersion: number };

/**
 * Envelope encryption for tenant data, in three levels:
 *   master key (outside the database) seals each org's key-encryption key (KEK), kept in the key
 *   store (outside the database too: a directory or a bucket, OrgKekStore); the KEK wraps the
 *   org's data keys (org_keys rows); data keys seal fields, bound to their location.
 * Destroying the KEK crypto-shreds the org everywhere, database backups included: a backup
 * plus the master key no longer opens anything of that org. Rows written before migration 0012
 * are wrapped by the master key directly (wrapped_by 'master') until `upgradeLegacy` runs.
 *
 * Unwrapped data keys and KEKs are cached in memory (unwrapping is cheap but the key row and key
 * store reads are not), for a bounded time (KeyCache): a version retired or an org shredded on
 * another node stops working here too.
 * All reads go through the caller's transaction (PGlite has one connection: a second
 * transaction opened here would wait forever for the first).
 */
export class KeyService {
  private readonly cache: KeyCache;
  /** Same lifetime and clock as `cache`: the KEK of an org shredded elsewhere expires here too. */
  private readonly kekCache: ExpiringKeyCache<Kek>;
  /** Reads in flight, so a cold cache costs one key-store read per org, not one per request. */
  private readonly kekLoads = new Map<string, Promise<Buffer | undefined>>();
  private readonly keks: OrgKekStore;

  constructor(
    private readonly db: Database,
    private readonly master: MasterKeyring,
    /** The key directory (SOTTO_KEY_DIR), or a key store (SOTTO_KEY_STORE). */
    keyDir: string | OrgKekStore,
    /** Tests: another cache lifetime or time source. */
    cache?: KeyCache,
  ) {
    this.keks = typeof keyDir === 'string' ? new DirKekStore(keyDir) : keyDir;
    this.cache = cache ?? new KeyCache();
    this.kekCache = this.cache.alike<Kek>((kek) => kek.key.fill(0));
  }

  get activeMasterVersion(): number {
    return this.master.active.version;
  }

  /** Creates the org's first data key; call inside the transaction that creates the org. */
  async createOrgKey(tx: Queryable, orgId: string): Promise<void> {
    const key = randomBytes(32);
    const kek = await this.kekOf(orgId, this.master.active);
    await keyRepository.insert(tx, this.wrapUnder(kek, orgId, 1, key));
    this.cache.set(`${orgId}:1`, key);
  }

  async encrypt(tx: Queryable, loc: FieldLocation, plaintext: string | Buffer): Promise<Buffer> {
    assertSameTenant(tx, loc, 'internal');
    const wrapped = await keyRepository.findActive(tx, loc.orgId);
    if (!wrapped) throw new AppError('internal', 'organization has no data key');
    let key: Buffer;
    try {
      key = await this.unwrapCached(wrapped);
    } catch (err) {
      if (err instanceof DecryptionError)
        throw new AppError('decryption_failed', `cannot encrypt ${loc.table}.${loc.field}`, undefined, {
          cause: err,
        });
      throw err;
    }
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
        key = await this.unwrapCached(wrapped);
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

  /**
   * The org's search-index key (docs/search.md): HKDF-SHA256 of the org's KEK, so it is never
   * stored anywhere and shredding the KEK makes every index token of the org unlinkable to words.
   * Cached with the data keys (forgetOrg wipes it). Same tenant rule as the data keys.
   */
  async searchKey(tx: Queryable, orgId: string): Promise<Buffer> {
    assertSameTenant(
      tx,
      { orgId, table: 'search_index', rowId: orgId, field: 'tokens' },
      'decryption_failed',
    );
    const id = `${orgId}:search`;
    let key = this.cache.get(id);
    if (!key) {
      let kek: Buffer;
      try {
        kek = (await this.kekOf(orgId)).key;
      } catch (err) {
        if (err instanceof DecryptionError)
          throw new AppError('decryption_failed', 'cannot derive the search index key', undefined, {
            cause: err,
          });
        throw err;
      }
      key = Buffer.from(hkdfSync('sha256', kek, Buffer.from(orgId, 'utf8'), 'sotto/search-index/v1', 32));
      key = this.cache.keep(id, key);
    }
    return key;
  }

  /** Forget cached keys of an org (crypto-shredding, tests). */
  forgetOrg(orgId: string): void {
    this.cache.deletePrefix(`${orgId}:`);
    this.kekCache.delete(orgId);
  }

  /**
   * Crypto-shredding of an org (organization deletion), inside the caller's system transaction
   * that holds the org's row lock: the data key rows go, then the KEK (file fsynced, or object
   * deleted) — from then on no copy of the org's ciphertexts anywhere decrypts, whatever happens
   * to the transaction.
   * Caches of this process are cleared; other nodes hold no key they could still use on rows
   * (the rows are purged next) and lose their cached keys and KEK within the cache lifetime.
   */
  async shredOrg(tx: Queryable, orgId: string): Promise<{ dataKeys: number }> {
    const dataKeys = await keyRepository.deleteOrg(tx, orgId);
    await this.keks.destroy(orgId);
    this.forgetOrg(orgId);
    return { dataKeys };
  }

  /**
   * Data-key rotation (scheduled, DataKeyRotationService): a new data key version for the org,
   * wrapped by its KEK; `encrypt` uses the newest version from this transaction's commit on, and
   * older versions still open what they sealed until they are re-encrypted and retired. Call in a
   * system transaction holding the org's row lock. Returns the new version.
   */
  async rotateDataKey(tx: Queryable, orgId: string, now: Date): Promise<number> {
    const current = await keyRepository.findActive(tx, orgId);
    if (!current) throw new AppError('internal', 'organization has no data key');
    const version = current.version + 1;
    const key = randomBytes(32);
    await keyRepository.insert(tx, this.wrapUnder(await this.kekOf(orgId), orgId, version, key), now);
    this.cache.set(`${orgId}:${version}`, key);
    return version;
  }

  /** Retires a superseded data key version (nothing may still be sealed under it: the caller checked). */
  async retireDataKey(tx: Queryable, orgId: string, version: number): Promise<boolean> {
    const active = await keyRepository.findActive(tx, orgId);
    if (!active || active.version <= version)
      throw new AppError('internal', 'the active data key cannot be retired');
    const gone = await keyRepository.deleteVersion(tx, orgId, version);
    this.cache.delete(`${orgId}:${version}`);
    return gone;
  }

  /** True when the org's KEK exists in the key store (tests, diagnostics). */
  async hasKek(orgId: string): Promise<boolean> {
    return (await this.keks.read(orgId)) !== undefined;
  }

  /**
   * Start-up upgrade of pre-0012 orgs: their master-wrapped data keys are rewrapped under a new
   * KEK, sealed by the same master version the rows had (a node must not switch master versions
   * on its own: other nodes may not have a newer one yet). Idempotent, shared across nodes.
   */
  upgradeLegacy(batchSize = 100): Promise<number> {
    return this.rewrapBatches(null, batchSize);
  }

  /**
   * Re-wraps every data key still under an older master key with the active one. Online: small
   * batches, each its own transaction with SKIP LOCKED, so requests keep reading and several
   * nodes can share the work. Returns how many keys were re-wrapped.
   */
  async rewrapAll(batchSize = 100): Promise<number> {
    return this.rewrapBatches(this.master.active, batchSize);
  }

  /**
   * Master rotation reseals each org's KEK under `target` (the data key rows only record the
   * new version; their bytes, wrapped by the unchanged KEK, stay), and pre-0012 rows move under a
   * KEK. Orgs are locked one batch at a time (SKIP LOCKED on the orgs row), so one node handles an
   * org's single KEK at a time. Returns how many data keys now sit under the target version.
   */
  private async rewrapBatches(target: MasterKey | null, batchSize: number): Promise<number> {
    let total = 0;
    for (;;) {
      const n = await withSystem(this.db, async (tx) => {
        const orgs = await keyRepository.lockOrgsNeedingRewrap(tx, target?.version ?? null, batchSize);
        for (const orgId of orgs) total += await this.rewrapOrg(tx, orgId, target);
        return orgs.length;
      });
      if (n < batchSize) return total;
    }
  }

  private async rewrapOrg(tx: Queryable, orgId: string, target: MasterKey | null): Promise<number> {
    const rows = await keyRepository.listOrg(tx, orgId);
    const sealedKek = await this.keks.read(orgId);
    // This call's own copy: the cached one may expire (and be wiped) while the loop below awaits.
    let kek: Kek;
    if (sealedKek) {
      kek = this.openKek(orgId, sealedKek);
      if (target && kek.masterVersion !== target.version) {
        await this.keks.write(orgId, seal(target.key, target.version, kek.key, kekAad(orgId)));
        kek = { key: kek.key, masterVersion: target.version };
      }
    } else if (rows.every((r) => r.wrappedBy === 'master')) {
      // Upgrade: sealed by the target, or by the newest master version among the legacy rows.
      const version = target?.version ?? Math.max(...rows.map((r) => r.masterVersion));
      const m = this.master.byVersion.get(version) ?? this.master.active;
      const made = await this.kekOf(orgId, m);
      kek = { key: Buffer.from(made.key), masterVersion: made.masterVersion };
    } else {
      throw new Error(`the key of organization ${orgId} is missing from the key store`);
    }
    // The cache gets a copy, and only when it lacks this KEK under this master version: replacing
    // wipes the cached one, which a concurrent reader may hold.
    if (this.kekCache.get(orgId)?.masterVersion !== kek.masterVersion)
      this.kekCache.set(orgId, { key: Buffer.from(kek.key), masterVersion: kek.masterVersion });
    let n = 0;
    try {
      for (const row of rows) {
        if (row.wrappedBy === 'master') {
          const key = await this.unwrap(row);
          await keyRepository.rewrap(tx, { ...this.wrapUnder(kek, orgId, row.version, key) });
          n++;
        } else if (row.masterVersion !== kek.masterVersion) {
          await keyRepository.rewrap(tx, { ...row, masterVersion: kek.masterVersion });
          n++;
        }
      }
    } finally {
      kek.key.fill(0);
    }
    return n;
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

  /**
   * The org's KEK: cached, else read from the key store, else (`createUnder`) made and written.
   * Only the org's creation and the upgrade (under the org's row lock) create one, so no two
   * callers can write different KEKs for one org.
   */
  private async kekOf(orgId: string, createUnder?: MasterKey): Promise<Kek> {
    const cached = this.kekCache.get(orgId);
    if (cached) return cached;
    const sealed = await this.readKek(orgId);
    // Another caller may have opened it while this one waited.
    const opened = this.kekCache.get(orgId);
    if (opened) return opened;
    let kek: Kek;
    if (sealed) kek = this.openKek(orgId, sealed);
    else if (createUnder) {
      kek = { key: randomBytes(32), masterVersion: createUnder.version };
      await this.keks.write(orgId, seal(createUnder.key, createUnder.version, kek.key, kekAad(orgId)));
    } else {
      throw new DecryptionError(
        'the key-encryption key of this organization is gone (shredded or not restored)',
      );
    }
    // A reader may have cached it while the new one was being written (same bytes).
    return this.kekCache.keep(orgId, kek);
  }

  private readKek(orgId: string): Promise<Buffer | undefined> {
    let load = this.kekLoads.get(orgId);
    if (!load) {
      load = this.keks.read(orgId).finally(() => this.kekLoads.delete(orgId));
      this.kekLoads.set(orgId, load);
    }
    return load;
  }

  private openKek(orgId: string, sealed: Buffer): Kek {
    const version = keyVersionOf(sealed);
    const m = this.master.byVersion.get(version);
    if (!m) throw new DecryptionError(`master key v${version} is not configured`);
    return { key: open(m.key, sealed, kekAad(orgId)), masterVersion: version };
  }

  private wrapUnder(kek: Kek, orgId: string, version: number, key: Buffer): WrappedDataKey {
    return {
      orgId,
      version,
      wrapped: seal(kek.key, 1, key, dataKeyAad(orgId, version)),
      masterVersion: kek.masterVersion,
      wrappedBy: 'kek',
    };
  }

  private async unwrap(w: WrappedDataKey): Promise<Buffer> {
    if (w.wrappedBy === 'kek')
      return open((await this.kekOf(w.orgId)).key, w.wrapped, dataKeyAad(w.orgId, w.version));
    const m = this.master.byVersion.get(w.masterVersion);
    if (!m) throw new DecryptionError(`master key v${w.masterVersion} is not configured`);
    return open(m.key, w.wrapped, dataKeyAad(w.orgId, w.version));
  }

  private async unwrapCached(w: WrappedDataKey): Promise<Buffer> {
    const id = `${w.orgId}:${w.version}`;
    let key = this.cache.get(id);
    if (!key) {
      key = this.cache.keep(id, await this.unwrap(w));
    }
    return key;
  }
}

/**
 * Keys are cached outside the database, where RLS cannot guard them: inside a tenant transaction,
 * only that tenant's keys may be used. (System transactions — rotation, verification — may use any.)
 */
const kekAad = (orgId: string): Buffer => Buffer.from(`sotto/org-kek/v1|${orgId}`, 'utf8');

function assertSameTenant(tx: Queryable, loc: FieldLocation, code: 'internal' | 'decryption_failed'): void {
  if (tx.tenantOrgId !== undefined && tx.tenantOrgId !== loc.orgId) {
    throw new AppError(code, 'data key of another organization requested inside a tenant transaction');
  }
}
