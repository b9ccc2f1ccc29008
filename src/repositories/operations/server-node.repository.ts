import type { Queryable } from '../../db/database.js';

/**
 * The `sotto serve` nodes sharing a database, and the public URL each issues tokens for (table
 * server_nodes, migration 0025; system context), one row per node id (ServerNodeService.rowId).
 * Written at start and with each heartbeat.
 */
export interface OtherNodeUrl {
  publicUrl: string;
  nodes: number;
}

export const serverNodeRepository = {
  /**
   * Records node `rowId` (ServerNodeService.rowId: stable across a node's restarts) as seen `now`.
   * A restarted node updates its own row: its URL (which may have been corrected) and start too.
   */
  async beat(
    tx: Queryable,
    n: { rowId: string; publicUrl: string; startedAt: Date; now: Date },
  ): Promise<void> {
    await tx.query(
      `INSERT INTO server_nodes (node_id, public_url, started_at, seen_at) VALUES ($1, $2, $3, $4)
       ON CONFLICT (node_id) DO UPDATE
         SET public_url = EXCLUDED.public_url, started_at = EXCLUDED.started_at, seen_at = EXCLUDED.seen_at`,
      [n.rowId, n.publicUrl, n.startedAt, n.now],
    );
  },

  /** Public URLs other than `publicUrl` of nodes seen since `since`, with how many nodes use each. */
  async otherUrls(tx: Queryable, publicUrl: string, since: Date): Promise<OtherNodeUrl[]> {
    const res = await tx.query<OtherNodeUrl>(
      `SELECT public_url AS "publicUrl", count(*)::int AS nodes FROM server_nodes
        WHERE seen_at >= $2 AND public_url <> $1
        GROUP BY public_url ORDER BY public_url`,
      [publicUrl, since],
    );
    return res.rows;
  },

  /** Forgets nodes not seen since `before` (stopped or gone for good). */
  async prune(tx: Queryable, before: Date): Promise<void> {
    await tx.query('DELETE FROM server_nodes WHERE seen_at < $1', [before]);
  },

  async remove(tx: Queryable, rowId: string): Promise<void> {
    await tx.query('DELETE FROM server_nodes WHERE node_id = $1', [rowId]);
  },
};
