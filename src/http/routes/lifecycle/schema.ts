import { z } from 'zod';

/** Bodies and answers of the deletion routes (DELETE /api/v1/org, DELETE /api/v1/me). Strict and bounded. */
const password = z.string().min(1).max(1024);
const code = z.string().trim().min(1).max(64);

export const orgDeletionBody = z.strictObject({
  /** The org's slug, typed by the owner as confirmation. */
  confirm: z.string().min(1).max(100),
  currentPassword: password,
  code: code.optional(),
});

export const orgDeletionResponse = z.object({
  orgId: z.string(),
  deletedAt: z.iso.datetime(),
  counts: z.record(z.string(), z.number().int()),
});

export const accountDeletionBody = z.strictObject({
  currentPassword: password,
  code: code.optional(),
});

export const accountDeletionResponse = z.object({
  /** The deletion is completed by this time at the latest (login is refused already). */
  completeBy: z.iso.datetime(),
  status: z.literal('scheduled'),
});
