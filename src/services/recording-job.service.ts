import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import { withSystem, withTenant } from '../db/tenant.js';
import { AppError } from '../domain/errors.js';
import type { Clock } from '../repositories/clock.repository.js';
import { recordingJobRepository, type ClaimedJob } from '../repositories/recording-job.repository.js';
import { recordingRepository } from '../repositories/recording.repository.js';
import type { UploadFileRepository } from '../repositories/upload-file.repository.js';
import type { KeyService } from './key.service.js';
import type { PipelineService } from './pipeline.service.js';
import { transcriptLocation, type TranscriptBody } from './recording.service.js';

/**
 * The in-process transcription worker. It polls the recording_jobs queue (SKIP LOCKED claims with
 * renewable leases, see recording-job.repository.ts), runs the pipeline, and stores the encrypted
 * transcript and the final status in one transaction that first checks it still holds the job —
 * so a job taken over after an expired lease, or deleted meanwhile, is never written twice.
 *
 * Why not pg-boss: it would work (DESIGN notes a PGlite adapter), but the job must be created in
 * the same transaction as its recording (no orphan rows either way) and completed in the same
 * transaction as the transcript; a 100-line table with SKIP LOCKED gives both on PGlite and
 * PostgreSQL without an adapter.
 */
export interface JobOptions {
  pollMs: number;
  leaseSeconds: number;
  maxAttempts: number;
  /** First retry delay; doubles with each attempt. */
  backoffSeconds: number;
  /** Progress and lease renewal are written at most this often. */
  heartbeatMs: number;
  /** Staged files not needed by any job and older than this are removed at start. */
  sweepOlderThanMs: number;
}

export type PipelineProvider = () => Promise<Pick<PipelineService, 'run'>>;

/** Failures that another attempt cannot fix: the job fails at once. */
const PERMANENT = new Set([
  'undecodable_audio',
  'unsupported_media_type',
  'payload_too_large',
  'engine_unavailable',
  'decoder_unavailable',
]);

export class RecordingJobService {
  private running: Promise<void> | undefined;
  private stopping = false;
  private abandon = false;
  private current: AbortController | undefined;
  private wake: (() => void) | undefined;

  constructor(
    private readonly db: Database,
    private readonly keys: KeyService,
    private readonly uploads: UploadFileRepository,
    private readonly pipeline: PipelineProvider,
    private readonly clock: Clock,
    private readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>,
    private readonly opts: JobOptions,
  ) {}

  get started(): boolean {
    return this.running !== undefined;
  }

  /** Sweeps leftover staged files, then works the queue until stop(). */
  async start(): Promise<void> {
    if (this.running) return;
    this.stopping = false;
    this.abandon = false;
    const keep = await withSystem(this.db, (tx) => recordingJobRepository.allAudioPaths(tx));
    const removed = await this.uploads.sweep(keep, this.opts.sweepOlderThanMs, this.clock.now().getTime());
    if (removed > 0) this.logger.info({ removed }, 'removed leftover upload files');
    this.running = this.loop();
  }

  /**
   * Stops polling and aborts the job in hand. Normally the job is handed back at once (due
   * again, attempt not counted). `{ abandon: true }` leaves it as a killed process would: held
   * until its lease expires, then claimed again.
   */
  async stop(opts: { abandon?: boolean } = {}): Promise<void> {
    if (!this.running) return;
    this.stopping = true;
    this.abandon = opts.abandon ?? false;
    this.current?.abort(new AppError('unavailable', 'worker stopping'));
    this.wake?.();
    await this.running;
    this.running = undefined;
  }

