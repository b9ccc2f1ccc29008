import { z } from 'zod';
import { memberRole, personName } from '../org/schema.js';

// Invitation tokens are 32 random bytes in base64url (43 characters); allow some slack, no more.
const invitationToken = z
  .string()
  .min(20)
  .max(200)
  .regex(/^[A-Za-z0-9_-]+$/, 'not an invitation token');

export const acceptInvitationBody = z.strictObject({
  token: invitationToken,
  // Length rules are the password policy's; this bound only keeps hostile bodies small.
  password: z.string().min(1).max(1024),
  name: personName,
});

export const acceptInvitationResponse = z.object({
  user: z.object({ id: z.string(), email: z.string(), name: z.string(), role: memberRole }),
  organization: z.object({ id: z.string(), name: z.string(), slug: z.string() }),
});

/** The accept page's first look: the token only, in the body (never a URL). */
export const previewInvitationBody = z.strictObject({ token: invitationToken });

export const previewInvitationResponse = z.object({
  organization: z.object({ name: z.string() }),
  /** Null when the inviting account no longer exists. */
  invitedBy: z.object({ name: z.string() }).nullable(),
  email: z.string(),
  role: memberRole,
  expiresAt: z.iso.datetime(),
});
