import { z } from 'zod';
import { engineReport } from '../health/schema.js';

/** Response of GET /api/v1/org/transcription (the request has no parameters, query or body). */
export const transcriptionQuery = z.strictObject({});

export const transcriptionStatusResponse = z.object({
  /** This server's engine: the same public report as /readyz. */
  engine: engineReport,
  /** Remote workers that can take this org's jobs (its own and platform ones), recently seen. */
  activeRemoteWorkers: z.number().int().min(0),
  /** Nothing can transcribe this org's uploads now: they wait, queued, until something can. */
  waiting: z.boolean(),
  /** What the operator does about it, when `waiting`. */
  fix: z.string().nullable(),
});
