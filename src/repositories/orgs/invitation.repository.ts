import type { Queryable } from '../../db/database.js';

export type InvitationRole = 'admin' | 'member';

export interface Invitation {
  id: string;
  orgId: string;
  email: string;
  role: InvitationRole;
  invitedBy: string | null;
  createdAt: Date;
  expiresAt: Date;
  acceptedAt: Date | null;
  revokedAt: Date | null;
  /** When the mail server accepted its email; null when none was sent. */
  emailSentAt: Date | null;
}

interface DbRow {
  id: string;
  org_id: string;
  email: string;
  role: InvitationRole;
  invited_by: string | null;
  created_at: Date;
  expires_at: Date;
  accepted_at: Date | null;
  revoked_at: Date | null;
  email_sent_at: Date | null;
}

const COLUMNS =
  'id, org_id, email, role, invited_by, created_at, expires_at, accepted_at, revoked_at, email_sent_at';

const map = (r: DbRow): Invitation => ({
  id: r.id,
  orgId: r.org_id,
  email: r.email,
  role: r.role,
  invitedBy: r.invited_by,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  acceptedAt: r.accepted_at,
  revokedAt: r.revoked_at,
  emailSentAt: r.email_sent_at,
});

/** Invitations are stored by the SHA-256 of their token only; the token itself is never kept. */
export const invitationRepository = {
  async insert(
    tx: Queryable,
    inv: {
      orgId: string;
      email: string;
      role: InvitationRole;
      tokenHash: string;
      invitedBy: string;
      createdAt: Date;
      expiresAt: Date;
    },
  ): Promise<Invitation> {
    const { rows } = await tx.query<DbRow>(
      `INSERT INTO invitations (org_id, email, role, token_hash, invited_by, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING ${COLUMNS}`,
      [inv.orgId, inv.email, inv.role, inv.tokenHash, inv.invitedBy, inv.createdAt, inv.expiresAt],
    );
    return map(rows[0]!);
  },

  async list(tx: Queryable, orgId: string, limit: number): Promise<Invitation[]> {
    const { rows } = await tx.query<DbRow>(
      `SELECT ${COLUMNS} FROM invitations WHERE org_id = $1 ORDER BY created_at DESC, id LIMIT $2`,
      [orgId, limit],
    );
    return rows.map(map);
  },

  async find(tx: Queryable, orgId: string, id: string): Promise<Invitation | undefined> {
    const { rows } = await tx.query<DbRow>(
      `SELECT ${COLUMNS} FROM invitations WHERE org_id = $1 AND id = $2`,
      [orgId, id],
    );
    return rows[0] && map(rows[0]);
  },

  /** Pre-tenant (system context): the invitation a token belongs to, whatever its state. */
  async findByTokenHash(tx: Queryable, tokenHash: string): Promise<Invitation | undefined> {
    const { rows } = await tx.query<DbRow>(`SELECT ${COLUMNS} FROM invitations WHERE token_hash = $1`, [
      tokenHash,
    ]);
    return rows[0] && map(rows[0]);
  },

  /** Inside the inviting org's transaction: lock the row so a token is accepted at most once. */
  async lockByTokenHash(tx: Queryable, orgId: string, tokenHash: string): Promise<Invitation | undefined> {
    const { rows } = await tx.query<DbRow>(
      `SELECT ${COLUMNS} FROM invitations WHERE org_id = $1 AND token_hash = $2 FOR UPDATE`,
      [orgId, tokenHash],
    );
    return rows[0] && map(rows[0]);
  },

  async markAccepted(tx: Queryable, orgId: string, id: string, now: Date): Promise<void> {
    await tx.query('UPDATE invitations SET accepted_at = $3 WHERE org_id = $1 AND id = $2', [orgId, id, now]);
  },

  /** The mail server took this invitation's email (see migration 0027). */
  async markEmailSent(tx: Queryable, orgId: string, id: string, at: Date): Promise<void> {
    await tx.query('UPDATE invitations SET email_sent_at = $3 WHERE org_id = $1 AND id = $2', [
      orgId,
      id,
      at,
    ]);
  },

  async revoke(tx: Queryable, orgId: string, id: string, now: Date): Promise<boolean> {
    const { rowCount } = await tx.query(
      `UPDATE invitations SET revoked_at = $3
        WHERE org_id = $1 AND id = $2 AND accepted_at IS NULL AND revoked_at IS NULL`,
      [orgId, id, now],
    );
    return rowCount > 0;
  },

  /** Revokes the still-pending invitations of an email (a new invitation replaces them). */
  async revokePendingFor(tx: Queryable, orgId: string, email: string, now: Date): Promise<number> {
    const { rowCount } = await tx.query(
      `UPDATE invitations SET revoked_at = $3
        WHERE org_id = $1 AND email = $2 AND accepted_at IS NULL AND revoked_at IS NULL AND expires_at > $3`,
      [orgId, email, now],
    );
    return rowCount;
  },
};
