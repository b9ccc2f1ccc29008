import { z } from 'zod';

export const auditQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  /** Entries older than this sequence number (the `nextBeforeSeq` of the previous page). */
  beforeSeq: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
  action: z
    .string()
    .max(100)
    .regex(/^[a-z0-9_.]+$/, 'an action name such as member.role_changed')
    .optional(),
});

export const auditEntry = z.object({
  seq: z.number().int(),
  at: z.iso.datetime(),
  actorId: z.string().nullable(),
  actorKind: z.enum(['user', 'support', 'system', 'anonymous', 'worker']),
  action: z.string(),
  targetType: z.string().nullable(),
  targetId: z.string().nullable(),
  ip: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
  hash: z.string(),
});

export const chainVerification = z.object({
  ok: z.boolean(),
  entries: z.number().int(),
  problem: z.object({ seq: z.number().int(), reason: z.string() }).optional(),
});

export const auditResponse = z.object({
  entries: z.array(auditEntry),
  /** Pass as beforeSeq for the next (older) page; null on the last page. */
  nextBeforeSeq: z.number().int().nullable(),
  verification: chainVerification,
});
