import type { Queryable } from '../../db/database.js';
import type { OrgRole } from '../../domain/roles.js';

export interface Member {
  id: string;
  orgId: string;
  email: string;
  name: string;
  role: OrgRole;
  mfaEnabled: boolean;
  createdAt: Date;
}

interface DbRow {
  id: string;
  org_id: string;
  email: string;
  name: string;
  role: OrgRole;
  totp_enabled: boolean;
  created_at: Date;
}

const COLUMNS = 'id, org_id, email, name, role, totp_enabled, created_at';

const map = (r: DbRow): Member => ({
  id: r.id,
  orgId: r.org_id,
  email: r.email,
  name: r.name,
  role: r.role,
  mfaEnabled: r.totp_enabled,
  createdAt: r.created_at,
});

/** Postgres error code of a unique violation (users.email is unique across the platform). */
export const UNIQUE_VIOLATION = '23505';

export function isUniqueViolation(err: unknown): boolean {
  return typeof err === 'object' && err !== null && (err as { code?: unknown }).code === UNIQUE_VIOLATION;
}

/**
 * Organization members: the users table seen from inside a tenant (RLS hides other orgs' users),
 * plus the two pre-tenant writes the platform needs (support accounts, email existence).
 */
export const memberRepository = {
  /** One page, oldest first; `after` is the id of the last member of the previous page. */
  async list(tx: Queryable, orgId: string, opts: { limit: number; after?: string | undefined }) {
    const { rows } = await tx.query<DbRow>(
      `SELECT ${COLUMNS} FROM users
        WHERE org_id = $1
          AND ($2::uuid IS NULL OR (created_at, id) > (SELECT created_at, id FROM users WHERE id = $2))
        ORDER BY created_at, id LIMIT $3`,
      [orgId, opts.after ?? null, opts.limit],
    );
    return rows.map(map);
  },

  async find(tx: Queryable, orgId: string, id: string): Promise<Member | undefined> {
    const { rows } = await tx.query<DbRow>(`SELECT ${COLUMNS} FROM users WHERE org_id = $1 AND id = $2`, [
      orgId,
      id,
    ]);
    return rows[0] && map(rows[0]);
  },

  /** Like find, and holds the row until the transaction ends (role changes read-modify-write). */
  async lock(tx: Queryable, orgId: string, id: string): Promise<Member | undefined> {
    const { rows } = await tx.query<DbRow>(
      `SELECT ${COLUMNS} FROM users WHERE org_id = $1 AND id = $2 FOR UPDATE`,
      [orgId, id],
    );
    return rows[0] && map(rows[0]);
  },

  async findByEmail(tx: Queryable, orgId: string, email: string): Promise<Member | undefined> {
    const { rows } = await tx.query<DbRow>(`SELECT ${COLUMNS} FROM users WHERE org_id = $1 AND email = $2`, [
      orgId,
      email,
    ]);
    return rows[0] && map(rows[0]);
  },

  /**
   * Locks the org's owners until the transaction ends, so two concurrent demotions cannot both
   * see "another owner remains" and leave the org without one.
   */
  async lockOwners(tx: Queryable, orgId: string): Promise<string[]> {
    const { rows } = await tx.query<{ id: string }>(
      `SELECT id FROM users WHERE org_id = $1 AND role = 'owner' ORDER BY id FOR UPDATE`,
      [orgId],
    );
    return rows.map((r) => r.id);
  },

  async setRole(tx: Queryable, orgId: string, id: string, role: OrgRole): Promise<Member | undefined> {
    const { rows } = await tx.query<DbRow>(
      `UPDATE users SET role = $3 WHERE org_id = $1 AND id = $2 RETURNING ${COLUMNS}`,
      [orgId, id, role],
    );
    return rows[0] && map(rows[0]);
  },

  async delete(tx: Queryable, orgId: string, id: string): Promise<boolean> {
    const { rowCount } = await tx.query('DELETE FROM users WHERE org_id = $1 AND id = $2', [orgId, id]);
    return rowCount > 0;
  },

  /** Ends every live session of a user (their refresh tokens die with the session). */
  async revokeSessions(tx: Queryable, orgId: string, userId: string, reason: string, now: Date) {
    const { rowCount } = await tx.query(
      `UPDATE sessions SET revoked_at = $4, revoked_reason = $3
        WHERE org_id = $1 AND user_id = $2 AND revoked_at IS NULL`,
      [orgId, userId, reason, now],
    );
    return rowCount;
  },

  async insert(
    tx: Queryable,
    m: { orgId: string; email: string; name: string; role: OrgRole; passwordHash: string },
  ): Promise<Member> {
    const { rows } = await tx.query<DbRow>(
      `INSERT INTO users (org_id, email, name, role, password_hash) VALUES ($1, $2, $3, $4, $5)
       RETURNING ${COLUMNS}`,
      [m.orgId, m.email, m.name, m.role, m.passwordHash],
    );
    return map(rows[0]!);
  },

  /** Pre-tenant (system context): whether any account on the platform uses this email. */
  async emailTaken(tx: Queryable, email: string): Promise<boolean> {
    const { rows } = await tx.query('SELECT 1 FROM users WHERE email = $1', [email]);
    return rows.length > 0;
  },

  /** System context: a platform support account (no org, no org role). */
  async insertSupportUser(
    tx: Queryable,
    u: { email: string; name: string; passwordHash: string },
  ): Promise<{ id: string; email: string; name: string; createdAt: Date }> {
    const { rows } = await tx.query<{ id: string; email: string; name: string; created_at: Date }>(
      `INSERT INTO users (org_id, email, name, role, platform_role, password_hash)
       VALUES (NULL, $1, $2, NULL, 'support', $3) RETURNING id, email, name, created_at`,
      [u.email, u.name, u.passwordHash],
    );
    const r = rows[0]!;
    return { id: r.id, email: r.email, name: r.name, createdAt: r.created_at };
  },
};
