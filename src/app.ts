import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { PasswordHasher } from './crypto/password.js';
import { systemClock } from './adapters/system/clock.adapter.js';
import { createMailer } from './adapters/network/mail.adapter.js';
import { RateLimitStore } from './adapters/redis/rate-limit.adapter.js';
import { selectEngine } from './adapters/asr/select-engine.js';
import {
  engineModelName,
  EngineReadinessService,
} from './services/transcription/engine-readiness.service.js';
import { createAudioDecoder } from './adapters/media/audio-decoder.adapter.js';
import { UploadFileStore } from './adapters/storage/upload-file.adapter.js';
import { DiskSpace } from './adapters/storage/disk-space.adapter.js';
import { AudioBlobStore } from './adapters/storage/audio-blob.adapter.js';
import { AudioStoreService } from './services/recordings/audio-store.service.js';
import { AudioTicketService } from './services/recordings/audio-ticket.service.js';
import { ActorService } from './services/auth/actor.service.js';
import { AuditService } from './services/operations/audit.service.js';
import { AuthService } from './services/auth/auth.service.js';
import { SignupService } from './services/auth/signup.service.js';
import { HealthService } from './services/operations/health.service.js';
import { ServerNodeService } from './services/operations/server-node.service.js';
import { InvitationService } from './services/orgs/invitation.service.js';
import { KeyService } from './services/keys/key.service.js';
import { KeyAgeService } from './services/keys/key-age.service.js';
import type { LoginGuard } from './services/auth/login-guard.types.js';
import { RateLimitedLoginGuard } from './services/auth/login-guard.service.js';
import { MemberService } from './services/orgs/member.service.js';
import { MfaService } from './services/auth/mfa.service.js';
import { OrgService } from './services/orgs/org.service.js';
import { RecordingRetryService } from './services/recordings/recording-retry.service.js';
import { RecordingSearchService } from './services/search/recording-search.service.js';
import { SearchIndexService } from './services/search/search-index.service.js';
import { RecordingService } from './services/recordings/recording.service.js';
import { SessionService } from './services/auth/session.service.js';
import { SsoService } from './services/sso/sso.service.js';
import { OidcClient } from './adapters/network/oidc-client.adapter.js';
import { SupportService } from './services/orgs/support.service.js';
import { TokenService } from './services/auth/token.service.js';
import { WorkerTokenService } from './services/transcription/worker-token.service.js';
import { ApiTokenService } from './services/auth/api-token.service.js';
import { WebhookService } from './services/webhooks/webhook.service.js';
import { WebhookSender } from './adapters/network/webhook-delivery.adapter.js';
import { TranscriptService } from './services/recordings/transcript.service.js';
import { LiveService } from './services/live/live.service.js';
import { createLiveBus } from './adapters/redis/live-bus.adapter.js';
import { liveAliveTtlMs } from './adapters/redis/live-bus.scripts.js';
import { createTicketStore } from './adapters/redis/ticket.adapter.js';
import { SpoolReplica } from './adapters/redis/live-spool-replica.adapter.js';
import { LiveSpoolStore } from './adapters/storage/live-spool.adapter.js';
import { LiveSpools, replicaBounds } from './services/live/live-spool.js';
import { SchedulerService } from './services/lifecycle/scheduler.service.js';
import { ArchiveService } from './services/lifecycle/archive.service.js';
import { DataKeyRotationService } from './services/keys/data-key-rotation.service.js';
import { ExportFileStore } from './adapters/storage/export-file.adapter.js';
import { OrgExportService } from './services/org-export/org-export.service.js';
import { OrgExportInvalidation } from './services/org-export/org-export-invalidation.js';
import { RecordingDeletionService } from './services/recordings/recording-deletion.service.js';
import { ReauthService } from './services/auth/reauth.service.js';
import { OrgDeletionService } from './services/orgs/org-deletion.service.js';
import { AccountDeletionService } from './services/auth/account-deletion.service.js';
import { OrgFiles } from './adapters/storage/org-files.adapter.js';
import { openStores } from './app-storage.js';
import { createJobServices } from './app-jobs.js';

/**
 * The composition root: builds every service from its dependencies. Entry points (the CLI, tests,
 * benches) call this; nothing below it constructs its own collaborators. What it takes and
 * returns is typed in app.types.ts; the stores (keys, audio, exports, archive) are opened in
 * app-storage.ts; the job queue, the in-process worker and the pipeline are built in app-jobs.ts.
 */
import type { Deps, Services } from './app.types.js';

export type { Deps, Services };

