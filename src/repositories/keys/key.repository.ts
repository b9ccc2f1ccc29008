import type { Queryable } from '../../db/database.js';

export interface WrappedDataKey {
  orgId: string;
  version: number;
  wrapped: Buffer;
  masterVersion: number;
  /** 'kek': wrapped by the org's KEK (key directory); 'master': directly by the master key (pre-0012). */
  wrappedBy: 'master' | 'kek';
}

const toBuffer = (v: unknown): Buffer => Buffer.from(v as Uint8Array);

function map(r: {
  org_id: string;
  version: number;
  wrapped: unknown;
  master_version: number;
  wrapped_by: 'master' | 'kek';
}): WrappedDataKey {
  return {
    orgId: r.org_id,
    version: r.version,
    wrapped: toBuffer(r.wrapped),
    masterVersion: r.master_version,
    wrappedBy: r.wrapped_by,
  };
}

const COLS = 'org_id, version, wrapped, master_version, wrapped_by';

/** SQL for org data keys. Tenant reads run under RLS; rotation runs in the system context. */
export const keyRepository = {
  async find(tx: Queryable, orgId: string, version: number): Promise<WrappedDataKey | undefined> {
    const { rows } = await tx.query<Parameters<typeof map>[0]>(
      `SELECT ${COLS} FROM org_keys WHERE org_id = $1 AND version = $2`,
      [orgId, version],
    );
    return rows[0] && map(rows[0]);
  },

  async findActive(tx: Queryable, orgId: string): Promise<WrappedDataKey | undefined> {
    const { rows } = await tx.query<Parameters<typeof map>[0]>(
      `SELECT ${COLS} FROM org_keys WHERE org_id = $1 ORDER BY version DESC LIMIT 1`,
      [orgId],
    );
    return rows[0] && map(rows[0]);
  },

  /** `createdAt`: the application clock's time (rotation ages keys by it); default the database's. */
  async insert(tx: Queryable, key: WrappedDataKey, createdAt?: Date): Promise<void> {
    await tx.query(
      `INSERT INTO org_keys (org_id, version, wrapped, master_version, wrapped_by, created_at)
       VALUES ($1, $2, $3, $4, $5, COALESCE($6::timestamptz, now()))`,
      [key.orgId, key.version, key.wrapped, key.masterVersion, key.wrappedBy, createdAt ?? null],
    );
  },

  /** When each of the org's versions was created (rotation's ages and retirement's grace). */
  async versions(tx: Queryable, orgId: string): Promise<{ version: number; createdAt: Date }[]> {
    const { rows } = await tx.query<{ version: number; created_at: Date | string }>(
      'SELECT version, created_at FROM org_keys WHERE org_id = $1 ORDER BY version',
      [orgId],
    );
    return rows.map((r) => ({ version: r.version, createdAt: new Date(r.created_at) }));
  },

  /**
   * Locks a batch of orgs whose keys need work — wrapped directly by the master key (pre-0012) or
   * under a KEK sealed by an older master version — on the orgs row, SKIP LOCKED: one node
   * handles all of an org's keys (and its single KEK file) at a time; others take other orgs.
   */
  async lockOrgsNeedingRewrap(
    tx: Queryable,
    activeMasterVersion: number | null,
    limit: number,
  ): Promise<string[]> {
    // activeMasterVersion null: only the pre-0012 upgrade (no change of master version).
    const { rows } = await tx.query<{ id: string }>(
      `SELECT o.id FROM orgs o
        WHERE EXISTS (SELECT 1 FROM org_keys k WHERE k.org_id = o.id
                        AND (k.wrapped_by = 'master' OR ($1::int IS NOT NULL AND k.master_version <> $1::int)))
        ORDER BY o.id LIMIT $2 FOR UPDATE OF o SKIP LOCKED`,
      [activeMasterVersion, limit],
    );
    return rows.map((r) => r.id);
  },

  async listOrg(tx: Queryable, orgId: string): Promise<WrappedDataKey[]> {
    const { rows } = await tx.query<Parameters<typeof map>[0]>(
      `SELECT ${COLS} FROM org_keys WHERE org_id = $1 ORDER BY version`,
      [orgId],
    );
    return rows.map(map);
  },

  async rewrap(tx: Queryable, key: WrappedDataKey): Promise<void> {
    await tx.query(
      `UPDATE org_keys SET wrapped = $3, master_version = $4, wrapped_by = $5, rewrapped_at = now()
        WHERE org_id = $1 AND version = $2`,
      [key.orgId, key.version, key.wrapped, key.masterVersion, key.wrappedBy],
    );
  },

  /** Crypto-shredding, database half (the KEK file is the other): every data key row of the org. */
  async deleteOrg(tx: Queryable, orgId: string): Promise<number> {
    const { rows } = await tx.query<{ n: number }>(
      'WITH d AS (DELETE FROM org_keys WHERE org_id = $1 RETURNING 1) SELECT count(*)::int AS n FROM d',
      [orgId],
    );
    return rows[0]?.n ?? 0;
  },

  /**
   * Data-key rotation: locks up to `limit` orgs whose newest data key was created before
   * `olderThan` (SKIP LOCKED on the orgs row, as master rotation does: one node per org). NO KEY
   * UPDATE, not UPDATE: the rotation audits in the same transaction, and an audit insert elsewhere
   * (holding the org's chain lock) takes KEY SHARE on this row for its foreign key — with FOR
   * UPDATE the two could deadlock (docs/security-fuzz.md, finding 1). `excluding`: orgs that failed
   * earlier in this pass (a KEK file missing), so they do not come back first every time.
   */
  async lockOrgsDueForDataKeyRotation(
    tx: Queryable,
    olderThan: Date,
    limit: number,
    excluding: readonly string[] = [],
  ): Promise<string[]> {
    const { rows } = await tx.query<{ id: string }>(
      `SELECT o.id FROM orgs o
         JOIN LATERAL (SELECT max(created_at) AS newest FROM org_keys k WHERE k.org_id = o.id) k ON true
        WHERE k.newest < $1 AND NOT (o.id = ANY($3::uuid[]))
        ORDER BY o.id LIMIT $2 FOR NO KEY UPDATE OF o SKIP LOCKED`,
      [olderThan, limit, excluding],
    );
    return rows.map((r) => r.id);
  },

  /**
   * Orgs with more than one data key version (older versions wait for re-encryption and
   * retirement), in org id order after `after`: the caller walks them round-robin, so orgs whose
   * old version stays pinned (an archive object, a damaged row) cannot keep the others out.
   */
  async orgsWithOldVersions(tx: Queryable, after: string | null, limit: number): Promise<string[]> {
    const { rows } = await tx.query<{ org_id: string }>(
      `SELECT org_id FROM org_keys WHERE ($1::uuid IS NULL OR org_id > $1::uuid)
        GROUP BY org_id HAVING count(*) > 1 ORDER BY org_id LIMIT $2`,
      [after, limit],
    );
    return rows.map((r) => r.org_id);
  },

  /** Retirement of one superseded version: its wrapped key is gone for good. */
  async deleteVersion(tx: Queryable, orgId: string, version: number): Promise<boolean> {
    const { rowCount } = await tx.query('DELETE FROM org_keys WHERE org_id = $1 AND version = $2', [
      orgId,
      version,
    ]);
    return rowCount > 0;
  },

  async countByMasterVersion(tx: Queryable): Promise<{ masterVersion: number; count: number }[]> {
    const { rows } = await tx.query<{ master_version: number; count: number }>(
      `SELECT master_version, count(*)::int AS count FROM org_keys GROUP BY master_version ORDER BY master_version`,
    );
    return rows.map((r) => ({ masterVersion: r.master_version, count: r.count }));
  },
};
