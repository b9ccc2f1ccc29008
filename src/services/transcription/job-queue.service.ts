import type { Logger } from 'pino';
import type { Database, Queryable } from '../../db/database.js';
import { withSystem, withTenant } from '../../db/tenant.js';
import { backoffMs } from '../../domain/backoff.js';
import { AppError, notFound } from '../../domain/errors.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import {
  recordingJobRepository,
  type ClaimedJob,
} from '../../repositories/transcription/recording-job.repository.js';
import { recordingRepository } from '../../repositories/recordings/recording.repository.js';
import type { UploadFileStore } from '../../adapters/storage/upload-file.adapter.js';
import type { AuditService } from '../operations/audit.service.js';
import type { KeyService } from '../keys/key.service.js';
import { transcriptLocation } from '../recordings/recording.service.js';
import type { WorkerPrincipal } from './worker-token.service.js';
import { enqueueWebhooks, recordingEvent } from '../webhooks/webhook-outbox.js';
import { nameLiveSpeakers } from '../live/live-speakers.js';
import type { JobStage } from './job-runner.types.js';
import { stageAt } from './pipeline.service.js';
import { indexRecording } from '../search/search-index.service.js';
import {
  MAX_LEASE_LAPSES,
  PERMANENT_FAILURES,
  REMOTE_WORKER_ACTIVE_SECONDS,
  type FailOutcome,
  type HeldJob,
  type JobAudio,
  type JobQueueOptions,
  type JobResult,
} from './job-queue.types.js';

/** No retry of a failed job waits longer than this, however many attempts are allowed. */
const MAX_JOB_BACKOFF_MS = 24 * 3600_000;

const leaseLost = () => new AppError('conflict', 'This worker no longer holds the job (lease lost)');

export interface JobQueueServiceDeps {
  db: Database;
  keys: KeyService;
  /** null: a queue only the in-process worker uses (the server itself; its steps are not audited). */
  audit: Pick<AuditService, 'record'> | null;
  clock: Clock;
  logger: Pick<Logger, 'warn'>;
  opts: JobQueueOptions;
  audio: JobAudio;
  uploads: Pick<UploadFileStore, 'remove'>;
}

/**
 * The database side of transcription jobs, shared by the in-process runner and the remote worker
 * routes: claim (SKIP LOCKED + lease), renew the lease with progress, store the encrypted result
 * only while the lease is held, and fail (retry with backoff, or for good) or hand back.
 *
 * Remote workers are bound to their token: a claim records the token on the job, and every later
 * call must present both the lease id and the same token. An org token claims only its org's
 * jobs, inside that org's RLS context (the database refuses any other org's row). Remote claims,
 * results and failures are audited (ids and codes only); the in-process worker's are not (it is
 * the server itself).
 */
export class JobQueueService {
  constructor(private readonly deps: JobQueueServiceDeps) {}

  get leaseSeconds(): number {
    return this.deps.opts.leaseSeconds;
  }

  /**
   * Takes a due job, the oldest of the org with the fewest running (recordingJobRepository.claim):
   * any org for the in-process worker and platform tokens, else the token's org. A job reclaimed after more lease lapses than allowed fails (`worker_crashed`)
   * instead, and the next one is taken.
   */
  async claim(worker?: WorkerPrincipal): Promise<ClaimedJob | undefined> {
    for (;;) {
      const claimed = await this.claimOne(worker);
      if (!claimed?.crashed) return claimed?.job;
      const { job } = claimed;
      this.deps.logger.warn(
        { recordingId: job.recordingId, leaseLapses: job.leaseLapses },
        'transcription failed: its worker stopped every time (killed or crashed)',
      );
      // In the job's org (webhooks are tenant rows); the claim just taken holds the lease.
      const failed = await withTenant(this.deps.db, { orgId: job.orgId, userId: null }, (tx) =>
        this.failForGood(tx, job, 'worker_crashed'),
      );
      if (failed) await this.settle(job);
    }
  }

