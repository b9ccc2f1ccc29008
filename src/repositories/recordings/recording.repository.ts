import type { Queryable } from '../../db/database.js';

/**
 * SQL of recordings and transcripts. Every function runs in the caller's transaction; tenant
 * code passes a withTenant() transaction, so RLS bounds every statement to one org. The owner
 * filter (members see only their own recordings) is applied here too, from the service's rule.
 */
export type RecordingStatus = 'live' | 'queued' | 'processing' | 'done' | 'failed';
/** What a processing job is doing (migration 0023). */
export type JobStage = 'decoding' | 'transcribing' | 'speakers' | 'saving';

export interface RecordingRow {
  id: string;
  orgId: string;
  ownerId: string;
  titleEnc: Uint8Array | null;
  status: RecordingStatus;
  progress: number;
  stage: JobStage | null;
  /** When the current attempt started processing. */
  startedAt: Date | null;
  errorCode: string | null;
  language: string | null;
  speakersHint: number | null;
  durationSeconds: number | null;
  channels: number | null;
  engine: string | null;
  createdAt: Date;
  updatedAt: Date;
  completedAt: Date | null;
}

const COLUMNS = `id, org_id AS "orgId", owner_id AS "ownerId", title_enc AS "titleEnc", status,
  progress, stage, started_at AS "startedAt", error_code AS "errorCode", language, speakers_hint AS "speakersHint",
  duration_seconds AS "durationSeconds", channels, engine, created_at AS "createdAt",
  updated_at AS "updatedAt", completed_at AS "completedAt"`;

const TRANSCRIPT_COLUMNS = `body_enc AS "bodyEnc", speaker_names_enc AS "speakerNamesEnc",
  original_body_enc AS "originalBodyEnc", revision`;

/** Restricts a query to one owner's rows, or none when `ownerId` is undefined (admins). */
export interface Visibility {
  ownerId?: string | undefined;
}

/**
 * What a caller asked the list to hold (on top of Visibility, never instead of it): all
 * conditions AND-ed, in SQL, under RLS. `from` inclusive, `to` exclusive, on created_at.
 */
export interface ListFilter {
  status?: RecordingStatus | undefined;
  ownerId?: string | undefined;
  from?: Date | undefined;
  to?: Date | undefined;
}

/**
 * The WHERE conditions shared by list(), listForSearch() and count(), as parameters $1..$7
 * (alias `r`). Every value is a bound parameter; NULL means "no condition".
 */
export const FILTER_SQL = `($1::uuid IS NULL OR r.owner_id = $1::uuid)
          AND ($2::text IS NULL OR r.status = $2::text)
          AND ($3::uuid IS NULL OR r.owner_id = $3::uuid)
          AND ($4::timestamptz IS NULL OR r.created_at >= $4::timestamptz)
          AND ($5::timestamptz IS NULL OR r.created_at < $5::timestamptz)`;
export const filterParams = (vis: Visibility, f: ListFilter = {}) => [
  vis.ownerId ?? null,
  f.status ?? null,
  f.ownerId ?? null,
  f.from ?? null,
  f.to ?? null,
];
export const KEYSET_SQL = `($6::timestamptz IS NULL OR (r.created_at, r.id) < ($6::timestamptz, $7::uuid))`;

