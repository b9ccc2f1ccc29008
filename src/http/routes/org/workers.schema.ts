import { z } from 'zod';
import { NO_CONTROL } from '../text.schema.js';

/** Request and response shapes of /api/v1/org/workers (the org's remote worker tokens). */

export const workerTokenCreate = z.strictObject({
  name: z.string().trim().min(1).max(100).regex(NO_CONTROL, 'must not contain control characters'),
});

const timestamp = z.iso.datetime();

export const workerTokenResponse = z.object({
  id: z.string(),
  name: z.string(),
  createdBy: z.string().nullable(),
  createdAt: timestamp,
  lastUsedAt: timestamp.nullable(),
  revokedAt: timestamp.nullable(),
  status: z.enum(['active', 'revoked']),
});

export const workerTokenCreated = workerTokenResponse.extend({
  /** Shown once: the only copy of the credential (give it to `sotto worker` as SOTTO_WORKER_TOKEN). */
  token: z.string(),
});
