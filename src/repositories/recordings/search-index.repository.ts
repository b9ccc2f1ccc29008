import type { Queryable } from '../../db/database.js';
import {
  FILTER_SQL,
  KEYSET_SQL,
  filterParams,
  type ListFilter,
  type SearchCandidate,
  type Visibility,
} from './recording.repository.js';

/**
 * SQL of the encrypted search index (migration 0026, docs/search.md): one row of keyed tokens
 * per recording. Tenant functions run in the caller's withTenant() transaction (RLS bounds them
 * to one org); `listUnindexed` runs in withSystem() for the backfill task.
 */
interface Page {
  limit: number;
  after?: { createdAt: Date; id: string } | undefined;
  filter?: ListFilter | undefined;
}

/** A recording whose index row holds every token of the query, with its sealed search text. */
export interface IndexedCandidate {
  id: string;
  orgId: string;
  createdAt: Date;
  docEnc: Uint8Array;
}

interface IndexSource {
  orgId: string;
  titleEnc: Uint8Array | null;
  bodyEnc: Uint8Array | null;
  namesEnc: Uint8Array | null;
}

const CANDIDATE_COLUMNS = `r.id, r.org_id AS "orgId", r.title_enc AS "titleEnc", r.created_at AS "createdAt",
              t.body_enc AS "bodyEnc", t.speaker_names_enc AS "namesEnc"`;

