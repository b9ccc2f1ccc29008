import { z } from 'zod';
import { NO_CONTROL } from '../text.schema.js';
import { apiScopes } from '../../../domain/api-scopes.js';

/** Request and response shapes of /api/v1/tokens (personal API tokens, docs/api-tokens.md). */

export const apiTokenCreate = z.strictObject({
  name: z.string().trim().min(1).max(100).regex(NO_CONTROL, 'must not contain control characters'),
  scopes: z.array(z.enum(apiScopes)).min(1).max(apiScopes.length),
  /** Default 90 days (or SOTTO_API_TOKEN_MAX_DAYS when lower); the service enforces the maximum. */
  expiresInDays: z.number().int().min(1).max(3650).optional(),
});

export const apiTokenListQuery = z.strictObject({
  /** Admins: every member's tokens, not just one's own. */
  all: z.enum(['true', 'false']).optional(),
});

const timestamp = z.iso.datetime();

export const apiTokenResponse = z.object({
  id: z.string(),
  userId: z.string(),
  name: z.string(),
  scopes: z.array(z.enum(apiScopes)),
  createdAt: timestamp,
  expiresAt: timestamp,
  lastUsedAt: timestamp.nullable(),
  revokedAt: timestamp.nullable(),
  status: z.enum(['active', 'expired', 'revoked']),
});

export const apiTokenCreated = apiTokenResponse.extend({
  /** Shown once: the only copy of the credential (`sotto_pat_…`; e.g. SOTTO_TOKEN for `sotto bot`). */
  token: z.string(),
});
