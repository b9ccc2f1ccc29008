import type { Queryable } from '../db/database.js';

/**
 * The one lease of the codebase: how a row of a work table is taken by exactly one worker or
 * node, kept while it works, given back, and taken by someone else when its holder died. Four
 * tables use it, each with its own columns and rules around it — recording_jobs (the fair per-org
 * claim), org_exports, webhook_deliveries and scheduled_tasks — and this file is the SQL they
 * share, the same on PostgreSQL and PGlite:
 *
 * - **Time is the caller's**: every statement compares with a `now` the caller passes from its
 *   injected Clock, never the database's now(); what one service writes (a due time, a lease's
 *   end) is compared on the same clock, and a test moves a ManualClock instead of sleeping.
 *   (Nodes are expected to keep NTP time: a lease is tens of seconds, skew milliseconds.)
 * - **A lease holds while `until > now`**; it is free when `until` is NULL (never taken, or
 *   given back) or not in the future any more (lapsed: its holder stopped renewing).
 * - **A claim** takes one free row meeting the table's own conditions, in the table's own order,
 *   with `FOR UPDATE SKIP LOCKED`, so two claimers never wait on or take the same row; the
 *   claim sets `until` and changes the table's fence.
 * - **The fence** is a column every claim changes (a fresh lease id, an attempt count, the claim
 *   time): renew and release present the value their claim returned, so a holder whose lease
 *   lapsed and was retaken can neither extend nor end the new holder's lease.
 * - **A renew after the lease lapsed fails**, even if nobody has retaken the row yet: the holder
 *   cannot know whether another claim is already in flight, so it must stop and let the row be
 *   claimed again rather than carry on.
 *
 * Table and column names are constants of the repositories that describe their table (never
 * input); values always travel as parameters. The caller's SQL fragments may use parameters
 * after the ones each function reserves (its doc says which).
 */
export interface LeaseTable {
  table: string;
  key: string;
  /** The lease's end (timestamptz): held while in the future. */
  until: string;
  /** The column each claim changes, presented again by renew and release. */
  fence: string;
}

/** SQL: the lease of row `alias` is free at the timestamptz expression `now`. */
export const leaseFree = (t: LeaseTable, alias: string, now: string): string =>
  `(${alias}.${t.until} IS NULL OR ${alias}.${t.until} <= ${now}::timestamptz)`;

/** SQL: the lease of row `alias` is held at `now` (claimed, not lapsed). */
export const leaseHeld = (t: LeaseTable, alias: string, now: string): string =>
  `${alias}.${t.until} > ${now}::timestamptz`;

export interface ClaimSpec {
  now: Date;
  /** The new lease's end. */
  until: Date;
  /** The table's own conditions on a candidate row `q` (due, status, …); may use $3…. */
  where?: string;
  /** The table's order of candidates (SQL over `q` and `join`); default the key. */
  orderBy?: string;
  /** Common table expressions the candidate pick joins (e.g. counts of running jobs). */
  with?: string;
  /** Joins of `q` to them. */
  join?: string;
  /** The other assignments of the claimed row `j`, among them the fence's new value (old values readable as `j.col`). */
  set: string;
  /** More tables for RETURNING (`tables`, comma-separated, and how they join `j`). */
  from?: { tables: string; where: string };
  /** What the claim returns (columns of `j` and `from`). */
  returning: string;
  /** Values of $3, $4, … */
  params?: readonly unknown[];
}

/** Params $1 (now) and $2 (until) are the lease's. */
export async function claimLease<R>(tx: Queryable, t: LeaseTable, spec: ClaimSpec): Promise<R | undefined> {
  const { rows } = await tx.query<R>(
    `WITH ${spec.with ? `${spec.with},` : ''}
     next AS (
       SELECT q.${t.key} AS k FROM ${t.table} q ${spec.join ?? ''}
        WHERE ${leaseFree(t, 'q', '$1')} AND (${spec.where ?? 'true'})
        ORDER BY ${spec.orderBy ?? `q.${t.key}`}
        LIMIT 1 FOR UPDATE OF q SKIP LOCKED)
     UPDATE ${t.table} j SET ${t.until} = $2, ${spec.set}
       FROM next${spec.from ? `, ${spec.from.tables}` : ''}
      WHERE j.${t.key} = next.k${spec.from ? ` AND ${spec.from.where}` : ''}
     RETURNING ${spec.returning}`,
    [spec.now, spec.until, ...(spec.params ?? [])],
  );
  return rows[0];
}

export interface HeldLease<K, F> {
  key: K;
  /** The fence's value as the claim returned it. */
  fence: F;
}

/**
 * Extends a lease still held by this claim and not lapsed at `now`; false otherwise (lapsed,
 * retaken, given back, or the row is gone). `set`/`where` add the table's own columns and
 * conditions with $5….
 */
export async function renewLease<K, F>(
  tx: Queryable,
  t: LeaseTable,
  held: HeldLease<K, F>,
  p: { now: Date; until: Date; set?: string; where?: string; params?: readonly unknown[] },
): Promise<boolean> {
  const res = await tx.query(
    `UPDATE ${t.table} SET ${t.until} = $3${p.set ? `, ${p.set}` : ''}
      WHERE ${t.key} = $1 AND ${t.fence} = $2 AND ${leaseHeld(t, t.table, '$4')} AND (${p.where ?? 'true'})`,
    [held.key, held.fence, p.until, p.now, ...(p.params ?? [])],
  );
  return res.rowCount > 0;
}

/**
 * Ends this claim's lease: `until` becomes the given value (NULL: free at once; a time: the
 * table's next due time when `until` doubles as one), with the table's other assignments
 * (`set`, params $4…). Succeeds while the fence matches, lapsed or not: a holder that ran over
 * may still give back or settle a row nobody has retaken. False when the claim was lost.
 */
export async function releaseLease<K, F>(
  tx: Queryable,
  t: LeaseTable,
  held: HeldLease<K, F>,
  p: { until: Date | null; set?: string; where?: string; params?: readonly unknown[] },
): Promise<boolean> {
  const res = await tx.query(
    `UPDATE ${t.table} SET ${t.until} = $3${p.set ? `, ${p.set}` : ''}
      WHERE ${t.key} = $1 AND ${t.fence} = $2 AND (${p.where ?? 'true'})`,
    [held.key, held.fence, p.until, ...(p.params ?? [])],
  );
  return res.rowCount > 0;
}

/**
 * Locks the row while this claim's fence is on it (the guard before writing a result in the same
 * transaction); false when the claim was lost.
 */
export async function holdsLease<K, F>(
  tx: Queryable,
  t: LeaseTable,
  held: HeldLease<K, F>,
): Promise<boolean> {
  const res = await tx.query(`SELECT 1 FROM ${t.table} WHERE ${t.key} = $1 AND ${t.fence} = $2 FOR UPDATE`, [
    held.key,
    held.fence,
  ]);
  // rows, not rowCount: PGlite reports no affected rows for SELECT … FOR UPDATE.
  return res.rows.length > 0;
}
