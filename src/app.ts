import { randomUUID } from 'node:crypto';
import path from 'node:path';
import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { Config } from './config/config.js';
import type { RandomSource } from './domain/backoff.js';
import { PasswordHasher } from './crypto/password.js';
import type { Database } from './db/database.js';
import { systemClock, type Clock } from './repositories/clock.repository.js';
import { createMailer, type Mailer } from './repositories/mail.repository.js';
import { RateLimitRepository } from './repositories/rate-limit.repository.js';
import { selectEngine, type SelectEngineDeps } from './repositories/asr/select-engine.js';
import { engineModelName, EngineReadinessService } from './services/engine-readiness.service.js';
import { createAudioDecoder } from './repositories/audio-decoder.repository.js';
import { UploadFileRepository } from './repositories/upload-file.repository.js';
import { DiskSpaceRepository } from './repositories/disk-space.repository.js';
import { AudioBlobRepository } from './repositories/audio-blob.repository.js';
import { AudioStoreService } from './services/audio-store.service.js';
import { AudioTicketService } from './services/audio-ticket.service.js';
import { ActorService } from './services/actor.service.js';
import { AuditService } from './services/audit.service.js';
import { AuthService } from './services/auth.service.js';
import { SignupService } from './services/signup.service.js';
import { HealthService } from './services/health.service.js';
import { ServerNodeService } from './services/server-node.service.js';
import { InvitationService } from './services/invitation.service.js';
import { KeyService } from './services/key.service.js';
import { KeyAgeService } from './services/key-age.service.js';
import type { LoginGuard } from './services/login-guard.js';
import { RateLimitedLoginGuard } from './services/login-guard.service.js';
import { MemberService } from './services/member.service.js';
import { MfaService } from './services/mfa.service.js';
import { OrgService } from './services/org.service.js';
import { PipelineService } from './services/pipeline.service.js';
import { RecordingJobService } from './services/recording-job.service.js';
import { RecordingRetryService } from './services/recording-retry.service.js';
import { RecordingSearchService } from './services/recording-search.service.js';
import { SearchIndexService } from './services/search-index.service.js';
import { RecordingService } from './services/recording.service.js';
import { SessionService } from './services/session.service.js';
import { SsoService } from './services/sso.service.js';
import { OidcClientRepository } from './repositories/oidc-client.repository.js';
import { SupportService } from './services/support.service.js';
import { TokenService } from './services/token.service.js';
import { WorkerTokenService } from './services/worker-token.service.js';
import { ApiTokenService } from './services/api-token.service.js';
import { WebhookService } from './services/webhook.service.js';
import { WebhookSender } from './repositories/webhook-delivery.repository.js';
import { JobQueueService } from './services/job-queue.service.js';
import { TranscriptService } from './services/transcript.service.js';
import { LiveService } from './services/live.service.js';
import { createLiveBus } from './repositories/live-bus.repository.js';
import { createTicketStore } from './repositories/ticket.repository.js';
import { SpoolReplica } from './repositories/live-spool-replica.repository.js';
import { LiveSpoolRepository } from './repositories/live-spool.repository.js';
import { LiveSpools, replicaBounds } from './services/live-spool.js';
import { SchedulerService } from './services/scheduler.service.js';
import { ArchiveService } from './services/archive.service.js';
import { DataKeyRotationService } from './services/data-key-rotation.service.js';
import { DatabaseArchiveStore, DirArchiveStore } from './repositories/archive-store.repository.js';
import { ExportFileRepository } from './repositories/export-file.repository.js';
import { OrgExportService } from './services/org-export.service.js';
import { OrgExportInvalidation } from './services/org-export-invalidation.js';
import { RecordingDeletionService } from './services/recording-deletion.service.js';
import { ReauthService } from './services/reauth.service.js';
import { OrgDeletionService } from './services/org-deletion.service.js';
import { AccountDeletionService } from './services/account-deletion.service.js';
import { OrgFilesRepository } from './repositories/org-files.repository.js';
import { SealedFileStore, type SealedObjectStore } from './repositories/sealed-file-store.repository.js';
import { S3Bucket } from './repositories/s3-bucket.repository.js';
import { S3ObjectStore } from './repositories/s3-object-store.repository.js';
import { S3ArchiveStore } from './repositories/s3-archive-store.repository.js';
import { S3KekRepository } from './repositories/s3-kek.repository.js';
import { OrgKekRepository, type OrgKekStore } from './repositories/org-kek.repository.js';

/**
 * The composition root: builds every service from its dependencies. Entry points (the CLI, tests,
 * benches) call this; nothing below it constructs its own collaborators.
 */
