import { z } from 'zod';
import { NO_CONTROL } from '../text.schema.js';

/**
 * Request and response shapes of /api/v1/org. Bodies are strict (an unknown key is an error, not
 * silently ignored) and every string is bounded.
 */
export const MAX_VOCABULARY_WORDS = 1000;

export const email = z
  .email()
  .max(320)
  .transform((v) => v.toLowerCase());
export const personName = z
  .string()
  .trim()
  .min(1)
  .max(200)
  .regex(NO_CONTROL, 'must not contain control characters');
export const id = z.guid();
export const idParams = z.strictObject({ id });

const timestamp = z.iso.datetime();

export const orgResponse = z.object({
  id: z.string(),
  name: z.string(),
  slug: z.string(),
  createdAt: timestamp,
  retentionDays: z.number().int(),
  storeAudio: z.boolean(),
});

const vocabularyWord = z
  .string()
  .trim()
  .min(1)
  .max(100)
  .regex(NO_CONTROL, 'must not contain control characters');

export const settingsResponse = z.object({
  retentionDays: z.number().int(),
  storeAudio: z.boolean(),
  vocabulary: z.array(z.string()),
  departedUserRecordings: z.enum(['transfer', 'delete']),
});

export const settingsPatch = z
  .strictObject({
    retentionDays: z.number().int().min(1).max(3650).optional(),
    storeAudio: z.boolean().optional(),
    vocabulary: z.array(vocabularyWord).max(MAX_VOCABULARY_WORDS).optional(),
    departedUserRecordings: z.enum(['transfer', 'delete']).optional(),
  })
  .refine((v) => Object.keys(v).length > 0, { message: 'Change at least one setting' });

export const memberRole = z.enum(['owner', 'admin', 'member']);

export const memberResponse = z.object({
  id: z.string(),
  email: z.string(),
  name: z.string(),
  role: memberRole,
  mfaEnabled: z.boolean(),
  createdAt: timestamp,
});

export const membersQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  /** Id of the last member of the previous page. */
  after: id.optional(),
});

export const rolePatch = z.strictObject({ role: memberRole });

export const invitationCreate = z.strictObject({
  email,
  role: z.enum(['admin', 'member']),
});

export const invitationResponse = z.object({
  id: z.string(),
  email: z.string(),
  role: z.enum(['admin', 'member']),
  status: z.enum(['pending', 'accepted', 'revoked', 'expired']),
  createdAt: timestamp,
  expiresAt: timestamp,
  /** When the mail server accepted the invitation's email; null when no email went out. */
  emailSentAt: timestamp.nullable(),
});

export const invitationCreated = invitationResponse.extend({
  /** Shown once: holds the only copy of the invitation token. */
  inviteUrl: z.string(),
  emailSent: z.boolean(),
});

export const grantCreate = z.strictObject({ hours: z.number().int().min(1).max(168) });

export const grantResponse = z.object({
  id: z.string(),
  status: z.enum(['active', 'expired', 'revoked']),
  grantedBy: z.string().nullable(),
  createdAt: timestamp,
  expiresAt: timestamp,
  revokedAt: timestamp.nullable(),
});

export const noContent = z.null().describe('No content');

export const iso = (d: Date): string => d.toISOString();
export const isoOrNull = (d: Date | null): string | null => (d ? d.toISOString() : null);
