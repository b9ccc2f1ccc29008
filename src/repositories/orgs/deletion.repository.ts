import type { Queryable } from '../../db/database.js';

/**
 * SQL of the data lifecycle's deletions (docs/lifecycle.md): receipts' ciphertext digests,
 * account-deletion queue, the departed-member policy, and the organization purge.
 */
export interface CiphertextDigests {
  title: string | null;
  transcript: string | null;
  originalTranscript: string | null;
  speakerNames: string | null;
  audioContentKey: string | null;
  liveSpoolKey: string | null;
  /** Live participant labels waiting for the transcript (migration 0022). */
  liveSpeakers: string | null;
  /** The search index row (migration 0026): its sealed text, and its keyed tokens as stored. */
  searchIndexDoc: string | null;
  searchIndexTokens: string | null;
  hasJob: boolean;
}

export interface AccountDeletionRow {
  userId: string;
  orgId: string;
  email: string | null;
  requestedAt: Date;
  dueAt: Date;
}

export type DepartedPolicy = 'transfer' | 'delete';

/** Tenant tables purged explicitly before the orgs row (the rest goes by ON DELETE CASCADE). */
export const deletionRepository = {
  /**
   * SHA-256 of each stored ciphertext of a recording, computed by the database (no large value
   * leaves it). Digests of ciphertexts only: a digest of plaintext could be confirmed by guessing.
   */
  async ciphertextDigests(tx: Queryable, recordingId: string): Promise<CiphertextDigests | undefined> {
    const { rows } = await tx.query<{
      title: string | null;
      transcript: string | null;
      original: string | null;
      names: string | null;
      audio_key: string | null;
      spool_key: string | null;
      live_speakers: string | null;
      search_doc: string | null;
      search_tokens: string | null;
      has_job: boolean;
    }>(
      `SELECT encode(sha256(r.title_enc), 'hex') AS title,
              encode(sha256(t.body_enc), 'hex') AS transcript,
              encode(sha256(t.original_body_enc), 'hex') AS original,
              encode(sha256(t.speaker_names_enc), 'hex') AS names,
              encode(sha256(a.content_key_enc), 'hex') AS audio_key,
              encode(sha256(s.content_key_enc), 'hex') AS spool_key,
              encode(sha256(r.live_speakers_enc), 'hex') AS live_speakers,
              encode(sha256(si.doc_enc), 'hex') AS search_doc,
              encode(sha256(array_send(si.tokens)), 'hex') AS search_tokens,
              EXISTS (SELECT 1 FROM recording_jobs j WHERE j.recording_id = r.id) AS has_job
         FROM recordings r
         LEFT JOIN transcripts t ON t.recording_id = r.id
         LEFT JOIN recording_audio a ON a.recording_id = r.id
         LEFT JOIN live_spools s ON s.recording_id = r.id
         LEFT JOIN search_index si ON si.recording_id = r.id
        WHERE r.id = $1`,
      [recordingId],
    );
    const r = rows[0];
    if (!r) return undefined;
    return {
      title: r.title,
      transcript: r.transcript,
      originalTranscript: r.original,
      speakerNames: r.names,
      audioContentKey: r.audio_key,
      liveSpoolKey: r.spool_key,
      liveSpeakers: r.live_speakers,
      searchIndexDoc: r.search_doc,
      searchIndexTokens: r.search_tokens,
      hasJob: r.has_job,
    };
  },

  /**
   * Search index rows of a recording, counted after its deletion in the same transaction: the
   * receipt states what is left (0 — the row cascades with the recording) instead of assuming it.
   */
  async searchIndexRows(tx: Queryable, recordingId: string): Promise<number> {
    const { rows } = await tx.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM search_index WHERE recording_id = $1',
      [recordingId],
    );
    return rows[0]?.n ?? 0;
  },

  async recordingIdsOfOwner(tx: Queryable, ownerId: string): Promise<string[]> {
    const { rows } = await tx.query<{ id: string }>(
      'SELECT id FROM recordings WHERE owner_id = $1 ORDER BY id',
      [ownerId],
    );
    return rows.map((r) => r.id);
  },

  async transferRecordings(tx: Queryable, fromUserId: string, toUserId: string): Promise<number> {
    const { rows } = await tx.query<{ n: number }>(
      `WITH u AS (UPDATE recordings SET owner_id = $2 WHERE owner_id = $1 RETURNING 1)
       SELECT count(*)::int AS n FROM u`,
      [fromUserId, toUserId],
    );
    return rows[0]?.n ?? 0;
  },

  /** The longest-standing owner other than `except` (recipient of a departed member's recordings). */
  async successorOwner(tx: Queryable, orgId: string, except: string): Promise<string | undefined> {
    const { rows } = await tx.query<{ id: string }>(
      `SELECT u.id FROM users u
        WHERE u.org_id = $1 AND u.id <> $2 AND u.role IN ('owner', 'admin')
          AND NOT EXISTS (SELECT 1 FROM account_deletions d WHERE d.user_id = u.id)
        ORDER BY (u.role = 'owner') DESC, u.created_at, u.id LIMIT 1`,
      [orgId, except],
    );
    return rows[0]?.id;
  },

  async otherOwnerCount(tx: Queryable, orgId: string, except: string): Promise<number> {
    const { rows } = await tx.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM users u
        WHERE u.org_id = $1 AND u.id <> $2 AND u.role = 'owner'
          AND NOT EXISTS (SELECT 1 FROM account_deletions d WHERE d.user_id = u.id)`,
      [orgId, except],
    );
    return rows[0]?.n ?? 0;
  },

  async departedPolicy(tx: Queryable, orgId: string): Promise<DepartedPolicy> {
    const { rows } = await tx.query<{ p: DepartedPolicy }>(
      'SELECT departed_user_recordings AS p FROM orgs WHERE id = $1',
      [orgId],
    );
    return rows[0]?.p ?? 'transfer';
  },

  async setDepartedPolicy(tx: Queryable, orgId: string, policy: DepartedPolicy): Promise<void> {
    await tx.query('UPDATE orgs SET departed_user_recordings = $2 WHERE id = $1', [orgId, policy]);
  },

  async queueAccountDeletion(
    tx: Queryable,
    d: { userId: string; orgId: string; email: string; now: Date; dueAt: Date },
  ): Promise<boolean> {
    const { rowCount } = await tx.query(
      `INSERT INTO account_deletions (user_id, org_id, email, requested_at, due_at)
       VALUES ($1, $2, $3, $4, $5) ON CONFLICT (user_id) DO NOTHING`,
      [d.userId, d.orgId, d.email, d.now, d.dueAt],
    );
    return (rowCount ?? 0) > 0;
  },

  async isDeletionPending(tx: Queryable, userId: string): Promise<boolean> {
    const { rows } = await tx.query(
      'SELECT 1 FROM account_deletions WHERE user_id = $1 AND completed_at IS NULL',
      [userId],
    );
    return rows.length > 0;
  },

  /** Due, unfinished account deletions of every org (system context). */
  async dueAccountDeletions(tx: Queryable, now: Date, limit: number): Promise<AccountDeletionRow[]> {
    const { rows } = await tx.query<{
      user_id: string;
      org_id: string;
      email: string | null;
      requested_at: Date;
      due_at: Date;
    }>(
      `SELECT user_id, org_id, email, requested_at, due_at FROM account_deletions
        WHERE completed_at IS NULL AND due_at <= $1 ORDER BY due_at, user_id LIMIT $2`,
      [now, limit],
    );
    return rows.map((r) => ({
      userId: r.user_id,
      orgId: r.org_id,
      email: r.email,
      requestedAt: new Date(r.requested_at),
      dueAt: new Date(r.due_at),
    }));
  },

  /** Locks one pending deletion (tenant context); undefined when done or taken by another node. */
  async lockPending(tx: Queryable, userId: string): Promise<AccountDeletionRow | undefined> {
    const { rows } = await tx.query<{
      user_id: string;
      org_id: string;
      email: string | null;
      requested_at: Date;
      due_at: Date;
    }>(
      `SELECT user_id, org_id, email, requested_at, due_at FROM account_deletions
        WHERE user_id = $1 AND completed_at IS NULL FOR UPDATE SKIP LOCKED`,
      [userId],
    );
    const r = rows[0];
    return (
      r && {
        userId: r.user_id,
        orgId: r.org_id,
        email: r.email,
        requestedAt: new Date(r.requested_at),
        dueAt: new Date(r.due_at),
      }
    );
  },

  /** The job is done: the e-mail address goes too (the row stays as the record that it ran). */
  async completeAccountDeletion(tx: Queryable, userId: string, now: Date): Promise<void> {
    await tx.query('UPDATE account_deletions SET completed_at = $2, email = NULL WHERE user_id = $1', [
      userId,
      now,
    ]);
  },

  async bumpAttempts(tx: Queryable, userId: string): Promise<void> {
    await tx.query('UPDATE account_deletions SET attempts = attempts + 1 WHERE user_id = $1', [userId]);
  },

  async deleteUser(tx: Queryable, userId: string): Promise<void> {
    // recovery codes, sessions and refresh tokens go with the row (ON DELETE CASCADE).
    await tx.query('DELETE FROM users WHERE id = $1', [userId]);
  },

  /** Login ends now: password replaced by an unguessable hash, second factor and recovery codes gone. */
  async disableLogin(tx: Queryable, userId: string, unusableHash: string, now: Date): Promise<void> {
    await tx.query(
      `UPDATE users SET password_hash = $2, totp_secret_enc = NULL, totp_enabled = false, totp_last_step = NULL,
              password_changed_at = $3 WHERE id = $1`,
      [userId, unusableHash, now],
    );
    await tx.query('DELETE FROM recovery_codes WHERE user_id = $1', [userId]);
  },

  /** Counts of what an org holds (the org-deletion receipt). */
  async orgCounts(tx: Queryable, orgId: string): Promise<Record<string, number>> {
    const { rows } = await tx.query<Record<string, number>>(
      `SELECT (SELECT count(*)::int FROM users WHERE org_id = $1) AS users,
              (SELECT count(*)::int FROM recordings WHERE org_id = $1) AS recordings,
              (SELECT count(*)::int FROM transcripts WHERE org_id = $1) AS transcripts,
              (SELECT count(*)::int FROM recording_audio WHERE org_id = $1) AS "audioBlobs",
              (SELECT count(*)::int FROM live_spools WHERE org_id = $1) AS "liveSpools",
              (SELECT count(*)::int FROM search_index WHERE org_id = $1) AS "searchIndexRows",
              (SELECT count(*)::int FROM audit_log WHERE org_id = $1) AS "auditEntries"`,
      [orgId],
    );
    return rows[0] ?? {};
  },

  /** Every row of the org: the orgs row, and with it every tenant table (ON DELETE CASCADE). */
  async purgeOrg(tx: Queryable, orgId: string): Promise<boolean> {
    // Jobs first, in the order a worker locks (job, then recording), as a recording's deletion
    // does: the cascade alone would take a recording before its job.
    await tx.query('DELETE FROM recording_jobs WHERE org_id = $1', [orgId]);
    const { rowCount } = await tx.query('DELETE FROM orgs WHERE id = $1', [orgId]);
    return (rowCount ?? 0) > 0;
  },

  async orgSlug(tx: Queryable, orgId: string): Promise<string | undefined> {
    const { rows } = await tx.query<{ slug: string }>('SELECT slug FROM orgs WHERE id = $1', [orgId]);
    return rows[0]?.slug;
  },

  /** Every session of every member ends now (organization deletion). */
  async revokeOrgSessions(tx: Queryable, orgId: string, now: Date): Promise<void> {
    await tx.query(
      `UPDATE sessions SET revoked_at = $2, revoked_reason = 'org_deleted' WHERE org_id = $1 AND revoked_at IS NULL`,
      [orgId, now],
    );
  },

  /** Staged upload files (plaintext audio awaiting its job) of every job of the org (system context). */
  async orgStagedFiles(tx: Queryable, orgId: string): Promise<string[]> {
    const { rows } = await tx.query<{ p: string }>(
      'SELECT audio_path AS p FROM recording_jobs WHERE org_id = $1 AND audio_path IS NOT NULL',
      [orgId],
    );
    return rows.map((r) => r.p);
  },

  /** Every API and worker token of the org goes now (organization deletion); returns how many. */
  async deleteOrgTokens(tx: Queryable, orgId: string): Promise<number> {
    const api = await tx.query('DELETE FROM api_tokens WHERE org_id = $1', [orgId]);
    const worker = await tx.query('DELETE FROM worker_tokens WHERE org_id = $1', [orgId]);
    return api.rowCount + worker.rowCount;
  },

  /** API tokens of a departing user stop working now (the rows cascade with the user later). */
  async revokeUserApiTokens(tx: Queryable, userId: string, now: Date): Promise<void> {
    await tx.query('UPDATE api_tokens SET revoked_at = $2 WHERE user_id = $1 AND revoked_at IS NULL', [
      userId,
      now,
    ]);
  },

  /**
   * Locks the org row. 'no key update' for work that keeps the row (account deletion): an audit
   * insert elsewhere, holding the org's chain lock, takes KEY SHARE on this row for its foreign key,
   * which FOR UPDATE blocks — and the caller's own audit entry then waits for that chain lock: a
   * deadlock (docs/security-fuzz.md, finding 1). 'update' only where the row is deleted, with the
   * chain lock taken first.
   */
  async lockOrg(
    tx: Queryable,
    orgId: string,
    mode: 'update' | 'no key update',
  ): Promise<{ id: string; slug: string } | undefined> {
    const { rows } = await tx.query<{ id: string; slug: string }>(
      `SELECT id, slug FROM orgs WHERE id = $1 ${mode === 'update' ? 'FOR UPDATE' : 'FOR NO KEY UPDATE'}`,
      [orgId],
    );
    return rows[0];
  },
};
