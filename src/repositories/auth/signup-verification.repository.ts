import type { Queryable } from '../../db/database.js';

/** A signup waiting for its email address to be proven (migration 0021). */
export interface PendingSignup {
  email: string;
  name: string;
  orgName: string;
  passwordHash: string;
  createdAt: Date;
  expiresAt: Date;
}

interface DbRow {
  email: string;
  name: string;
  org_name: string;
  password_hash: string;
  created_at: Date;
  expires_at: Date;
}

/** signup_verifications, system context only (no org exists yet, so no RLS to act under). */
export const signupVerificationRepository = {
  async insert(tx: Queryable, tokenHash: string, p: PendingSignup): Promise<void> {
    await tx.query(
      `INSERT INTO signup_verifications (token_hash, email, name, org_name, password_hash, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7)`,
      [tokenHash, p.email, p.name, p.orgName, p.passwordHash, p.createdAt, p.expiresAt],
    );
  },

  /** The unexpired request behind a link's token. */
  async find(tx: Queryable, tokenHash: string, now: Date): Promise<PendingSignup | undefined> {
    const { rows } = await tx.query<DbRow>(
      `SELECT email, name, org_name, password_hash, created_at, expires_at
         FROM signup_verifications WHERE token_hash = $1 AND expires_at > $2`,
      [tokenHash, now],
    );
    const r = rows[0];
    return (
      r && {
        email: r.email,
        name: r.name,
        orgName: r.org_name,
        passwordHash: r.password_hash,
        createdAt: new Date(r.created_at),
        expiresAt: new Date(r.expires_at),
      }
    );
  },

  /** Every request for an address (once one is verified, the others' links must die too). */
  async deleteForEmail(tx: Queryable, email: string): Promise<number> {
    const { rowCount } = await tx.query('DELETE FROM signup_verifications WHERE email = $1', [email]);
    return rowCount;
  },

  async sweepExpired(tx: Queryable, now: Date): Promise<number> {
    const { rowCount } = await tx.query('DELETE FROM signup_verifications WHERE expires_at <= $1', [now]);
    return rowCount;
  },
};
