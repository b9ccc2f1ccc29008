import type { Queryable } from '../db/database.js';
import type { OrgRole } from '../domain/roles.js';

export interface LiveSession {
  sessionId: string;
  userId: string;
  orgId: string | null;
  role: OrgRole | null;
  platformRole: 'support' | null;
  lastSeenAt: Date;
}

/**
 * Sessions (one per login/device) and their refresh-token families. Looked up in the system
 * context: a refresh token or session id arrives before we know (or trust) an org.
 */
export const sessionRepository = {
  /** A session that is neither revoked nor expired, with its user's current role. */
  async findLive(tx: Queryable, sessionId: string, now: Date): Promise<LiveSession | undefined> {
    const { rows } = await tx.query<{
      id: string;
      user_id: string;
      org_id: string | null;
      role: OrgRole | null;
      platform_role: 'support' | null;
      last_seen_at: Date;
    }>(
      `SELECT s.id, s.user_id, u.org_id, u.role, u.platform_role, s.last_seen_at
         FROM sessions s JOIN users u ON u.id = s.user_id
        WHERE s.id = $1 AND s.revoked_at IS NULL AND s.expires_at > $2`,
      [sessionId, now],
    );
    const r = rows[0];
    return (
      r && {
        sessionId: r.id,
        userId: r.user_id,
        orgId: r.org_id,
        role: r.role,
        platformRole: r.platform_role,
        lastSeenAt: r.last_seen_at,
      }
    );
  },

  async touch(tx: Queryable, sessionId: string, now: Date, ip: string): Promise<void> {
    await tx.query('UPDATE sessions SET last_seen_at = $2, ip = $3 WHERE id = $1', [sessionId, now, ip]);
  },
};