  /** A lease from now on this queue's clock (the clock run_after was written with). */
  private leaseTimes(): { now: Date; until: Date } {
    const now = this.deps.clock.now();
    return { now, until: new Date(now.getTime() + this.deps.opts.leaseSeconds * 1000) };
  }

  /** Remote workers seen since then count as active. */
  private activeSince(): Date {
    return new Date(this.deps.clock.now().getTime() - REMOTE_WORKER_ACTIVE_SECONDS * 1000);
  }

  private claimOne(worker?: WorkerPrincipal): Promise<{ job: ClaimedJob; crashed: boolean } | undefined> {
    const tokenId = worker?.tokenId ?? null;
    const take = async (tx: Queryable) => {
      const job = await recordingJobRepository.claim(
        tx,
        this.leaseTimes(),
        tokenId,
        this.deps.opts.maxRunningPerOrg ?? null,
      );
      if (!job) return undefined;
      if (job.leaseLapses > (this.deps.opts.maxLeaseLapses ?? MAX_LEASE_LAPSES))
        return { job, crashed: true };
      await recordingRepository.markProcessing(tx, job.recordingId, this.deps.clock.now());
      if (worker) await this.record(tx, worker, job, 'job.claimed', { attempt: job.attempts });
      return { job, crashed: false };
    };
    return worker?.orgId
      ? withTenant(this.deps.db, { orgId: worker.orgId, userId: null }, take)
      : withSystem(this.deps.db, take);
  }

  /**
   * No engine on this server: queued recordings that no active remote worker could take either
   * are marked as waiting for one (the API shows why they do not start). Claims clear the mark.
   */
  async markWaitingForEngine(): Promise<void> {
    await withSystem(this.deps.db, (tx) =>
      recordingJobRepository.markWaitingForEngine(tx, this.activeSince()),
    );
  }

  /** An engine is usable again: no recording waits for one any more. */
  async clearWaitingForEngine(): Promise<void> {
    await withSystem(this.deps.db, (tx) => recordingJobRepository.clearWaitingForEngine(tx));
  }

  /** Active remote workers that could take `orgId`'s jobs (its own and platform tokens). */
  activeRemoteWorkers(orgId: string): Promise<number> {
    return withSystem(this.deps.db, (tx) =>
      recordingJobRepository.activeRemoteWorkers(tx, orgId, this.activeSince()),
    );
  }

  /** Whether any remote worker (of any org) is active: /readyz reports it. */
  anyActiveRemoteWorker(): Promise<boolean> {
    return withSystem(this.deps.db, (tx) =>
      recordingJobRepository.anyActiveRemoteWorker(tx, this.activeSince()),
    );
  }

  /**
   * Extends the lease and writes progress and stage; false when the lease was lost. A worker that
   * reports no stage (a remote worker) gets the one its fraction falls in.
   */
  renew(job: HeldJob, progress: number, stage: JobStage = stageAt(progress)): Promise<boolean> {
    return withTenant(this.deps.db, { orgId: job.orgId, userId: null }, async (tx) => {
      if (!(await recordingJobRepository.renew(tx, job.recordingId, job.leaseId, this.leaseTimes())))
        return false;
      await recordingRepository.setProgress(tx, job.recordingId, progress, this.deps.clock.now(), stage);
      return true;
    });
  }

