import { z } from 'zod';

/** GET /api/v1/support/orgs: what a platform support user may pick, and nothing more. */
export const grantedOrgResponse = z.object({
  id: z.string(),
  name: z.string(),
  /** When the latest active grant ends; the org disappears from the list then. */
  grantExpiresAt: z.iso.datetime(),
});
