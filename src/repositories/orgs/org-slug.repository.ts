import type { Queryable } from '../../db/database.js';

/**
 * Slugs are unique across the platform, but RLS hides other orgs from a tenant transaction, so
 * signup asks which slugs are taken in the system context before creating the org.
 */
export const orgSlugRepository = {
  /** Slugs equal to `base` or of the form `base-<suffix>`. */
  async taken(tx: Queryable, base: string): Promise<Set<string>> {
    const { rows } = await tx.query<{ slug: string }>(
      `SELECT slug FROM orgs WHERE slug = $1 OR (slug LIKE $1 || '-%' AND length(slug) <= length($1) + 8)`,
      [base],
    );
    return new Set(rows.map((r) => r.slug));
  },
};
