import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import type { z } from 'zod';
import { KeyringError, parseKeyring, type MasterKeyring } from '../crypto/keyring.js';
import { databaseTarget, redisTls, type BackendTls, type DatabaseTarget } from './backend-tls.js';
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

/** The parsed environment: every variable of env-schema.ts, defaults applied. */
type Vars = z.output<typeof schema>;

/** Where the master keyring was read from (`sotto keys status` names it). */
type MasterKeySource = { kind: 'env' } | { kind: 'file'; path: string };

interface MasterKeys {
  masterKeys: MasterKeyring;
  masterKeySource: MasterKeySource;
}

/**
 * What loadConfig works out beyond the parse itself (files read, variables checked against one
 * another), each part's problems already named.
 */
interface Resolved {
  keys: MasterKeys;
  database: DatabaseTarget;
  redisTls: BackendTls | undefined;
  storage: StorageSettings;
  keyStore: KeyStoreSettings;
  asr: AsrConfig;
  archive: { store: NonNullable<Vars['SOTTO_ARCHIVE_STORE']>; dir: string };
}

/**
 * The settings every part of Sotto reads. This mapping *is* the Config type (no hand-written copy
 * to keep in step with it): a property's comment here is what an editor shows on `config.x`, and a
 * property gets its type from the variable it is built from — give a literal `as const` or a
 * typed source, or it widens to string.
 */
