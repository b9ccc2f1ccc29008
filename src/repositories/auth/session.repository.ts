import type { Queryable } from '../../db/database.js';
import type { OrgRole } from '../../domain/roles.js';

export interface LiveSession {
  sessionId: string;
  userId: string;
  orgId: string | null;
  role: OrgRole | null;
  platformRole: 'support' | null;
  lastSeenAt: Date;
}

interface LiveSessionRow {
  id: string;
  user_id: string;
  org_id: string | null;
  role: OrgRole | null;
  platform_role: 'support' | null;
  last_seen_at: Date;
}

const LIVE_SESSION_SELECT = `SELECT s.id, s.user_id, u.org_id, u.role, u.platform_role, s.last_seen_at
   FROM sessions s JOIN users u ON u.id = s.user_id
  WHERE`;
/** Neither revoked nor expired at $2. */
const LIVE = 's.revoked_at IS NULL AND s.expires_at > $2';

function liveSession(r: LiveSessionRow): LiveSession {
  return {
    sessionId: r.id,
    userId: r.user_id,
    orgId: r.org_id,
    role: r.role,
    platformRole: r.platform_role,
    lastSeenAt: r.last_seen_at,
  };
}

/**
 * Sessions (one per login/device) and their refresh-token families. Looked up in the system
 * context: a refresh token or session id arrives before we know (or trust) an org.
 */
export const sessionRepository = {
  /** A session that is neither revoked nor expired, with its user's current role. */
  async findLive(tx: Queryable, sessionId: string, now: Date): Promise<LiveSession | undefined> {
    // Its own query rather than findLiveMany of one: every request's authentication runs this,
    // and must not share the fate of the live sockets' batch re-check.
    const { rows } = await tx.query<LiveSessionRow>(`${LIVE_SESSION_SELECT} s.id = $1 AND ${LIVE}`, [
      sessionId,
      now,
    ]);
    return rows[0] && liveSession(rows[0]);
  },

  /**
   * findLive for many sessions in one query (the periodic re-check of every open live socket):
   * the live ones by id; a revoked, expired or unknown id is absent.
   */
  async findLiveMany(
    tx: Queryable,
    sessionIds: readonly string[],
    now: Date,
  ): Promise<Map<string, LiveSession>> {
    const { rows } = await tx.query<LiveSessionRow>(
      `${LIVE_SESSION_SELECT} s.id = ANY($1::uuid[]) AND ${LIVE}`,
      [sessionIds, now],
    );
    return new Map(rows.map((r) => [r.id, liveSession(r)]));
  },

  async touch(tx: Queryable, sessionId: string, now: Date, ip: string): Promise<void> {
    await tx.query('UPDATE sessions SET last_seen_at = $2, ip = $3 WHERE id = $1', [sessionId, now, ip]);
  },

  /** A new login on one device (user's scope). */
  async create(
    tx: Queryable,
    s: { orgId: string | null; userId: string; userAgent: string; ip: string; now: Date; expiresAt: Date },
  ): Promise<string> {
    const { rows } = await tx.query<{ id: string }>(
      `INSERT INTO sessions (org_id, user_id, user_agent, ip, created_at, last_seen_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $5, $6) RETURNING id`,
      [s.orgId, s.userId, s.userAgent, s.ip, s.now, s.expiresAt],
    );
    return rows[0]!.id;
  },

  /** The user's live sessions, most recently used first (user's scope). */
  async listLive(tx: Queryable, userId: string, now: Date): Promise<DeviceSession[]> {
    const { rows } = await tx.query<{
      id: string;
      user_agent: string;
      ip: string;
      created_at: Date;
      last_seen_at: Date;
      expires_at: Date;
    }>(
      `SELECT id, user_agent, ip, created_at, last_seen_at, expires_at FROM sessions
        WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2
        ORDER BY last_seen_at DESC, id LIMIT 200`,
      [userId, now],
    );
    return rows.map((r) => ({
      id: r.id,
      userAgent: r.user_agent,
      ip: r.ip,
      createdAt: r.created_at,
      lastSeenAt: r.last_seen_at,
      expiresAt: r.expires_at,
    }));
  },

  /** Ends one of the user's own sessions; false when it is not theirs, unknown or already ended. */
  async revokeOwn(
    tx: Queryable,
    userId: string,
    sessionId: string,
    reason: string,
    now: Date,
  ): Promise<boolean> {
    const { rowCount } = await tx.query(
      `UPDATE sessions SET revoked_at = $4, revoked_reason = $3
        WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL`,
      [sessionId, userId, reason, now],
    );
    return rowCount > 0;
  },

  /** Ends all of a user's sessions, optionally sparing one (the caller's). Returns how many. */
  async revokeAllOfUser(
    tx: Queryable,
    userId: string,
    reason: string,
    now: Date,
    exceptSessionId?: string,
  ): Promise<number> {
    const { rowCount } = await tx.query(
      `UPDATE sessions SET revoked_at = $3, revoked_reason = $2
        WHERE user_id = $1 AND revoked_at IS NULL AND ($4::uuid IS NULL OR id <> $4)`,
      [userId, reason, now, exceptSessionId ?? null],
    );
    return rowCount;
  },

  /** Ends a session found through its refresh token (system context: reuse, idle expiry). */
  async revoke(tx: Queryable, sessionId: string, reason: string, now: Date): Promise<void> {
    await tx.query(
      'UPDATE sessions SET revoked_at = $3, revoked_reason = $2 WHERE id = $1 AND revoked_at IS NULL',
      [sessionId, reason, now],
    );
  },
};

export interface DeviceSession {
  id: string;
  userAgent: string;
  ip: string;
  createdAt: Date;
  lastSeenAt: Date;
  expiresAt: Date;
}
