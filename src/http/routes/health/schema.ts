import { z } from 'zod';

export const healthResponse = z.object({ status: z.literal('ok') });
/**
 * Public like the rest of /readyz: enums and names only, never a path, URL or message (those are
 * in the server log, and owners/admins see the fix in GET /api/v1/org/transcription).
 */
export const engineReport = z.discriminatedUnion('status', [
  z.object({
    status: z.literal('ok'),
    id: z.enum(['sphinx', 'whisper', 'openai']),
    model: z.string().nullable(),
  }),
  z.object({
    status: z.literal('none'),
    missing: z.enum(['none_installed', 'configured_engine_unavailable', 'engine_unusable']),
  }),
]);

export const readyResponse = z.object({
  status: z.enum(['ok', 'unavailable']),
  checks: z.object({
    database: z.enum(['ok', 'failed']),
    redis: z.enum(['ok', 'failed', 'not_configured']),
    /** Reported, not required: uploads wait queued without one (docs/deployment.md). */
    engine: z.enum(['ok', 'none']),
    remoteWorkers: z.enum(['active', 'none', 'unknown']),
  }),
  engine: engineReport,
});
