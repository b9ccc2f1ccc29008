import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { isPathInside } from './paths.js';
import { z } from 'zod';
import { KeyringError, parseKeyring, type MasterKeyring } from '../crypto/keyring.js';
import { databaseTarget, redisTls, type BackendTls } from './backend-tls.js';

/**
 * The one place that reads the environment. Parsed once at boot; every bad variable is named in a
 * single ConfigError so an operator fixes them all in one go.
 */
export class ConfigError extends Error {
  override name = 'ConfigError';
  constructor(readonly problems: string[]) {
    super(`Invalid configuration:\n${problems.map((p) => `  - ${p}`).join('\n')}`);
  }
}

const port = z.coerce.number().int().min(0).max(65535);
const positiveInt = z.coerce.number().int().positive();
const bool = z
  .enum(['true', 'false', '1', '0', 'yes', 'no'])
  .transform((v) => v === 'true' || v === '1' || v === 'yes');
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v));

// Speech recognition (docs/engines.md). Kept as one block so `sotto models` can read it alone.
const asrShape = {
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

const schema = z.object({
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
  SOTTO_ARCHIVE_STORE: z.enum(['dir', 'database']).default('dir'),
  SOTTO_SSO_ALLOW_INSECURE_ISSUERS: optionalString.pipe(bool.optional()),
  ...asrShape,
});

export interface AsrConfig {
  engine: 'auto' | 'whisper' | 'sphinx' | 'openai';
  device: 'cpu' | 'cuda';
  /** Batch decoders (pocketsphinx); undefined: one per core. */
  concurrency: number | undefined;
  whisperModel: string;
  whisperLiveContext: 'auto' | 'on' | 'off';
  openai: { baseUrl: string | undefined; apiKey: string | undefined; model: string; timeoutMs: number };
  /** PATH: the directories searched for the engine's executables. */
  searchPath: string;
}

function asrFrom(v: z.infer<z.ZodObject<typeof asrShape>>): AsrConfig {
  return {
    engine: v.SOTTO_ASR_ENGINE,
    device: v.SOTTO_ASR_DEVICE,
    concurrency: v.SOTTO_ASR_CONCURRENCY,
    whisperModel: v.SOTTO_WHISPER_MODEL,
    whisperLiveContext: v.SOTTO_WHISPER_LIVE_CONTEXT,
    openai: {
      baseUrl: v.SOTTO_OPENAI_BASE_URL,
      apiKey: v.SOTTO_OPENAI_API_KEY,
      model: v.SOTTO_OPENAI_MODEL,
      timeoutMs: v.SOTTO_OPENAI_TIMEOUT_SECONDS * 1000,
    },
    searchPath: v.PATH,
  };
}

function asrProblems(asr: AsrConfig): string[] {
  return asr.engine === 'openai' && !asr.openai.baseUrl
    ? ['SOTTO_OPENAI_BASE_URL: required when SOTTO_ASR_ENGINE=openai']
    : [];
}

/** Just the speech-recognition settings and the data dir: what `sotto models` needs (no master key). */
export function loadAsrConfig(env: Env = process.env): AsrConfig & { dataDir: string } {
  const parsed = z.object({ SOTTO_DATA_DIR: schema.shape.SOTTO_DATA_DIR, ...asrShape }).safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  const asr = asrFrom(parsed.data);
  const problems = asrProblems(asr);
  if (problems.length > 0) throw new ConfigError(problems);
  return { ...asr, dataDir: path.resolve(parsed.data.SOTTO_DATA_DIR) };
}

export interface Config {
  env: 'development' | 'production' | 'test';
  dataDir: string;
  /** DATABASE_URL without ssl* parameters: TLS is `databaseTls`. */
  databaseUrl: string | undefined;
  /** TLS to PostgreSQL, verify-full (set by sslmode=verify-full or SOTTO_DATABASE_CA_FILE). */
  databaseTls: BackendTls | undefined;
  redisUrl: string | undefined;
  /** TLS to Redis (rediss://), the server's certificate and host name verified. */
  redisTls: BackendTls | undefined;
  /** Prefix of every Redis key (several deployments or test runs can share one Redis). */
  redisPrefix: string;
  masterKeys: MasterKeyring;
  masterKeySource: { kind: 'env' } | { kind: 'file'; path: string };
  /** The external key store of per-org KEKs (SOTTO_KEY_DIR, default <dataDir>/keys); shared by all nodes. */
  keyDir: string;
  /** SOTTO_KEY_MAX_AGE_DAYS: an active master key older than this is reported as due for rotation. */
  keyMaxAgeDays: number;
  /** SOTTO_DATA_KEY_MAX_AGE_DAYS: scheduled data-key rotation age (0: never). */
  dataKeyMaxAgeDays: number;
  host: string;
  httpsPort: number;
  /** 0 disables the redirect listener. */
  httpPort: number;
  publicUrl: string;
  tls: { certFile: string; keyFile: string } | undefined;
  /** Addresses/CIDRs of TLS-terminating proxies. When set, Sotto serves plain HTTP behind them. */
  trustProxy: string[] | undefined;
  migrateOnStart: boolean;
  logLevel: string;
  securityContact: string;
  accessTokenTtlSeconds: number;
  refreshAbsoluteDays: number;
  refreshIdleDays: number;
  argon2Concurrency: number;
  bodyLimitBytes: number;
  /**
   * Request arrival deadlines: TLS handshake plus headers; longest pause inside a body; a whole
   * body, which uploads may exceed as long as they average the minimum rate (a floor, so big files
   * on slow links still arrive).
   */
  http: {
    headersTimeoutMs: number;
    bodyIdleMs: number;
    requestTimeoutMs: number;
    uploadMinBytesPerSecond: number;
  };
  /** Largest audio upload accepted (413 beyond); streamed to disk, never held in memory. */
  maxUploadBytes: number;
  /** Longest recording accepted (413 at upload, judged from the file's own header, before decoding). */
  maxAudioSeconds: number;
  /** Free space (bytes) the data disk must keep: below it /readyz fails and uploads get 507. */
  diskMinFreeBytes: number;
  /**
   * Transcription queue: poll interval, lease (a dead worker's job is retaken after it), retries,
   * and how many recordings the in-process worker transcribes at once.
   */
  jobs: {
    pollMs: number;
    leaseSeconds: number;
    maxAttempts: number;
    backoffSeconds: number;
    concurrency: number;
    /** Reclaims after a lapsed lease (a killed holder) before a job fails as worker_crashed. */
    maxLeaseLapses: number;
    /** Jobs of one org running at once on all workers (undefined: no limit). */
    maxRunningPerOrg: number | undefined;
    /** Recordings of one org waiting or running; more uploads are refused (429). */
    maxQueuedPerOrg: number;
  };
  /** How long a finished org export stays downloadable before it is deleted. */
  exportTtlHours: number;
  /** Live recordings: concurrent per org, longest session, idle stop, largest frame, socket re-check period. */
  live: {
    maxPerOrg: number;
    maxMinutes: number;
    idleSeconds: number;
    maxFrameBytes: number;
    recheckSeconds: number;
    resumeSeconds: number;
    /** Seconds between partial results of an open utterance; 0 = no partials. */
    partialSeconds: number;
  };
  /** Personal API tokens: the longest lifetime (days) a token may be created with. */
  apiTokenMaxDays: number;
  /** Webhook delivery: URL rules (dev relaxations), request timeout, retries, extra trusted CA file. */
  webhooks: {
    allowHttp: boolean;
    allowPrivate: boolean;
    timeoutSeconds: number;
    maxAttempts: number;
    backoffSeconds: number;
    caFile: string | undefined;
  };
  /** Default per-client-network request budgets per minute: every /api route, and /api/v1/auth/*. */
  rateLimitPerMinute: { api: number; auth: number; audio: number };
  smtpUrl: string | undefined;
  mailFrom: string;
  /** Seconds between maintenance passes (retention, sweeps); each task is claimed by one node. */
  maintenanceIntervalSeconds: number;
  /** Plaintext scratch files (SOTTO_TMP_DIR, default <dataDir>/tmp): uploads/, work/, asr/. */
  tmpDir: string;
  /** How often every process sweeps killed processes' scratch files (SOTTO_TMP_SWEEP_SECONDS). */
  tmpSweepMs: number;
  /** Cold archive: a directory (default <dataDir>/archive) or the database (multi-node without shared disk). */
  archive: { store: 'dir' | 'database'; dir: string };
  /** Accept plain-http OIDC issuers (tests, an IdP on localhost); https only otherwise. */
  ssoAllowInsecureIssuers: boolean;
  /** Speech recognition engine selection (docs/engines.md). */
  asr: AsrConfig;
}

export function defaultMasterKeyFile(dataDir: string): string {
  return path.join(dataDir, 'keys', 'master.key');
}

type Env = Record<string, string | undefined>;

function resolveMasterKeys(
  v: Pick<z.infer<typeof schema>, 'SOTTO_DATA_DIR' | 'SOTTO_MASTER_KEY' | 'SOTTO_MASTER_KEY_FILE'>,
  problems: string[],
): Pick<Config, 'masterKeys' | 'masterKeySource'> | undefined {
  if (v.SOTTO_MASTER_KEY && v.SOTTO_MASTER_KEY_FILE) {
    problems.push('SOTTO_MASTER_KEY and SOTTO_MASTER_KEY_FILE are both set: choose one');
    return undefined;
  }
  if (v.SOTTO_MASTER_KEY) {
    try {
      return { masterKeys: parseKeyring(v.SOTTO_MASTER_KEY), masterKeySource: { kind: 'env' } };
    } catch (err) {
      problems.push(`SOTTO_MASTER_KEY: ${err instanceof KeyringError ? err.message : 'unreadable'}`);
      return undefined;
    }
  }
  const explicit = v.SOTTO_MASTER_KEY_FILE !== undefined;
  const file = path.resolve(v.SOTTO_MASTER_KEY_FILE ?? defaultMasterKeyFile(v.SOTTO_DATA_DIR));
  if (!existsSync(file)) {
    problems.push(
      explicit
        ? `SOTTO_MASTER_KEY_FILE: ${file} does not exist`
        : `SOTTO_MASTER_KEY: no master key configured (set SOTTO_MASTER_KEY or SOTTO_MASTER_KEY_FILE, or run \`sotto init\` to create ${file})`,
    );
    return undefined;
  }
  try {
    return {
      masterKeys: parseKeyring(readFileSync(file, 'utf8')),
      masterKeySource: { kind: 'file', path: file },
    };
  } catch (err) {
    const reason = err instanceof KeyringError ? err.message : (err as Error).message;
    problems.push(`SOTTO_MASTER_KEY_FILE: ${file}: ${reason}`);
    return undefined;
  }
}

export function loadConfig(env: Env = process.env): Config {
  const parsed = schema.safeParse(env);
  if (!parsed.success) {
    const problems = parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`);
    // Name master-key problems in the same error as the others.
    const keyVars = {
      SOTTO_DATA_DIR: env.SOTTO_DATA_DIR || './sotto-data',
      SOTTO_MASTER_KEY: env.SOTTO_MASTER_KEY || undefined,
      SOTTO_MASTER_KEY_FILE: env.SOTTO_MASTER_KEY_FILE || undefined,
    };
    resolveMasterKeys(keyVars, problems);
    throw new ConfigError(problems);
  }
  const v = parsed.data;
  const problems: string[] = [];
  const keys = resolveMasterKeys(v, problems);
  if ((v.SOTTO_TLS_CERT === undefined) !== (v.SOTTO_TLS_KEY === undefined)) {
    problems.push('SOTTO_TLS_CERT and SOTTO_TLS_KEY must be set together');
  }
  for (const name of ['SOTTO_TLS_CERT', 'SOTTO_TLS_KEY'] as const) {
    const file = v[name];
    if (file !== undefined && !existsSync(file)) problems.push(`${name}: ${file} does not exist`);
  }
  const trustProxy = v.SOTTO_TRUST_PROXY?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  // The public URL is every token's issuer and audience: nodes that each default to their own
  // https://localhost:PORT reject one another's tokens (401) behind a load balancer.
  if (v.SOTTO_ENV === 'production' && v.SOTTO_PUBLIC_URL === undefined) {
    problems.push(
      'SOTTO_PUBLIC_URL: required in production (the https:// address users reach; every node must share it, tokens are issued for it)',
    );
  }
  const asr = asrFrom(v);
  problems.push(...asrProblems(asr));
  const archiveDir = archiveDirOf(v.SOTTO_DATA_DIR, v.SOTTO_ARCHIVE_DIR, problems);
  const database = databaseTarget(v, problems);
  const redisTlsSettings = redisTls(v, problems);
  if (problems.length > 0 || !keys) throw new ConfigError(problems);

  const dataDir = path.resolve(v.SOTTO_DATA_DIR);
  return {
    env: v.SOTTO_ENV,
    dataDir,
    databaseUrl: database.url,
    databaseTls: database.tls,
    redisUrl: v.REDIS_URL,
    redisTls: redisTlsSettings,
    redisPrefix: v.SOTTO_REDIS_PREFIX,
    ...keys,
    keyDir: path.resolve(v.SOTTO_KEY_DIR ?? path.join(dataDir, 'keys')),
    keyMaxAgeDays: v.SOTTO_KEY_MAX_AGE_DAYS,
    dataKeyMaxAgeDays: v.SOTTO_DATA_KEY_MAX_AGE_DAYS,
    host: v.SOTTO_HOST,
    httpsPort: v.SOTTO_HTTPS_PORT,
    httpPort: v.SOTTO_HTTP_PORT,
    publicUrl: (v.SOTTO_PUBLIC_URL ?? `https://localhost:${v.SOTTO_HTTPS_PORT}`).replace(/\/$/, ''),
    tls:
      v.SOTTO_TLS_CERT && v.SOTTO_TLS_KEY
        ? { certFile: v.SOTTO_TLS_CERT, keyFile: v.SOTTO_TLS_KEY }
        : undefined,
    trustProxy: trustProxy && trustProxy.length > 0 ? trustProxy : undefined,
    migrateOnStart: v.SOTTO_MIGRATE_ON_START ?? v.SOTTO_ENV !== 'production',
    logLevel: v.SOTTO_LOG_LEVEL,
    securityContact: v.SOTTO_SECURITY_CONTACT,
    accessTokenTtlSeconds: v.SOTTO_ACCESS_TOKEN_TTL_SECONDS,
    refreshAbsoluteDays: v.SOTTO_REFRESH_ABSOLUTE_DAYS,
    refreshIdleDays: v.SOTTO_REFRESH_IDLE_DAYS,
    argon2Concurrency: v.SOTTO_ARGON2_CONCURRENCY,
    bodyLimitBytes: v.SOTTO_BODY_LIMIT_BYTES,
    http: {
      headersTimeoutMs: Math.round(v.SOTTO_HTTP_HEADERS_TIMEOUT_SECONDS * 1000),
      bodyIdleMs: Math.round(v.SOTTO_HTTP_BODY_IDLE_SECONDS * 1000),
      requestTimeoutMs: Math.round(v.SOTTO_HTTP_REQUEST_TIMEOUT_SECONDS * 1000),
      uploadMinBytesPerSecond: v.SOTTO_UPLOAD_MIN_BYTES_PER_SECOND,
    },
    maxUploadBytes: v.SOTTO_MAX_UPLOAD_BYTES,
    maxAudioSeconds: Math.round(v.SOTTO_MAX_AUDIO_HOURS * 3600),
    exportTtlHours: v.SOTTO_EXPORT_TTL_HOURS,
    diskMinFreeBytes: v.SOTTO_DISK_MIN_FREE_MB * 1024 * 1024,
    jobs: {
      pollMs: v.SOTTO_JOB_POLL_MS,
      leaseSeconds: v.SOTTO_JOB_LEASE_SECONDS,
      maxAttempts: v.SOTTO_JOB_MAX_ATTEMPTS,
      backoffSeconds: v.SOTTO_JOB_BACKOFF_SECONDS,
      concurrency: v.SOTTO_JOB_CONCURRENCY,
      maxLeaseLapses: v.SOTTO_JOB_MAX_LEASE_LAPSES,
      maxRunningPerOrg: v.SOTTO_JOB_MAX_PER_ORG,
      maxQueuedPerOrg: v.SOTTO_QUEUE_MAX_PER_ORG,
    },
    live: {
      maxPerOrg: v.SOTTO_LIVE_MAX_PER_ORG,
      maxMinutes: v.SOTTO_LIVE_MAX_MINUTES,
      idleSeconds: v.SOTTO_LIVE_IDLE_SECONDS,
      maxFrameBytes: v.SOTTO_LIVE_MAX_FRAME_BYTES,
      recheckSeconds: v.SOTTO_LIVE_RECHECK_SECONDS,
      resumeSeconds: v.SOTTO_LIVE_RESUME_SECONDS,
      partialSeconds: (v.SOTTO_LIVE_PARTIALS ?? true) ? v.SOTTO_LIVE_PARTIAL_SECONDS : 0,
    },
    apiTokenMaxDays: v.SOTTO_API_TOKEN_MAX_DAYS,
    webhooks: {
      allowHttp: v.SOTTO_WEBHOOK_ALLOW_HTTP ?? false,
      allowPrivate: v.SOTTO_WEBHOOK_ALLOW_PRIVATE ?? false,
      timeoutSeconds: v.SOTTO_WEBHOOK_TIMEOUT_SECONDS,
      maxAttempts: v.SOTTO_WEBHOOK_MAX_ATTEMPTS,
      backoffSeconds: v.SOTTO_WEBHOOK_BACKOFF_SECONDS,
      caFile: v.SOTTO_WEBHOOK_CA_FILE,
    },
    rateLimitPerMinute: {
      api: v.SOTTO_RATE_LIMIT_API_PER_MINUTE,
      auth: v.SOTTO_RATE_LIMIT_AUTH_PER_MINUTE,
      audio: v.SOTTO_RATE_LIMIT_AUDIO_PER_MINUTE,
    },
    smtpUrl: v.SOTTO_SMTP_URL,
    mailFrom: v.SOTTO_MAIL_FROM,
    maintenanceIntervalSeconds: v.SOTTO_MAINTENANCE_INTERVAL_SECONDS,
    tmpDir: path.resolve(v.SOTTO_TMP_DIR ?? path.join(dataDir, 'tmp')),
    tmpSweepMs: Math.round(v.SOTTO_TMP_SWEEP_SECONDS * 1000),
    archive: { store: v.SOTTO_ARCHIVE_STORE, dir: archiveDir },
    ssoAllowInsecureIssuers: v.SOTTO_SSO_ALLOW_INSECURE_ISSUERS ?? false,
    asr,
  };
}

/** The cold archive folder: never the active audio folder, nor inside it or around it. */
function archiveDirOf(dataDirVar: string, archiveVar: string | undefined, problems: string[]): string {
  const audio = path.join(path.resolve(dataDirVar), 'audio');
  const dir = path.resolve(archiveVar ?? path.join(path.resolve(dataDirVar), 'archive'));
  if (isPathInside(dir, audio) || isPathInside(audio, dir))
    problems.push(
      `SOTTO_ARCHIVE_DIR: ${dir} must be a different folder from the active audio store (${audio})`,
    );
  return dir;
}

/**
 * What `sotto init` and `sotto migrate` need, without loadConfig's master-key requirement: init
 * is what creates the key, and migrations never use it. Bad variables are still all named.
 */
export interface BootstrapConfig {
  env: Config['env'];
  dataDir: string;
  databaseUrl: string | undefined;
  databaseTls: BackendTls | undefined;
  logLevel: string;
  /** Where the key file is (SOTTO_MASTER_KEY_FILE, or the data-dir default). */
  masterKeyFile: string;
  /** Which variable the operator set explicitly for the master key, if any. */
  masterKeyVariable: 'SOTTO_MASTER_KEY' | 'SOTTO_MASTER_KEY_FILE' | undefined;
}

export function loadBootstrapConfig(env: Env = process.env): BootstrapConfig {
  const parsed = schema
    .pick({
      SOTTO_ENV: true,
      SOTTO_DATA_DIR: true,
      DATABASE_URL: true,
      SOTTO_DATABASE_CA_FILE: true,
      SOTTO_LOG_LEVEL: true,
      SOTTO_MASTER_KEY: true,
      SOTTO_MASTER_KEY_FILE: true,
    })
    .safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  const v = parsed.data;
  const problems: string[] = [];
  const database = databaseTarget(v, problems);
  if (problems.length > 0) throw new ConfigError(problems);
  const dataDir = path.resolve(v.SOTTO_DATA_DIR);
  return {
    env: v.SOTTO_ENV,
    dataDir,
    databaseUrl: database.url,
    databaseTls: database.tls,
    logLevel: v.SOTTO_LOG_LEVEL,
    masterKeyFile: path.resolve(v.SOTTO_MASTER_KEY_FILE ?? defaultMasterKeyFile(dataDir)),
    masterKeyVariable: v.SOTTO_MASTER_KEY
      ? 'SOTTO_MASTER_KEY'
      : v.SOTTO_MASTER_KEY_FILE
        ? 'SOTTO_MASTER_KEY_FILE'
        : undefined,
  };
}

/**
 * What `sotto worker` needs: the engine settings (SOTTO_ASR_*, SOTTO_DATA_DIR for whisper models),
 * the log level and the worker token. Never the master key or the database: a remote worker has
 * neither (docs/workers.md).
 */
export interface WorkerConfig {
  asr: AsrConfig;
  dataDir: string;
  logLevel: string;
  /** SOTTO_WORKER_TOKEN (preferred over --token: argv is visible to every local user in ps). */
  token: string | undefined;
  /** Parent of the worker's private folders (SOTTO_TMP_DIR, default <dataDir>/tmp/worker). */
  workDir: string;
  /** How often leftovers of killed workers are swept (SOTTO_TMP_SWEEP_SECONDS). */
  tmpSweepMs: number;
}

export function loadWorkerConfig(env: Env = process.env): WorkerConfig {
  const { dataDir, ...asr } = loadAsrConfig(env);
  const parsed = z
    .object({
      SOTTO_LOG_LEVEL: schema.shape.SOTTO_LOG_LEVEL,
      SOTTO_WORKER_TOKEN: optionalString,
      SOTTO_TMP_DIR: optionalString,
      SOTTO_TMP_SWEEP_SECONDS: schema.shape.SOTTO_TMP_SWEEP_SECONDS,
    })
    .safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  return {
    asr,
    dataDir,
    logLevel: parsed.data.SOTTO_LOG_LEVEL,
    token: parsed.data.SOTTO_WORKER_TOKEN,
    workDir: path.join(path.resolve(parsed.data.SOTTO_TMP_DIR ?? path.join(dataDir, 'tmp')), 'worker'),
    tmpSweepMs: Math.round(parsed.data.SOTTO_TMP_SWEEP_SECONDS * 1000),
  };
}

/** What `sotto bot` reads from the environment: only its access token (never server settings). */
export interface BotConfig {
  /** SOTTO_TOKEN (preferred over --token: argv is visible to every local user in ps). */
  token: string | undefined;
  /** PATH: where the microphone recorder (arecord or sox) is looked for. */
  searchPath: string;
}

export function loadBotConfig(env: Env = process.env): BotConfig {
  const parsed = z.object({ SOTTO_TOKEN: optionalString, PATH: z.string().default('') }).safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(parsed.error.issues.map((issue) => `${issue.path.join('.')}: ${issue.message}`));
  }
  return { token: parsed.data.SOTTO_TOKEN, searchPath: parsed.data.PATH };
}
