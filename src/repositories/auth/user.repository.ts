import type { Queryable } from '../../db/database.js';
import type { OrgRole } from '../../domain/roles.js';

/** A user as the auth code sees it: credentials and second-factor state included. */
export interface UserAuthRow {
  id: string;
  orgId: string | null;
  email: string;
  name: string;
  role: OrgRole | null;
  platformRole: 'support' | null;
  passwordHash: string;
  totpEnabled: boolean;
  totpSecretEnc: Buffer | null;
  totpLastStep: number | null;
}

interface DbRow {
  id: string;
  org_id: string | null;
  email: string;
  name: string;
  role: OrgRole | null;
  platform_role: 'support' | null;
  password_hash: string;
  totp_enabled: boolean;
  totp_secret_enc: Uint8Array | null;
  totp_last_step: string | number | null;
}

const COLUMNS =
  'id, org_id, email, name, role, platform_role, password_hash, totp_enabled, totp_secret_enc, totp_last_step';

const map = (r: DbRow): UserAuthRow => ({
  id: r.id,
  orgId: r.org_id,
  email: r.email,
  name: r.name,
  role: r.role,
  platformRole: r.platform_role,
  passwordHash: r.password_hash,
  totpEnabled: r.totp_enabled,
  totpSecretEnc: r.totp_secret_enc ? Buffer.from(r.totp_secret_enc) : null,
  totpLastStep: r.totp_last_step === null ? null : Number(r.totp_last_step),
});

/**
 * The users table for authentication. `findByEmail` is the one pre-tenant read (login, system
 * context); everything else runs in the user's own scope (withTenant, or withSystem for platform
 * support accounts, which belong to no org).
 */
export const userRepository = {
  /** System context: the account behind a login attempt. */
  async findByEmail(tx: Queryable, email: string): Promise<UserAuthRow | undefined> {
    const { rows } = await tx.query<DbRow>(`SELECT ${COLUMNS} FROM users WHERE email = $1`, [email]);
    return rows[0] && map(rows[0]);
  },

  async findById(tx: Queryable, id: string): Promise<UserAuthRow | undefined> {
    const { rows } = await tx.query<DbRow>(`SELECT ${COLUMNS} FROM users WHERE id = $1`, [id]);
    return rows[0] && map(rows[0]);
  },

  /** Locks the user row: second-factor and password changes are read-modify-write. */
  async lock(tx: Queryable, id: string): Promise<UserAuthRow | undefined> {
    const { rows } = await tx.query<DbRow>(`SELECT ${COLUMNS} FROM users WHERE id = $1 FOR UPDATE`, [id]);
    return rows[0] && map(rows[0]);
  },

  /** System context (signup pre-check): whether any account on the platform uses this email. */
  async emailTaken(tx: Queryable, email: string): Promise<boolean> {
    const { rows } = await tx.query('SELECT 1 FROM users WHERE email = $1', [email]);
    return rows.length > 0;
  },

  /**
   * The first owner of a new org. Emails are unique platform-wide and RLS hides other orgs'
   * users, so a clash is detected by the constraint itself: returns false instead of aborting.
   */
  async insertOwner(
    tx: Queryable,
    u: { id: string; orgId: string; email: string; name: string; passwordHash: string },
  ): Promise<boolean> {
    const { rows } = await tx.query(
      `INSERT INTO users (id, org_id, email, name, role, password_hash)
       VALUES ($1, $2, $3, $4, 'owner', $5) ON CONFLICT (email) DO NOTHING RETURNING id`,
      [u.id, u.orgId, u.email, u.name, u.passwordHash],
    );
    return rows.length > 0;
  },

  async updatePassword(tx: Queryable, id: string, passwordHash: string, now: Date): Promise<void> {
    await tx.query('UPDATE users SET password_hash = $2, password_changed_at = $3 WHERE id = $1', [
      id,
      passwordHash,
      now,
    ]);
  },

  /** Stores a new, not yet confirmed TOTP secret; a previous step no longer means anything. */
  async setPendingTotp(tx: Queryable, id: string, secretEnc: Buffer): Promise<void> {
    await tx.query(
      'UPDATE users SET totp_secret_enc = $2, totp_enabled = false, totp_last_step = NULL WHERE id = $1',
      [id, secretEnc],
    );
  },

  async enableTotp(tx: Queryable, id: string): Promise<void> {
    await tx.query('UPDATE users SET totp_enabled = true WHERE id = $1 AND totp_secret_enc IS NOT NULL', [
      id,
    ]);
  },

  async disableTotp(tx: Queryable, id: string): Promise<void> {
    await tx.query(
      'UPDATE users SET totp_enabled = false, totp_secret_enc = NULL, totp_last_step = NULL WHERE id = $1',
      [id],
    );
  },

  /**
   * Records `step` as the last accepted TOTP time step, only if it is newer than the last one.
   * Atomic, so two requests racing with the same code cannot both succeed. False: replayed.
   */
  async acceptTotpStep(tx: Queryable, id: string, step: number): Promise<boolean> {
    const { rows } = await tx.query(
      `UPDATE users SET totp_last_step = $2
        WHERE id = $1 AND (totp_last_step IS NULL OR totp_last_step < $2) RETURNING id`,
      [id, step],
    );
    return rows.length > 0;
  },
};
