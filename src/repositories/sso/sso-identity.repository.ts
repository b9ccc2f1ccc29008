import type { Queryable } from '../../db/database.js';

/** A (connection, subject) → account link: who the IdP's subject signs in as. */
export interface SsoIdentityRow {
  orgId: string;
  connectionId: string;
  issuer: string;
  subject: string;
  userId: string;
}

/** A link waiting for the account owner's password (+ TOTP): single use, short-lived. */
export interface SsoPendingLink extends SsoIdentityRow {
  method: 'oidc' | 'saml';
  expiresAt: Date;
}

/**
 * sso_identities, sso_pending_links, and the few account/session marks SSO needs
 * (users.password_set, sessions.auth_method) and the require-SSO token revocation. Links are
 * read in the system context at sign-in (no tenant yet) and written in the org's tenant
 * transaction; pending links are system-only, like sso_login_states.
 */
export const ssoIdentityRepository = {
  /** System or tenant context: the link of an IdP subject on one connection of one org. */
  async find(
    tx: Queryable,
    orgId: string,
    connectionId: string,
    subject: string,
  ): Promise<SsoIdentityRow | undefined> {
    const { rows } = await tx.query<{ issuer: string; user_id: string }>(
      `SELECT issuer, user_id FROM sso_identities
        WHERE org_id = $1 AND connection_id = $2 AND subject = $3`,
      [orgId, connectionId, subject],
    );
    const r = rows[0];
    return r && { orgId, connectionId, issuer: r.issuer, subject, userId: r.user_id };
  },

  /**
   * Tenant context: links a subject to an account. False when the subject or the account is
   * already linked on this connection (a concurrent sign-in, or a second IdP subject for the same
   * account): the caller refuses rather than re-pointing an existing link.
   */
  async link(tx: Queryable, l: SsoIdentityRow, now: Date): Promise<boolean> {
    const { rowCount } = await tx.query(
      `INSERT INTO sso_identities (org_id, connection_id, issuer, subject, user_id, created_at, last_login_at)
       VALUES ($1, $2, $3, $4, $5, $6, $6) ON CONFLICT DO NOTHING`,
      [l.orgId, l.connectionId, l.issuer, l.subject, l.userId, now],
    );
    return rowCount === 1;
  },

  async touch(tx: Queryable, connectionId: string, subject: string, now: Date): Promise<void> {
    await tx.query('UPDATE sso_identities SET last_login_at = $3 WHERE connection_id = $1 AND subject = $2', [
      connectionId,
      subject,
      now,
    ]);
  },

  /** Tenant context: every link of a connection (its IdP changed: a new IdP must re-link). */
  async removeForConnection(tx: Queryable, orgId: string, connectionId: string): Promise<number> {
    const a = await tx.query('DELETE FROM sso_identities WHERE org_id = $1 AND connection_id = $2', [
      orgId,
      connectionId,
    ]);
    return a.rowCount;
  },

  /** System context: pending links of a connection whose IdP changed go too. */
  async removePendingForConnection(tx: Queryable, connectionId: string): Promise<void> {
    await tx.query('DELETE FROM sso_pending_links WHERE connection_id = $1', [connectionId]);
  },

  async insertPending(tx: Queryable, handleHash: string, p: SsoPendingLink, now: Date): Promise<void> {
    await tx.query('DELETE FROM sso_pending_links WHERE expires_at < $1', [now]);
    await tx.query(
      `INSERT INTO sso_pending_links (handle_hash, org_id, connection_id, issuer, subject, user_id, method,
         created_at, expires_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
      [handleHash, p.orgId, p.connectionId, p.issuer, p.subject, p.userId, p.method, now, p.expiresAt],
    );
  },

  /** Single use: deleted as it is read, whatever the password check then says. */
  async consumePending(tx: Queryable, handleHash: string): Promise<SsoPendingLink | undefined> {
    const { rows } = await tx.query<{
      org_id: string;
      connection_id: string;
      issuer: string;
      subject: string;
      user_id: string;
      method: 'oidc' | 'saml';
      expires_at: Date;
    }>(
      `DELETE FROM sso_pending_links WHERE handle_hash = $1
       RETURNING org_id, connection_id, issuer, subject, user_id, method, expires_at`,
      [handleHash],
    );
    const r = rows[0];
    return (
      r && {
        orgId: r.org_id,
        connectionId: r.connection_id,
        issuer: r.issuer,
        subject: r.subject,
        userId: r.user_id,
        method: r.method,
        expiresAt: r.expires_at,
      }
    );
  },

  async sweepPending(tx: Queryable, now: Date): Promise<number> {
    return (await tx.query('DELETE FROM sso_pending_links WHERE expires_at < $1', [now])).rowCount;
  },

  /** Tenant context: a just-in-time account has no password of its own (re-auth uses SSO). */
  async markNoPassword(tx: Queryable, userId: string): Promise<void> {
    await tx.query('UPDATE users SET password_set = false WHERE id = $1', [userId]);
  },

  /** Tenant context: the session just opened began with SSO (re-auth of SSO-only accounts). */
  async markSsoSession(tx: Queryable, sessionId: string): Promise<void> {
    await tx.query(`UPDATE sessions SET auth_method = 'sso' WHERE id = $1`, [sessionId]);
  },

  /** User scope: whether the account has a password, and how/when the given session began. */
  async reauthFacts(
    tx: Queryable,
    userId: string,
    sessionId: string,
  ): Promise<{
    passwordSet: boolean;
    sessionMethod: string | undefined;
    sessionCreatedAt: Date | undefined;
  }> {
    const u = await tx.query<{ password_set: boolean }>('SELECT password_set FROM users WHERE id = $1', [
      userId,
    ]);
    const s = await tx.query<{ auth_method: string; created_at: Date }>(
      'SELECT auth_method, created_at FROM sessions WHERE id = $1 AND user_id = $2 AND revoked_at IS NULL',
      [sessionId, userId],
    );
    return {
      passwordSet: u.rows[0]?.password_set !== false,
      sessionMethod: s.rows[0]?.auth_method,
      sessionCreatedAt: s.rows[0]?.created_at,
    };
  },

  /**
   * Tenant context: require-SSO turned on — every live personal API token of the org's
   * non-owners is revoked (a token would otherwise keep password-era access).
   */
  async revokeNonOwnerApiTokens(tx: Queryable, orgId: string, now: Date): Promise<number> {
    const { rowCount } = await tx.query(
      `UPDATE api_tokens t SET revoked_at = $2
         FROM users u
        WHERE t.user_id = u.id AND t.org_id = $1 AND u.org_id = $1 AND u.role <> 'owner'
          AND t.revoked_at IS NULL`,
      [orgId, now],
    );
    return rowCount;
  },
};
