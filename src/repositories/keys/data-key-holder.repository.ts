import type { Queryable } from '../../db/database.js';

/**
 * Every database column that holds a ciphertext sealed by an org's data key, with where its
 * associated data says it lives (table, row id, field — the same locations the services seal
 * under). Data-key rotation re-encrypts these and retires a data key version only when none of
 * them (nor an archive object: recording_archive.object_key_version) still carries it.
 * test/crypto-data-key-rotation.spec.ts checks this list against the schema: a new sealed column
 * that is not listed here (or in NOT_DATA_KEY_COLUMNS) fails there.
 */
export interface DataKeyHolder {
  table: string;
  column: string;
  /** The row id of the FieldLocation. */
  idColumn: string;
  /** FieldLocation.table and .field for this column. */
  locTable: string;
  field: string;
  /** Extra condition (users: only org members have org-sealed secrets). */
  where?: string;
  /**
   * Re-encrypted inside the org's tenant transaction (as sotto_app, under RLS) instead of the
   * system context: for tables the application role may update and the system role may not.
   */
  tenant?: boolean;
}

export const DATA_KEY_HOLDERS: readonly DataKeyHolder[] = [
  { table: 'orgs', column: 'settings_enc', idColumn: 'id', locTable: 'orgs', field: 'settings_enc' },
  {
    table: 'users',
    column: 'totp_secret_enc',
    idColumn: 'id',
    locTable: 'users',
    field: 'totp_secret',
    where: 'org_id IS NOT NULL',
  },
  { table: 'recordings', column: 'title_enc', idColumn: 'id', locTable: 'recordings', field: 'title' },
  {
    table: 'recordings',
    column: 'live_speakers_enc',
    idColumn: 'id',
    locTable: 'recordings',
    field: 'live_speakers',
  },
  {
    table: 'transcripts',
    column: 'body_enc',
    idColumn: 'recording_id',
    locTable: 'transcripts',
    field: 'body',
  },
  {
    table: 'transcripts',
    column: 'speaker_names_enc',
    idColumn: 'recording_id',
    locTable: 'transcripts',
    field: 'speaker_names',
  },
  {
    table: 'transcripts',
    column: 'original_body_enc',
    idColumn: 'recording_id',
    locTable: 'transcripts',
    field: 'original_body',
  },
  {
    table: 'recording_audio',
    column: 'content_key_enc',
    idColumn: 'recording_id',
    locTable: 'recording_audio',
    field: 'content_key',
  },
  {
    table: 'live_spools',
    column: 'content_key_enc',
    idColumn: 'recording_id',
    locTable: 'live_spools',
    field: 'content_key',
  },
  {
    table: 'recording_archive',
    column: 'title_enc',
    idColumn: 'id',
    locTable: 'recording_archive',
    field: 'title',
  },
  {
    table: 'org_exports',
    column: 'content_key_enc',
    idColumn: 'id',
    locTable: 'org_exports',
    field: 'content_key',
  },
  { table: 'api_tokens', column: 'name_enc', idColumn: 'id', locTable: 'api_tokens', field: 'name' },
  { table: 'webhooks', column: 'secret_enc', idColumn: 'id', locTable: 'webhooks', field: 'secret' },
  {
    table: 'webhooks',
    column: 'previous_secret_enc',
    idColumn: 'id',
    locTable: 'webhooks',
    field: 'previous_secret',
  },
  {
    table: 'sso_connections',
    column: 'client_secret_enc',
    idColumn: 'id',
    locTable: 'sso_connections',
    field: 'client_secret',
  },
  // Migration 0026 (encrypted search index): sotto_app updates it; the system role only reads it.
  {
    table: 'search_index',
    column: 'doc_enc',
    idColumn: 'recording_id',
    locTable: 'search_index',
    field: 'doc',
    tenant: true,
  },
];

/** Sealed columns that are not under an org data key (platform secrets under the master key). */
export const NOT_DATA_KEY_COLUMNS: readonly string[] = ['signing_keys.private_enc'];

