import type { Queryable } from '../../db/database.js';

export interface SupportGrant {
  id: string;
  orgId: string;
  grantedBy: string | null;
  createdAt: Date;
  expiresAt: Date;
  revokedAt: Date | null;
}

interface DbRow {
  id: string;
  org_id: string;
  granted_by: string | null;
  created_at: Date;
  expires_at: Date;
  revoked_at: Date | null;
}

const map = (r: DbRow): SupportGrant => ({
  id: r.id,
  orgId: r.org_id,
  grantedBy: r.granted_by,
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  revokedAt: r.revoked_at,
});

const COLUMNS = 'id, org_id, granted_by, created_at, expires_at, revoked_at';

/** An organization that currently lets platform support in, and until when (its latest grant). */
export interface GrantedOrg {
  orgId: string;
  name: string;
  expiresAt: Date;
}

export const supportGrantRepository = {
  /** The grant that currently lets support into `orgId`, if any. */
  async findActive(tx: Queryable, orgId: string, now: Date): Promise<SupportGrant | undefined> {
    const { rows } = await tx.query<DbRow>(
      `SELECT ${COLUMNS} FROM support_grants
        WHERE org_id = $1 AND revoked_at IS NULL AND expires_at > $2 ORDER BY expires_at DESC LIMIT 1`,
      [orgId, now],
    );
    return rows[0] && map(rows[0]);
  },

  /** Every org with an active, unrevoked grant (system context: it spans organizations). */
  async listGrantedOrgs(tx: Queryable, now: Date, limit = 500): Promise<GrantedOrg[]> {
    const { rows } = await tx.query<{ id: string; name: string; expires_at: Date }>(
      `SELECT o.id, o.name, max(g.expires_at) AS expires_at
         FROM support_grants g JOIN orgs o ON o.id = g.org_id
        WHERE g.revoked_at IS NULL AND g.expires_at > $1
        GROUP BY o.id, o.name ORDER BY o.name, o.id LIMIT $2`,
      [now, limit],
    );
    return rows.map((r) => ({ orgId: r.id, name: r.name, expiresAt: new Date(r.expires_at) }));
  },

  async find(tx: Queryable, orgId: string, id: string): Promise<SupportGrant | undefined> {
    const { rows } = await tx.query<DbRow>(
      `SELECT ${COLUMNS} FROM support_grants WHERE org_id = $1 AND id = $2`,
      [orgId, id],
    );
    return rows[0] && map(rows[0]);
  },

  async list(tx: Queryable, orgId: string): Promise<SupportGrant[]> {
    const { rows } = await tx.query<DbRow>(
      `SELECT ${COLUMNS} FROM support_grants WHERE org_id = $1 ORDER BY created_at DESC LIMIT 100`,
      [orgId],
    );
    return rows.map(map);
  },

  async insert(
    tx: Queryable,
    orgId: string,
    grantedBy: string,
    createdAt: Date,
    expiresAt: Date,
  ): Promise<SupportGrant> {
    const { rows } = await tx.query<DbRow>(
      `INSERT INTO support_grants (org_id, granted_by, created_at, expires_at) VALUES ($1, $2, $3, $4)
       RETURNING ${COLUMNS}`,
      [orgId, grantedBy, createdAt, expiresAt],
    );
    return map(rows[0]!);
  },

  async revoke(tx: Queryable, orgId: string, id: string, by: string, now: Date): Promise<boolean> {
    const { rowCount } = await tx.query(
      `UPDATE support_grants SET revoked_at = $4, revoked_by = $3
        WHERE org_id = $1 AND id = $2 AND revoked_at IS NULL`,
      [orgId, id, by, now],
    );
    return rowCount > 0;
  },
};
