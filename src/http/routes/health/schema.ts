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
    /** `low`: less than SOTTO_DISK_MIN_FREE_MB free on the data disk (not ready). */
    disk: z.enum(['ok', 'low', 'failed']),
    /**
     * The audio/export store (SOTTO_STORAGE; always `ok` for the data directory): `no_bucket`,
     * `denied` (credentials refused) or `failed` (unreachable) make the node not ready.
     */
    storage: z.enum(['ok', 'no_bucket', 'denied', 'failed']),
    /** Reported, not required: uploads wait queued without one (docs/deployment.md). */
    engine: z.enum(['ok', 'none']),
    remoteWorkers: z.enum(['active', 'none', 'unknown']),
    /**
     * Reported, not required: `mismatch` when another node seen recently issues tokens for another
     * SOTTO_PUBLIC_URL (they then reject each other's tokens). The values are in that node's log.
     */
    publicUrl: z.enum(['ok', 'mismatch']),
    /**
     * Reported, not required: `rotate_due` when the active master key is older than
     * SOTTO_KEY_MAX_AGE_DAYS (its age in days is in the server log and `sotto keys status`, not here).
     */
    masterKeyAge: z.enum(['ok', 'rotate_due', 'unknown']),
    /**
     * `saturated` while the node refuses new requests for load (SOTTO_SATURATION_*): not ready,
     * so a load balancer sends traffic elsewhere until it recovers.
     */
    load: z.enum(['ok', 'saturated']),
  }),
  engine: engineReport,
});
