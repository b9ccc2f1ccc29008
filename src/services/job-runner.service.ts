import type { Logger } from 'pino';
import { AppError } from '../domain/errors.js';
import type { PipelineResult, PipelineService } from './pipeline.service.js';

/**
 * The transcription loop, generic over where jobs come from: the in-process worker's source is
 * the database queue plus the audio store (recording-job.service.ts), the remote worker's is the
 * /api/v1/worker HTTPS protocol (remote-job.service.ts). The loop is the same: claim, get the
 * audio as a private file, run the pipeline while heartbeating (a lost lease aborts the run),
 * report the result or the failure code, and always give the file back.
 */
export type PipelineProvider = () => Promise<Pick<PipelineService, 'run'>>;

export interface JobSource {
  /** The next due job, or undefined when there is none. */
  claim(): Promise<SourceJob | undefined>;
  /** Errors after which this runner must stop instead of retrying (e.g. a revoked worker token). */
  isFatal?(err: unknown): boolean;
}

export interface SourceJob {
  readonly recordingId: string;
  readonly language: string | null;
  readonly speakersHint: number | null;
  /** The audio as a private local file; release() removes it. */
  checkout(): Promise<{ path: string; release(): Promise<void> }>;
  /** Renews the lease and reports progress; false when the lease was lost. */
  heartbeat(progress: number): Promise<boolean>;
  /** Stores the result; false when the lease was lost meanwhile (nothing stored). */
  complete(result: PipelineResult): Promise<boolean>;
  /** Reports a failed attempt by error code (the queue decides: retry later, or fail for good). */
  fail(code: string): Promise<void>;
  /** Gives the job back at once, the attempt not counted (the worker is stopping). */
  handBack(): Promise<void>;
}

export interface JobRunnerOptions {
  pollMs: number;
  /** Progress and lease renewal are sent at most this often. */
  heartbeatMs: number;
  /** Longest wait between claims after repeated errors (they back off exponentially up to this). */
  maxBackoffMs?: number;
}

export class JobRunner {
  private running: Promise<void> | undefined;
  private stopping = false;
  private abandon = false;
  private current: AbortController | undefined;
  private wake: (() => void) | undefined;
  private fatalError: unknown;

  constructor(
    private readonly source: JobSource,
    private readonly pipeline: PipelineProvider,
    private readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>,
    private readonly opts: JobRunnerOptions,
  ) {}

  get started(): boolean {
    return this.running !== undefined;
  }

  /** The error that stopped the loop on its own (see JobSource.isFatal), if any. */
  get fatal(): unknown {
    return this.fatalError;
  }

  start(): void {
    if (this.running) return;
    this.stopping = false;
    this.abandon = false;
    this.fatalError = undefined;
    this.running = this.loop();
  }

  /** Resolves when the loop has ended (stop() or a fatal error). */
  finished(): Promise<void> {
    return this.running ?? Promise.resolve();
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
    let errors = 0;
    while (!this.stopping) {
      let worked = false;
      try {
        worked = await this.runOnce();
        errors = 0;
      } catch (err) {
        if (this.source.isFatal?.(err)) {
          this.fatalError = err;
          this.stopping = true;
          break;
        }
        errors++;
        this.logger.error({ err }, 'job queue error');
      }
      if (!worked && !this.stopping) {
        const backoff = this.opts.pollMs * 2 ** Math.min(errors, 10);
        await this.sleep(errors > 0 ? Math.min(backoff, this.opts.maxBackoffMs ?? 30_000) : this.opts.pollMs);
      }
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

  /** Claims and runs one job; false when the source had nothing due. */
  async runOnce(): Promise<boolean> {
    const job = await this.source.claim();
    if (!job) return false;
    const controller = new AbortController();
    this.current = controller;
    let fraction = 0;
    let beat: Promise<void> = Promise.resolve();
    const timer = setInterval(() => {
      beat = beat.then(() => this.heartbeat(job, fraction, controller));
    }, this.opts.heartbeatMs);
    let audio: { path: string; release(): Promise<void> } | undefined;
    try {
      audio = await job.checkout();
      controller.signal.throwIfAborted();
      const pipeline = await this.pipeline();
      const result = await pipeline.run({
        file: audio.path,
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
      const stored = await job.complete(result);
      this.logger.info({ recordingId: job.recordingId, stored }, 'transcription finished');
    } catch (err) {
      clearInterval(timer);
      await beat;
      await this.handleFailure(job, err, controller.signal);
    } finally {
      this.current = undefined;
      // The plaintext copy of the audio never outlives the attempt.
      await audio?.release().catch((err: unknown) => this.logger.warn({ err }, 'could not remove job audio'));
    }
    return true;
  }

  /** Renews the lease; a lost lease aborts the run (someone else has the job now). */
  private async heartbeat(job: SourceJob, fraction: number, controller: AbortController): Promise<void> {
    try {
      if (!(await job.heartbeat(fraction))) controller.abort(new AppError('conflict', 'job lease lost'));
    } catch (err) {
      if (this.source.isFatal?.(err)) {
        // Revoked mid-job: nothing this worker does for the job can be accepted any more.
        controller.abort(err);
        return;
      }
      this.logger.warn({ err, recordingId: job.recordingId }, 'job heartbeat failed');
    }
  }

  private async handleFailure(job: SourceJob, err: unknown, signal: AbortSignal): Promise<void> {
    if (signal.aborted && this.stopping) {
      if (!this.abandon) await job.handBack();
      return;
    }
    if (signal.aborted) {
      // Lease lost, or the source refused us: the job is someone else's now.
      if (this.source.isFatal?.(signal.reason)) throw signal.reason;
      return;
    }
    if (this.source.isFatal?.(err)) throw err;
    await job.fail(err instanceof AppError ? err.code : 'internal');
  }
}
