import type { Queryable } from '../../db/database.js';
import type { RecordingRow } from '../recordings/recording.repository.js';

/**
 * SQL of the cold archive: recording_archive rows (tenant, under RLS), the whole-row snapshot and
 * re-insert of an archived recording (every column, so a restore is exact), and the two
 * system-context listings of the retention task and the orphan sweep.
 */
export interface ArchiveRow {
  id: string;
  orgId: string;
  recordingId: string;
  ownerId: string;
  titleEnc: Uint8Array | null;
  recordingCreatedAt: Date;
  archivedAt: Date;
  archivedByPolicy: boolean;
  sizeBytes: number;
  contentSha256: string;
  audioSizeBytes: number | null;
  audioSha256: string | null;
}

/**
 * A recordings row as stored, live mode included (dates as ISO strings once serialised into the
 * archive object); the org is the archive row's own.
 */
export type FullRecordingRow = Omit<RecordingRow, 'orgId'> & { mode: string };

export interface FullTranscriptRow {
  bodyEnc: Uint8Array;
  speakerNamesEnc: Uint8Array | null;
  originalBodyEnc: Uint8Array | null;
  revision: number;
  createdAt: Date;
  updatedAt: Date;
}

const ARCHIVE_COLUMNS = `id, org_id AS "orgId", recording_id AS "recordingId", owner_id AS "ownerId",
  title_enc AS "titleEnc", recording_created_at AS "recordingCreatedAt", archived_at AS "archivedAt",
  archived_by_policy AS "archivedByPolicy", size_bytes AS "sizeBytes", content_sha256 AS "contentSha256",
  audio_size_bytes AS "audioSizeBytes", audio_sha256 AS "audioSha256"`;

const RECORDING_COLUMNS = `id, owner_id AS "ownerId", title_enc AS "titleEnc", status, progress,
  error_code AS "errorCode", language, speakers_hint AS "speakersHint",
  duration_seconds AS "durationSeconds", channels, engine, mode, created_at AS "createdAt",
  updated_at AS "updatedAt", completed_at AS "completedAt"`;

const num = <T extends { sizeBytes: unknown; audioSizeBytes: unknown }>(r: T) => ({
  ...r,
  sizeBytes: Number(r.sizeBytes),
  audioSizeBytes: r.audioSizeBytes === null ? null : Number(r.audioSizeBytes),
});

