import type { Queryable } from '../../db/database.js';

/**
 * last_used_at of the opaque-token tables (worker_tokens, api_tokens). Callers only call this
 * when the value they read is over a minute old (crypto/opaque-token.ts `lastUsedIsStale`), so a
 * busy token costs no write per request; the WHERE keeps two concurrent requests from both
 * writing it.
 */
export async function touchTokenLastUsed(
  tx: Queryable,
  table: 'api_tokens' | 'worker_tokens',
  id: string,
  now: Date,
): Promise<void> {
  await tx.query(
    `UPDATE ${table} SET last_used_at = $2
      WHERE id = $1 AND (last_used_at IS NULL OR last_used_at <= $2::timestamptz - interval '1 minute')`,
    [id, now],
  );
}
