import { z } from 'zod';
import { id } from './schema.js';

/** Shapes of /api/v1/org/archive (owners and admins). */
export const archiveListQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(200).default(50),
  /** Id of the last item of the previous page. */
  after: id.optional(),
});

const timestamp = z.iso.datetime();

export const archiveItem = z.object({
  id: z.string(),
  recordingId: z.string(),
  ownerId: z.string(),
  title: z.string().nullable(),
  recordingCreatedAt: timestamp,
  archivedAt: timestamp,
  reason: z.enum(['retention', 'manual']),
  sizeBytes: z.number().int(),
  hasAudio: z.boolean(),
});

export const archiveList = z.object({ items: z.array(archiveItem), next: z.string().nullable() });

export const restoreResponse = z.object({ recordingId: z.string() });

export const deletionReceipt = z.object({
  archiveId: z.string(),
  recordingId: z.string(),
  deletedAt: timestamp,
  deletedBy: z.string(),
  contentSha256: z.string(),
  audioSha256: z.string().nullable(),
  /** Org exports that may have held the item, expired with it. */
  exportsInvalidated: z.number().int(),
});
