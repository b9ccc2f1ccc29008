import type { Queryable } from '../../db/database.js';
import { claimLease, releaseLease, renewLease, type LeaseTable } from '../lease.repository.js';

/**
 * SQL for org_exports (migration 0013). Tenant queries run under RLS (an admin sees their own
 * org's exports only); `claim`, `expiredBefore` and `staleBuilding` run in the system context for
 * the background builder and the expiry sweep, which serve every org.
 */
export type ExportStatus = 'queued' | 'building' | 'ready' | 'failed' | 'expired';

export interface OrgExportRow {
  id: string;
  orgId: string;
  requestedBy: string | null;
  status: ExportStatus;
  createdAt: Date;
  readyAt: Date | null;
  expiresAt: Date | null;
  sizeBytes: number | null;
  sha256: string | null;
  errorCode: string | null;
  contentKeyEnc: Buffer | null;
  attempts: number;
  itemsDone: number;
  itemsTotal: number;
}

interface DbRow {
  id: string;
  org_id: string;
  requested_by: string | null;
  status: ExportStatus;
  created_at: Date | string;
  ready_at: Date | string | null;
  expires_at: Date | string | null;
  size_bytes: string | number | null;
  sha256: string | null;
  error_code: string | null;
  content_key_enc: Uint8Array | null;
  attempts: number;
  items_done: number;
  items_total: number;
}

const COLUMNS = `id, org_id, requested_by, status, created_at, ready_at, expires_at, size_bytes, sha256,
  error_code, content_key_enc, attempts, items_done, items_total`;

/** The builder's lease (lease.repository.ts): each claim counts an attempt, which is the fence. */
const EXPORT_LEASE: LeaseTable = { table: 'org_exports', key: 'id', until: 'lease_until', fence: 'attempts' };

const date = (v: Date | string | null): Date | null => (v === null ? null : new Date(v));

function map(r: DbRow): OrgExportRow {
  return {
    id: r.id,
    orgId: r.org_id,
    requestedBy: r.requested_by,
    status: r.status,
    createdAt: new Date(r.created_at),
    readyAt: date(r.ready_at),
    expiresAt: date(r.expires_at),
    sizeBytes: r.size_bytes === null ? null : Number(r.size_bytes),
    sha256: r.sha256,
    errorCode: r.error_code,
    contentKeyEnc: r.content_key_enc ? Buffer.from(r.content_key_enc) : null,
    attempts: r.attempts,
    itemsDone: r.items_done,
    itemsTotal: r.items_total,
  };
}