  /** Stores the encrypted transcript and ends the job, only if this lease still holds it. */
  async complete(job: HeldJob, r: JobResult, worker?: WorkerPrincipal): Promise<boolean> {
    const stored = await withTenant(this.deps.db, { orgId: job.orgId, userId: null }, async (tx) => {
      if (!(await recordingJobRepository.holdsLease(tx, job.recordingId, job.leaseId))) return false;
      const now = this.deps.clock.now();
      const bodyEnc = await this.deps.keys.encryptJson(
        tx,
        transcriptLocation(job.orgId, job.recordingId),
        r.body,
      );
      await recordingRepository.upsertTranscript(tx, {
        recordingId: job.recordingId,
        orgId: job.orgId,
        bodyEnc,
        now,
      });
      // A live recording's participant labels become its speaker names (live-speakers.ts).
      const named = await nameLiveSpeakers(tx, this.deps.keys, job.orgId, job.recordingId, {
        speakers: r.body.speakers,
        channels: r.channels,
      });
      // The search index commits with the transcript (docs/search.md), after the names: it
      // indexes the speakers by the names the panel shows.
      await indexRecording(tx, this.deps.keys, job.orgId, job.recordingId);
      if (named === 'unreadable')
        this.deps.logger.warn(
          { recordingId: job.recordingId },
          'live speaker names unreadable; transcript kept unnamed',
        );
      await recordingRepository.markDone(tx, job.recordingId, { ...r, now });
      await enqueueWebhooks(tx, recordingEvent(job.orgId, job.recordingId, 'recording.done', now));
      await recordingJobRepository.remove(tx, job.recordingId);
      if (worker)
        await this.record(tx, worker, job, 'job.completed', {
          segments: r.body.segments.length,
          durationSeconds: r.durationSeconds,
        });
      return true;
    });
    if (stored) await this.settle(job);
    return stored;
  }

  /**
   * A failed attempt: retried after a jittered backoff (at least backoffSeconds, its ceiling
   * doubling each time), or failed
   * for good when the code is permanent or the attempts are used up. 'lost' when the lease was no
   * longer held.
   */
  async fail(job: HeldJob, code: string, worker?: WorkerPrincipal): Promise<FailOutcome> {
    const permanent = PERMANENT_FAILURES.has(code) || job.attempts >= this.deps.opts.maxAttempts;
    // Codes and ids only: an error message may quote content.
    this.deps.logger.warn(
      { recordingId: job.recordingId, code, attempt: job.attempts, permanent },
      'transcription failed',
    );
    const outcome = await withTenant(this.deps.db, { orgId: job.orgId, userId: null }, async (tx) => {
      let result: FailOutcome;
      if (!permanent) {
        // Never sooner than backoffSeconds: what failed (an engine, a model server) gets that long
        // to recover before the next attempt is spent; above it the jitter spreads jobs that
        // failed together.
        const delayMs = backoffMs(
          {
            baseMs: this.deps.opts.backoffSeconds * 2000,
            capMs: MAX_JOB_BACKOFF_MS,
            minMs: this.deps.opts.backoffSeconds * 1000,
          },
          job.attempts,
          this.deps.opts.random,
        );
        const released = await recordingJobRepository.release(tx, job.recordingId, job.leaseId, {
          runAfter: new Date(this.deps.clock.now().getTime() + delayMs),
          countAttempt: true,
        });
        if (released) await recordingRepository.requeue(tx, job.recordingId, this.deps.clock.now());
        result = released ? 'retry' : 'lost';
      } else result = (await this.failForGood(tx, job, code)) ? 'failed' : 'lost';
      if (worker && result !== 'lost')
        await this.record(tx, worker, job, 'job.failed', { code, attempt: job.attempts, outcome: result });
      return result;
    });
    if (outcome === 'failed') await this.settle(job);
    return outcome;
  }

  /**
   * Gives the job back, the attempt not counted: at once (a worker stopping), or after
   * `delaySeconds` (an outage — database, Redis, full disk — that was not the job's fault).
   */
  handBack(job: HeldJob, worker?: WorkerPrincipal, delaySeconds = 0): Promise<boolean> {
    return withTenant(this.deps.db, { orgId: job.orgId, userId: null }, async (tx) => {
      const released = await recordingJobRepository.release(tx, job.recordingId, job.leaseId, {
        runAfter: new Date(this.deps.clock.now().getTime() + delaySeconds * 1000),
        countAttempt: false,
      });
      if (!released) return false;
      await recordingRepository.requeue(tx, job.recordingId, this.deps.clock.now());
      if (worker) await this.record(tx, worker, job, 'job.released', delaySeconds ? { delaySeconds } : {});
      return true;
    });
  }