export async function createServices(deps: Deps): Promise<Services> {
  const { config, db, redis, logger } = deps;
  const clock = deps.clock ?? systemClock;
  const hasher = new PasswordHasher(config.argon2Concurrency);
  const stores = await openStores(config, db, logger);
  const keys = new KeyService(db, config.masterKeys, stores.keks);
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
  const rateLimits = new RateLimitStore({ redis, keyPrefix: config.redisPrefix, logger });
  const loginGuard: LoginGuard = new RateLimitedLoginGuard(rateLimits);
  const mailer = createMailer(config.smtpUrl, config.mailFrom);
  const orgs = new OrgService(db, keys, audit);
  const members = new MemberService(db, audit, clock);
  const invitations = new InvitationService({
    db,
    audit,
    hasher,
    mailer,
    clock,
    logger,
    publicUrl: config.publicUrl,
  });
  const support = new SupportService(db, audit, hasher, clock);
  const sessions = new SessionService(db, tokens, audit, clock, {
    absoluteDays: config.refreshAbsoluteDays,
    idleDays: config.refreshIdleDays,
  });
  const apiTokens = new ApiTokenService(db, keys, audit, clock, config.apiTokenMaxDays);
  const actors = new ActorService(db, sessions, clock, apiTokens);
  const webhooks = new WebhookService({
    db,
    keys,
    audit,
    clock,
    sender: new WebhookSender({ ...config.webhooks, timeoutMs: config.webhooks.timeoutSeconds * 1000 }),
    logger,
    opts: {
      maxAttempts: config.webhooks.maxAttempts,
      backoffSeconds: config.webhooks.backoffSeconds,
      maxBackoffSeconds: 6 * 3600,
      ...(deps.random ? { random: deps.random } : {}),
      pollMs: 2000,
      timeoutMs: config.webhooks.timeoutSeconds * 1000,
      rotationGraceSeconds: 24 * 3600,
    },
  });
  const mfa = new MfaService(db, keys, audit, loginGuard, clock);
  const sso = new SsoService({
    db,
    keys,
    audit,
    sessions,
    hasher,
    clock,
    idp: new OidcClient(),
    opts: {
      publicUrl: config.publicUrl,
      allowInsecureIssuers: config.ssoAllowInsecureIssuers,
      stateTtlSeconds: 600,
    },
    linkDeps: { guard: loginGuard, mfa },
  });
  const auth = new AuthService({
    db,
    hasher,
    audit,
    guard: loginGuard,
    sessions,
    mfa,
    clock,
    ssoPolicy: sso,
  });
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
  const uploads = new UploadFileStore(path.join(config.tmpDir, 'uploads'));
  // The data disk's free-space floor: /readyz and uploads (docs/deployment.md, outages).
  const disk = { space: new DiskSpace(config.dataDir), minFreeBytes: config.diskMinFreeBytes };
  const { bucket, blobStore, exportStore, archiveStore, storageCheck } = stores;
  const audioBlobs = new AudioBlobStore(blobStore, path.join(config.tmpDir, 'work'));
  const audio = new AudioStoreService({ db, keys, audit, blobs: audioBlobs, uploads, clock, logger });
  const exportFiles = new ExportFileStore(path.join(config.dataDir, 'exports'), exportStore);
  // Hard deletions expire the org's ready/building exports (docs/lifecycle.md).
  const exportInvalidation = new OrgExportInvalidation(exportFiles);
  const archive = new ArchiveService({
    db,
    keys,
    audit,
    store: archiveStore,
    audio,
    blobs: audioBlobs,
    clock,
    logger,
    exports: exportInvalidation,
  });
  const scheduler = new SchedulerService(db, clock, logger, config.maintenanceIntervalSeconds);
  for (const task of archive.tasks()) scheduler.register(task);
  for (const task of sso.tasks()) scheduler.register(task);
  for (const task of signup.tasks()) scheduler.register(task);
  // Scheduled data-key rotation: new version, background re-encryption, retirement (docs/security.md).
  const dataKeyRotation = new DataKeyRotationService({
    db,
    keys,
    audit,
    archive: archiveStore,
    clock,
    logger,
    opts: {
      maxAgeDays: config.dataKeyMaxAgeDays,
    },
  });
  for (const task of dataKeyRotation.tasks()) scheduler.register(task);
  // Indexes recordings stored before the encrypted search index existed (docs/search.md).
  for (const task of new SearchIndexService(db, keys, logger).tasks()) scheduler.register(task);
  // One bus for live viewing and for recording deletion, which drops a recording's live backlog.
  const liveBus = createLiveBus({
    redis,
    prefix: config.redisPrefix,
    logger,
    aliveTtlMs: liveAliveTtlMs(config.live.recheckSeconds),
  });
  // With Redis, every live spool record is also kept there, so any node can take a session over.
  // Its ingest claims are held under the node id: the one `sotto serve` holds (Deps.nodeId), or a
  // random one for any other process, where nothing would keep a fixed one unique.
  const liveNodeId = deps.nodeId ?? randomUUID();
  const liveSpoolFiles = new LiveSpoolStore(
    path.join(config.dataDir, 'live'),
    redis
      ? new SpoolReplica(redis, config.redisPrefix, { nodeId: liveNodeId, ...replicaBounds(config.live) })
      : undefined,
  );
  const recordingDeletion = new RecordingDeletionService({
    db,
    audit,
    blobs: audioBlobs,
    uploads,
    spools: liveSpoolFiles,
    clock,
    exports: exportInvalidation,
    bus: liveBus,
  });
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
  const { jobQueue, jobs, pipelines } = createJobServices({
    config,
    db,
    keys,
    audit,
    uploads,
    audio,
    engines,
    decoder,
    clock,
    logger,
    random: deps.random,
    engineRecheckMs: deps.engineRecheckMs,
  });
  const workerTokens = new WorkerTokenService(db, audit, clock);
  // Nodes that disagree on SOTTO_PUBLIC_URL reject each other's tokens: said in the log and /readyz.
  const nodes = new ServerNodeService(db, clock, logger, {
    publicUrl: config.publicUrl,
    nodeId: deps.nodeId,
  });
  const health = new HealthService({
    db,
    redis,
    engines,
    queue: jobQueue,
    disk,
    nodes,
    storage: storageCheck,
  });
  const orgExports = new OrgExportService({
    db,
    keys,
    audit,
    files: exportFiles,
    sources: { db, audit, members, recordings, transcripts, audio },
    invalidation: exportInvalidation,
    clock,
    logger,
    opts: { ttlHours: config.exportTtlHours },
  });
  const reauth = new ReauthService(db, hasher, loginGuard, mfa, audit, clock);
  const orgDeletion = new OrgDeletionService({
    db,
    keys,
    audit,
    reauth,
    files: new OrgFiles(
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