export const orgExportRepository = {
  async insert(tx: Queryable, r: { orgId: string; requestedBy: string; now: Date }): Promise<OrgExportRow> {
    const { rows } = await tx.query<DbRow>(
      `INSERT INTO org_exports (org_id, requested_by, status, created_at)
       VALUES ($1, $2, 'queued', $3) RETURNING ${COLUMNS}`,
      [r.orgId, r.requestedBy, r.now],
    );
    return map(rows[0]!);
  },

  /** The org's export in flight (queued or building), if any. */
  async active(tx: Queryable, orgId: string): Promise<OrgExportRow | undefined> {
    const { rows } = await tx.query<DbRow>(
      `SELECT ${COLUMNS} FROM org_exports WHERE org_id = $1 AND status IN ('queued', 'building')`,
      [orgId],
    );
    return rows[0] && map(rows[0]);
  },

  async find(tx: Queryable, id: string): Promise<OrgExportRow | undefined> {
    const { rows } = await tx.query<DbRow>(`SELECT ${COLUMNS} FROM org_exports WHERE id = $1`, [id]);
    return rows[0] && map(rows[0]);
  },

  async list(tx: Queryable, orgId: string, limit: number): Promise<OrgExportRow[]> {
    const { rows } = await tx.query<DbRow>(
      `SELECT ${COLUMNS} FROM org_exports WHERE org_id = $1 ORDER BY created_at DESC, id DESC LIMIT $2`,
      [orgId, limit],
    );
    return rows.map(map);
  },

  async remove(tx: Queryable, id: string): Promise<boolean> {
    const res = await tx.query('DELETE FROM org_exports WHERE id = $1', [id]);
    return res.rowCount > 0;
  },

  /**
   * Takes the oldest queued export, or a building one whose node stopped renewing its lease
   * (system context; SKIP LOCKED so two nodes never take the same one).
   */
  async claim(tx: Queryable, now: Date, leaseUntil: Date): Promise<OrgExportRow | undefined> {
    // A queued export has no lease; a building one is free only once its lease lapsed.
    const row = await claimLease<DbRow>(tx, EXPORT_LEASE, {
      now,
      until: leaseUntil,
      where: `q.status IN ('queued', 'building')`,
      orderBy: 'q.created_at',
      set: `status = 'building', attempts = j.attempts + 1, items_done = 0, items_total = 0`,
      returning: COLUMNS,
    });
    return row && map(row);
  },

  /**
   * Renews the lease and records progress; false when the export is no longer ours to build
   * (deleted, invalidated, or its lease lapsed: another node may be taking it).
   */
  progress(
    tx: Queryable,
    id: string,
    p: { done: number; total: number; now: Date; leaseUntil: Date; attempts: number },
  ): Promise<boolean> {
    return renewLease(
      tx,
      EXPORT_LEASE,
      { key: id, fence: p.attempts },
      {
        now: p.now,
        until: p.leaseUntil,
        set: 'items_done = $5, items_total = $6',
        where: `status = 'building'`,
        params: [p.done, p.total],
      },
    );
  },

  markReady(
    tx: Queryable,
    id: string,
    r: {
      now: Date;
      expiresAt: Date;
      sizeBytes: number;
      sha256: string;
      contentKeyEnc: Buffer;
      attempts: number;
    },
  ): Promise<boolean> {
    return releaseLease(
      tx,
      EXPORT_LEASE,
      { key: id, fence: r.attempts },
      {
        until: null,
        set: `status = 'ready', ready_at = $4, expires_at = $5, size_bytes = $6, sha256 = $7,
              content_key_enc = $8, items_done = items_total`,
        where: `status = 'building'`,
        params: [r.now, r.expiresAt, r.sizeBytes, r.sha256, r.contentKeyEnc],
      },
    );
  },

  async markFailed(tx: Queryable, id: string, errorCode: string): Promise<void> {
    await tx.query(
      `UPDATE org_exports SET status = 'failed', error_code = $2, lease_until = NULL
        WHERE id = $1 AND status IN ('queued', 'building')`,
      [id, errorCode],
    );
  },

  /** Hands a build back to the queue (this node is shutting down); the attempt does not count. */
  async release(tx: Queryable, id: string, attempts: number): Promise<void> {
    await releaseLease(
      tx,
      EXPORT_LEASE,
      { key: id, fence: attempts },
      {
        until: null,
        set: `status = 'queued', attempts = attempts - 1, items_done = 0, items_total = 0`,
        where: `status = 'building'`,
      },
    );
  },

  /** Ready exports past their expiry (system context). */
  async expiredBefore(tx: Queryable, now: Date): Promise<{ id: string; orgId: string }[]> {
    const { rows } = await tx.query<{ id: string; org_id: string }>(
      `SELECT id, org_id FROM org_exports WHERE status = 'ready' AND expires_at <= $1`,
      [now],
    );
    return rows.map((r) => ({ id: r.id, orgId: r.org_id }));
  },

  async markExpired(tx: Queryable, id: string): Promise<void> {
    await tx.query(
      `UPDATE org_exports SET status = 'expired', content_key_enc = NULL WHERE id = $1 AND status = 'ready'`,
      [id],
    );
  },

  /**
   * Data the org's ready or building exports hold was hard-deleted: they expire now, with the
   * reason in error_code (a build in progress loses its lease and stops). Under RLS; returns the
   * ids whose files the caller removes after the commit.
   */
  async invalidate(tx: Queryable, orgId: string, reason: string): Promise<string[]> {
    const { rows } = await tx.query<{ id: string }>(
      `UPDATE org_exports SET status = 'expired', content_key_enc = NULL, lease_until = NULL, error_code = $2
        WHERE org_id = $1 AND status IN ('ready', 'building') RETURNING id`,
      [orgId, reason],
    );
    return rows.map((r) => r.id);
  },

  /** Every export that still has (or may have) a file on disk, as "org/id" (orphan sweep). */
  async liveFiles(tx: Queryable): Promise<Set<string>> {
    const { rows } = await tx.query<{ id: string; org_id: string }>(
      `SELECT id, org_id FROM org_exports WHERE status IN ('building', 'ready')`,
    );
    return new Set(rows.map((r) => `${r.org_id}/${r.id}`));
  },
};
