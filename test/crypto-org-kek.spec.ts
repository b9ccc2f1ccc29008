/**
 * Per-org key-encryption keys outside the database (issue 6, docs/security.md): data keys are
 * wrapped by the org's KEK, a file in the key directory sealed by the master key. Orgs from before
 * migration 0012 (data keys wrapped by the master key directly) are upgraded idempotently; master
 * rotation reseals KEK files; a database plus the master key alone — without the key directory —
 * decrypts nothing. A KEK destroyed on another node stops working on this one once its cache
 * entry expires.
 */
import { randomBytes, randomUUID } from 'node:crypto';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { dataKeyAad, fieldAad, keyVersionOf, seal } from '../src/crypto/envelope.js';
import type { MasterKey, MasterKeyring } from '../src/crypto/keyring.js';
import { withSystem, withTenant } from '../src/db/tenant.js';
import { DirKekStore } from '../src/adapters/storage/org-kek.adapter.js';
import { KeyCache } from '../src/services/keys/key-cache.js';
import { KeyService } from '../src/services/keys/key.service.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

const ring = (keys: MasterKey[]): MasterKeyring => ({
  active: keys.reduce((a, b) => (b.version > a.version ? b : a)),
  byVersion: new Map(keys.map((k) => [k.version, k])),
});
const loc = (orgId: string) => ({ orgId, table: 'orgs', rowId: orgId, field: 'settings_enc' });

