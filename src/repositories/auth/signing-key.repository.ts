import type { JWK } from 'jose';
import type { Queryable } from '../../db/database.js';

export interface SigningKeyRow {
  kid: string;
  publicJwk: JWK;
  privateEnc: Buffer;
  masterVersion: number;
  createdAt: Date;
  retiredAt: Date | null;
}

interface DbRow {
  kid: string;
  public_jwk: JWK;
  private_enc: Uint8Array;
  master_version: number;
  created_at: Date;
  retired_at: Date | null;
}

const map = (r: DbRow): SigningKeyRow => ({
  kid: r.kid,
  publicJwk: r.public_jwk,
  privateEnc: Buffer.from(r.private_enc),
  masterVersion: r.master_version,
  createdAt: r.created_at,
  retiredAt: r.retired_at,
});

/** JWT signing keys (system context only: sotto_app has no policy on this table). */
export const signingKeyRepository = {
  async listUsable(tx: Queryable, retiredAfter: Date): Promise<SigningKeyRow[]> {
    const { rows } = await tx.query<DbRow>(
      `SELECT kid, public_jwk, private_enc, master_version, created_at, retired_at FROM signing_keys
        WHERE retired_at IS NULL OR retired_at > $1 ORDER BY created_at DESC`,
      [retiredAfter],
    );
    return rows.map(map);
  },

  async insert(tx: Queryable, row: Omit<SigningKeyRow, 'createdAt' | 'retiredAt'>): Promise<void> {
    await tx.query(
      'INSERT INTO signing_keys (kid, public_jwk, private_enc, master_version) VALUES ($1, $2, $3, $4)',
      [row.kid, JSON.stringify(row.publicJwk), row.privateEnc, row.masterVersion],
    );
  },

  async lockAll(tx: Queryable): Promise<SigningKeyRow[]> {
    const { rows } = await tx.query<DbRow>(
      'SELECT kid, public_jwk, private_enc, master_version, created_at, retired_at FROM signing_keys FOR UPDATE',
    );
    return rows.map(map);
  },

  async rewrap(tx: Queryable, kid: string, privateEnc: Buffer, masterVersion: number): Promise<void> {
    await tx.query('UPDATE signing_keys SET private_enc = $2, master_version = $3 WHERE kid = $1', [
      kid,
      privateEnc,
      masterVersion,
    ]);
  },

  /** Serialises key creation across nodes starting at once. */
  async lock(tx: Queryable): Promise<void> {
    await tx.query("SELECT pg_advisory_xact_lock(hashtext('sotto-signing-keys'))");
  },
};