export interface Deps {
  config: Config;
  db: Database;
  redis: Redis | undefined;
  logger: Logger;
  clock?: Clock;
  /** The retry backoffs' random source (tests: a fixed one, so delays are exact); Math.random by default. */
  random?: RandomSource;
  /** Engine selection overrides (tests: a pocketsphinx that is not installed). */
  engineDeps?: SelectEngineDeps;
  /** Without a usable engine, how often the in-process worker looks again (default 30 s). */
  engineRecheckMs?: number;
}

export interface Services {
  config: Config;
  db: Database;
  redis: Redis | undefined;
  logger: Logger;
  clock: Clock;
  hasher: PasswordHasher;
  keys: KeyService;
  /** Master key ages against SOTTO_KEY_MAX_AGE_DAYS (start-up log, /readyz, `sotto keys status`). */
  keyAge: KeyAgeService;
  audit: AuditService;
  tokens: TokenService;
  actors: ActorService;
  health: HealthService;
  /** This node's public URL heartbeat (started by `sotto serve`). */
  nodes: ServerNodeService;
  /** The speech-recognition engine: chosen on first use, whether one is usable (serve, /readyz, admins). */
  engines: EngineReadinessService;
  /** Rate-limit counters (Redis when configured, memory otherwise); used by the HTTP rate-limit plugin. */
  rateLimits: RateLimitRepository;
  loginGuard: LoginGuard;
  mailer: Mailer;
  orgs: OrgService;
  members: MemberService;
  invitations: InvitationService;
  support: SupportService;
  /** Login sessions, refresh-token rotation, devices. */
  sessions: SessionService;
  /** TOTP second factor and recovery codes. */
  mfa: MfaService;
  /** Login, password change, me. */
  auth: AuthService;
  /** Signup that tells no one whether an address has an account; the org exists once the email is verified. */
  signup: SignupService;
  /** OIDC single sign-on: the org's connection, the sign-in flow, require-SSO (docs/sso.md). */
  sso: SsoService;
  /** Upload, list, status, transcript, delete. */
  recordings: RecordingService;
  /** Sealed audio at rest (seal at upload, checkout for the pipeline, storeAudio policy, playback). */
  audio: AudioStoreService;
  /** Short-lived playback tickets, so an <audio> element streams ranges without the bearer token. */
  audioTickets: AudioTicketService;
  /** Transcript read (current/original), edit, export, report. */
  transcripts: TranscriptService;
  /** Search over visible titles and transcripts (encrypted index, candidates decrypted to confirm: docs/search.md). */
  search: RecordingSearchService;
  /** An admin's retry of a failed recording whose audio is still stored (issue 17). */
  recordingRetry: RecordingRetryService;
  /** The in-process transcription worker (started by `serve`; tests start it explicitly). */
  jobs: RecordingJobService;
  /** Remote worker tokens (org admins and the operator's `sotto workers`). */
  workerTokens: WorkerTokenService;
  /** Personal API tokens (`sotto_pat_…`, docs/api-tokens.md). */
  apiTokens: ApiTokenService;
  /** Org webhooks and their delivery loop (started by `serve`; tests call deliverDue). */
  webhooks: WebhookService;
  /** The database side of jobs: the in-process worker's and the remote worker routes'. */
  jobQueue: JobQueueService;
  /** Live recordings: create, WSS ingest and watch, stop → queued job (docs/live.md). */
  live: LiveService;
  /** Periodic maintenance claimed per task in the database (one node per interval); started by `serve`. */
  scheduler: SchedulerService;
  /** Cold archive: retention, list, restore, hard delete with receipt (docs/lifecycle.md). */
  archive: ArchiveService;
  /** Organization deletion: crypto-shredding, then purge (docs/lifecycle.md). */
  orgDeletion: OrgDeletionService;
  /** Account deletion: login ends at once, the rest by the `account-deletions` task. */
  accountDeletion: AccountDeletionService;
  /** Data-portability exports of a whole org (background zip build, sealed at rest, expiry sweep). */
  orgExports: OrgExportService;
  /** Where sealed audio and exports live (SOTTO_STORAGE); `check` for the start-up log and /readyz. */
  storage: Pick<SealedObjectStore, 'kind' | 'check'>;
}