function configFrom(v: Vars, r: Resolved) {
  const dataDir = path.resolve(v.SOTTO_DATA_DIR);
  const trustProxy = v.SOTTO_TRUST_PROXY?.split(',')
    .map((s) => s.trim())
    .filter(Boolean);
  return {
    env: v.SOTTO_ENV,
    /** SOTTO_DATA_DIR, resolved to an absolute path. */
    dataDir,
    /** DATABASE_URL without ssl* parameters: TLS is `databaseTls`. */
    databaseUrl: r.database.url,
    /** TLS to PostgreSQL, verify-full (set by sslmode=verify-full or SOTTO_DATABASE_CA_FILE). */
    databaseTls: r.database.tls,
    redisUrl: v.REDIS_URL,
    /** TLS to Redis (rediss://), the server's certificate and host name verified. */
    redisTls: r.redisTls,
    /** Prefix of every Redis key (several deployments or test runs can share one Redis). */
    redisPrefix: v.SOTTO_REDIS_PREFIX,
    masterKeys: r.keys.masterKeys,
    masterKeySource: r.keys.masterKeySource,
    /** The key directory of per-org KEKs (SOTTO_KEY_DIR, default <dataDir>/keys); used with SOTTO_KEY_STORE=dir. */
    keyDir: path.resolve(v.SOTTO_KEY_DIR ?? path.join(dataDir, 'keys')),
    /** Where the per-org KEKs live, shared by all nodes (SOTTO_KEY_STORE): keyDir, or a bucket of their own. */
    keyStore: r.keyStore,
    /** SOTTO_KEY_MAX_AGE_DAYS: an active master key older than this is reported as due for rotation. */
    keyMaxAgeDays: v.SOTTO_KEY_MAX_AGE_DAYS,
    /** SOTTO_DATA_KEY_MAX_AGE_DAYS: scheduled data-key rotation age (0: never). */
    dataKeyMaxAgeDays: v.SOTTO_DATA_KEY_MAX_AGE_DAYS,
    host: v.SOTTO_HOST,
    httpsPort: v.SOTTO_HTTPS_PORT,
    /** 0 disables the redirect listener. */
    httpPort: v.SOTTO_HTTP_PORT,
    /** Every token's issuer and audience, without a trailing slash (default https://localhost:<httpsPort>). */
    publicUrl: (v.SOTTO_PUBLIC_URL ?? `https://localhost:${v.SOTTO_HTTPS_PORT}`).replace(/\/$/, ''),
    tls:
      v.SOTTO_TLS_CERT && v.SOTTO_TLS_KEY
        ? { certFile: v.SOTTO_TLS_CERT, keyFile: v.SOTTO_TLS_KEY }
        : undefined,
    /** Addresses/CIDRs of TLS-terminating proxies. When set, Sotto serves plain HTTP behind them. */
    trustProxy: trustProxy && trustProxy.length > 0 ? trustProxy : undefined,
    migrateOnStart: v.SOTTO_MIGRATE_ON_START ?? v.SOTTO_ENV !== 'production',
    logLevel: v.SOTTO_LOG_LEVEL,
    securityContact: v.SOTTO_SECURITY_CONTACT,
    accessTokenTtlSeconds: v.SOTTO_ACCESS_TOKEN_TTL_SECONDS,
    refreshAbsoluteDays: v.SOTTO_REFRESH_ABSOLUTE_DAYS,
    refreshIdleDays: v.SOTTO_REFRESH_IDLE_DAYS,
    argon2Concurrency: v.SOTTO_ARGON2_CONCURRENCY,
    bodyLimitBytes: v.SOTTO_BODY_LIMIT_BYTES,
    /**
     * Request arrival deadlines: TLS handshake plus headers; longest pause inside a body; a whole
     * body, which uploads may exceed as long as they average the minimum rate (a floor, so big files
     * on slow links still arrive).
     */
    http: {
      headersTimeoutMs: Math.round(v.SOTTO_HTTP_HEADERS_TIMEOUT_SECONDS * 1000),
      bodyIdleMs: Math.round(v.SOTTO_HTTP_BODY_IDLE_SECONDS * 1000),
      requestTimeoutMs: Math.round(v.SOTTO_HTTP_REQUEST_TIMEOUT_SECONDS * 1000),
      uploadMinBytesPerSecond: v.SOTTO_UPLOAD_MIN_BYTES_PER_SECOND,
    },
    /**
     * When this node counts as saturated and refuses new requests (503 + Retry-After, /healthz
     * excepted): the event loop's mean delay over a second, its utilization over a second (0..1),
     * the process's resident memory; 0 disables a check.
     */
    saturation: {
      maxEventLoopDelayMs: v.SOTTO_SATURATION_MAX_DELAY_MS,
      maxEventLoopUtilization: v.SOTTO_SATURATION_MAX_UTILIZATION,
      maxRssBytes: v.SOTTO_SATURATION_MAX_RSS_MB * 1024 * 1024,
      retryAfterSeconds: v.SOTTO_SATURATION_RETRY_AFTER_SECONDS,
    },
    /** Largest audio upload accepted (413 beyond); streamed to disk, never held in memory. */
    maxUploadBytes: v.SOTTO_MAX_UPLOAD_BYTES,
    /** Longest recording accepted (413 at upload, judged from the file's own header, before decoding). */
    maxAudioSeconds: Math.round(v.SOTTO_MAX_AUDIO_HOURS * 3600),
    /** Free space (bytes) the data disk must keep: below it /readyz fails and uploads get 507. */
    diskMinFreeBytes: v.SOTTO_DISK_MIN_FREE_MB * 1024 * 1024,
    /**
     * Transcription queue: poll interval, lease (a dead worker's job is retaken after it), retries,
     * and how many recordings the in-process worker transcribes at once.
     */
    jobs: {
      pollMs: v.SOTTO_JOB_POLL_MS,
      leaseSeconds: v.SOTTO_JOB_LEASE_SECONDS,
      maxAttempts: v.SOTTO_JOB_MAX_ATTEMPTS,
      backoffSeconds: v.SOTTO_JOB_BACKOFF_SECONDS,
      concurrency: v.SOTTO_JOB_CONCURRENCY,
      /** Reclaims after a lapsed lease (a killed holder) before a job fails as worker_crashed. */
      maxLeaseLapses: v.SOTTO_JOB_MAX_LEASE_LAPSES,
      /** Jobs of one org running at once on all workers (undefined: no limit). */
      maxRunningPerOrg: v.SOTTO_JOB_MAX_PER_ORG,
      /** Recordings of one org waiting or running; more uploads are refused (429). */
      maxQueuedPerOrg: v.SOTTO_QUEUE_MAX_PER_ORG,
    },
    /** How long a finished org export stays downloadable before it is deleted. */
    exportTtlHours: v.SOTTO_EXPORT_TTL_HOURS,
    /** Live recordings: concurrent per org, longest session, idle stop, largest frame, socket re-check period. */
    live: {
      maxPerOrg: v.SOTTO_LIVE_MAX_PER_ORG,
      maxMinutes: v.SOTTO_LIVE_MAX_MINUTES,
      idleSeconds: v.SOTTO_LIVE_IDLE_SECONDS,
      maxFrameBytes: v.SOTTO_LIVE_MAX_FRAME_BYTES,
      recheckSeconds: v.SOTTO_LIVE_RECHECK_SECONDS,
      resumeSeconds: v.SOTTO_LIVE_RESUME_SECONDS,
      /** Seconds between partial results of an open utterance; 0 = no partials. */
      partialSeconds: (v.SOTTO_LIVE_PARTIALS ?? true) ? v.SOTTO_LIVE_PARTIAL_SECONDS : 0,
    },
    /**
     * SOTTO_NODE_ID: the name `sotto serve` holds its live ingest claims under (no other command
     * uses it). Unset: it derives one from its host and port (node-id.ts).
     */
    nodeId: v.SOTTO_NODE_ID,
    /** Personal API tokens: the longest lifetime (days) a token may be created with. */
    apiTokenMaxDays: v.SOTTO_API_TOKEN_MAX_DAYS,
    /** Webhook delivery: URL rules (dev relaxations), request timeout, retries, extra trusted CA file. */
    webhooks: {
      allowHttp: v.SOTTO_WEBHOOK_ALLOW_HTTP ?? false,
      allowPrivate: v.SOTTO_WEBHOOK_ALLOW_PRIVATE ?? false,
      timeoutSeconds: v.SOTTO_WEBHOOK_TIMEOUT_SECONDS,
      maxAttempts: v.SOTTO_WEBHOOK_MAX_ATTEMPTS,
      backoffSeconds: v.SOTTO_WEBHOOK_BACKOFF_SECONDS,
      caFile: v.SOTTO_WEBHOOK_CA_FILE,
    },
    /** Default per-client-network request budgets per minute: every /api route, /api/v1/auth/*, audio playback. */
    rateLimitPerMinute: {
      api: v.SOTTO_RATE_LIMIT_API_PER_MINUTE,
      auth: v.SOTTO_RATE_LIMIT_AUTH_PER_MINUTE,
      audio: v.SOTTO_RATE_LIMIT_AUDIO_PER_MINUTE,
    },
    smtpUrl: v.SOTTO_SMTP_URL,
    mailFrom: v.SOTTO_MAIL_FROM,
    /** Seconds between maintenance passes (retention, sweeps); each task is claimed by one node. */
    maintenanceIntervalSeconds: v.SOTTO_MAINTENANCE_INTERVAL_SECONDS,
    /** Plaintext scratch files (SOTTO_TMP_DIR, default <dataDir>/tmp): uploads/, work/, asr/. */
    tmpDir: path.resolve(v.SOTTO_TMP_DIR ?? path.join(dataDir, 'tmp')),
    /** How often every process sweeps killed processes' scratch files (SOTTO_TMP_SWEEP_SECONDS). */
    tmpSweepMs: Math.round(v.SOTTO_TMP_SWEEP_SECONDS * 1000),
    /** Cold archive: a directory (default <dataDir>/archive), the database (multi-node without shared disk) or the bucket. */
    archive: r.archive,
    /** Sealed audio blobs and org exports: the data directory or an S3-compatible bucket (SOTTO_STORAGE). */
    storage: r.storage,
    /** Accept plain-http OIDC issuers (tests, an IdP on localhost); https only otherwise. */
    ssoAllowInsecureIssuers: v.SOTTO_SSO_ALLOW_INSECURE_ISSUERS ?? false,
    /** Speech recognition engine selection (docs/engines.md). */
    asr: r.asr,
  };
}

export type Config = ReturnType<typeof configFrom>;

function resolveMasterKeys(
  v: Pick<Vars, 'SOTTO_DATA_DIR' | 'SOTTO_MASTER_KEY' | 'SOTTO_MASTER_KEY_FILE'>,
  problems: string[],
): MasterKeys | undefined {
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
  return configFrom(v, {
    keys,
    database,
    redisTls: redisTlsSettings,
    storage,
    keyStore,
    asr,
    archive: { store: archiveStore, dir: archiveDir },
  });
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
