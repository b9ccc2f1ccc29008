import type { Queryable } from '../../db/database.js';

/**
 * MFA recovery codes, stored only as SHA-256 (they are 80-bit random strings, so a fast hash is
 * enough). Runs in the user's scope; org_id is NULL for platform support accounts.
 */
export const recoveryCodeRepository = {
  /** Replaces the user's codes with a fresh set. */
  async replaceAll(
    tx: Queryable,
    u: { orgId: string | null; userId: string },
    hashes: readonly string[],
    now: Date,
  ): Promise<void> {
    await tx.query('DELETE FROM recovery_codes WHERE user_id = $1', [u.userId]);
    await tx.query(
      `INSERT INTO recovery_codes (org_id, user_id, code_hash, created_at)
       SELECT $1, $2, h, $4 FROM unnest($3::text[]) AS h`,
      [u.orgId, u.userId, hashes, now],
    );
  },

  /** Marks one unused code as used; false when no unused code has this hash (single use). */
  async consume(tx: Queryable, userId: string, codeHash: string, now: Date): Promise<boolean> {
    const { rows } = await tx.query(
      `UPDATE recovery_codes SET used_at = $3
        WHERE id = (SELECT id FROM recovery_codes
                     WHERE user_id = $1 AND code_hash = $2 AND used_at IS NULL LIMIT 1 FOR UPDATE)
        RETURNING id`,
      [userId, codeHash, now],
    );
    return rows.length > 0;
  },

  async countUnused(tx: Queryable, userId: string): Promise<number> {
    const { rows } = await tx.query<{ n: number }>(
      'SELECT count(*)::int AS n FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL',
      [userId],
    );
    return rows[0]?.n ?? 0;
  },

  async deleteAll(tx: Queryable, userId: string): Promise<void> {
    await tx.query('DELETE FROM recovery_codes WHERE user_id = $1', [userId]);
  },
};
