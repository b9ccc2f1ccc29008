import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { KeyringError, parseKeyring, type MasterKeyring } from '../crypto/keyring.js';
import { databaseTarget, redisTls, type BackendTls } from './backend-tls.js';
import { storageSettings, type StorageSettings } from './object-storage.js';
import { keyStoreSettings, type KeyStoreSettings } from './key-store.js';
import { asrFrom, asrProblems, type AsrConfig } from './asr-config.js';
import { ConfigError, issuesAsProblems, schema, type Env } from './env-schema.js';
import { defaultMasterKeyFile, isPathInside } from './paths.js';

/**
 * The one place that reads the environment. Parsed once at boot; every bad variable is named in a
 * single ConfigError so an operator fixes them all in one go. The variables and their defaults are
 * in env-schema.ts; what the CLI tools read without the master key in tool-configs.ts.
 */
export { ConfigError } from './env-schema.js';
export { loadAsrConfig, type AsrConfig } from './asr-config.js';
export { defaultMasterKeyFile } from './paths.js';
export {
  loadBootstrapConfig,
  loadBotConfig,
  loadWorkerConfig,
  type BootstrapConfig,
  type BotConfig,
  type WorkerConfig,
} from './tool-configs.js';

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
  /** The key directory of per-org KEKs (SOTTO_KEY_DIR, default <dataDir>/keys); used with SOTTO_KEY_STORE=dir. */
  keyDir: string;
  /** Where the per-org KEKs live, shared by all nodes (SOTTO_KEY_STORE): keyDir, or a bucket of their own. */
  keyStore: KeyStoreSettings;
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
  /**
   * When this node counts as saturated and refuses new requests (503 + Retry-After, /healthz
   * excepted): the event loop's mean delay over a second, its utilization over a second (0..1),
   * the process's resident memory; 0 disables a check.
   */
  saturation: {
    maxEventLoopDelayMs: number;
    maxEventLoopUtilization: number;
    maxRssBytes: number;
    retryAfterSeconds: number;
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
  /**
   * SOTTO_NODE_ID: the name `sotto serve` holds its live ingest claims under (no other command
   * uses it). Unset: it derives one from its host and port (node-id.ts).
   */
  nodeId: string | undefined;
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
  archive: { store: 'dir' | 'database' | 's3'; dir: string };
  /** Sealed audio blobs and org exports: the data directory or an S3-compatible bucket (SOTTO_STORAGE). */
  storage: StorageSettings;
  /** Accept plain-http OIDC issuers (tests, an IdP on localhost); https only otherwise. */
  ssoAllowInsecureIssuers: boolean;
  /** Speech recognition engine selection (docs/engines.md). */
  asr: AsrConfig;
}

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
    const problems = issuesAsProblems(parsed.error);
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
  const storage = storageSettings(v, problems);
  const archiveStore = v.SOTTO_ARCHIVE_STORE ?? (storage.kind === 's3' ? 's3' : 'dir');
  if (archiveStore === 's3' && storage.kind !== 's3')
    problems.push('SOTTO_ARCHIVE_STORE: s3 needs SOTTO_STORAGE=s3 (the archive shares its bucket)');
  const keyStore = keyStoreSettings(v, v.SOTTO_DATA_DIR, storage, problems);
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
    keyStore,
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
    saturation: {
      maxEventLoopDelayMs: v.SOTTO_SATURATION_MAX_DELAY_MS,
      maxEventLoopUtilization: v.SOTTO_SATURATION_MAX_UTILIZATION,
      maxRssBytes: v.SOTTO_SATURATION_MAX_RSS_MB * 1024 * 1024,
      retryAfterSeconds: v.SOTTO_SATURATION_RETRY_AFTER_SECONDS,
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
    nodeId: v.SOTTO_NODE_ID,
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
    archive: { store: archiveStore, dir: archiveDir },
    storage,
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