describe(`org key-encryption keys (${backendLabel})`, () => {
  let t: TestApp;
  let keyDir: string;
  let v1: MasterKey;

  beforeAll(async () => {
    keyDir = mkdtempSync(path.join(tmpdir(), 'sotto-kek-'));
    v1 = { version: 1, key: randomBytes(32) };
    t = await startTestApp({ env: { SOTTO_MASTER_KEY: v1.key.toString('base64'), SOTTO_KEY_DIR: keyDir } });
  });
  afterAll(async () => {
    await t?.close();
    rmSync(keyDir, { recursive: true, force: true });
  });

  /** An org as migration 0011 left it: its data key wrapped directly by master v1, a sealed setting. */
  async function legacyOrg(): Promise<string> {
    const id = randomUUID();
    const dataKey = randomBytes(32);
    await withTenant(t.db, { orgId: id, userId: null }, async (tx) => {
      await tx.query('INSERT INTO orgs (id, name, slug) VALUES ($1, $2, $3)', [
        id,
        'Legacy',
        `l-${id.slice(0, 12)}`,
      ]);
      await tx.query(
        `INSERT INTO org_keys (org_id, version, wrapped, master_version, wrapped_by) VALUES ($1, 1, $2, 1, 'master')`,
        [id, seal(v1.key, 1, dataKey, dataKeyAad(id, 1))],
      );
      await tx.query('UPDATE orgs SET settings_enc = $1 WHERE id = $2', [
        seal(dataKey, 1, Buffer.from(JSON.stringify({ vocabulary: ['legacy secret'] })), fieldAad(loc(id))),
        id,
      ]);
    });
    return id;
  }
  const read = (keys: KeyService, orgId: string) =>
    withTenant(t.db, { orgId, userId: null }, async (tx) => {
      const { rows } = await tx.query<{ enc: Uint8Array }>(
        'SELECT settings_enc AS enc FROM orgs WHERE id = $1',
        [orgId],
      );
      return keys.decryptJson<{ vocabulary: string[] }>(tx, loc(orgId), rows[0]!.enc);
    });
  const wrappedBy = async (orgId: string) =>
    (
      await t.db.query<{ w: string }>('SELECT wrapped_by AS w FROM org_keys WHERE org_id = $1', [orgId])
    ).rows.map((r) => r.w);

  it('upgrades pre-0012 orgs under a new KEK, idempotently, and the data still reads', async () => {
    const orgs = [await legacyOrg(), await legacyOrg()];
    expect((await read(new KeyService(t.db, ring([v1]), keyDir), orgs[0]!)).vocabulary).toEqual([
      'legacy secret',
    ]);
    const node = new KeyService(t.db, ring([v1]), keyDir);
    expect(await node.upgradeLegacy()).toBe(2);
    expect(await node.upgradeLegacy()).toBe(0);
    for (const id of orgs) {
      expect(await wrappedBy(id)).toEqual(['kek']);
      const file = path.join(keyDir, `org-${id}.kek`);
      expect(statSync(file).mode & 0o777).toBe(0o600);
      expect(keyVersionOf(readFileSync(file))).toBe(1); // sealed by the same master version
      expect((await read(new KeyService(t.db, ring([v1]), keyDir), id)).vocabulary).toEqual([
        'legacy secret',
      ]);
    }
    expect(readdirSync(keyDir).filter((f) => f.endsWith('.tmp') || f.startsWith('.'))).toEqual([]);
  });

  /** A new org (through the app's KeyService) with a sealed setting. */
  async function newOrg(secret: string): Promise<string> {
    const id = randomUUID();
    await withTenant(t.db, { orgId: id, userId: null }, async (tx) => {
      await tx.query('INSERT INTO orgs (id, name, slug) VALUES ($1, $2, $3)', [
        id,
        'New',
        `n-${id.slice(0, 12)}`,
      ]);
      await t.services.keys.createOrgKey(tx, id);
      const enc = await t.services.keys.encryptJson(tx, loc(id), { vocabulary: [secret] });
      await tx.query('UPDATE orgs SET settings_enc = $1 WHERE id = $2', [enc, id]);
    });
    return id;
  }

  it('a KEK destroyed by another node stops working here once its cache entry expires; live orgs re-read theirs', async () => {
    const shredded = await newOrg('shredded secret');
    const live = await newOrg('live secret');
    /** The key directory on disk, counting this node's reads of each org's KEK. */
    class CountingKeks extends DirKekStore {
      readonly reads = new Map<string, number>();
      override read(orgId: string): Promise<Buffer | undefined> {
        this.reads.set(orgId, (this.reads.get(orgId) ?? 0) + 1);
        return super.read(orgId);
      }
    }
    const store = new CountingKeks(keyDir);
    let nowMs = 1_000_000;
    const here = new KeyService(t.db, ring([v1]), store, new KeyCache(60_000, () => nowMs));
    const other = new KeyService(t.db, ring([v1]), keyDir);
    const searchKey = (orgId: string) =>
      withTenant(t.db, { orgId, userId: null }, (tx) => here.searchKey(tx, orgId));
    expect((await read(here, shredded)).vocabulary).toEqual(['shredded secret']);
    expect((await read(here, live)).vocabulary).toEqual(['live secret']);
    await searchKey(shredded);

    // The other node's deletion destroys the KEK, then its transaction rolls back: the org_keys
    // rows stay (as in a restored backup), so only the KEK's absence can stop a read.
    await expect(
      withSystem(t.db, async (tx) => {
        await other.shredOrg(tx, shredded);
        throw new Error('deletion rolled back');
      }),
    ).rejects.toThrow('deletion rolled back');
    expect(await other.hasKek(shredded)).toBe(false);
    expect((await wrappedBy(shredded)).length).toBe(1);

    // Within the lifetime this node still holds the org's keys …
    nowMs += 59_999;
    expect((await read(here, shredded)).vocabulary).toEqual(['shredded secret']);
    await searchKey(shredded);
    // … past it, the KEK is read from the key store again: gone, so nothing of the org opens.
    nowMs += 1;
    await expect(read(here, shredded)).rejects.toMatchObject({ name: 'AppError', code: 'decryption_failed' });
    await expect(searchKey(shredded)).rejects.toMatchObject({ name: 'AppError', code: 'decryption_failed' });
    await expect(
      withTenant(t.db, { orgId: shredded, userId: null }, (tx) => here.encryptJson(tx, loc(shredded), {})),
    ).rejects.toMatchObject({ code: 'decryption_failed' });
    // A live org keeps working: its KEK was read once, and once more after the expiry.
    expect(store.reads.get(live)).toBe(1);
    expect((await read(here, live)).vocabulary).toEqual(['live secret']);
    expect(store.reads.get(live)).toBe(2);
    expect((await read(here, live)).vocabulary).toEqual(['live secret']);
    expect(store.reads.get(live)).toBe(2);
    // The rows the rollback kept would stop the master rotation of the next test.
    await withSystem(t.db, (tx) => tx.query('DELETE FROM org_keys WHERE org_id = $1', [shredded]));
  });

  it('new orgs get a KEK file; master rotation reseals it and a node with only the new master key reads', async () => {
    const id = await newOrg('fresh secret');
    expect(await wrappedBy(id)).toEqual(['kek']);
    const before = readFileSync(path.join(keyDir, `org-${id}.kek`));
    const v2: MasterKey = { version: 2, key: randomBytes(32) };
    const rewrapped = await new KeyService(t.db, ring([v1, v2]), keyDir).rewrapAll(3);
    expect(rewrapped).toBeGreaterThanOrEqual(3);
    const after = readFileSync(path.join(keyDir, `org-${id}.kek`));
    expect(keyVersionOf(before)).toBe(1);
    expect(keyVersionOf(after)).toBe(2);
    const status = await new KeyService(t.db, ring([v2]), keyDir).status();
    expect(Object.keys(status.dataKeysByMasterVersion)).toEqual(['2']);
    expect((await read(new KeyService(t.db, ring([v2]), keyDir), id)).vocabulary).toEqual(['fresh secret']);
    // The old master key alone opens nothing any more.
    await expect(read(new KeyService(t.db, ring([v1]), keyDir), id)).rejects.toMatchObject({
      code: 'decryption_failed',
    });
  });

  it('the database and the master key without the key directory decrypt nothing (clear error, no crash)', async () => {
    const { rows } = await withSystem(t.db, (tx) => tx.query<{ id: string }>('SELECT id FROM orgs'));
    const emptyDir = mkdtempSync(path.join(tmpdir(), 'sotto-kek-empty-'));
    try {
      const keys = new KeyService(t.db, t.services.config.masterKeys, emptyDir);
      for (const { id } of rows.slice(0, 3))
        await expect(read(keys, id)).rejects.toMatchObject({ name: 'AppError', code: 'decryption_failed' });
      // Encrypting for such an org fails the same way (never a fresh key silently made).
      await expect(
        withTenant(t.db, { orgId: rows[0]!.id, userId: null }, (tx) =>
          keys.encryptJson(tx, loc(rows[0]!.id), {}),
        ),
      ).rejects.toMatchObject({ code: 'decryption_failed' });
      expect(readdirSync(emptyDir)).toEqual([]);
    } finally {
      rmSync(emptyDir, { recursive: true, force: true });
    }
  });
});
