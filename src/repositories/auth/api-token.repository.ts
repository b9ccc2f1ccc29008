import type { Queryable } from '../../db/database.js';
import { touchTokenLastUsed } from './token-usage.repository.js';
import type { ApiScope } from '../../domain/api-scopes.js';
import type { OrgRole } from '../../domain/roles.js';

/**
 * Personal API tokens (table api_tokens). Listing and revoking run under the org's RLS context;
 * the per-request check runs in the system context (the org is not known before the token is).
 * The secret is never stored, only its SHA-256; the name is stored encrypted.
 */
export interface ApiTokenRow {
  id: string;
  orgId: string;
  userId: string;
  nameEnc: Buffer;
  scopes: ApiScope[];
  createdAt: Date;
  expiresAt: Date;
  lastUsedAt: Date | null;
  revokedAt: Date | null;
}

/** The token with its hash and its user's membership as it is now (for the per-request check). */
export interface ApiTokenAuthRow extends ApiTokenRow {
  tokenHash: string;
  userOrgId: string | null;
  userRole: OrgRole | null;
}

interface DbRow {
  id: string;
  org_id: string;
  user_id: string;
  name_enc: Uint8Array;
  scopes: string[];
  created_at: Date;
  expires_at: Date;
  last_used_at: Date | null;
  revoked_at: Date | null;
}

const COLUMNS =
  't.id, t.org_id, t.user_id, t.name_enc, t.scopes, t.created_at, t.expires_at, t.last_used_at, t.revoked_at';

const map = (r: DbRow): ApiTokenRow => ({
  id: r.id,
  orgId: r.org_id,
  userId: r.user_id,
  nameEnc: Buffer.from(r.name_enc),
  scopes: r.scopes as ApiScope[],
  createdAt: r.created_at,
  expiresAt: r.expires_at,
  lastUsedAt: r.last_used_at,
  revokedAt: r.revoked_at,
});

export const apiTokenRepository = {
  async insert(
    tx: Queryable,
    t: {
      id: string;
      orgId: string;
      userId: string;
      nameEnc: Buffer;
      scopes: readonly ApiScope[];
      tokenHash: string;
      now: Date;
      expiresAt: Date;
    },
  ): Promise<ApiTokenRow> {
    const { rows } = await tx.query<DbRow>(
      `INSERT INTO api_tokens AS t (id, org_id, user_id, name_enc, scopes, token_hash, created_at, expires_at)
       VALUES ($1, $2, $3, $4, $5::text[], $6, $7, $8) RETURNING ${COLUMNS}`,
      [t.id, t.orgId, t.userId, t.nameEnc, [...t.scopes], t.tokenHash, t.now, t.expiresAt],
    );
    return map(rows[0]!);
  },

  /** A user's tokens, or (userId undefined) every token of the org in context. */
  async list(tx: Queryable, userId: string | undefined): Promise<ApiTokenRow[]> {
    const { rows } = await tx.query<DbRow>(
      `SELECT ${COLUMNS} FROM api_tokens t WHERE ($1::uuid IS NULL OR t.user_id = $1) ORDER BY t.created_at, t.id`,
      [userId ?? null],
    );
    return rows.map(map);
  },

  /** Live (not revoked) tokens of a user: the per-user cap. */
  async countActive(tx: Queryable, userId: string, now: Date): Promise<number> {
    const { rows } = await tx.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM api_tokens
        WHERE user_id = $1 AND revoked_at IS NULL AND expires_at > $2`,
      [userId, now],
    );
    return rows[0]!.n;
  },

  async find(tx: Queryable, id: string): Promise<ApiTokenRow | undefined> {
    const { rows } = await tx.query<DbRow>(`SELECT ${COLUMNS} FROM api_tokens t WHERE t.id = $1`, [id]);
    return rows[0] && map(rows[0]);
  },

  async findForAuth(tx: Queryable, id: string): Promise<ApiTokenAuthRow | undefined> {
    const { rows } = await tx.query<
      DbRow & { token_hash: string; user_org_id: string | null; user_role: OrgRole | null }
    >(
      `SELECT ${COLUMNS}, t.token_hash, u.org_id AS user_org_id, u.role AS user_role
         FROM api_tokens t JOIN users u ON u.id = t.user_id
        WHERE t.id = $1`,
      [id],
    );
    const r = rows[0];
    return r && { ...map(r), tokenHash: r.token_hash, userOrgId: r.user_org_id, userRole: r.user_role };
  },

  /** Marks a token revoked; false when it already was (or is not visible). */
  async revoke(tx: Queryable, id: string, now: Date): Promise<boolean> {
    const res = await tx.query('UPDATE api_tokens SET revoked_at = $2 WHERE id = $1 AND revoked_at IS NULL', [
      id,
      now,
    ]);
    return res.rowCount > 0;
  },

  /** Written at most once a minute per token (see token-usage.repository.ts). */
  touch(tx: Queryable, id: string, now: Date): Promise<void> {
    return touchTokenLastUsed(tx, 'api_tokens', id, now);
  },
};
