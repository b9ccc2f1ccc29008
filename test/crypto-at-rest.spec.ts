import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { FieldLocation } from '../src/crypto/envelope.js';
import { withTenant } from '../src/db/tenant.js';
import { AppError } from '../src/domain/errors.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Encryption at rest through the real KeyService and database: what lands on disk is not the
 * plaintext, and a ciphertext that was altered or moved fails closed with decryption_failed.
 */
const SECRET_SETTINGS = { vocabulary: ['Project Nightingale', 'Dr. Okonkwo'], keywords: ['divorce'] };
const TOTP_SECRET = 'JBSWY3DPEHPK3PXPJBSWY3DPEHPK3PXP';

interface Org {
  id: string;
  users: string[];
}

async function createOrg(t: TestApp, users = 2): Promise<Org> {
  const id = randomUUID();
  const ids = Array.from({ length: users }, () => randomUUID());
  await withTenant(t.db, { orgId: id, userId: null }, async (tx) => {
    await tx.query('INSERT INTO orgs (id, name, slug) VALUES ($1, $2, $3)', [
      id,
      'Org',
      `o-${id.slice(0, 8)}`,
    ]);
    await t.services.keys.createOrgKey(tx, id);
    for (const [i, user] of ids.entries()) {
      await tx.query(
        `INSERT INTO users (id, org_id, email, name, role, password_hash) VALUES ($1, $2, $3, 'U', $4, 'x')`,
        [user, id, `u${i}-${user}@example.test`, i === 0 ? 'owner' : 'member'],
      );
    }
  });
  return { id, users: ids };
}

const settingsLoc = (orgId: string): FieldLocation => ({
  orgId,
  table: 'orgs',
  rowId: orgId,
  field: 'settings_enc',
});
const totpLoc = (orgId: string, userId: string): FieldLocation => ({
  orgId,
  table: 'users',
  rowId: userId,
  field: 'totp_secret_enc',
});

