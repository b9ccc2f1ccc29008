import type { Logger } from 'pino';
import type { Database } from '../../db/database.js';
import { withSystem } from '../../db/tenant.js';
import type { RandomSource } from '../../domain/backoff.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import {
  JOBS_CHANNEL,
  recordingJobRepository,
} from '../../repositories/transcription/recording-job.repository.js';
import { sweepScratch } from '../../adapters/storage/scratch-owner.adapter.js';
import type { UploadFileStore } from '../../adapters/storage/upload-file.adapter.js';
import type { AudioStoreService } from '../recordings/audio-store.service.js';
import type { JobQueueService } from './job-queue.service.js';
import { JobRunner } from './job-runner.service.js';
import type { JobRunnerOptions, JobSource, PipelineProvider, SourceJob } from './job-runner.types.js';

export type { PipelineProvider } from './job-runner.types.js';

/**
 * The in-process transcription worker: the generic JobRunner loop (job-runner.service.ts) over a
 * local job source — the database queue (JobQueueService: SKIP LOCKED claims with renewable
 * leases, the encrypted transcript and final status stored in one transaction that first checks
 * the lease) and the audio store, which hands the pipeline a private decrypted copy per run.
 * Remote workers (`sotto worker`) run the same loop over HTTPS instead.
 *
 * Why not pg-boss: it would work (DESIGN notes a PGlite adapter), but the job must be created in
 * the same transaction as its recording (no orphan rows either way) and completed in the same
 * transaction as the transcript; a 100-line table with SKIP LOCKED gives both on PGlite and
 * PostgreSQL without an adapter.
 *
 * A job starts at once when queued: a trigger NOTIFYs when a job becomes due (migration 0020) and
 * the worker LISTENs (PostgreSQL: every node; PGlite: this process), so the poll is only the
 * fallback for delayed retries, expired leases and a lost listener. Without a usable engine the
 * worker claims nothing: queued recordings stay queued, marked as waiting for an engine, their
 * attempts untouched, until an engine appears (looked for every `engineRecheckMs`).
 */
export interface JobOptions {
  pollMs: number;
  /** The loop's backoffs' random source (tests pass a fixed one). */
  random?: RandomSource;
  /** Progress and lease renewal are written at most this often. */
  heartbeatMs: number;
  /**
   * Scratch files of unknown owners (untagged, another machine) not needed by any job and older
   * than this are removed by the sweeps; a killed process's own go at once (scratch-owner.adapter.ts).
   */
  sweepOlderThanMs: number;
  /** How often the scratch files are swept besides start (default 60 s; docs/audio-storage.md). */
  tmpSweepMs?: number;
  /** The speech engine's temporary folder (`<tmp>/asr`), swept with the uploads and work copies. */
  engineTmpDir?: string;
  /** Without a usable engine, how often to look for one again (default 30 s). */
  engineRecheckMs?: number;
  /** Rejects with engine_unavailable while no engine can be chosen (EngineReadinessService.choose). */
  engineReady?: JobRunnerOptions['engineReady'];
  /** Tries the engine itself (EngineReadinessService.verify; see JobRunnerOptions.verifyEngine). */
  verifyEngine?: JobRunnerOptions['verifyEngine'];
  /**
   * Jobs run at once (default 1). They share the engine's decoders, which take turns between
   * recordings: a short upload queued behind a long one finishes without waiting for it.
   */
  concurrency?: number;
}

type LocalAudio = Pick<AudioStoreService, 'checkout' | 'sweep' | 'sweepWork'>;

type LocalQueue = Pick<
  JobQueueService,
  'claim' | 'renew' | 'complete' | 'fail' | 'handBack' | 'markWaitingForEngine' | 'clearWaitingForEngine'
>;

export interface RecordingJobServiceDeps {
  db: Database;
  /**
   * The in-process worker's own queue, built by the composition root without an audit service
   * (app-jobs.ts): the worker is the server itself; remote workers' steps are audited by the
   * queue the worker routes use.
   */
  queue: LocalQueue;
  uploads: UploadFileStore;
  audio: LocalAudio;
  pipeline: PipelineProvider;
  clock: Clock;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  opts: JobOptions;
}

export class RecordingJobService {
  /** One loop per job run at once; the first also answers for the worker's engine state. */
  private readonly runners: JobRunner[];
  private unlisten: (() => Promise<void>) | undefined;
  private sweepTimer: NodeJS.Timeout | undefined;
  private sweeping: Promise<void> | undefined;

  constructor(private readonly deps: RecordingJobServiceDeps) {
    const { opts, clock } = deps;
    const source = this.localSource();
    this.runners = Array.from(
      { length: Math.max(1, opts.concurrency ?? 1) },
      () =>
        new JobRunner(source, deps.pipeline, deps.logger, {
          pollMs: opts.pollMs,
          heartbeatMs: opts.heartbeatMs,
          clock,
          ...(opts.random ? { random: opts.random } : {}),
          ...(opts.engineRecheckMs !== undefined ? { engineRecheckMs: opts.engineRecheckMs } : {}),
          ...(opts.engineReady ? { engineReady: opts.engineReady } : {}),
          ...(opts.verifyEngine ? { verifyEngine: opts.verifyEngine } : {}),
        }),
    );
  }

