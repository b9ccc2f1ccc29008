import { z } from 'zod';

/** Request and response shapes of /api/v1/org/export and /api/v1/org/exports (data portability). */
export const exportParams = z.strictObject({ id: z.guid() });

const timestamp = z.iso.datetime();

export const exportResponse = z.object({
  id: z.string(),
  status: z.enum(['queued', 'building', 'ready', 'failed', 'expired']),
  requestedBy: z.string().nullable(),
  createdAt: timestamp,
  readyAt: timestamp.nullable(),
  expiresAt: timestamp.nullable(),
  /** Size of the zip in bytes (ready exports). */
  sizeBytes: z.number().int().nullable(),
  /** SHA-256 of the zip, hex: compare it with the downloaded file. */
  sha256: z.string().nullable(),
  errorCode: z.string().nullable(),
  /** Files written so far of the total (building exports; the panel shows it as progress). */
  progress: z.object({ done: z.number().int(), total: z.number().int() }),
});

export const exportList = z.object({ items: exportResponse.array() });

/** The request takes no body; an empty JSON object is accepted for clients that always send one. */
export const exportRequestBody = z.strictObject({}).nullish();

export const exportDownloadResponse = {
  200: {
    description: 'The export zip (decrypted on the fly), as an attachment',
    content: { 'application/zip': { schema: z.string().meta({ format: 'binary' }) } },
  },
};

export const exportDeleted = z.null().describe('No content');