export const recordingRepository = {
  async insert(
    tx: Queryable,
    r: {
      id: string;
      orgId: string;
      ownerId: string;
      language: string | null;
      speakersHint: number | null;
      now: Date;
    },
  ): Promise<void> {
    await tx.query(
      `INSERT INTO recordings (id, org_id, owner_id, language, speakers_hint, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $5, $6, $6)`,
      [r.id, r.orgId, r.ownerId, r.language, r.speakersHint, r.now],
    );
  },

  async setTitle(tx: Queryable, id: string, titleEnc: Buffer): Promise<void> {
    await tx.query('UPDATE recordings SET title_enc = $2 WHERE id = $1', [id, titleEnc]);
  },

  async find(tx: Queryable, id: string, vis: Visibility): Promise<RecordingRow | undefined> {
    const res = await tx.query<RecordingRow>(
      `SELECT ${COLUMNS} FROM recordings WHERE id = $1 AND ($2::uuid IS NULL OR owner_id = $2::uuid)`,
      [id, vis.ownerId ?? null],
    );
    return res.rows[0];
  },

  /** Several recordings by id (search hits), in no particular order; the invisible and the gone are left out. */
  async findMany(tx: Queryable, ids: string[], vis: Visibility): Promise<RecordingRow[]> {
    const res = await tx.query<RecordingRow>(
      `SELECT ${COLUMNS} FROM recordings WHERE id = ANY($1::uuid[]) AND ($2::uuid IS NULL OR owner_id = $2::uuid)`,
      [ids, vis.ownerId ?? null],
    );
    return res.rows;
  },

  /** Newest first; keyset pagination on (created_at, id) of the last row of the previous page. */
  async list(
    tx: Queryable,
    vis: Visibility,
    opts: { limit: number; after?: { createdAt: Date; id: string } | undefined; filter?: ListFilter },
  ): Promise<RecordingRow[]> {
    const res = await tx.query<RecordingRow>(
      `SELECT ${COLUMNS} FROM recordings r
        WHERE ${FILTER_SQL}
          AND ${KEYSET_SQL}
        ORDER BY r.created_at DESC, r.id DESC LIMIT $8`,
      [...filterParams(vis, opts.filter), opts.after?.createdAt ?? null, opts.after?.id ?? null, opts.limit],
    );
    return res.rows;
  },

  /** How many visible recordings match the filter (a search's "scanned N of M"). */
  async count(tx: Queryable, vis: Visibility, filter?: ListFilter): Promise<number> {
    const res = await tx.query<{ n: number | string }>(
      `SELECT count(*)::int AS n FROM recordings r
        WHERE ${FILTER_SQL}`,
      filterParams(vis, filter),
    );
    return Number(res.rows[0]?.n ?? 0);
  },

  async delete(tx: Queryable, id: string): Promise<boolean> {
    const res = await tx.query('DELETE FROM recordings WHERE id = $1', [id]);
    return res.rowCount > 0;
  },

  async markProcessing(tx: Queryable, id: string, now: Date): Promise<void> {
    await tx.query(
      `UPDATE recordings SET status = 'processing', progress = 0, error_code = NULL, updated_at = $2,
              stage = 'decoding', started_at = $2
        WHERE id = $1 AND status IN ('queued', 'processing')`,
      [id, now],
    );
  },

  /** A job's progress; `stage` absent keeps the stage last reported. */
  async setProgress(
    tx: Queryable,
    id: string,
    progress: number,
    now: Date,
    stage?: JobStage | undefined,
  ): Promise<void> {
    await tx.query(
      `UPDATE recordings SET progress = $2, updated_at = $3, stage = coalesce($4, stage)
        WHERE id = $1 AND status = 'processing'`,
      [id, Math.min(1, Math.max(0, progress)), now, stage ?? null],
    );
  },

  async requeue(tx: Queryable, id: string, now: Date): Promise<void> {
    await tx.query(
      `UPDATE recordings SET status = 'queued', progress = 0, updated_at = $2 WHERE id = $1 AND status <> 'done'`,
      [id, now],
    );
  },

  async markDone(
    tx: Queryable,
    id: string,
    r: { durationSeconds: number; channels: number; engine: string; now: Date },
  ): Promise<void> {
    await tx.query(
      `UPDATE recordings SET status = 'done', progress = 1, error_code = NULL, duration_seconds = $2,
              channels = $3, engine = $4, updated_at = $5, completed_at = $5
        WHERE id = $1`,
      [id, r.durationSeconds, r.channels, r.engine, r.now],
    );
  },

  /** A failed recording queued again (an admin's retry): its error and end time are cleared. */
  async requeueFailed(tx: Queryable, id: string, now: Date): Promise<boolean> {
    const res = await tx.query(
      `UPDATE recordings SET status = 'queued', progress = 0, error_code = NULL, completed_at = NULL,
              updated_at = $2
        WHERE id = $1 AND status = 'failed'`,
      [id, now],
    );
    return res.rowCount > 0;
  },

  async markFailed(tx: Queryable, id: string, errorCode: string, now: Date): Promise<void> {
    await tx.query(
      `UPDATE recordings SET status = 'failed', error_code = $2, updated_at = $3, completed_at = $3
        WHERE id = $1`,
      [id, errorCode, now],
    );
  },

  /** One transcript per recording: a job that runs twice overwrites, never duplicates. */
  async upsertTranscript(
    tx: Queryable,
    t: { recordingId: string; orgId: string; bodyEnc: Buffer; now: Date },
  ) {
    await tx.query(
      `INSERT INTO transcripts (recording_id, org_id, body_enc, created_at, updated_at)
       VALUES ($1, $2, $3, $4, $4)
       ON CONFLICT (recording_id) DO UPDATE SET body_enc = EXCLUDED.body_enc, updated_at = EXCLUDED.updated_at`,
      [t.recordingId, t.orgId, t.bodyEnc, t.now],
    );
  },

  async findTranscript(
    tx: Queryable,
    recordingId: string,
  ): Promise<{ bodyEnc: Uint8Array; speakerNamesEnc: Uint8Array | null } | undefined> {
    const res = await tx.query<{ bodyEnc: Uint8Array; speakerNamesEnc: Uint8Array | null }>(
      `SELECT body_enc AS "bodyEnc", speaker_names_enc AS "speakerNamesEnc" FROM transcripts WHERE recording_id = $1`,
      [recordingId],
    );
    return res.rows[0];
  },

  /**
   * The transcript row for an edit, locked until the transaction ends (FOR UPDATE) so two
   * concurrent edits of one transcript serialise and the second sees the first's revision.
   */
  async findTranscriptForEdit(tx: Queryable, recordingId: string): Promise<StoredTranscript | undefined> {
    const res = await tx.query<StoredTranscript>(
      `SELECT ${TRANSCRIPT_COLUMNS} FROM transcripts WHERE recording_id = $1 FOR UPDATE`,
      [recordingId],
    );
    return res.rows[0];
  },

  /** The transcript with its edit state (original body, revision). */
  async findTranscriptWithHistory(tx: Queryable, recordingId: string): Promise<StoredTranscript | undefined> {
    const res = await tx.query<StoredTranscript>(
      `SELECT ${TRANSCRIPT_COLUMNS} FROM transcripts WHERE recording_id = $1`,
      [recordingId],
    );
    return res.rows[0];
  },

  /**
   * Writes an edit when the row is still at `expectedRevision` (false otherwise: someone else's
   * edit won). `originalBodyEnc` is only stored when none is stored yet: the machine transcript
   * is written once, on the first edit.
   */
  async saveTranscriptEdit(
    tx: Queryable,
    e: {
      recordingId: string;
      expectedRevision: number;
      bodyEnc: Buffer;
      speakerNamesEnc: Buffer | null;
      originalBodyEnc: Buffer | null;
      now: Date;
    },
  ): Promise<boolean> {
    const res = await tx.query(
      `UPDATE transcripts
          SET body_enc = $3, speaker_names_enc = COALESCE($4, speaker_names_enc),
              original_body_enc = COALESCE(original_body_enc, $5), revision = revision + 1,
              updated_at = $6
        WHERE recording_id = $1 AND revision = $2`,
      [e.recordingId, e.expectedRevision, e.bodyEnc, e.speakerNamesEnc, e.originalBodyEnc, e.now],
    );
    return res.rowCount > 0;
  },

  /**
   * A page of the visible recordings for search, newest first, with their encrypted transcript
   * (null until done). Keyset pagination as list().
   */
  async listForSearch(
    tx: Queryable,
    vis: Visibility,
    opts: { limit: number; after?: { createdAt: Date; id: string } | undefined; filter?: ListFilter },
  ): Promise<SearchCandidate[]> {
    const res = await tx.query<SearchCandidate>(
      `SELECT r.id, r.org_id AS "orgId", r.title_enc AS "titleEnc", r.created_at AS "createdAt",
              t.body_enc AS "bodyEnc", t.speaker_names_enc AS "namesEnc"
         FROM recordings r LEFT JOIN transcripts t ON t.recording_id = r.id
        WHERE ${FILTER_SQL}
          AND ${KEYSET_SQL}
        ORDER BY r.created_at DESC, r.id DESC LIMIT $8`,
      [...filterParams(vis, opts.filter), opts.after?.createdAt ?? null, opts.after?.id ?? null, opts.limit],
    );
    return res.rows;
  },
};

export interface StoredTranscript {
  bodyEnc: Uint8Array;
  speakerNamesEnc: Uint8Array | null;
  originalBodyEnc: Uint8Array | null;
  revision: number;
}

export interface SearchCandidate {
  id: string;
  orgId: string;
  titleEnc: Uint8Array | null;
  createdAt: Date;
  bodyEnc: Uint8Array | null;
  /** Speaker display names (sealed), read only by a search narrowed to a speaker. */
  namesEnc: Uint8Array | null;
}
