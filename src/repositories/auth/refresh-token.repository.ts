import type { Queryable } from '../../db/database.js';
import type { OrgRole } from '../../domain/roles.js';

/** A refresh token with its session (family) and user, locked for the rest of the transaction. */
export interface RefreshTokenRecord {
  id: string;
  sessionId: string;
  orgId: string | null;
  createdAt: Date;
  rotatedAt: Date | null;
  userId: string;
  role: OrgRole | null;
  sessionExpiresAt: Date;
  sessionRevokedAt: Date | null;
}

interface DbRow {
  id: string;
  session_id: string;
  org_id: string | null;
  created_at: Date;
  rotated_at: Date | null;
  user_id: string;
  role: OrgRole | null;
  expires_at: Date;
  revoked_at: Date | null;
}

/**
 * Refresh tokens are stored only as SHA-256 of the opaque token. Lookups by hash happen before
 * the org is known (system context).
 */
export const refreshTokenRepository = {
  async insert(
    tx: Queryable,
    t: { sessionId: string; orgId: string | null; tokenHash: string; createdAt: Date },
  ): Promise<void> {
    await tx.query(
      'INSERT INTO refresh_tokens (session_id, org_id, token_hash, created_at) VALUES ($1, $2, $3, $4)',
      [t.sessionId, t.orgId, t.tokenHash, t.createdAt],
    );
  },

  /**
   * Finds a token by hash and locks it and its session: concurrent refreshes of one family are
   * serialised, so the second presentation of a token is always seen as reuse.
   */
  async findForUpdate(tx: Queryable, tokenHash: string): Promise<RefreshTokenRecord | undefined> {
    const { rows } = await tx.query<DbRow>(
      `SELECT rt.id, rt.session_id, rt.org_id, rt.created_at, rt.rotated_at,
              s.user_id, u.role, s.expires_at, s.revoked_at
         FROM refresh_tokens rt
         JOIN sessions s ON s.id = rt.session_id
         JOIN users u ON u.id = s.user_id
        WHERE rt.token_hash = $1
        FOR UPDATE OF rt, s`,
      [tokenHash],
    );
    const r = rows[0];
    return (
      r && {
        id: r.id,
        sessionId: r.session_id,
        orgId: r.org_id,
        createdAt: r.created_at,
        rotatedAt: r.rotated_at,
        userId: r.user_id,
        role: r.role,
        sessionExpiresAt: r.expires_at,
        sessionRevokedAt: r.revoked_at,
      }
    );
  },

  async markRotated(tx: Queryable, id: string, now: Date): Promise<void> {
    await tx.query('UPDATE refresh_tokens SET rotated_at = $2 WHERE id = $1', [id, now]);
  },
};
