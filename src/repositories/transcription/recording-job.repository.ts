import type { Queryable } from '../../db/database.js';
import {
  claimLease,
  holdsLease,
  leaseHeld,
  releaseLease,
  renewLease,
  type LeaseTable,
} from '../lease.repository.js';

/**
 * The transcription queue (table recording_jobs). Claims use FOR UPDATE SKIP LOCKED so several
 * workers never take the same job; a claimed job carries a lease (id + expiry) that the worker
 * renews while it works. A worker that dies stops renewing, the lease expires and the job is
 * claimed again (the shared lease, lease.repository.ts: its fence is lease_id). Every time is the
 * caller's clock (`now`), the one that wrote run_after. Claims run in the system context (a
 * worker serves every org); the rest under the job's org.
 */
export interface ClaimedJob {
  recordingId: string;
  orgId: string;
  /** Plain staged file of a job queued before migration 0007; null now (the audio is sealed, see AudioStoreService). */
  audioPath: string | null;
  attempts: number;
  /** Reclaims after a lapsed lease (a killed holder): not attempts, bounded on their own. */
  leaseLapses: number;
  leaseId: string;
  language: string | null;
  speakersHint: number | null;
}

/** NOTIFY channel of due jobs (migration 0020's trigger); LISTEN on it to claim at once. */
export const JOBS_CHANNEL = 'sotto_recording_jobs';

/** recordings.error_code of a queued recording that waits for a speech-recognition engine. */
export const WAITING_FOR_ENGINE = 'waiting_for_engine';

const JOB_LEASE: LeaseTable = {
  table: 'recording_jobs',
  key: 'recording_id',
  until: 'lease_until',
  fence: 'lease_id',
};

/** A lease to take or extend: both times from the caller's clock. */
export interface LeaseTimes {
  now: Date;
  until: Date;
}

// A remote worker that could take recording r's job: its org's or a platform token, seen since $2
// (last_used_at is written from the application's clock, so it is compared with it too).
const ACTIVE_WORKER_EXISTS = `EXISTS (
  SELECT 1 FROM worker_tokens w
   WHERE w.revoked_at IS NULL AND w.last_used_at > $2::timestamptz
     AND (w.org_id IS NULL OR w.org_id = r.org_id))`;

