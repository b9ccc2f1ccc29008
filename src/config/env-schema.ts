import { z } from 'zod';
import { NODE_ID_PATTERN, NODE_ID_RULE } from './node-id.js';

/** Every bad variable of one parse, named together so an operator fixes them all in one go. */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

export const port = z.coerce.number().int().min(0).max(65535);
export const positiveInt = z.coerce.number().int().positive();
export const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
export const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

// Speech recognition (docs/engines.md). Kept as one block so `sotto models` can read it alone.
export const asrShape = {
  SOTTO_ASR_ENGINE: z.enum(['auto', 'whisper', 'sphinx', 'openai']).default('auto'),
  SOTTO_ASR_DEVICE: z.enum(['cpu', 'cuda']).default('cpu'),
  // Warm decoders for uploads (upload chunks recognised at once); live gets one more. Default: cores.
  SOTTO_ASR_CONCURRENCY: positiveInt.max(256).optional(),
  // A catalogue name, a .bin file in ${dataDir}/models, or an absolute path to a ggml .bin file.
  SOTTO_WHISPER_MODEL: z
    .string()
    .regex(
      /^(tiny\.en|base\.en|small\.en|medium\.en|large-v3-turbo|\w[\w.-]*\.bin|\/.+\.bin)$/,
      'tiny.en, base.en, small.en, medium.en, large-v3-turbo, or a ggml .bin file',
    )
    .default('base.en'),
  // A second copy of the whisper model so live calls never wait for an upload chunk (memory: the
  // model's size again). auto: for models up to 1 GiB.
  SOTTO_WHISPER_LIVE_CONTEXT: z.enum(['auto', 'on', 'off']).default('auto'),
  SOTTO_OPENAI_BASE_URL: optionalString.pipe(z.url({ protocol: /^https?$/ }).optional()),
  SOTTO_OPENAI_API_KEY: optionalString,
  SOTTO_OPENAI_MODEL: z.string().min(1).default('whisper-1'),
  SOTTO_OPENAI_TIMEOUT_SECONDS: positiveInt.max(3600).default(600),
  // The operating system's executable search path (not a Sotto setting): where pocketsphinx is found.
  PATH: z.string().default(''),
};

