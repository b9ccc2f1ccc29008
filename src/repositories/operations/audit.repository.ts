import type { Queryable } from '../../db/database.js';

export interface AuditRow {
  id: string;
  orgId: string | null;
  seq: number;
  at: Date;
  actorId: string | null;
  actorKind: 'user' | 'support' | 'system' | 'anonymous' | 'worker';
  action: string;
  targetType: string | null;
  targetId: string | null;
  ip: string | null;
  details: Record<string, unknown>;
  prevHash: string;
  hash: string;
}

export interface AuditListOptions {
  limit: number;
  beforeSeq?: number | undefined;
  action?: string | undefined;
  /** At or after. */
  from?: Date | undefined;
  /** Before (exclusive). */
  to?: Date | undefined;
}

interface DbRow {
  id: string;
  org_id: string | null;
  seq: string | number;
  at: Date;
  actor_id: string | null;
  actor_kind: AuditRow['actorKind'];
  action: string;
  target_type: string | null;
  target_id: string | null;
  ip: string | null;
  details: Record<string, unknown>;
  prev_hash: string;
  hash: string;
}

const COLUMNS =
  'id, org_id, seq, at, actor_id, actor_kind, action, target_type, target_id, ip, details, prev_hash, hash';

function map(r: DbRow): AuditRow {
  return {
    id: r.id,
    orgId: r.org_id,
    seq: Number(r.seq),
    at: r.at,
    actorId: r.actor_id,
    actorKind: r.actor_kind,
    action: r.action,
    targetType: r.target_type,
    targetId: r.target_id,
    ip: r.ip,
    details: r.details,
    prevHash: r.prev_hash,
    hash: r.hash,
  };
}