export async function createServices(deps: Deps): Promise<Services> {
  const { config, db, redis, logger } = deps;
  const clock = deps.clock ?? systemClock;
  const hasher = new PasswordHasher(config.argon2Concurrency);
  const keks = await openKekStore(config, logger);
  const keys = new KeyService(db, config.masterKeys, keks);
  // Pre-0012 orgs: data keys wrapped by the master key move under a per-org KEK (idempotent).
  await keys.upgradeLegacy();
  const audit = new AuditService(db, clock, keys);
  const tokens = new TokenService(db, keys, clock, {
    issuer: config.publicUrl,
    audience: `${config.publicUrl}/api`,
    ttlSeconds: config.accessTokenTtlSeconds,
  });
  await tokens.init();
  const engines = new EngineReadinessService(
    () =>
      selectEngine(config.asr, config.dataDir, {
        tmpDir: path.join(config.tmpDir, 'asr'),
        ...deps.engineDeps,
      }),
    logger,
    {
      configured: config.asr.engine,
      modelName: (id) => engineModelName(config.asr, config.dataDir, id),
      clock,
    },
  );
  const rateLimits = new RateLimitRepository({ redis, keyPrefix: config.redisPrefix, logger });
  const loginGuard: LoginGuard = new RateLimitedLoginGuard(rateLimits);
  const mailer = createMailer(config.smtpUrl, config.mailFrom);
  const orgs = new OrgService(db, keys, audit);
  const members = new MemberService(db, audit, clock);
  const invitations = new InvitationService(db, audit, hasher, mailer, clock, logger, config.publicUrl);
  const support = new SupportService(db, audit, hasher, clock);
  const sessions = new SessionService(db, tokens, audit, clock, {
    absoluteDays: config.refreshAbsoluteDays,
    idleDays: config.refreshIdleDays,
  });
  const apiTokens = new ApiTokenService(db, keys, audit, clock, config.apiTokenMaxDays);
  const actors = new ActorService(db, sessions, clock, apiTokens);
  const webhooks = new WebhookService(
    db,
    keys,
    audit,
    clock,
    new WebhookSender({ ...config.webhooks, timeoutMs: config.webhooks.timeoutSeconds * 1000 }),
    logger,
    {
      maxAttempts: config.webhooks.maxAttempts,
      backoffSeconds: config.webhooks.backoffSeconds,
      maxBackoffSeconds: 6 * 3600,
      ...(deps.random ? { random: deps.random } : {}),
      pollMs: 2000,
      timeoutMs: config.webhooks.timeoutSeconds * 1000,
      rotationGraceSeconds: 24 * 3600,
    },
  );
  const mfa = new MfaService(db, keys, audit, loginGuard, clock);
  const sso = new SsoService(
    db,
    keys,
    audit,
    sessions,
    hasher,
    clock,
    new OidcClientRepository(),
    {
      publicUrl: config.publicUrl,
      allowInsecureIssuers: config.ssoAllowInsecureIssuers,
      stateTtlSeconds: 600,
    },
    undefined,
    { guard: loginGuard, mfa },
  );
  const auth = new AuthService(db, hasher, audit, loginGuard, sessions, mfa, clock, sso);
  const signup = new SignupService({
    db,
    hasher,
    keys,
    audit,
    mailer,
    limits: rateLimits,
    clock,
    logger,
    opts: { publicUrl: config.publicUrl, logLinksWithoutSmtp: config.env !== 'production' },
  });
  const decoder = createAudioDecoder({ maxAudioSeconds: config.maxAudioSeconds });
  // Plaintext scratch (docs/audio-storage.md): under SOTTO_TMP_DIR, swept by RecordingJobService.
  const uploads = new UploadFileRepository(path.join(config.tmpDir, 'uploads'));
  // The data disk's free-space floor: /readyz and uploads (docs/deployment.md, outages).
  const disk = { space: new DiskSpaceRepository(config.dataDir), minFreeBytes: config.diskMinFreeBytes };
  // Sealed audio and exports: the data directory, or one S3 bucket shared by every node
  // (docs/audio-storage.md#object-storage). Plaintext scratch stays local either way.
  const bucket = config.storage.kind === 's3' ? new S3Bucket(config.storage.s3) : undefined;
  const blobStore: SealedObjectStore = bucket
    ? new S3ObjectStore(bucket, 'audio', 'blob')
    : new SealedFileStore(path.join(config.dataDir, 'audio'), 'blob');
  const exportStore = bucket ? new S3ObjectStore(bucket, 'exports', 'export') : undefined;
  const audioBlobs = new AudioBlobRepository(blobStore, path.join(config.tmpDir, 'work'));
  const audio = new AudioStoreService(db, keys, audit, audioBlobs, uploads, clock, logger);
  const exportFiles = new ExportFileRepository(path.join(config.dataDir, 'exports'), exportStore);
  // Hard deletions expire the org's ready/building exports (docs/lifecycle.md).
  const exportInvalidation = new OrgExportInvalidation(exportFiles);
  const archiveStore =
    config.archive.store === 'database'
      ? new DatabaseArchiveStore(db)
      : config.archive.store === 's3' && bucket
        ? new S3ArchiveStore(bucket)
        : new DirArchiveStore(config.archive.dir);
  const archive = new ArchiveService(
    db,
    keys,
    audit,
    archiveStore,
    audio,
    audioBlobs,
    clock,
    logger,
    exportInvalidation,
  );
  const scheduler = new SchedulerService(db, clock, logger, config.maintenanceIntervalSeconds);
  for (const task of archive.tasks()) scheduler.register(task);
  for (const task of sso.tasks()) scheduler.register(task);
  for (const task of signup.tasks()) scheduler.register(task);
  // Scheduled data-key rotation: new version, background re-encryption, retirement (docs/security.md).
  const dataKeyRotation = new DataKeyRotationService(db, keys, audit, archiveStore, clock, logger, {
    maxAgeDays: config.dataKeyMaxAgeDays,
  });
  for (const task of dataKeyRotation.tasks()) scheduler.register(task);
  // Indexes recordings stored before the encrypted search index existed (docs/search.md).
  for (const task of new SearchIndexService(db, keys, logger).tasks()) scheduler.register(task);
  // One bus for live viewing and for recording deletion, which drops a recording's live backlog.
  const liveBus = createLiveBus({ redis, prefix: config.redisPrefix, logger });
  // With Redis, every live spool record is also kept there, so any node can take a session over.
  const liveNodeId = randomUUID();
  const liveSpoolFiles = new LiveSpoolRepository(
    path.join(config.dataDir, 'live'),
    redis
      ? new SpoolReplica(redis, config.redisPrefix, { nodeId: liveNodeId, ...replicaBounds(config.live) })
      : undefined,
  );
  const recordingDeletion = new RecordingDeletionService(
    db,
    audit,
    audioBlobs,
    uploads,
    liveSpoolFiles,
    clock,
    exportInvalidation,
    liveBus,
  );
  const recordings = new RecordingService({
    db,
    keys,
    audit,
    decoder,
    uploads,
    audio,
    clock,
    maxUploadBytes: config.maxUploadBytes,
    deletion: recordingDeletion,
    limits: { disk, maxQueuedPerOrg: config.jobs.maxQueuedPerOrg },
  });
  const transcripts = new TranscriptService(db, keys, audit, clock);
  // Default scan and time budgets; the time budget runs on the one clock.
  const search = new RecordingSearchService(db, keys, recordings, undefined, undefined, clock);
  // One engine for jobs and live recognition (a whisper model is loaded once).
  const pipelines = lazyPipeline(engines, logger, decoder);
  const jobs = new RecordingJobService(db, keys, uploads, audio, pipelines, clock, logger, {
    ...config.jobs,
    heartbeatMs: Math.min(1000, (config.jobs.leaseSeconds * 1000) / 3),
    // Longer than any job may hold a file without renewing its lease.
    sweepOlderThanMs: Math.max(3600_000, config.jobs.leaseSeconds * 2000),
    tmpSweepMs: config.tmpSweepMs,
    engineTmpDir: path.join(config.tmpDir, 'asr'),
    engineRecheckMs: deps.engineRecheckMs ?? 30_000,
    ...(deps.random ? { random: deps.random } : {}),
    engineReady: () => engines.choose(),
    verifyEngine: () => engines.verify(),
  });
  const workerTokens = new WorkerTokenService(db, audit, clock);
  const jobQueue = new JobQueueService(
    db,
    keys,
    audit,
    clock,
    logger,
    {
      leaseSeconds: config.jobs.leaseSeconds,
      maxAttempts: config.jobs.maxAttempts,
      backoffSeconds: config.jobs.backoffSeconds,
      maxLeaseLapses: config.jobs.maxLeaseLapses,
      ...(config.jobs.maxRunningPerOrg ? { maxRunningPerOrg: config.jobs.maxRunningPerOrg } : {}),
      ...(deps.random ? { random: deps.random } : {}),
    },
    audio,
    uploads,
  );
  // Nodes that disagree on SOTTO_PUBLIC_URL reject each other's tokens: said in the log and /readyz.
  const nodes = new ServerNodeService(db, clock, logger, { publicUrl: config.publicUrl });
  // A node without its key bucket can neither create an org nor open one not yet cached.
  const storageCheck: Pick<SealedObjectStore, 'check'> =
    keks.kind === 's3'
      ? {
          check: async () => {
            const [data, keyStore] = await Promise.all([blobStore.check(), keks.check()]);
            return data !== 'ok' ? data : keyStore;
          },
        }
      : blobStore;
  const health = new HealthService(db, redis, engines, jobQueue, disk, nodes, storageCheck);
  const orgExports = new OrgExportService(
    db,
    keys,
    audit,
    exportFiles,
    { db, audit, members, recordings, transcripts, audio },
    clock,
    logger,
    { ttlHours: config.exportTtlHours },
  );
  const reauth = new ReauthService(db, hasher, loginGuard, mfa, audit, clock);
  const orgDeletion = new OrgDeletionService({
    db,
    keys,
    audit,
    reauth,
    files: new OrgFilesRepository(
      ['audio', 'live', 'exports'].map((d) => path.join(config.dataDir, d)),
      bucket ? [blobStore, exportFiles] : [],
    ),
    archive,
    clock,
    logger,
    uploads,
  });
  const accountDeletion = new AccountDeletionService({
    db,
    hasher,
    audit,
    reauth,
    recordings: recordingDeletion,
    mailer,
    clock,
    logger,
    archive,
    exports: exportInvalidation,
  });
  for (const task of accountDeletion.tasks()) scheduler.register(task);
  for (const task of orgExports.tasks()) scheduler.register(task);
  return {
    config,
    db,
    redis,
    logger,
    clock,
    hasher,
    keys,
    keyAge: new KeyAgeService(db, config, clock),
    audit,
    tokens,
    actors,
    health,
    nodes,
    engines,
    rateLimits,
    loginGuard,
    mailer,
    orgs,
    members,
    invitations,
    support,
    sessions,
    mfa,
    auth,
    signup,
    sso,
    recordings,
    audio,
    audioTickets: new AudioTicketService(
      db,
      audio,
      // Enough for every open player of a busy node; without Redis the oldest go first when full.
      // In memory: at most 1 000 live tickets per org, 10 000 in all (an org's flood evicts its own).
      createTicketStore(redis, config.redisPrefix, 'audio', { maxEntries: 10_000, maxPerGroup: 1_000 }),
      clock,
      audit,
    ),
    transcripts,
    search,
    jobs,
    recordingRetry: new RecordingRetryService(db, audit, clock),
    workerTokens,
    apiTokens,
    webhooks,
    jobQueue,
    orgExports,
    storage: blobStore,
    scheduler,
    archive,
    orgDeletion,
    accountDeletion,
    live: new LiveService({
      db,
      keys,
      audit,
      audio,
      uploads,
      bus: liveBus,
      spools: new LiveSpools(db, keys, liveSpoolFiles, clock),
      tickets: createTicketStore(redis, config.redisPrefix, 'live'),
      engine: async () => (await pipelines()).engine,
      clock,
      logger,
      limits: config.live,
      nodeId: liveNodeId,
    }),
  };
}

