import type { Queryable } from '../../db/database.js';

/**
 * SQL for recording_audio: one row per sealed audio blob (content type, sizes and the wrapped
 * per-file content key). Tenant queries run under RLS; `allKeys` is the system-context listing
 * the start-up sweep uses to tell kept blobs from orphans.
 */
export interface RecordingAudioRow {
  recordingId: string;
  orgId: string;
  contentType: string;
  plainSize: number;
  chunkSize: number;
  contentKeyEnc: Buffer;
  /** The sealed blob's id when it is not the recording id (a live stop's fenced seal, 0029). */
  blobId?: string | undefined;
}

interface DbRow {
  recording_id: string;
  org_id: string;
  content_type: string;
  plain_size: string | number;
  chunk_size: number;
  content_key_enc: Uint8Array;
  blob_id: string | null;
}

export const recordingAudioRepository = {
  async insert(tx: Queryable, r: RecordingAudioRow & { now: Date }): Promise<void> {
    await tx.query(
      `INSERT INTO recording_audio
         (recording_id, org_id, content_type, plain_size, chunk_size, content_key_enc, created_at, blob_id)
       VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
      [
        r.recordingId,
        r.orgId,
        r.contentType,
        r.plainSize,
        r.chunkSize,
        r.contentKeyEnc,
        r.now,
        r.blobId && r.blobId !== r.recordingId ? r.blobId : null,
      ],
    );
  },

  async find(tx: Queryable, recordingId: string): Promise<RecordingAudioRow | undefined> {
    const { rows } = await tx.query<DbRow>(
      `SELECT recording_id, org_id, content_type, plain_size, chunk_size, content_key_enc, blob_id
         FROM recording_audio WHERE recording_id = $1`,
      [recordingId],
    );
    const r = rows[0];
    return (
      r && {
        recordingId: r.recording_id,
        orgId: r.org_id,
        contentType: r.content_type,
        plainSize: Number(r.plain_size),
        chunkSize: r.chunk_size,
        contentKeyEnc: Buffer.from(r.content_key_enc),
        blobId: r.blob_id ?? r.recording_id,
      }
    );
  },

  /** The id of the recording's sealed blob: the row's own (a live stop's), else the recording id. */
  async blobId(tx: Queryable, recordingId: string): Promise<string> {
    const { rows } = await tx.query<{ b: string | null }>(
      'SELECT blob_id AS b FROM recording_audio WHERE recording_id = $1',
      [recordingId],
    );
    return rows[0]?.b ?? recordingId;
  },

  /** Deletes the row; the id of the blob it named (undefined when there was none). */
  async remove(tx: Queryable, recordingId: string): Promise<string | undefined> {
    const { rows } = await tx.query<{ b: string }>(
      'DELETE FROM recording_audio WHERE recording_id = $1 RETURNING coalesce(blob_id, recording_id)::text AS b',
      [recordingId],
    );
    return rows[0]?.b;
  },

  /** "orgId/blobId" of every row (system context): the blobs that are some recording's audio. */
  async allKeys(tx: Queryable): Promise<Set<string>> {
    const { rows } = await tx.query<{ k: string }>(
      `SELECT org_id::text || '/' || coalesce(blob_id, recording_id)::text AS k FROM recording_audio`,
    );
    return new Set(rows.map((r) => r.k));
  },
};