  /**
   * The job `recordingId` as held by this worker with this lease. A job the worker cannot see (none,
   * or another org's for an org token) is 404; one it can see but does not hold (lease expired and
   * taken, token revoked and the job handed back) is 409.
   */
  async heldBy(worker: WorkerPrincipal, recordingId: string, leaseId: string): Promise<HeldJob> {
    const row = await withSystem(this.deps.db, (tx) => recordingJobRepository.lease(tx, recordingId));
    if (!row || (worker.orgId !== null && row.orgId !== worker.orgId)) throw notFound('Job');
    if (row.leaseId !== leaseId || row.workerTokenId !== worker.tokenId) throw leaseLost();
    return { recordingId, orgId: row.orgId, leaseId, attempts: row.attempts };
  }

  // The remote worker routes: each checks that this token holds the job with this lease first.

  /** GET /worker/jobs/:id/audio: exactly 404 unless this token holds the job with this lease. */
  async workerAudio(worker: WorkerPrincipal, recordingId: string, leaseId: string) {
    let job: HeldJob;
    try {
      job = await this.heldBy(worker, recordingId, leaseId);
    } catch (err) {
      if (err instanceof AppError && err.code === 'conflict') throw notFound('Job');
      throw err;
    }
    await withTenant(this.deps.db, { orgId: job.orgId, userId: null }, (tx) =>
      this.record(tx, worker, job, 'job.audio_read', {}),
    );
    return this.deps.audio.openPlain(job.orgId, job.recordingId);
  }

  async workerHeartbeat(worker: WorkerPrincipal, recordingId: string, leaseId: string, progress: number) {
    const job = await this.heldBy(worker, recordingId, leaseId);
    if (!(await this.renew(job, progress))) throw leaseLost();
  }

  async workerComplete(worker: WorkerPrincipal, recordingId: string, leaseId: string, r: JobResult) {
    const job = await this.heldBy(worker, recordingId, leaseId);
    if (!(await this.complete(job, r, worker))) throw leaseLost();
  }

  async workerFail(worker: WorkerPrincipal, recordingId: string, leaseId: string, code: string) {
    const job = await this.heldBy(worker, recordingId, leaseId);
    const outcome = await this.fail(job, code, worker);
    if (outcome === 'lost') throw leaseLost();
    return outcome;
  }

  async workerRelease(worker: WorkerPrincipal, recordingId: string, leaseId: string, delaySeconds = 0) {
    const job = await this.heldBy(worker, recordingId, leaseId);
    if (!(await this.handBack(job, worker, delaySeconds))) throw leaseLost();
  }

  /** Ends the job as failed for good, if this lease still holds it (the caller's org context). */
  private async failForGood(tx: Queryable, job: HeldJob, code: string): Promise<boolean> {
    if (!(await recordingJobRepository.holdsLease(tx, job.recordingId, job.leaseId))) return false;
    const now = this.deps.clock.now();
    await recordingRepository.markFailed(tx, job.recordingId, code, now);
    await enqueueWebhooks(tx, recordingEvent(job.orgId, job.recordingId, 'recording.failed', now));
    await recordingJobRepository.remove(tx, job.recordingId);
    return true;
  }

  private async settle(job: HeldJob): Promise<void> {
    try {
      if (job.audioPath) await this.deps.uploads.remove(job.audioPath);
      await this.deps.audio.settle(job.orgId, job.recordingId);
    } catch (err) {
      // The result is committed; a failure here leaves audio for the start-up sweep.
      this.deps.logger.warn({ err, recordingId: job.recordingId }, 'could not settle the job audio');
    }
  }

  private async record(
    tx: Queryable,
    worker: WorkerPrincipal,
    job: HeldJob,
    action: string,
    details: Record<string, unknown>,
  ): Promise<void> {
    if (!this.deps.audit) throw new Error('remote worker steps need the audit service');
    return this.deps.audit.record(tx, {
      orgId: job.orgId,
      actorId: worker.tokenId,
      actorKind: 'worker',
      action,
      targetType: 'recording',
      targetId: job.recordingId,
      details,
    });
  }
}