/** The per-org KEK store (SOTTO_KEY_STORE): the key directory, or a bucket of its own. */
async function openKekStore(config: Config, logger: Logger): Promise<OrgKekStore> {
  if (config.keyStore.kind === 'dir') return new OrgKekRepository(config.keyStore.dir);
  const { store, versioning } = await S3KekRepository.open(new S3Bucket(config.keyStore.s3));
  if (versioning === 'unknown')
    logger.warn(
      { keyStore: store.location },
      'could not read the versioning of SOTTO_KEY_S3_BUCKET: make sure versioning and object lock are off, or deleted organizations keep their keys as old versions (docs/deployment.md#key-store)',
    );
  const status = await store.check();
  if (status !== 'ok')
    logger.error(
      { keyStore: store.location, status },
      'key store unusable (SOTTO_KEY_S3_*): no organization can be created or opened until fixed; /readyz reports storage not ok',
    );
  return store;
}

/**
 * The engine is chosen on first use, not at start-up (EngineReadinessService): a server without
 * an engine still serves everything else, and its uploads wait queued for one. A failed choice is
 * not cached, so installing an engine needs no restart.
 */
function lazyPipeline(
  engines: EngineReadinessService,
  logger: Logger,
  decoder: ReturnType<typeof createAudioDecoder>,
): () => Promise<PipelineService> {
  let pipeline: PipelineService | undefined;
  return async () => {
    const { engine } = await engines.choose();
    if (pipeline?.engine !== engine) pipeline = new PipelineService({ decoder, engine, logger });
    return pipeline;
  };
}
