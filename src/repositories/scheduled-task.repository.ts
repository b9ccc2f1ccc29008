import type { Queryable } from '../db/database.js';

/**
 * SQL of scheduled_tasks (system context). The claim is a single conditional UPDATE: of several
 * nodes asking at the same moment, the database lets exactly one see the row as due and unlocked
 * (the others' UPDATE re-checks the WHERE after the winner's commit and matches nothing). Works
 * the same on PostgreSQL and PGlite; times come from the caller's Clock, not from now().
 */
export const scheduledTaskRepository = {
  /** Creates the task's row (due at once) unless it exists. */
  async ensure(tx: Queryable, name: string, now: Date): Promise<void> {
    await tx.query(
      `INSERT INTO scheduled_tasks (name, next_run_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
      [name, now],
    );
  },

  /** True when this caller won the run: the task was due and not locked, and is now locked until `lockedUntil`. */
  async claim(tx: Queryable, name: string, now: Date, lockedUntil: Date): Promise<boolean> {
    const res = await tx.query(
      `UPDATE scheduled_tasks SET locked_until = $3, last_run_at = $2
        WHERE name = $1 AND next_run_at <= $2 AND (locked_until IS NULL OR locked_until < $2)
        RETURNING name`,
      [name, now, lockedUntil],
    );
    return res.rows.length === 1;
  },

  /** Releases the lock and schedules the next run; `error` is a short code/message, never content. */
  async finish(tx: Queryable, name: string, nextRunAt: Date, error: string | null): Promise<void> {
    await tx.query(
      `UPDATE scheduled_tasks SET locked_until = NULL, next_run_at = $2, last_error = $3 WHERE name = $1`,
      [name, nextRunAt, error === null ? null : error.slice(0, 500)],
    );
  },

  async find(
    tx: Queryable,
    name: string,
  ): Promise<
    | {
        name: string;
        nextRunAt: Date;
        lockedUntil: Date | null;
        lastRunAt: Date | null;
        lastError: string | null;
      }
    | undefined
  > {
    const { rows } = await tx.query<{
      name: string;
      nextRunAt: Date;
      lockedUntil: Date | null;
      lastRunAt: Date | null;
      lastError: string | null;
    }>(
      `SELECT name, next_run_at AS "nextRunAt", locked_until AS "lockedUntil", last_run_at AS "lastRunAt",
              last_error AS "lastError"
         FROM scheduled_tasks WHERE name = $1`,
      [name],
    );
    return rows[0];
  },
};
