import type { Queryable } from '../../db/database.js';
import { touchTokenLastUsed } from '../auth/token-usage.repository.js';

/**
 * Worker tokens (table worker_tokens). Org tokens are read and written under the org's RLS
 * context; platform tokens (orgId null) and the per-request token check only in the system
 * context. The secret itself is never stored, only its SHA-256.
 */
export interface WorkerTokenRow {
  id: string;
  orgId: string | null;
  name: string;
  createdBy: string | null;
  createdAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

interface DbRow {
  id: string;
  org_id: string | null;
  name: string;
  created_by: string | null;
  created_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const COLUMNS = 'id, org_id, name, created_by, created_at, last_used_at, revoked_at';

const map = (r: DbRow): WorkerTokenRow => ({
  id: r.id,
  orgId: r.org_id,
  name: r.name,
  createdBy: r.created_by,
  createdAt: r.created_at,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
});

export const workerTokenRepository = {
  async insert(
    tx: Queryable,
    t: {
      id: string;
      orgId: string | null;
      name: string;
      tokenHash: string;
      createdBy: string | null;
      now: Date;
    },
  ): Promise<WorkerTokenRow> {
    const { rows } = await tx.query<DbRow>(
      `INSERT INTO worker_tokens (id, org_id, name, token_hash, created_by, created_at)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING ${COLUMNS}`,
      [t.id, t.orgId, t.name, t.tokenHash, t.createdBy, t.now],
    );
    return map(rows[0]!);
  },

  /** One org's tokens (tenant context), or the platform tokens (`orgId` null, system context). */
  async list(tx: Queryable, orgId: string | null): Promise<WorkerTokenRow[]> {
    const { rows } = await tx.query<DbRow>(
      `SELECT ${COLUMNS} FROM worker_tokens WHERE org_id IS NOT DISTINCT FROM $1 ORDER BY created_at, id`,
      [orgId],
    );
    return rows.map(map);
  },

  /** Every token (system context: the operator's `sotto workers list`). */
  async listAll(tx: Queryable): Promise<WorkerTokenRow[]> {
    const { rows } = await tx.query<DbRow>(`SELECT ${COLUMNS} FROM worker_tokens ORDER BY created_at, id`);
    return rows.map(map);
  },

  async find(tx: Queryable, id: string): Promise<WorkerTokenRow | undefined> {
    const { rows } = await tx.query<DbRow>(`SELECT ${COLUMNS} FROM worker_tokens WHERE id = $1`, [id]);
    return rows[0] && map(rows[0]);
  },

  /** The row and stored hash for the per-request check (system context). */
  async findForAuth(
    tx: Queryable,
    id: string,
  ): Promise<(WorkerTokenRow & { tokenHash: string }) | undefined> {
    const { rows } = await tx.query<DbRow & { token_hash: string }>(
      `SELECT ${COLUMNS}, token_hash FROM worker_tokens WHERE id = $1`,
      [id],
    );
    const r = rows[0];
    return r && { ...map(r), tokenHash: r.token_hash };
  },

  /** Marks a token revoked; false when it was already revoked (or is not visible). */
  async revoke(tx: Queryable, id: string, now: Date): Promise<boolean> {
    const res = await tx.query(
      'UPDATE worker_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL',
      [id, now],
    );
    return res.rowCount > 0;
  },

  /** Written at most once a minute per token (see token-usage.repository.ts). */
  touch(tx: Queryable, id: string, now: Date): Promise<void> {
    return touchTokenLastUsed(tx, 'worker_tokens', id, now);
  },

  /** Org id of a slug (system context: the operator names orgs by slug on the command line). */
  async orgIdBySlug(tx: Queryable, slug: string): Promise<string | undefined> {
    const { rows } = await tx.query<{ id: string }>('SELECT id FROM orgs WHERE slug = $1', [slug]);
    return rows[0]?.id;
  },
};