/** The key version in a ciphertext's header (bytes 1–4, big-endian: src/crypto/envelope.ts). */
const version = (col: string) =>
  `(get_byte(${col}, 1)::bigint * 16777216 + get_byte(${col}, 2) * 65536 + get_byte(${col}, 3) * 256 + get_byte(${col}, 4))`;

const orgColumn = (h: DataKeyHolder) => (h.table === 'orgs' ? 'id' : 'org_id');

export const dataKeyHolderRepository = {
  /**
   * Locks up to `limit` rows of the org whose `h.column` is sealed under a version older than
   * `active` (SKIP LOCKED: a request editing the row, or another node, keeps it for later). NO KEY
   * UPDATE: foreign-key checks of rows that reference it (audit entries, recordings) go on. Rows in
   * `excluding` (this pass could not decrypt them) are passed over, so one damaged row cannot hold
   * up the rest of the org.
   */
  async lockStale(
    tx: Queryable,
    h: DataKeyHolder,
    orgId: string,
    active: number,
    limit: number,
    excluding: readonly string[] = [],
  ): Promise<{ id: string; sealed: Buffer }[]> {
    const { rows } = await tx.query<{ id: string; sealed: Uint8Array }>(
      `SELECT ${h.idColumn}::text AS id, ${h.column} AS sealed FROM ${h.table}
        WHERE ${orgColumn(h)} = $1 AND ${h.column} IS NOT NULL AND ${version(h.column)} < $2
          AND NOT (${h.idColumn}::text = ANY($4::text[]))
          ${h.where ? `AND ${h.where}` : ''}
        ORDER BY ${h.idColumn} LIMIT $3 FOR NO KEY UPDATE SKIP LOCKED`,
      [orgId, active, limit, excluding],
    );
    return rows.map((r) => ({ id: r.id, sealed: Buffer.from(r.sealed) }));
  },

  async replace(tx: Queryable, h: DataKeyHolder, orgId: string, id: string, sealed: Buffer): Promise<void> {
    await tx.query(
      `UPDATE ${h.table} SET ${h.column} = $3 WHERE ${orgColumn(h)} = $1 AND ${h.idColumn} = $2`,
      [orgId, id, sealed],
    );
  },

  /** The org's cold-archive items archived before their key version was recorded (migration 0024). */
  async archiveIdsWithoutVersion(tx: Queryable, orgId: string): Promise<string[]> {
    const { rows } = await tx.query<{ id: string }>(
      'SELECT id FROM recording_archive WHERE org_id = $1 AND object_key_version IS NULL ORDER BY id',
      [orgId],
    );
    return rows.map((r) => r.id);
  },

  /** Records the key version read from an older archive object's header. */
  async setArchiveVersion(tx: Queryable, orgId: string, id: string, version: number): Promise<void> {
    await tx.query(
      'UPDATE recording_archive SET object_key_version = $3 WHERE org_id = $1 AND id = $2 AND object_key_version IS NULL',
      [orgId, id, version],
    );
  },

  /**
   * How many ciphertexts of the org, across every holder and the cold-archive objects (their
   * recorded version), each key version still seals. `unknown`: archive objects whose version is
   * not recorded yet — while there are any, no version of the org may be retired.
   */
  async countByVersion(
    tx: Queryable,
    orgId: string,
  ): Promise<{ counts: Map<number, number>; unknown: number }> {
    const parts = DATA_KEY_HOLDERS.map(
      (h) =>
        `SELECT ${version(h.column)} AS v FROM ${h.table}
          WHERE ${orgColumn(h)} = $1 AND ${h.column} IS NOT NULL ${h.where ? `AND ${h.where}` : ''}`,
    );
    parts.push('SELECT object_key_version::bigint AS v FROM recording_archive WHERE org_id = $1');
    const { rows } = await tx.query<{ v: string | number | null; n: number }>(
      `SELECT v, count(*)::int AS n FROM (${parts.join(' UNION ALL ')}) s GROUP BY v`,
      [orgId],
    );
    const counts = new Map<number, number>();
    let unknown = 0;
    for (const r of rows) {
      if (r.v === null) unknown += r.n;
      else counts.set(Number(r.v), r.n);
    }
    return { counts, unknown };
  },
};