  private async loop(): Promise<void> {
    while (!this.stopping) {
      let worked = false;
      try {
        worked = await this.runOnce();
      } catch (err) {
        this.logger.error({ err }, 'job queue error');
      }
      if (!worked && !this.stopping) await this.sleep(this.opts.pollMs);
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms);
      function done() {
        clearTimeout(timer);
        resolve();
      }
      this.wake = done;
    });
  }

  /** Claims and runs one job; false when the queue had nothing due. */
  async runOnce(): Promise<boolean> {
    const job = await withSystem(this.db, async (tx) => {
      const claimed = await recordingJobRepository.claim(tx, this.opts.leaseSeconds);
      if (claimed) await recordingRepository.markProcessing(tx, claimed.recordingId, this.clock.now());
      return claimed;
    });
    if (!job) return false;
    const controller = new AbortController();
    this.current = controller;
    let fraction = 0;
    let beat: Promise<void> = Promise.resolve();
    const timer = setInterval(() => {
      beat = beat.then(() => this.heartbeat(job, fraction, controller));
    }, this.opts.heartbeatMs);
    try {
      const pipeline = await this.pipeline();
      const result = await pipeline.run({
        file: job.audioPath,
        ...(job.speakersHint ? { speakers: job.speakersHint } : {}),
        ...(job.language ? { language: job.language } : {}),
        signal: controller.signal,
        onProgress: (f) => {
          fraction = f;
        },
      });
      clearInterval(timer);
      await beat;
      controller.signal.throwIfAborted();
      const stored = await this.complete(job, {
        body: { segments: result.segments, speakers: result.speakers },
        durationSeconds: result.durationSeconds,
        channels: result.channels,
        engine: result.engine,
      });
      if (stored) await this.uploads.remove(job.audioPath);
      this.logger.info({ recordingId: job.recordingId, stored }, 'transcription finished');
    } catch (err) {
      clearInterval(timer);
      await beat;
      await this.handleFailure(job, err, controller.signal);
    } finally {
      this.current = undefined;
    }
    return true;
  }

  /** Renews the lease and writes progress; a lost lease aborts the run (someone else has the job). */
  private async heartbeat(job: ClaimedJob, fraction: number, controller: AbortController): Promise<void> {
    try {
      const held = await withTenant(this.db, { orgId: job.orgId, userId: null }, async (tx) => {
        if (!(await recordingJobRepository.renew(tx, job.recordingId, job.leaseId, this.opts.leaseSeconds)))
          return false;
        await recordingRepository.setProgress(tx, job.recordingId, fraction, this.clock.now());
        return true;
      });
      if (!held) controller.abort(new AppError('conflict', 'job lease lost'));
    } catch (err) {
      this.logger.warn({ err, recordingId: job.recordingId }, 'job heartbeat failed');
    }
  }

  private complete(
    job: ClaimedJob,
    r: { body: TranscriptBody; durationSeconds: number; channels: number; engine: string },
  ): Promise<boolean> {
    return withTenant(this.db, { orgId: job.orgId, userId: null }, async (tx) => {
      if (!(await recordingJobRepository.holdsLease(tx, job.recordingId, job.leaseId))) return false;
      const now = this.clock.now();
      const bodyEnc = await this.keys.encryptJson(tx, transcriptLocation(job.orgId, job.recordingId), r.body);
      await recordingRepository.upsertTranscript(tx, {
        recordingId: job.recordingId,
        orgId: job.orgId,
        bodyEnc,
        now,
      });
      await recordingRepository.markDone(tx, job.recordingId, { ...r, now });
      await recordingJobRepository.remove(tx, job.recordingId);
      return true;
    });
  }

  private async handleFailure(job: ClaimedJob, err: unknown, signal: AbortSignal): Promise<void> {
    const ctx = { orgId: job.orgId, userId: null };
    const code = err instanceof AppError ? err.code : 'internal';
    if (signal.aborted && this.stopping) {
      if (this.abandon) return;
      await withTenant(this.db, ctx, async (tx) => {
        if (
          await recordingJobRepository.release(tx, job.recordingId, job.leaseId, {
            delaySeconds: 0,
            countAttempt: false,
          })
        )
          await recordingRepository.requeue(tx, job.recordingId, this.clock.now());
      });
      return;
    }
    if (signal.aborted) return; // lease lost: the new holder owns the job and its file
    const permanent = PERMANENT.has(code) || job.attempts >= this.opts.maxAttempts;
    // Never log the error message itself at info level with content; codes and ids only.
    this.logger.warn(
      { recordingId: job.recordingId, code, attempt: job.attempts, permanent },
      'transcription failed',
    );
    const failed = await withTenant(this.db, ctx, async (tx) => {
      if (!permanent) {
        const delaySeconds = this.opts.backoffSeconds * 2 ** (job.attempts - 1);
        if (
          await recordingJobRepository.release(tx, job.recordingId, job.leaseId, {
            delaySeconds,
            countAttempt: true,
          })
        )
          await recordingRepository.requeue(tx, job.recordingId, this.clock.now());
        return false;
      }
      if (!(await recordingJobRepository.holdsLease(tx, job.recordingId, job.leaseId))) return false;
      await recordingRepository.markFailed(tx, job.recordingId, code, this.clock.now());
      await recordingJobRepository.remove(tx, job.recordingId);
      return true;
    });
    if (failed) await this.uploads.remove(job.audioPath);
  }
}
