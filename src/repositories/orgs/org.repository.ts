import type { Queryable } from '../../db/database.js';

export interface OrgRow {
  id: string;
  name: string;
  slug: string;
  createdAt: Date;
  retentionDays: number;
  storeAudio: boolean;
  /** Encrypted JSON of content-revealing settings (custom vocabulary); null until first set. */
  settingsEnc: Buffer | null;
}

interface DbRow {
  id: string;
  name: string;
  slug: string;
  created_at: Date;
  retention_days: number;
  store_audio: boolean;
  settings_enc: Uint8Array | null;
}

const COLUMNS = 'id, name, slug, created_at, retention_days, store_audio, settings_enc';

const map = (r: DbRow): OrgRow => ({
  id: r.id,
  name: r.name,
  slug: r.slug,
  createdAt: r.created_at,
  retentionDays: r.retention_days,
  storeAudio: r.store_audio,
  settingsEnc: r.settings_enc ? Buffer.from(r.settings_enc) : null,
});

/** SQL for the orgs table. Runs under RLS: a tenant transaction only ever sees its own org row. */
export const orgRepository = {
  /** Inserts an org; call inside withTenant({orgId: id}) so the row passes the RLS check. */
  async insert(tx: Queryable, org: { id: string; name: string; slug: string }): Promise<OrgRow> {
    const { rows } = await tx.query<DbRow>(
      `INSERT INTO orgs (id, name, slug) VALUES ($1, $2, $3) RETURNING ${COLUMNS}`,
      [org.id, org.name, org.slug],
    );
    return map(rows[0]!);
  },

  async find(tx: Queryable, orgId: string): Promise<OrgRow | undefined> {
    const { rows } = await tx.query<DbRow>(`SELECT ${COLUMNS} FROM orgs WHERE id = $1`, [orgId]);
    return rows[0] && map(rows[0]);
  },

  /**
   * Locks the org row for a read-modify-write of its settings. NO KEY UPDATE, not UPDATE: the key
   * does not change, and a full UPDATE lock also blocks the foreign-key checks of rows that
   * reference the org (audit_log inserts), which deadlocked with a request holding the org's
   * audit-chain lock (found by bench/fuzz.ts on PostgreSQL).
   */
  async lock(tx: Queryable, orgId: string): Promise<OrgRow | undefined> {
    const { rows } = await tx.query<DbRow>(`SELECT ${COLUMNS} FROM orgs WHERE id = $1 FOR NO KEY UPDATE`, [
      orgId,
    ]);
    return rows[0] && map(rows[0]);
  },

  async updateSettings(
    tx: Queryable,
    orgId: string,
    s: { retentionDays: number; storeAudio: boolean; settingsEnc: Buffer | null },
  ): Promise<void> {
    await tx.query('UPDATE orgs SET retention_days = $2, store_audio = $3, settings_enc = $4 WHERE id = $1', [
      orgId,
      s.retentionDays,
      s.storeAudio,
      s.settingsEnc,
    ]);
  },
};
