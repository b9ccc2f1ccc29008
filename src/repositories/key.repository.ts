import type { Queryable } from '../db/database.js';

export interface WrappedDataKey {
  orgId: string;
  version: number;
  wrapped: Buffer;
  masterVersion: number;
}

const toBuffer = (v: unknown): Buffer => Buffer.from(v as Uint8Array);

function map(r: {
  org_id: string;
  version: number;
  wrapped: unknown;
  master_version: number;
}): WrappedDataKey {
  return {
    orgId: r.org_id,
    version: r.version,
    wrapped: toBuffer(r.wrapped),
    masterVersion: r.master_version,
  };
}

/** SQL for org data keys. Tenant reads run under RLS; rotation runs in the system context. */
export const keyRepository = {
  async find(tx: Queryable, orgId: string, version: number): Promise<WrappedDataKey | undefined> {
    const { rows } = await tx.query<Parameters<typeof map>[0]>(
      'SELECT org_id, version, wrapped, master_version FROM org_keys WHERE org_id = $1 AND version = $2',
      [orgId, version],
    );
    return rows[0] && map(rows[0]);
  },

  async findActive(tx: Queryable, orgId: string): Promise<WrappedDataKey | undefined> {
    const { rows } = await tx.query<Parameters<typeof map>[0]>(
      `SELECT org_id, version, wrapped, master_version FROM org_keys
        WHERE org_id = $1 ORDER BY version DESC LIMIT 1`,
      [orgId],
    );
    return rows[0] && map(rows[0]);
  },

  async insert(tx: Queryable, key: WrappedDataKey): Promise<void> {
    await tx.query(
      'INSERT INTO org_keys (org_id, version, wrapped, master_version) VALUES ($1, $2, $3, $4)',
      [key.orgId, key.version, key.wrapped, key.masterVersion],
    );
  },

  /** Locks a batch of keys still wrapped by an older master key; others may work on the rest. */
  async lockStale(tx: Queryable, activeMasterVersion: number, limit: number): Promise<WrappedDataKey[]> {
    const { rows } = await tx.query<Parameters<typeof map>[0]>(
      `SELECT org_id, version, wrapped, master_version FROM org_keys
        WHERE master_version <> $1 ORDER BY org_id, version LIMIT $2 FOR UPDATE SKIP LOCKED`,
      [activeMasterVersion, limit],
    );
    return rows.map(map);
  },

  async rewrap(tx: Queryable, key: WrappedDataKey): Promise<void> {
    await tx.query(
      `UPDATE org_keys SET wrapped = $3, master_version = $4, rewrapped_at = now()
        WHERE org_id = $1 AND version = $2`,
      [key.orgId, key.version, key.wrapped, key.masterVersion],
    );
  },

  async countByMasterVersion(tx: Queryable): Promise<{ masterVersion: number; count: number }[]> {
    const { rows } = await tx.query<{ master_version: number; count: number }>(
      `SELECT master_version, count(*)::int AS count FROM org_keys GROUP BY master_version ORDER BY master_version`,
    );
    return rows.map((r) => ({ masterVersion: r.master_version, count: r.count }));
  },
};
