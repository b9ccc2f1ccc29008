import type { Queryable } from '../../db/database.js';
import { claimLease, releaseLease, type LeaseTable } from '../lease.repository.js';

/**
 * SQL of scheduled_tasks (system context). A run is the shared lease (lease.repository.ts) on
 * locked_until: of several nodes asking at the same moment exactly one takes the due, unlocked
 * row (the others skip it). The claim's time, last_run_at, is the fence: a run that outlived its
 * lease, its task since taken by another node, cannot release that node's claim. Times come
 * from the caller's Clock, not from now().
 */
const TASK_LEASE: LeaseTable = {
  table: 'scheduled_tasks',
  key: 'name',
  until: 'locked_until',
  fence: 'last_run_at',
};

export const scheduledTaskRepository = {
  /** Creates the task's row (due at once) unless it exists. */
  async ensure(tx: Queryable, name: string, now: Date): Promise<void> {
    await tx.query(
      `INSERT INTO scheduled_tasks (name, next_run_at) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`,
      [name, now],
    );
  },

  /**
   * True when this caller won the run: the task was due and not locked, and is now locked until
   * `lockedUntil`, with `now` as its last_run_at (the claim's fence: finish presents it).
   */
  async claim(tx: Queryable, name: string, now: Date, lockedUntil: Date): Promise<boolean> {
    const won = await claimLease<{ name: string }>(tx, TASK_LEASE, {
      now,
      until: lockedUntil,
      where: 'q.name = $3 AND q.next_run_at <= $1::timestamptz',
      set: 'last_run_at = $1',
      returning: 'j.name',
      params: [name],
    });
    return won !== undefined;
  },

  /**
   * Releases the lock of the run claimed at `claimedAt` and schedules the next run; `error` is a
   * short code/message, never content. False when that claim was lost (its lease lapsed and
   * another node took the task): the newer run decides the schedule.
   */
  finish(
    tx: Queryable,
    name: string,
    claimedAt: Date,
    nextRunAt: Date,
    error: string | null,
  ): Promise<boolean> {
    return releaseLease(
      tx,
      TASK_LEASE,
      { key: name, fence: claimedAt },
      {
        until: null,
        set: 'next_run_at = $4, last_error = $5',
        params: [nextRunAt, error === null ? null : error.slice(0, 500)],
      },
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
