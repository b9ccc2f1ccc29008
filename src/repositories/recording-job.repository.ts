import type { Queryable } from '../db/database.js';

/**
 * The transcription queue (table recording_jobs). Claims use FOR UPDATE SKIP LOCKED so several
 * workers never take the same job; a claimed job carries a lease (id + expiry) that the worker
 * renews while it works. A worker that dies stops renewing, the lease expires and the job is
 * claimed again. Claims run in the system context (a worker serves every org); the rest under
 * the job's org.
 */
export interface ClaimedJob {
  recordingId: string;
  orgId: string;
  audioPath: string;
  attempts: number;
  leaseId: string;
  language: string | null;
  speakersHint: number | null;
}

export const recordingJobRepository = {
  async enqueue(tx: Queryable, j: { recordingId: string; orgId: string; audioPath: string; now: Date }) {
    await tx.query(
      `INSERT INTO recording_jobs (recording_id, org_id, audio_path, run_after, created_at)
       VALUES ($1, $2, $3, $4, $4)`,
      [j.recordingId, j.orgId, j.audioPath, j.now],
    );
  },

  /** Takes the oldest due job whose lease is free or expired (system context). */
  async claim(tx: Queryable, leaseSeconds: number): Promise<ClaimedJob | undefined> {
    const res = await tx.query<ClaimedJob>(
      `WITH next AS (
         SELECT recording_id FROM recording_jobs
          WHERE run_after <= now() AND (lease_until IS NULL OR lease_until < now())
          ORDER BY run_after, created_at
          LIMIT 1 FOR UPDATE SKIP LOCKED)
       UPDATE recording_jobs j
          SET attempts = j.attempts + 1, lease_id = gen_random_uuid(),
              lease_until = now() + make_interval(secs => $1)
         FROM next, recordings r
        WHERE j.recording_id = next.recording_id AND r.id = j.recording_id
       RETURNING j.recording_id AS "recordingId", j.org_id AS "orgId", j.audio_path AS "audioPath",
                 j.attempts, j.lease_id AS "leaseId", r.language, r.speakers_hint AS "speakersHint"`,
      [leaseSeconds],
    );
    return res.rows[0];
  },

  /** Extends a lease still held; false when it was lost (expired and taken, or the job is gone). */
  async renew(tx: Queryable, recordingId: string, leaseId: string, leaseSeconds: number): Promise<boolean> {
    const res = await tx.query(
      `UPDATE recording_jobs SET lease_until = now() + make_interval(secs => $3)
        WHERE recording_id = $1 AND lease_id = $2`,
      [recordingId, leaseId, leaseSeconds],
    );
    return res.rowCount > 0;
  },

  /** Locks the job row if this lease still holds it (the guard before writing a result). */
  async holdsLease(tx: Queryable, recordingId: string, leaseId: string): Promise<boolean> {
    const res = await tx.query(
      'SELECT 1 FROM recording_jobs WHERE recording_id = $1 AND lease_id = $2 FOR UPDATE',
      [recordingId, leaseId],
    );
    // rows, not rowCount: PGlite reports no affected rows for SELECT … FOR UPDATE.
    return res.rows.length > 0;
  },

  /** Gives the job back: due again after `delaySeconds`; `countAttempt: false` undoes the claim's count. */
  async release(
    tx: Queryable,
    recordingId: string,
    leaseId: string,
    opts: { delaySeconds: number; countAttempt: boolean },
  ): Promise<boolean> {
    const res = await tx.query(
      `UPDATE recording_jobs
          SET lease_id = NULL, lease_until = NULL, run_after = now() + make_interval(secs => $3),
              attempts = attempts - CASE WHEN $4::boolean THEN 0 ELSE 1 END
        WHERE recording_id = $1 AND lease_id = $2`,
      [recordingId, leaseId, opts.delaySeconds, opts.countAttempt],
    );
    return res.rowCount > 0;
  },

  async remove(tx: Queryable, recordingId: string): Promise<void> {
    await tx.query('DELETE FROM recording_jobs WHERE recording_id = $1', [recordingId]);
  },

  async audioPath(tx: Queryable, recordingId: string): Promise<string | undefined> {
    const res = await tx.query<{ audioPath: string }>(
      'SELECT audio_path AS "audioPath" FROM recording_jobs WHERE recording_id = $1',
      [recordingId],
    );
    return res.rows[0]?.audioPath;
  },

  /** Every audio file a pending job still needs (system context; the start-up sweep keeps these). */
  async allAudioPaths(tx: Queryable): Promise<Set<string>> {
    const res = await tx.query<{ audioPath: string }>('SELECT audio_path AS "audioPath" FROM recording_jobs');
    return new Set(res.rows.map((r) => r.audioPath));
  },
};