  private get runner(): JobRunner {
    return this.runners[0]!;
  }

  get started(): boolean {
    return this.runner.started;
  }

  /** Why the worker takes no job now (no usable engine), or undefined. */
  get engineProblem(): string | undefined {
    return this.runners.find((r) => r.engineProblem)?.engineProblem;
  }

  /** Looks for a job now (also what a NOTIFY on the jobs channel does). */
  wake(): void {
    for (const r of this.runners) r.wake();
  }

  /** Sweeps leftover scratch files (now and then on a schedule), then works the queue until stop(). */
  async start(): Promise<void> {
    if (this.runner.started) return;
    await this.sweepLeftovers(true);
    // Blobs whose row never committed or was deleted (sealed, so at start only). Not fatal: an
    // object store that is missing or refused at start is named in the log and /readyz, and the
    // node must still come up to say so; the next start sweeps.
    try {
      await this.deps.audio.sweep(this.deps.opts.sweepOlderThanMs, this.deps.clock.now().getTime());
    } catch (err) {
      this.deps.logger.warn({ err }, 'could not sweep leftover audio blobs at start');
    }
    this.sweepTimer = setInterval(() => {
      this.sweeping ??= this.sweepLeftovers(false).finally(() => (this.sweeping = undefined));
    }, this.deps.opts.tmpSweepMs ?? 60_000);
    this.sweepTimer.unref();
    try {
      this.unlisten ??= await this.deps.db.listen(JOBS_CHANNEL, () => this.wake());
    } catch (err) {
      // Not fatal: the poll still finds every job, only later.
      this.deps.logger.warn({ err }, 'cannot listen for new jobs; the worker polls only');
    }
    for (const r of this.runners) r.start();
  }

  /**
   * Plaintext a killed process left behind — partial uploads, decrypted work copies, engine
   * WAVs — goes as soon as its owner is known to be gone; files of unknown owners by age. A sweep
   * on the schedule never throws: during a database outage it keeps to the owner rule.
   */
  private async sweepLeftovers(atStart: boolean): Promise<void> {
    const now = this.deps.clock.now().getTime();
    const olderThanMs = this.deps.opts.sweepOlderThanMs;
    let keep: Set<string> | null;
    try {
      keep = await withSystem(this.deps.db, (tx) => recordingJobRepository.allAudioPaths(tx));
    } catch (err) {
      if (atStart) throw err;
      keep = null;
    }
    try {
      const uploads = await this.deps.uploads.sweep(keep, olderThanMs, now);
      const work = await this.deps.audio.sweepWork(olderThanMs, now);
      const engine = this.deps.opts.engineTmpDir
        ? await sweepScratch(this.deps.opts.engineTmpDir, { olderThanMs, now })
        : 0;
      if (uploads + work + engine > 0)
        this.deps.logger.info({ uploads, work, engine }, 'removed plaintext leftovers of stopped processes');
    } catch (err) {
      if (atStart) throw err;
      this.deps.logger.warn({ err }, 'scratch sweep failed; retried on the next pass');
    }
  }

  /**
   * Stops polling and aborts the job in hand. Normally the job is handed back at once (due
   * again, attempt not counted). `{ abandon: true }` leaves it as a killed process would: held
   * until its lease expires, then claimed again.
   */
  async stop(opts: { abandon?: boolean } = {}): Promise<void> {
    clearInterval(this.sweepTimer);
    this.sweepTimer = undefined;
    await this.sweeping;
    const unlisten = this.unlisten;
    this.unlisten = undefined;
    await unlisten?.();
    await Promise.all(this.runners.map((r) => r.stop(opts)));
  }

  /** Claims and runs one job; false when the queue had nothing due. */
  runOnce(): Promise<boolean> {
    return this.runner.runOnce();
  }

  private localSource(): JobSource {
    const { queue, audio } = this.deps;
    return {
      engineUnavailable: () => queue.markWaitingForEngine(),
      engineAvailable: () => queue.clearWaitingForEngine(),
      async claim(): Promise<SourceJob | undefined> {
        const job = await queue.claim();
        if (!job) return undefined;
        return {
          recordingId: job.recordingId,
          language: job.language,
          speakersHint: job.speakersHint,
          // The audio waits sealed; the pipeline gets a private decrypted copy for this run only.
          // (A job queued before migration 0007 still names its plain staged file.)
          checkout: async () =>
            job.audioPath
              ? { path: job.audioPath, release: async () => undefined }
              : audio.checkout(job.orgId, job.recordingId),
          heartbeat: (progress, stage) => queue.renew(job, progress, stage),
          complete: (r) =>
            queue.complete(job, {
              body: { segments: r.segments, speakers: r.speakers },
              durationSeconds: r.durationSeconds,
              channels: r.channels,
              engine: r.engine,
            }),
          fail: async (code) => {
            await queue.fail(job, code);
          },
          handBack: async (delaySeconds) => {
            await queue.handBack(job, undefined, delaySeconds);
          },
        };
      },
    };
  }
}
