import type { Queryable } from '../../db/database.js';

/**
 * SQL specific to live recordings (migration 0009). Reads go through recordingRepository; these
 * are the writes of the live life cycle: created 'live', then 'queued' on stop (or 'failed' when
 * nothing was streamed). Every function runs in the caller's tenant transaction.
 */
export const liveRecordingRepository = {
  async insert(tx: Queryable, r: { id: string; orgId: string; ownerId: string; now: Date }): Promise<void> {
    await tx.query(
      `INSERT INTO recordings (id, org_id, owner_id, mode, status, created_at, updated_at)
       VALUES ($1, $2, $3, 'live', 'live', $4, $4)`,
      [r.id, r.orgId, r.ownerId, r.now],
    );
  },

  /**
   * Live recordings of the org started after `since`. Older 'live' rows are sessions a restart
   * cut off (phase 1 keeps audio in memory): they no longer count against the cap.
   */
  async countActive(tx: Queryable, since: Date): Promise<number> {
    const res = await tx.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM recordings WHERE status = 'live' AND created_at > $1`,
      [since],
    );
    return res.rows[0]?.n ?? 0;
  },

  /**
   * A node starts holding the live session (new, restored, or taken over from another node): the
   * next generation, which fences its stop (migration 0029; docs/live.md, "Multiple nodes").
   * Taken before the node acknowledges any frame, so a node still holding an older one can no
   * longer commit the recording. Undefined when the recording is gone or no longer live.
   */
  async takeGeneration(tx: Queryable, id: string): Promise<number | undefined> {
    const res = await tx.query<{ g: number }>(
      `UPDATE recordings SET live_generation = live_generation + 1
        WHERE id = $1 AND status = 'live' RETURNING live_generation AS g`,
      [id],
    );
    return res.rows[0]?.g;
  },

  /**
   * 'live' → 'queued', only under the generation the caller holds (the row locked until the
   * transaction ends, so no takeover slips in between); false when the row is gone, no longer
   * live, or another node took the session since (`stillExists` tells the cases apart).
   */
  async markQueued(tx: Queryable, id: string, generation: number, now: Date): Promise<boolean> {
    const res = await tx.query(
      `UPDATE recordings SET status = 'queued', progress = 0, updated_at = $2
        WHERE id = $1 AND status = 'live' AND live_generation = $3`,
      [id, now, generation],
    );
    return res.rowCount > 0;
  },

  /**
   * 'live' → 'failed' (no audio, a lost or tampered spool, an internal error); with `generation`
   * only under it (a stop's failure, fenced like its success). False when nothing changed.
   */
  async markFailed(
    tx: Queryable,
    id: string,
    errorCode: string,
    now: Date,
    generation?: number,
  ): Promise<boolean> {
    const res = await tx.query(
      `UPDATE recordings SET status = 'failed', error_code = $2, updated_at = $3, completed_at = $3
        WHERE id = $1 AND status = 'live' AND ($4::int IS NULL OR live_generation = $4::int)`,
      [id, errorCode, now, generation ?? null],
    );
    return res.rowCount > 0;
  },

  /** Whether the recording still exists (a fenced stop: taken over, or deleted meanwhile). */
  async stillExists(tx: Queryable, id: string): Promise<boolean> {
    const res = await tx.query(`SELECT 1 FROM recordings WHERE id = $1`, [id]);
    return res.rows.length > 0;
  },

  /** The participant labels per channel, encrypted (migration 0022), written by the stop. */
  async setSpeakers(tx: Queryable, id: string, speakersEnc: Buffer): Promise<void> {
    await tx.query(`UPDATE recordings SET live_speakers_enc = $2 WHERE id = $1`, [id, speakersEnc]);
  },

  /** Read and cleared by the job that stores the transcript (in its transaction). */
  async takeSpeakers(tx: Queryable, id: string): Promise<Uint8Array | undefined> {
    const res = await tx.query<{ enc: Uint8Array | null }>(
      `SELECT live_speakers_enc AS enc FROM recordings WHERE id = $1 FOR UPDATE`,
      [id],
    );
    const enc = res.rows[0]?.enc;
    if (!enc) return undefined;
    await tx.query(`UPDATE recordings SET live_speakers_enc = NULL WHERE id = $1`, [id]);
    return enc;
  },

  /**
   * Dropped with the audio they name (a job failed for good and the audio is not kept, or it was
   * deleted early): no transcript can come any more, so the names have no use left.
   */
  async clearSpeakers(tx: Queryable, id: string): Promise<void> {
    await tx.query(
      `UPDATE recordings SET live_speakers_enc = NULL WHERE id = $1 AND live_speakers_enc IS NOT NULL`,
      [id],
    );
  },

  /** Speaker names for a transcript that has none yet (a user's renames are never replaced). */
  async nameSpeakersIfUnnamed(tx: Queryable, id: string, namesEnc: Buffer): Promise<void> {
    await tx.query(
      `UPDATE transcripts SET speaker_names_enc = $2 WHERE recording_id = $1 AND speaker_names_enc IS NULL`,
      [id, namesEnc],
    );
  },

  /** The spool's wrapped content key (migration 0010), written when the first stream starts. */
  async insertSpool(
    tx: Queryable,
    r: { recordingId: string; orgId: string; keyEnc: Buffer; now: Date },
  ): Promise<void> {
    await tx.query(
      `INSERT INTO live_spools (recording_id, org_id, content_key_enc, created_at, touched_at)
       VALUES ($1, $2, $3, $4, $4)`,
      [r.recordingId, r.orgId, r.keyEnc, r.now],
    );
  },

  async findSpoolKey(tx: Queryable, recordingId: string): Promise<Buffer | undefined> {
    const res = await tx.query<{ content_key_enc: Buffer }>(
      `SELECT content_key_enc FROM live_spools WHERE recording_id = $1`,
      [recordingId],
    );
    const v = res.rows[0]?.content_key_enc;
    return v ? Buffer.from(v) : undefined;
  },

  /** The ingesting node is alive and holds the session (the resume window restarts from here). */
  async touchSpool(tx: Queryable, recordingId: string, now: Date): Promise<void> {
    await tx.query(`UPDATE live_spools SET touched_at = $2 WHERE recording_id = $1`, [recordingId, now]);
  },

  async deleteSpool(tx: Queryable, recordingId: string): Promise<void> {
    await tx.query(`DELETE FROM live_spools WHERE recording_id = $1`, [recordingId]);
  },

  /**
   * System context: recordings still 'live' that nobody has touched since `before` — with a
   * spool row untouched since then, or without one and created before then (never streamed).
   */
  async abandoned(
    tx: Queryable,
    before: Date,
  ): Promise<{ recordingId: string; orgId: string; hasSpool: boolean; touchedAt: Date }[]> {
    const res = await tx.query<{ id: string; org_id: string; has_spool: boolean; touched_at: Date }>(
      `SELECT r.id, r.org_id, s.recording_id IS NOT NULL AS has_spool,
              coalesce(s.touched_at, r.created_at) AS touched_at
         FROM recordings r LEFT JOIN live_spools s ON s.recording_id = r.id
        WHERE r.status = 'live' AND coalesce(s.touched_at, r.created_at) < $1
        ORDER BY 4 LIMIT 100`,
      [before],
    );
    return res.rows.map((r) => ({
      recordingId: r.id,
      orgId: r.org_id,
      hasSpool: r.has_spool,
      touchedAt: new Date(r.touched_at),
    }));
  },

  /** System context: which of these recordings are still live with a spool (the rest are orphans). */
  async liveSpoolsAmong(tx: Queryable, recordingIds: string[]): Promise<Set<string>> {
    if (recordingIds.length === 0) return new Set();
    const res = await tx.query<{ recording_id: string }>(
      `SELECT s.recording_id FROM live_spools s JOIN recordings r ON r.id = s.recording_id
        WHERE s.recording_id = ANY($1::uuid[]) AND r.status = 'live'`,
      [recordingIds],
    );
    return new Set(res.rows.map((r) => r.recording_id));
  },
};