/** Every variable Sotto reads, with its default: the one parse (loadConfig and the loaders for the CLI tools). */
export const schema = z.object({
  SOTTO_ENV: z.enum(['development', 'production', 'test']).default('development'),
  SOTTO_DATA_DIR: z.string().min(1).default('./sotto-data'),
  DATABASE_URL: optionalString.pipe(z.url({ protocol: /^postgres(ql)?$/ }).optional()),
  REDIS_URL: optionalString.pipe(z.url({ protocol: /^rediss?$/ }).optional()),
  // TLS to PostgreSQL (sslmode=verify-full) and Redis (rediss://): src/config/backend-tls.ts.
  SOTTO_DATABASE_CA_FILE: optionalString,
  SOTTO_REDIS_CA_FILE: optionalString,
  SOTTO_REDIS_ALLOW_PLAINTEXT: optionalString.pipe(bool.optional()),
  SOTTO_REDIS_PREFIX: z
    .string()
    .regex(/^[A-Za-z0-9:_-]{1,64}$/)
    .default('sotto:'),
  SOTTO_MASTER_KEY: optionalString,
  SOTTO_MASTER_KEY_FILE: optionalString,
  // Per-org key-encryption keys (one file per org, sealed by the master key): docs/security.md.
  // Used with SOTTO_KEY_STORE=dir (the default); see SOTTO_KEY_STORE below.
  SOTTO_KEY_DIR: optionalString,
  // Start-up log, /readyz and `sotto keys status` warn when the active master key is older.
  SOTTO_KEY_MAX_AGE_DAYS: positiveInt.max(36500).default(90),
  // The maintenance task gives an org a new data key when its newest is older; 0 turns it off.
  SOTTO_DATA_KEY_MAX_AGE_DAYS: z.coerce.number().int().min(0).max(36500).default(90),
  SOTTO_HOST: z.string().min(1).default('0.0.0.0'),
  SOTTO_HTTPS_PORT: port.default(8443),
  SOTTO_HTTP_PORT: port.default(8080),
  SOTTO_PUBLIC_URL: optionalString.pipe(z.url({ protocol: /^https$/ }).optional()),
  SOTTO_TLS_CERT: optionalString,
  SOTTO_TLS_KEY: optionalString,
  SOTTO_TRUST_PROXY: optionalString,
  SOTTO_MIGRATE_ON_START: optionalString.pipe(bool.optional()),
  SOTTO_LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  SOTTO_SECURITY_CONTACT: z.string().min(1).default('mailto:security@example.invalid'),
  SOTTO_ACCESS_TOKEN_TTL_SECONDS: positiveInt.max(3600).default(600),
  SOTTO_REFRESH_ABSOLUTE_DAYS: positiveInt.max(365).default(30),
  SOTTO_REFRESH_IDLE_DAYS: positiveInt.max(365).default(7),
  SOTTO_ARGON2_CONCURRENCY: positiveInt.max(64).default(2),
  SOTTO_BODY_LIMIT_BYTES: positiveInt.default(1024 * 1024),
  // Deadlines of a request's arrival (docs/security.md): slow or stalled clients must not hold
  // sockets, file descriptors or staged files. Fractions of a second are for tests.
  SOTTO_HTTP_HEADERS_TIMEOUT_SECONDS: z.coerce.number().min(0.1).max(600).default(20),
  SOTTO_HTTP_BODY_IDLE_SECONDS: z.coerce.number().min(0.1).max(3600).default(30),
  SOTTO_HTTP_REQUEST_TIMEOUT_SECONDS: z.coerce.number().min(0.1).max(3600).default(60),
  // A saturated node answers new requests 503 + Retry-After (docs/deployment.md, saturation); 0 turns a check off.
  // Off by default: a lone node has nowhere else to send the traffic, and a loaded test machine would trip it.
  SOTTO_SATURATION_MAX_DELAY_MS: z.coerce.number().int().min(0).max(60_000).default(0),
  SOTTO_SATURATION_MAX_UTILIZATION: z.coerce.number().min(0).max(1).default(0),
  SOTTO_SATURATION_MAX_RSS_MB: z.coerce
    .number()
    .int()
    .min(0)
    .max(1024 * 1024)
    .default(0),
  SOTTO_SATURATION_RETRY_AFTER_SECONDS: positiveInt.max(3600).default(5),
  SOTTO_UPLOAD_MIN_BYTES_PER_SECOND: positiveInt.default(8 * 1024),
  SOTTO_MAX_UPLOAD_BYTES: positiveInt.default(2 * 1024 ** 3),
  // The pipeline holds a recording's 16 kHz PCM while it diarizes (≈ 115 MB per hour): this bounds it.
  SOTTO_MAX_AUDIO_HOURS: z.coerce.number().positive().max(24).default(8),
  // Below this much free space on the data disk, /readyz says not ready and uploads are refused (507).
  SOTTO_DISK_MIN_FREE_MB: z.coerce.number().int().min(0).default(512),
  // Plaintext scratch files (staged uploads, work copies, engine WAVs): default <dataDir>/tmp; a
  // tmpfs keeps them off persistent disk. Swept every SOTTO_TMP_SWEEP_SECONDS (docs/audio-storage.md).
  SOTTO_TMP_DIR: optionalString,
  SOTTO_TMP_SWEEP_SECONDS: z.coerce.number().min(0.2).max(3600).default(60),
  SOTTO_JOB_POLL_MS: positiveInt.max(60_000).default(1000),
  SOTTO_JOB_LEASE_SECONDS: positiveInt.max(3600).default(120),
  SOTTO_JOB_MAX_ATTEMPTS: positiveInt.max(20).default(3),
  // A killed server or worker's job is taken again without using an attempt, this many times at most.
  SOTTO_JOB_MAX_LEASE_LAPSES: positiveInt.max(100).default(5),
  SOTTO_JOB_BACKOFF_SECONDS: positiveInt.max(3600).default(30),
  // Recordings of one org transcribed at once on all nodes and workers together (unset: no limit;
  // claims already take turns between orgs).
  SOTTO_JOB_MAX_PER_ORG: positiveInt.max(10_000).optional(),
  // Recordings one org may have waiting or running; uploads beyond it get 429 with Retry-After.
  SOTTO_QUEUE_MAX_PER_ORG: positiveInt.max(1_000_000).default(1000),
  // Recordings this node transcribes at once; they share the engine's decoders in turns.
  SOTTO_JOB_CONCURRENCY: positiveInt.max(16).default(2),
  // Data-portability exports (docs/lifecycle.md): the sealed zip is deleted this long after it is ready.
  SOTTO_EXPORT_TTL_HOURS: positiveInt.max(24 * 30).default(24),
  // Live recordings (docs/live.md). Phase 1 keeps a session's audio in memory (≈ 115 MB per hour per stream).
  SOTTO_LIVE_MAX_PER_ORG: positiveInt.max(1000).default(5),
  SOTTO_LIVE_MAX_MINUTES: positiveInt.max(24 * 60).default(120),
  SOTTO_LIVE_IDLE_SECONDS: positiveInt.max(3600).default(30),
  SOTTO_LIVE_MAX_FRAME_BYTES: positiveInt
    .min(320)
    .max(1024 * 1024)
    .default(64 * 1024),
  SOTTO_LIVE_RECHECK_SECONDS: positiveInt.max(300).default(5),
  // How long an interrupted live session (no ingest socket, or a restart) waits for its client.
  SOTTO_LIVE_RESUME_SECONDS: positiveInt.max(24 * 3600).default(300),
  // The name this `sotto serve` holds its live ingest claims under (src/config/node-id.ts); unset:
  // derived from the host and SOTTO_HTTPS_PORT. Never the same for two processes running at once.
  SOTTO_NODE_ID: optionalString.pipe(z.string().regex(NODE_ID_PATTERN, NODE_ID_RULE).optional()),
  // Partial (revisable) results of an utterance still being spoken, every SOTTO_LIVE_PARTIAL_SECONDS
  // of new speech (a streaming engine answers a partial in milliseconds; others re-recognise).
  SOTTO_LIVE_PARTIALS: optionalString.pipe(bool.optional()),
  SOTTO_LIVE_PARTIAL_SECONDS: z.coerce.number().min(0.2).max(60).default(0.5),
  // Personal API tokens (docs/api-tokens.md): the longest lifetime a token may be given.
  SOTTO_API_TOKEN_MAX_DAYS: positiveInt.max(3650).default(365),
  // Webhooks (docs/webhooks.md). http:// and private addresses are for development only.
  SOTTO_WEBHOOK_ALLOW_HTTP: optionalString.pipe(bool.optional()),
  SOTTO_WEBHOOK_ALLOW_PRIVATE: optionalString.pipe(bool.optional()),
  SOTTO_WEBHOOK_TIMEOUT_SECONDS: positiveInt.max(60).default(10),
  SOTTO_WEBHOOK_MAX_ATTEMPTS: positiveInt.max(30).default(8),
  SOTTO_WEBHOOK_BACKOFF_SECONDS: positiveInt.max(3600).default(30),
  SOTTO_WEBHOOK_CA_FILE: optionalString,
  SOTTO_RATE_LIMIT_API_PER_MINUTE: positiveInt.default(300),
  SOTTO_RATE_LIMIT_AUTH_PER_MINUTE: positiveInt.default(20),
  // Audio playback (GET …/audio and …/audio/stream): a player makes a range request per seek, so
  // these count in their own bucket, never against the API's.
  SOTTO_RATE_LIMIT_AUDIO_PER_MINUTE: positiveInt.default(1200),
  SOTTO_SMTP_URL: optionalString.pipe(z.url({ protocol: /^smtps?$/ }).optional()),
  SOTTO_MAIL_FROM: z.string().default('Sotto <no-reply@localhost>'),
  // Data lifecycle (docs/lifecycle.md): maintenance pass period, cold archive location and store.
  SOTTO_MAINTENANCE_INTERVAL_SECONDS: positiveInt.max(24 * 3600).default(300),
  SOTTO_ARCHIVE_DIR: optionalString,
  // Default: s3 with SOTTO_STORAGE=s3, dir otherwise.
  SOTTO_ARCHIVE_STORE: z.enum(['dir', 'database', 's3']).optional(),
  // Sealed audio, exports (and the archive) in an S3-compatible object store: docs/audio-storage.md.
  SOTTO_STORAGE: z.enum(['local', 's3']).default('local'),
  SOTTO_S3_ENDPOINT: optionalString,
  SOTTO_S3_REGION: optionalString,
  SOTTO_S3_BUCKET: optionalString,
  SOTTO_S3_PREFIX: optionalString,
  SOTTO_S3_ACCESS_KEY_ID: optionalString,
  SOTTO_S3_SECRET_ACCESS_KEY: optionalString,
  SOTTO_S3_SECRET_ACCESS_KEY_FILE: optionalString,
  SOTTO_S3_FORCE_PATH_STYLE: optionalString.pipe(bool.optional()),
  SOTTO_S3_CA_FILE: optionalString,
  // Where the per-org KEKs live (docs/deployment.md#key-store): SOTTO_KEY_DIR, or a bucket (or
  // prefix) of their own. Every SOTTO_KEY_S3_* but the bucket defaults to its SOTTO_S3_* value.
  SOTTO_KEY_STORE: z.enum(['dir', 's3']).default('dir'),
  SOTTO_KEY_S3_ENDPOINT: optionalString,
  SOTTO_KEY_S3_REGION: optionalString,
  SOTTO_KEY_S3_BUCKET: optionalString,
  SOTTO_KEY_S3_PREFIX: optionalString,
  SOTTO_KEY_S3_ACCESS_KEY_ID: optionalString,
  SOTTO_KEY_S3_SECRET_ACCESS_KEY: optionalString,
  SOTTO_KEY_S3_SECRET_ACCESS_KEY_FILE: optionalString,
  SOTTO_KEY_S3_FORCE_PATH_STYLE: optionalString.pipe(bool.optional()),
  SOTTO_KEY_S3_CA_FILE: optionalString,
  SOTTO_SSO_ALLOW_INSECURE_ISSUERS: optionalString.pipe(bool.optional()),
  ...asrShape,
});

export type Env = Record<string, string | undefined>;

/** A zod failure as ConfigError problems, one line per variable ("NAME: why"). */
export function issuesAsProblems(error: z.ZodError): string[] {
  return error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
}