export const searchIndexRepository = {
  /** Title, transcript and speaker-name ciphertexts to index (undefined: the recording is gone). */
  async source(tx: Queryable, recordingId: string): Promise<IndexSource | undefined> {
    const res = await tx.query<IndexSource>(
      `SELECT r.org_id AS "orgId", r.title_enc AS "titleEnc", t.body_enc AS "bodyEnc",
              t.speaker_names_enc AS "namesEnc"
         FROM recordings r LEFT JOIN transcripts t ON t.recording_id = r.id
        WHERE r.id = $1`,
      [recordingId],
    );
    return res.rows[0];
  },

  /**
   * Writes a recording's tokens. `replace` false (the backfill) keeps a row already there: a
   * write path that indexed meanwhile read newer text than the backfill did.
   */
  async put(
    tx: Queryable,
    row: { recordingId: string; orgId: string; scheme: number; tokens: number[]; docEnc: Buffer },
    replace: boolean,
  ): Promise<void> {
    await tx.query(
      `INSERT INTO search_index (recording_id, org_id, scheme, tokens, doc_enc)
       VALUES ($1, $2, $3, $4::int[], $5)
       ON CONFLICT (recording_id) DO ${
         replace
           ? `UPDATE SET scheme = EXCLUDED.scheme, tokens = EXCLUDED.tokens, doc_enc = EXCLUDED.doc_enc,
                          indexed_at = now()`
           : 'NOTHING'
       }`,
      [row.recordingId, row.orgId, row.scheme, row.tokens, row.docEnc],
    );
  },

  /**
   * Makes the rest of the caller's (search) transaction answer `@>` from the GIN index. A row's
   * token array is stored out of line (TOAST, tens of kilobytes); the planner does not count
   * reading it, so for a word in many recordings it would pick a sequential scan (or walk the
   * recordings by date) that reads every array — seconds at 10,000 recordings — where the GIN
   * index reads only the matching row ids. Transaction-local (`set_config(…, true)`).
   */
  async preferIndex(tx: Queryable): Promise<void> {
    await tx.query(`SELECT set_config('enable_seqscan', 'off', true)`);
  },

  /**
   * Visible recordings whose index row holds every token, newest first (keyset paging as the
   * list). The GIN index answers `@>` first, alone (sotto_search_hits, migration 0026: RLS would
   * keep the index from being used; the function pins the caller's tenant itself), the row ids
   * only; filters and visibility are the list's, in SQL.
   *
   * Order first, join later: the org's recordings are walked newest first along
   * recordings_org_created_idx with the hit ids as a hashed set, stopping at the `limit`th, and
   * only those few are joined to search_index for their sealed text. Joining every hit to
   * `recordings` and `search_index` before the sort cost ~100 ms per batch for a word in most of
   * 10,000 recordings (docs/search.md). The `OR false` is deliberate: PostgreSQL turns a plain
   * `IN (subquery)` into a join whose output is unordered (sort of every hit again); under an OR
   * it stays a filter, planned as a hashed subplan, and the constant is folded away afterwards.
   * The join to search_index drops nothing: the function returned only ids with a row.
   */
  async matching(
    tx: Queryable,
    vis: Visibility,
    tokens: number[],
    scheme: number,
    page: Page,
  ): Promise<IndexedCandidate[]> {
    const res = await tx.query<IndexedCandidate>(
      `WITH hit AS MATERIALIZED (
         SELECT recording_id FROM sotto_search_hits($9::int[], $10::smallint)
       ), newest AS (
         SELECT r.id, r.org_id, r.created_at
           FROM recordings r
          WHERE ${FILTER_SQL}
            AND ${KEYSET_SQL}
            AND (r.id IN (SELECT recording_id FROM hit) OR false)
          ORDER BY r.created_at DESC, r.id DESC LIMIT $8
       )
       SELECT f.id, f.org_id AS "orgId", f.created_at AS "createdAt", s.doc_enc AS "docEnc"
         FROM newest f
         JOIN search_index s ON s.recording_id = f.id
        ORDER BY f.created_at DESC, f.id DESC`,
      [
        ...filterParams(vis, page.filter),
        page.after?.createdAt ?? null,
        page.after?.id ?? null,
        page.limit,
        tokens,
        scheme,
      ],
    );
    return res.rows;
  },

  /**
   * Visible recordings with something to search (a title or a transcript) but no index row of
   * this scheme yet — written before the index existed, or not reached by the backfill: the
   * search decrypts these as the scan always did, so nothing is missed while the backfill runs.
   */
  async unindexed(tx: Queryable, vis: Visibility, scheme: number, page: Page): Promise<SearchCandidate[]> {
    const res = await tx.query<SearchCandidate>(
      `SELECT ${CANDIDATE_COLUMNS}
         FROM recordings r
         LEFT JOIN transcripts t ON t.recording_id = r.id
        WHERE ${FILTER_SQL}
          AND ${KEYSET_SQL}
          AND (r.title_enc IS NOT NULL OR t.body_enc IS NOT NULL)
          AND NOT EXISTS (SELECT 1 FROM search_index s WHERE s.recording_id = r.id AND s.scheme = $9)
        ORDER BY r.created_at DESC, r.id DESC LIMIT $8`,
      [
        ...filterParams(vis, page.filter),
        page.after?.createdAt ?? null,
        page.after?.id ?? null,
        page.limit,
        scheme,
      ],
    );
    return res.rows;
  },

  /**
   * System: recordings of any org with something to index and no row of this scheme, oldest
   * first, after a keyset cursor (a run skips one it could not index instead of retrying it).
   */
  async listUnindexed(
    tx: Queryable,
    scheme: number,
    limit: number,
    after?: { createdAt: Date; id: string },
  ): Promise<{ id: string; orgId: string; createdAt: Date }[]> {
    const res = await tx.query<{ id: string; orgId: string; createdAt: Date }>(
      `SELECT r.id, r.org_id AS "orgId", r.created_at AS "createdAt"
         FROM recordings r
        WHERE (r.title_enc IS NOT NULL OR EXISTS (SELECT 1 FROM transcripts t WHERE t.recording_id = r.id))
          AND NOT EXISTS (SELECT 1 FROM search_index s WHERE s.recording_id = r.id AND s.scheme = $1)
          AND ($3::timestamptz IS NULL OR (r.created_at, r.id) > ($3::timestamptz, $4::uuid))
        ORDER BY r.created_at, r.id LIMIT $2`,
      [scheme, limit, after?.createdAt ?? null, after?.id ?? null],
    );
    return res.rows;
  },
};
