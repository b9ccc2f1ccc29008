import type { Logger } from 'pino';
import type { Redis } from 'ioredis';
import type { Config } from './config/config.js';
import type { RandomSource } from './domain/backoff.js';
import type { PasswordHasher } from './crypto/password.js';
import type { Database } from './db/database.js';
import type { Clock } from './adapters/system/clock.adapter.js';
import type { Mailer } from './adapters/network/mail.adapter.js';
import type { RateLimitStore } from './adapters/redis/rate-limit.adapter.js';
import type { SelectEngineDeps } from './adapters/asr/select-engine.js';
import type { EngineReadinessService } from './services/transcription/engine-readiness.service.js';
import type { AudioStoreService } from './services/recordings/audio-store.service.js';
import type { AudioTicketService } from './services/recordings/audio-ticket.service.js';
import type { ActorService } from './services/auth/actor.service.js';
import type { AuditService } from './services/operations/audit.service.js';
import type { AuthService } from './services/auth/auth.service.js';
import type { SignupService } from './services/auth/signup.service.js';
import type { HealthService } from './services/operations/health.service.js';
import type { ServerNodeService } from './services/operations/server-node.service.js';
import type { InvitationService } from './services/orgs/invitation.service.js';
import type { KeyService } from './services/keys/key.service.js';
import type { KeyAgeService } from './services/keys/key-age.service.js';
import type { LoginGuard } from './services/auth/login-guard.types.js';
import type { MemberService } from './services/orgs/member.service.js';
import type { MfaService } from './services/auth/mfa.service.js';
import type { OrgService } from './services/orgs/org.service.js';
import type { RecordingJobService } from './services/transcription/recording-job.service.js';
import type { RecordingRetryService } from './services/recordings/recording-retry.service.js';
import type { RecordingSearchService } from './services/search/recording-search.service.js';
import type { RecordingService } from './services/recordings/recording.service.js';
import type { SessionService } from './services/auth/session.service.js';
import type { SsoService } from './services/sso/sso.service.js';
import type { SupportService } from './services/orgs/support.service.js';
import type { TokenService } from './services/auth/token.service.js';
import type { WorkerTokenService } from './services/transcription/worker-token.service.js';
import type { ApiTokenService } from './services/auth/api-token.service.js';
import type { WebhookService } from './services/webhooks/webhook.service.js';
import type { JobQueueService } from './services/transcription/job-queue.service.js';
import type { TranscriptService } from './services/recordings/transcript.service.js';
import type { LiveService } from './services/live/live.service.js';
import type { SchedulerService } from './services/lifecycle/scheduler.service.js';
import type { ArchiveService } from './services/lifecycle/archive.service.js';
import type { OrgExportService } from './services/org-export/org-export.service.js';
import type { OrgDeletionService } from './services/orgs/org-deletion.service.js';
import type { AccountDeletionService } from './services/auth/account-deletion.service.js';
import type { SealedObjectStore } from './adapters/storage/sealed-file-store.adapter.js';

/** What the composition root (app.ts) takes: the process's connections and the test seams. */
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
  /**
   * The node id this process holds (`sotto serve`: SOTTO_NODE_ID or its derived default, see
   * src/config/node-id.ts), naming its live ingest claims; a random one when absent.
   */
  nodeId?: string;
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
  rateLimits: RateLimitStore;
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