export const recordingArchiveRepository = {
  /** `objectKeyVersion`: the data key version sealing the object (data-key rotation counts it). */
  async insert(tx: Queryable, r: ArchiveRow, objectKeyVersion: number): Promise<void> {
    await tx.query(
      `INSERT INTO recording_archive (id, org_id, recording_id, owner_id, title_enc, recording_created_at,
         archived_at, archived_by_policy, size_bytes, content_sha256, audio_size_bytes, audio_sha256, created_at,
         object_key_version)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $7, $13)`,
      [
        r.id,
        r.orgId,
        r.recordingId,
        r.ownerId,
        r.titleEnc,
        r.recordingCreatedAt,
        r.archivedAt,
        r.archivedByPolicy,
        r.sizeBytes,
        r.contentSha256,
        r.audioSizeBytes,
        r.audioSha256,
        objectKeyVersion,
      ],
    );
  },

  async find(tx: Queryable, id: string): Promise<ArchiveRow | undefined> {
    const { rows } = await tx.query<ArchiveRow>(
      `SELECT ${ARCHIVE_COLUMNS} FROM recording_archive WHERE id = $1`,
      [id],
    );
    return rows[0] && num(rows[0]);
  },

  /** Deletes and returns the row; undefined when it was not there (or another transaction took it first). */
  async take(tx: Queryable, id: string): Promise<ArchiveRow | undefined> {
    const { rows } = await tx.query<ArchiveRow>(
      `DELETE FROM recording_archive WHERE id = $1 RETURNING ${ARCHIVE_COLUMNS}`,
      [id],
    );
    return rows[0] && num(rows[0]);
  },

  /** Newest first; keyset pagination on (archived_at, id) of the previous page's last row. */
  async list(
    tx: Queryable,
    opts: { limit: number; after?: { archivedAt: Date; id: string } | undefined },
  ): Promise<ArchiveRow[]> {
    const { rows } = await tx.query<ArchiveRow>(
      `SELECT ${ARCHIVE_COLUMNS} FROM recording_archive
        WHERE ($1::timestamptz IS NULL OR (archived_at, id) < ($1::timestamptz, $2::uuid))
        ORDER BY archived_at DESC, id DESC LIMIT $3`,
      [opts.after?.archivedAt ?? null, opts.after?.id ?? null, opts.limit],
    );
    return rows.map(num);
  },

  /** The recording row, locked until the transaction ends (archiving re-checks it before deleting). */
  async lockRecording(tx: Queryable, id: string): Promise<FullRecordingRow | undefined> {
    const { rows } = await tx.query<FullRecordingRow>(
      `SELECT ${RECORDING_COLUMNS} FROM recordings WHERE id = $1 FOR UPDATE`,
      [id],
    );
    return rows[0];
  },

  async findTranscript(tx: Queryable, recordingId: string): Promise<FullTranscriptRow | undefined> {
    const { rows } = await tx.query<FullTranscriptRow>(
      `SELECT body_enc AS "bodyEnc", speaker_names_enc AS "speakerNamesEnc",
              original_body_enc AS "originalBodyEnc", revision, created_at AS "createdAt",
              updated_at AS "updatedAt"
         FROM transcripts WHERE recording_id = $1 FOR UPDATE`,
      [recordingId],
    );
    return rows[0];
  },

  /** Hard delete of the active rows (transcript, audio row, job, spool cascade). */
  async deleteRecording(tx: Queryable, id: string): Promise<boolean> {
    const res = await tx.query(`DELETE FROM recordings WHERE id = $1 AND status IN ('done', 'failed')`, [id]);
    return res.rowCount > 0;
  },

  /** Re-inserts an archived recording with its own id and times; restored_at starts a fresh retention window. */
  async insertRecording(tx: Queryable, orgId: string, r: FullRecordingRow, restoredAt: Date): Promise<void> {
    await tx.query(
      `INSERT INTO recordings (id, org_id, owner_id, title_enc, status, progress, error_code, language,
         speakers_hint, duration_seconds, channels, engine, mode, created_at, updated_at, completed_at, restored_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
      [
        r.id,
        orgId,
        r.ownerId,
        r.titleEnc,
        r.status,
        r.progress,
        r.errorCode,
        r.language,
        r.speakersHint,
        r.durationSeconds,
        r.channels,
        r.engine,
        r.mode,
        r.createdAt,
        r.updatedAt,
        r.completedAt,
        restoredAt,
      ],
    );
  },

  async insertTranscript(
    tx: Queryable,
    orgId: string,
    recordingId: string,
    t: FullTranscriptRow,
  ): Promise<void> {
    await tx.query(
      `INSERT INTO transcripts (recording_id, org_id, body_enc, speaker_names_enc, original_body_enc, revision,
         created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        recordingId,
        orgId,
        t.bodyEnc,
        t.speakerNamesEnc,
        t.originalBodyEnc,
        t.revision,
        t.createdAt,
        t.updatedAt,
      ],
    );
  },

  /** Archive item ids owned by a user (account deletion; under RLS). */
  async idsOfOwner(tx: Queryable, ownerId: string): Promise<string[]> {
    const { rows } = await tx.query<{ id: string }>(
      'SELECT id FROM recording_archive WHERE owner_id = $1 ORDER BY id',
      [ownerId],
    );
    return rows.map((r) => r.id);
  },

  /** Hands a departed user's archived items to another member; returns how many. */
  async transferOwner(tx: Queryable, fromUserId: string, toUserId: string): Promise<number> {
    const res = await tx.query('UPDATE recording_archive SET owner_id = $2 WHERE owner_id = $1', [
      fromUserId,
      toUserId,
    ]);
    return res.rowCount;
  },

  /** Whether a user is still a member of the caller's org (RLS-bound). */
  async isMember(tx: Queryable, userId: string): Promise<boolean> {
    const { rows } = await tx.query('SELECT 1 FROM users WHERE id = $1 AND org_id IS NOT NULL', [userId]);
    return rows.length > 0;
  },

  /**
   * Recordings past their org's retention (system context): finished (done/failed) and older
   * than retention_days, counted from restored_at when restored. Oldest first across orgs; a
   * recording whose archiving failed is skipped until its retry time (markArchiveFailed), so
   * failures cannot fill every batch.
   */
  async expired(tx: Queryable, now: Date, limit: number): Promise<{ orgId: string; id: string }[]> {
    const { rows } = await tx.query<{ orgId: string; id: string }>(
      `SELECT r.org_id AS "orgId", r.id
         FROM recordings r JOIN orgs o ON o.id = r.org_id
        WHERE r.status IN ('done', 'failed')
          AND COALESCE(r.restored_at, r.created_at) < $1::timestamptz - make_interval(days => o.retention_days)
          AND (r.archive_next_try_at IS NULL OR r.archive_next_try_at <= $1::timestamptz)
        ORDER BY COALESCE(r.restored_at, r.created_at), r.id
        LIMIT $2`,
      [now, limit],
    );
    return rows;
  },

  /**
   * Archiving this recording failed: counts the failure and skips the recording until
   * `retryAt(failures)` (the caller's backoff; under RLS). Returns the failure count.
   */
  async markArchiveFailed(tx: Queryable, id: string, retryAt: (failures: number) => Date): Promise<number> {
    const { rows } = await tx.query<{ n: number }>(
      `UPDATE recordings SET archive_failures = archive_failures + 1 WHERE id = $1
        RETURNING archive_failures AS n`,
      [id],
    );
    const n = rows[0]?.n;
    if (n === undefined) return 0;
    await tx.query('UPDATE recordings SET archive_next_try_at = $2 WHERE id = $1', [id, retryAt(n)]);
    return n;
  },

  /** "orgId/archiveId" of every archive row (system context; the orphan sweep). */
  async allKeys(tx: Queryable): Promise<Set<string>> {
    const { rows } = await tx.query<{ k: string }>(
      `SELECT org_id::text || '/' || id::text AS k FROM recording_archive`,
    );
    return new Set(rows.map((r) => r.k));
  },
};
