import { z } from 'zod';

const role = z.enum(['owner', 'admin', 'member', 'support']);

export const meResponse = z.object({
  user: z.object({ id: z.string(), email: z.string(), name: z.string(), role }),
  /** Null for platform support accounts, which belong to no organization. */
  organization: z.object({ id: z.string(), name: z.string(), slug: z.string() }).nullable(),
  role,
  mfaEnabled: z.boolean(),
  support: z.object({ platformRole: z.literal('support') }).optional(),
});