/** The audit log's SQL. Append and read only: the roles have no UPDATE or DELETE on it. */
export const auditRepository = {
  /** Serialises appends to one chain for the rest of the transaction (nodes included). */
  async lockChain(tx: Queryable, orgId: string | null): Promise<void> {
    await tx.query('SELECT pg_advisory_xact_lock(hashtext($1))', [`sotto-audit:${orgId ?? 'platform'}`]);
  },

  /** The last entry actually present in a chain. */
  async lastEntry(tx: Queryable, orgId: string | null): Promise<{ seq: number; hash: string } | undefined> {
    const { rows } = await tx.query<{ seq: string | number; hash: string }>(
      orgId === null
        ? 'SELECT seq, hash FROM audit_log WHERE org_id IS NULL ORDER BY seq DESC LIMIT 1'
        : 'SELECT seq, hash FROM audit_log WHERE org_id = $1 ORDER BY seq DESC LIMIT 1',
      orgId === null ? [] : [orgId],
    );
    return rows[0] && { seq: Number(rows[0].seq), hash: rows[0].hash };
  },

  /** The recorded head of a chain (audit_heads): how far the chain went, whatever remains. */
  async head(tx: Queryable, orgId: string | null): Promise<{ seq: number; hash: string } | undefined> {
    const { rows } = await tx.query<{ seq: string | number; hash: string }>(
      orgId === null
        ? 'SELECT seq, hash FROM audit_heads WHERE org_id IS NULL'
        : 'SELECT seq, hash FROM audit_heads WHERE org_id = $1',
      orgId === null ? [] : [orgId],
    );
    return rows[0] && { seq: Number(rows[0].seq), hash: rows[0].hash };
  },

  /** Moves the head to the entry just appended (the caller holds the chain lock). */
  async setHead(tx: Queryable, orgId: string | null, seq: number, hash: string, at: Date): Promise<void> {
    const { rowCount } = await tx.query(
      orgId === null
        ? 'UPDATE audit_heads SET seq = $1, hash = $2, updated_at = $3 WHERE org_id IS NULL'
        : 'UPDATE audit_heads SET seq = $1, hash = $2, updated_at = $3 WHERE org_id = $4',
      orgId === null ? [seq, hash, at] : [seq, hash, at, orgId],
    );
    if (rowCount === 0) {
      await tx.query('INSERT INTO audit_heads (org_id, seq, hash, updated_at) VALUES ($1, $2, $3, $4)', [
        orgId,
        seq,
        hash,
        at,
      ]);
    }
  },

  async insert(tx: Queryable, row: Omit<AuditRow, 'id'>): Promise<void> {
    await tx.query(
      `INSERT INTO audit_log (org_id, seq, at, actor_id, actor_kind, action, target_type, target_id, ip,
                              details, prev_hash, hash)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
      [
        row.orgId,
        row.seq,
        row.at,
        row.actorId,
        row.actorKind,
        row.action,
        row.targetType,
        row.targetId,
        row.ip,
        JSON.stringify(row.details),
        row.prevHash,
        row.hash,
      ],
    );
  },

  async list(tx: Queryable, orgId: string, opts: AuditListOptions): Promise<AuditRow[]> {
    const { rows } = await tx.query<DbRow>(
      `SELECT ${COLUMNS} FROM audit_log
        WHERE org_id = $1 AND ($2::bigint IS NULL OR seq < $2) AND ($3::text IS NULL OR action = $3)
          AND ($5::timestamptz IS NULL OR at >= $5) AND ($6::timestamptz IS NULL OR at < $6)
        ORDER BY seq DESC LIMIT $4`,
      [orgId, opts.beforeSeq ?? null, opts.action ?? null, opts.limit, opts.from ?? null, opts.to ?? null],
    );
    return rows.map(map);
  },

  /**
   * The actions this org's log holds, for the panel's action picker, read on every page of the
   * log. A plain DISTINCT reads every entry of the org (PostgreSQL has no skip scan before 18);
   * this loose index scan jumps from one action to the next in audit_log_org_action_idx
   * (migration 0028), so it costs one index descent per distinct action, whatever the log's size.
   */
  async actions(tx: Queryable, orgId: string): Promise<string[]> {
    const { rows } = await tx.query<{ action: string }>(
      `WITH RECURSIVE a(action) AS (
         (SELECT action FROM audit_log WHERE org_id = $1 ORDER BY action LIMIT 1)
         UNION ALL
         SELECT (SELECT l.action FROM audit_log l
                  WHERE l.org_id = $1 AND l.action > a.action ORDER BY l.action LIMIT 1)
           FROM a WHERE a.action IS NOT NULL)
       SELECT action FROM a WHERE action IS NOT NULL`,
      [orgId],
    );
    return rows.map((r) => r.action);
  },

  /**
   * Names and emails of this org's users among `ids` (actors and targets of entries). Scoped to
   * the org on top of RLS: an id from elsewhere gets no name.
   */
  async userNames(
    tx: Queryable,
    orgId: string,
    ids: string[],
  ): Promise<{ id: string; name: string; email: string }[]> {
    if (ids.length === 0) return [];
    const { rows } = await tx.query<{ id: string; name: string; email: string }>(
      'SELECT id, name, email FROM users WHERE org_id = $1 AND id = ANY($2::uuid[])',
      [orgId, ids],
    );
    return rows;
  },

  /** A whole chain in order (verification). */
  async chain(tx: Queryable, orgId: string | null): Promise<AuditRow[]> {
    const { rows } = await tx.query<DbRow>(
      orgId === null
        ? `SELECT ${COLUMNS} FROM audit_log WHERE org_id IS NULL ORDER BY seq`
        : `SELECT ${COLUMNS} FROM audit_log WHERE org_id = $1 ORDER BY seq`,
      orgId === null ? [] : [orgId],
    );
    return rows.map(map);
  },

  /** Every chain that has entries or a recorded head (a chain emptied by deletion still counts). */
  async chainIds(tx: Queryable): Promise<(string | null)[]> {
    const { rows } = await tx.query<{ org_id: string | null }>(
      'SELECT org_id FROM audit_log UNION SELECT org_id FROM audit_heads',
    );
    return rows.map((r) => r.org_id);
  },
};