export const recordingJobRepository = {
  async enqueue(
    tx: Queryable,
    j: { recordingId: string; orgId: string; audioPath?: string | null; now: Date },
  ) {
    await tx.query(
      `INSERT INTO recording_jobs (recording_id, org_id, audio_path, run_after, created_at)
       VALUES ($1, $2, $3, $4, $4)`,
      [j.recordingId, j.orgId, j.audioPath ?? null, j.now],
    );
  },

  /**
   * Takes a due job whose lease is free or expired (system context, or an org's context for an
   * org-scoped worker token: RLS then limits the claim to that org): of the org with the fewest
   * jobs running now, its oldest. One org's 500 queued uploads thus take turns with another
   * org's one instead of holding every worker until they are done; within an org, first come
   * first served. `maxRunningPerOrg` (null: none) leaves out orgs already running that many. `workerTokenId` records
   * the holder (null: the in-process worker); a remote worker never gets a job queued before
   * migration 0007, whose audio is a plain file only the server can read. A job still holding a
   * lease here has one that lapsed (its holder died): the claim counts a lease lapse, not an
   * attempt (migration 0025).
   */
  claim(
    tx: Queryable,
    lease: LeaseTimes,
    workerTokenId: string | null = null,
    maxRunningPerOrg: number | null = null,
  ): Promise<ClaimedJob | undefined> {
    return claimLease<ClaimedJob>(tx, JOB_LEASE, {
      ...lease,
      with: `running AS (
         SELECT org_id, count(*)::int AS n FROM recording_jobs h
          WHERE ${leaseHeld(JOB_LEASE, 'h', '$1')} GROUP BY org_id)`,
      join: 'LEFT JOIN running ON running.org_id = q.org_id',
      where: `q.run_after <= $1::timestamptz AND ($3::uuid IS NULL OR q.audio_path IS NULL)
              AND ($4::int IS NULL OR coalesce(running.n, 0) < $4)`,
      orderBy: 'coalesce(running.n, 0), q.run_after, q.created_at',
      set: `attempts = j.attempts + CASE WHEN j.lease_id IS NULL THEN 1 ELSE 0 END,
            lease_lapses = j.lease_lapses + CASE WHEN j.lease_id IS NULL THEN 0 ELSE 1 END,
            lease_id = gen_random_uuid(), worker_token_id = $3`,
      from: { tables: 'recordings r', where: 'r.id = j.recording_id' },
      returning: `j.recording_id AS "recordingId", j.org_id AS "orgId", j.audio_path AS "audioPath",
                  j.attempts, j.lease_lapses AS "leaseLapses", j.lease_id AS "leaseId", r.language,
                  r.speakers_hint AS "speakersHint"`,
      params: [workerTokenId, maxRunningPerOrg],
    });
  },

  /** Jobs of the org in the queue, waiting or running (a job's row goes when it ends). */
  async countForOrg(tx: Queryable, orgId: string): Promise<number> {
    const res = await tx.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM recording_jobs WHERE org_id = $1',
      [orgId],
    );
    return res.rows[0]?.n ?? 0;
  },

  /** The lease on a job and its holder (system context: the worker routes' first check). */
  async lease(
    tx: Queryable,
    recordingId: string,
  ): Promise<
    { orgId: string; leaseId: string | null; workerTokenId: string | null; attempts: number } | undefined
  > {
    const res = await tx.query<{
      orgId: string;
      leaseId: string | null;
      workerTokenId: string | null;
      attempts: number;
    }>(
      `SELECT org_id AS "orgId", lease_id AS "leaseId", worker_token_id AS "workerTokenId", attempts
         FROM recording_jobs WHERE recording_id = $1`,
      [recordingId],
    );
    return res.rows[0];
  },

  /**
   * Hands back at once every job a revoked worker token holds (the attempt not counted: revocation
   * is not the job's fault), so another worker takes them without waiting for the lease. Runs in
   * the token's org context, or the system context for a platform token. Returns their ids.
   */
  async releaseHeldBy(tx: Queryable, workerTokenId: string, now: Date): Promise<string[]> {
    const res = await tx.query<{ id: string }>(
      `UPDATE recording_jobs
          SET lease_id = NULL, lease_until = NULL, worker_token_id = NULL, run_after = $2,
              attempts = greatest(attempts - 1, 0)
        WHERE worker_token_id = $1 AND lease_id IS NOT NULL
        RETURNING recording_id AS id`,
      [workerTokenId, now],
    );
    return res.rows.map((r) => r.id);
  },

  /**
   * Extends a lease still held; false when it was lost (lapsed — retaken or not —, handed back,
   * or the job is gone).
   */
  renew(tx: Queryable, recordingId: string, leaseId: string, lease: LeaseTimes): Promise<boolean> {
    return renewLease(tx, JOB_LEASE, { key: recordingId, fence: leaseId }, lease);
  },

  /** Locks the job row if this lease still holds it (the guard before writing a result). */
  holdsLease(tx: Queryable, recordingId: string, leaseId: string): Promise<boolean> {
    return holdsLease(tx, JOB_LEASE, { key: recordingId, fence: leaseId });
  },

  /** Gives the job back: due again at `runAfter`; `countAttempt: false` undoes the claim's count. */
  release(
    tx: Queryable,
    recordingId: string,
    leaseId: string,
    opts: { runAfter: Date; countAttempt: boolean },
  ): Promise<boolean> {
    return releaseLease(
      tx,
      JOB_LEASE,
      { key: recordingId, fence: leaseId },
      {
        until: null,
        set: `lease_id = NULL, worker_token_id = NULL, run_after = $4,
              attempts = attempts - CASE WHEN $5::boolean THEN 0 ELSE 1 END`,
        params: [opts.runAfter, opts.countAttempt],
      },
    );
  },

  async remove(tx: Queryable, recordingId: string): Promise<void> {
    await tx.query('DELETE FROM recording_jobs WHERE recording_id = $1', [recordingId]);
  },

  async audioPath(tx: Queryable, recordingId: string): Promise<string | undefined> {
    const res = await tx.query<{ audioPath: string | null }>(
      'SELECT audio_path AS "audioPath" FROM recording_jobs WHERE recording_id = $1',
      [recordingId],
    );
    return res.rows[0]?.audioPath ?? undefined;
  },

  /**
   * Marks every queued, unclaimed recording that no engine can take as waiting for one (system
   * context; the in-process worker found no usable engine): those of orgs with no remote worker
   * seen since `activeSince`, which could take them instead. Marks of orgs that have one now are
   * cleared. A claim clears the mark (recordings.markProcessing), as does clearWaiting.
   */
  async markWaitingForEngine(tx: Queryable, activeSince: Date): Promise<number> {
    await tx.query(
      `UPDATE recordings r SET error_code = NULL
        WHERE r.status = 'queued' AND r.error_code = $1 AND ${ACTIVE_WORKER_EXISTS}`,
      [WAITING_FOR_ENGINE, activeSince],
    );
    const res = await tx.query(
      `UPDATE recordings r SET error_code = $1
         FROM recording_jobs j
        WHERE j.recording_id = r.id AND j.lease_id IS NULL
          AND r.status = 'queued' AND r.error_code IS NULL AND NOT ${ACTIVE_WORKER_EXISTS}`,
      [WAITING_FOR_ENGINE, activeSince],
    );
    return res.rowCount;
  },

  /** Clears every waiting mark (system context): an engine is usable again. */
  async clearWaitingForEngine(tx: Queryable): Promise<number> {
    const res = await tx.query(
      `UPDATE recordings SET error_code = NULL WHERE status = 'queued' AND error_code = $1`,
      [WAITING_FOR_ENGINE],
    );
    return res.rowCount;
  },

  /**
   * How many remote workers could take `orgId`'s jobs now: its own and platform tokens, not
   * revoked, seen since `activeSince` (a polling worker is seen at least once a minute).
   * System context (platform tokens are in no tenant), always narrowed to the one org.
   */
  async activeRemoteWorkers(tx: Queryable, orgId: string, activeSince: Date): Promise<number> {
    const res = await tx.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM worker_tokens
        WHERE revoked_at IS NULL AND last_used_at > $2 AND (org_id IS NULL OR org_id = $1)`,
      [orgId, activeSince],
    );
    return res.rows[0]?.n ?? 0;
  },

  /** Remote workers of any org seen since `activeSince` (system context; /readyz). */
  async anyActiveRemoteWorker(tx: Queryable, activeSince: Date): Promise<boolean> {
    const res = await tx.query(
      `SELECT 1 FROM worker_tokens WHERE revoked_at IS NULL AND last_used_at > $1 LIMIT 1`,
      [activeSince],
    );
    return res.rows.length > 0;
  },

  /** Every audio file a pending job still needs (system context; the start-up sweep keeps these). */
  async allAudioPaths(tx: Queryable): Promise<Set<string>> {
    const res = await tx.query<{ audioPath: string }>(
      'SELECT audio_path AS "audioPath" FROM recording_jobs WHERE audio_path IS NOT NULL',
    );
    return new Set(res.rows.map((r) => r.audioPath));
  },
};
