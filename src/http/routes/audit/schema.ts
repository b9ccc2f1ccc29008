import { instant } from '../recordings/schema.js';
import { z } from 'zod';

export const auditQuery = z
  .strictObject({
    limit: z.coerce.number().int().min(1).max(200).default(50),
    /** Entries older than this sequence number (the `nextBeforeSeq` of the previous page). */
    beforeSeq: z.coerce.number().int().min(1).max(Number.MAX_SAFE_INTEGER).optional(),
    /** One of the answer's `actions` (an action this log holds); another gives no entries. */
    action: z
      .string()
      .max(100)
      .regex(/^[a-z0-9_.]+$/, 'an action name such as member.role_changed')
      .optional(),
    /** At or after: an ISO date (midnight UTC) or date-time with an offset. */
    from: instant(false).optional(),
    /** Before: a bare date means up to the end of that day (UTC), so it is included. */
    to: instant(true).optional(),
  })
  .refine((q) => !q.from || !q.to || q.from < q.to, { message: '`from` must be before `to`', path: ['to'] });

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
  /**
   * The acting user's name and email while they are a user of this org; "Sotto support" (and no
   * email) for platform support staff acting through the org's grant; null otherwise.
   */
  actorName: z.string().nullable(),
  actorEmail: z.string().nullable(),
  /** A target user's "name (email)", or a recording's title when the caller may read it. */
  targetLabel: z.string().nullable(),
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
  /** Every action this org's log holds, for a picker (not only this page's). */
  actions: z.array(z.string()),
  verification: chainVerification,
});