describe(`encryption at rest (${backendLabel})`, () => {
  let t: TestApp;
  let a: Org;
  let b: Org;

  async function storeSettings(org: string): Promise<void> {
    await withTenant(t.db, { orgId: org, userId: null }, async (tx) => {
      const enc = await t.services.keys.encryptJson(tx, settingsLoc(org), SECRET_SETTINGS);
      await tx.query('UPDATE orgs SET settings_enc = $1 WHERE id = $2', [enc, org]);
    });
  }

  async function storeTotp(org: string, user: string): Promise<void> {
    await withTenant(t.db, { orgId: org, userId: user }, async (tx) => {
      const enc = await t.services.keys.encrypt(tx, totpLoc(org, user), TOTP_SECRET);
      await tx.query('UPDATE users SET totp_secret_enc = $1 WHERE id = $2', [enc, user]);
    });
  }

  async function rawSettings(org: string): Promise<Buffer> {
    const { rows } = await t.db.query<{ enc: Uint8Array }>(
      'SELECT settings_enc AS enc FROM orgs WHERE id = $1',
      [org],
    );
    return Buffer.from(rows[0]!.enc);
  }

  async function readSettings(org: string): Promise<unknown> {
    return withTenant(t.db, { orgId: org, userId: null }, async (tx) => {
      const { rows } = await tx.query<{ enc: Uint8Array }>(
        'SELECT settings_enc AS enc FROM orgs WHERE id = $1',
        [org],
      );
      return t.services.keys.decryptJson(tx, settingsLoc(org), rows[0]!.enc);
    });
  }

  async function readTotp(org: string, user: string, rowUser = user): Promise<string> {
    return withTenant(t.db, { orgId: org, userId: user }, async (tx) => {
      const { rows } = await tx.query<{ enc: Uint8Array }>(
        'SELECT totp_secret_enc AS enc FROM users WHERE id = $1',
        [rowUser],
      );
      return t.services.keys.decryptString(tx, totpLoc(org, user), rows[0]!.enc);
    });
  }

  beforeAll(async () => {
    t = await startTestApp();
    a = await createOrg(t);
    b = await createOrg(t);
    await storeSettings(a.id);
    await storeSettings(b.id);
    await storeTotp(a.id, a.users[0]!);
    await storeTotp(a.id, a.users[1]!);
  });
  afterAll(async () => t?.close());

  it('round-trips through the database', async () => {
    expect(await readSettings(a.id)).toEqual(SECRET_SETTINGS);
    expect(await readTotp(a.id, a.users[0]!)).toBe(TOTP_SECRET);
  });

  it('never stores the plaintext: raw bytes of the row hold no trace of it', async () => {
    const { rows } = await t.db.query<Record<string, unknown>>(
      `SELECT o.*, u.totp_secret_enc, k.wrapped FROM orgs o JOIN users u ON u.org_id = o.id
         JOIN org_keys k ON k.org_id = o.id WHERE o.id = $1`,
      [a.id],
    );
    const blobs = rows.flatMap((r) =>
      Object.values(r).map((v) => (v instanceof Uint8Array ? Buffer.from(v) : Buffer.from(String(v)))),
    );
    const everything = Buffer.concat(blobs);
    for (const needle of ['Nightingale', 'Okonkwo', 'divorce', TOTP_SECRET, TOTP_SECRET.slice(0, 12)]) {
      expect(everything.includes(Buffer.from(needle)), needle).toBe(false);
      expect(everything.includes(Buffer.from(Buffer.from(needle).toString('base64'))), `${needle} b64`).toBe(
        false,
      );
    }
    // Two encryptions of the same value differ (random IV): equal plaintexts are not linkable.
    const again = await withTenant(t.db, { orgId: a.id, userId: null }, (tx) =>
      t.services.keys.encryptJson(tx, settingsLoc(a.id), SECRET_SETTINGS),
    );
    expect(again.equals(await rawSettings(a.id))).toBe(false);
  });

  it('fails closed with decryption_failed when any single byte is flipped', async () => {
    const original = await rawSettings(a.id);
    // Key-version header, IV, GCM tag, and ciphertext body.
    for (const offset of [4, 5, 16, 17, 32, 33, original.length - 1]) {
      const tampered = Buffer.from(original);
      tampered[offset] = tampered[offset]! ^ 0x01;
      await t.db.query('UPDATE orgs SET settings_enc = $1 WHERE id = $2', [tampered, a.id]);
      const err = await readSettings(a.id).then(
        () => undefined,
        (e: unknown) => e,
      );
      expect(err, `offset ${offset}`).toBeInstanceOf(AppError);
      expect((err as AppError).code).toBe('decryption_failed');
      expect((err as AppError).message).toBe('cannot decrypt orgs.settings_enc');
      expect(String((err as AppError).message)).not.toContain('Nightingale');
    }
    await t.db.query('UPDATE orgs SET settings_enc = $1 WHERE id = $2', [original, a.id]);
    expect(await readSettings(a.id)).toEqual(SECRET_SETTINGS);
  });

  it('fails closed when a ciphertext is truncated or not a Sotto ciphertext at all', async () => {
    const original = await rawSettings(a.id);
    for (const bad of [original.subarray(0, 20), Buffer.alloc(0), Buffer.from('plaintext settings')]) {
      await t.db.query('UPDATE orgs SET settings_enc = $1 WHERE id = $2', [bad, a.id]);
      await expect(readSettings(a.id)).rejects.toMatchObject({ code: 'decryption_failed' });
    }
    await t.db.query('UPDATE orgs SET settings_enc = $1 WHERE id = $2', [original, a.id]);
  });

  it('refuses a ciphertext moved to another row of the same org', async () => {
    const [u0, u1] = a.users as [string, string];
    await t.db.query(
      'UPDATE users SET totp_secret_enc = (SELECT totp_secret_enc FROM users WHERE id = $1) WHERE id = $2',
      [u0, u1],
    );
    await expect(readTotp(a.id, u1)).rejects.toMatchObject({ code: 'decryption_failed' });
    expect(await readTotp(a.id, u0)).toBe(TOTP_SECRET);
  });

  it('refuses a ciphertext moved to another org, or to another field', async () => {
    await t.db.query(
      'UPDATE orgs SET settings_enc = (SELECT settings_enc FROM orgs WHERE id = $1) WHERE id = $2',
      [a.id, b.id],
    );
    await expect(readSettings(b.id)).rejects.toMatchObject({ code: 'decryption_failed' });
    expect(await readSettings(a.id)).toEqual(SECRET_SETTINGS);
    // Same org, same row id, different field: bound to the field name too.
    const enc = await rawSettings(a.id);
    await expect(
      withTenant(t.db, { orgId: a.id, userId: null }, (tx) =>
        t.services.keys.decrypt(tx, { ...settingsLoc(a.id), field: 'name_enc' }, enc),
      ),
    ).rejects.toMatchObject({ code: 'decryption_failed' });
  });

  it("cannot use another org's data key even inside that org's tenant context", async () => {
    // B's context cannot read A's key row (RLS). The KeyService caches unwrapped keys per process,
    // so drop the cache to make the lookup go to the database as a fresh node would.
    const enc = await rawSettings(a.id);
    t.services.keys.forgetOrg(a.id);
    await expect(
      withTenant(t.db, { orgId: b.id, userId: null }, (tx) =>
        t.services.keys.decrypt(tx, settingsLoc(a.id), enc),
      ),
    ).rejects.toMatchObject({ code: 'decryption_failed' });
  });

  it('makes data unreadable once the org data key is destroyed (crypto-shredding)', async () => {
    const org = await createOrg(t, 1);
    await storeSettings(org.id);
    expect(await readSettings(org.id)).toEqual(SECRET_SETTINGS);
    await t.db.query('DELETE FROM org_keys WHERE org_id = $1', [org.id]);
    t.services.keys.forgetOrg(org.id);
    await expect(readSettings(org.id)).rejects.toMatchObject({ code: 'decryption_failed' });
  });
});
