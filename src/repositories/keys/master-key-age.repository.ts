import type { Queryable } from '../../db/database.js';

/**
 * When each master key version became active, as the platform audit chain recorded it
 * (`keys.rotated`, target `v<N>`): the only record of a key's age when the keyring comes from the
 * environment, which Sotto never writes.
 */
export async function rotationTimes(tx: Queryable): Promise<Map<number, Date>> {
  const { rows } = await tx.query<{ target_id: string; at: Date | string }>(
    `SELECT target_id, min(at) AS at FROM audit_log
      WHERE org_id IS NULL AND action = 'keys.rotated' AND target_id LIKE 'v%'
      GROUP BY target_id`,
  );
  const out = new Map<number, Date>();
  for (const r of rows) {
    const version = Number(r.target_id.slice(1));
    if (Number.isInteger(version)) out.set(version, new Date(r.at));
  }
  return out;
}
