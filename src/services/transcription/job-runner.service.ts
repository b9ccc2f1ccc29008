import type { Logger } from 'pino';
import { backoffMs, type BackoffPolicy } from '../../domain/backoff.js';
import { AppError } from '../../domain/errors.js';
import { OUTAGE_RETRY_AFTER_SECONDS } from '../../domain/outage.js';
import { systemClock, type Clock } from '../../adapters/system/clock.adapter.js';
import { EngineWatch, isEngineUnavailable, NoEngine } from './job-runner-engine.js';
import { transientOutage, whileOutage } from './job-runner-outage.js';
import type {
  JobRunnerOptions,
  JobSource,
  JobStage,
  PipelineProvider,
  SourceJob,
} from './job-runner.types.js';

/**
 * The transcription loop (job-runner.types.ts: where its jobs come from): claim, get the audio as
 * a private file, run the pipeline while heartbeating (a lost lease aborts the run), report the
 * result or the failure code, and always give the file back.
 */
export class JobRunner {
  private running: Promise<void> | undefined;
  private stopping = false;
  private abandon = false;
  private current: AbortController | undefined;
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private fatalError: unknown;
  /** Set when an outage interrupted a job: the loop claims nothing before this time (on the clock). */
  private outageUntil: number | undefined;
  private readonly clock: Clock;
  private readonly errorBackoff: BackoffPolicy;
  private readonly engine: EngineWatch;

  constructor(
    private readonly source: JobSource,
    private readonly pipeline: PipelineProvider,
    private readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>,
    private readonly opts: JobRunnerOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    const { pollMs, maxBackoffMs = 30_000 } = opts;
    this.errorBackoff = { baseMs: pollMs * 2, capMs: maxBackoffMs, minMs: pollMs };
    this.engine = new EngineWatch(source, pipeline, logger, this.clock, opts);
  }

  get started(): boolean {
    return this.running !== undefined;
  }

  /** Why the runner claims nothing now (no usable engine), or undefined when it works normally. */
  get engineProblem(): string | undefined {
    return this.engine.problem;
  }

  /**
   * Looks for a job now instead of at the next poll (a job was queued: LISTEN/NOTIFY). A wake-up
   * while a job runs is remembered, so the next claim follows at once.
   */
  wake(): void {
    this.woken = true;
    this.engine.wake();
    this.wakeUp?.();
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
    this.wakeUp?.();
    await this.running;
    this.running = undefined;
  }

  private async loop(): Promise<void> {
    let errors = 0;
    while (!this.stopping) {
      let worked = false;
      this.woken = false;
      try {
        // No engine: claim nothing (a claimed job would only fail or use up an attempt).
        worked = (await this.engine.ready()) ? await this.runOnce() : false;
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
      if (this.outageUntil !== undefined && !this.stopping && !this.woken) {
        // An outage interrupted the last job: a claim now would most likely meet it again (and a
        // remote worker's hand-back carries no delay), so wait as long as the job does.
        const until = this.outageUntil;
        this.outageUntil = undefined;
        await this.sleepUntil(until);
        continue;
      }
      if (!worked && !this.stopping && !this.woken) {
        // Errors back off (jittered, never below one poll); waiting for an engine only polls the
        // clock, engineReady() decides when to look again.
        await this.sleep(
          errors > 0 ? backoffMs(this.errorBackoff, errors, this.opts.random) : this.opts.pollMs,
        );
      }
    }
  }

  /** Sleeps until `at` on the clock, a poll interval at a time; wake() and stop() end it early. */
  private async sleepUntil(at: number): Promise<void> {
    for (;;) {
      const left = at - this.clock.now().getTime();
      if (left <= 0 || this.stopping || this.woken) return;
      await this.sleep(Math.min(left, this.opts.pollMs));
    }
  }

  private sleep(ms: number): Promise<void> {
    return new Promise((resolve) => {
      let timer: NodeJS.Timeout | undefined = undefined;
      const done = () => {
        clearTimeout(timer);
        this.wakeUp = undefined;
        resolve();
      };
      timer = setTimeout(done, ms);
      this.wakeUp = done;
    });
  }

  /** Claims and runs one job; false when the source had nothing due. */
  async runOnce(): Promise<boolean> {
    const job = await this.source.claim();
    if (!job) return false;
    const controller = new AbortController();
    this.current = controller;
    let fraction = 0;
    let stage: JobStage = 'decoding';
    let beat: Promise<void> = Promise.resolve();
    const timer = setInterval(() => {
      beat = beat.then(() => this.heartbeat(job, fraction, stage, controller));
    }, this.opts.heartbeatMs);
    let audio: { path: string; release(): Promise<void> } | undefined;
    let inPipeline = false;
    const claimedAt = this.clock.monotonicMs();
    const ms = (from: number) => Math.round(this.clock.monotonicMs() - from);
    try {
      audio = await job.checkout();
      const checkoutMs = ms(claimedAt);
      const pipelineAt = this.clock.monotonicMs();
      controller.signal.throwIfAborted();
      const pipeline = await this.pipeline().catch((err: unknown) => {
        throw isEngineUnavailable(err) ? new NoEngine(err) : err;
      });
      inPipeline = true;
      const result = await pipeline.run({
        file: audio.path,
        ...(job.speakersHint ? { speakers: job.speakersHint } : {}),
        ...(job.language ? { language: job.language } : {}),
        signal: controller.signal,
        onProgress: (f) => {
          fraction = f;
        },
        onStage: (s) => {
          stage = s;
        },
      });
      inPipeline = false;
      const pipelineMs = ms(pipelineAt);
      clearInterval(timer);
      await beat;
      const savingAt = this.clock.monotonicMs();
      controller.signal.throwIfAborted();
      // Encrypting and storing a long transcript takes a moment: the panel says so.
      await this.heartbeat(job, 1, 'saving', controller);
      controller.signal.throwIfAborted();
      // A transcript already made is worth waiting a little for the database to come back.
      let stored = false;
      await this.whileOutage(async () => {
        stored = await job.complete(result);
      });
      this.logger.info(
        { recordingId: job.recordingId, stored, checkoutMs, pipelineMs, saveMs: ms(savingAt) },
        'transcription finished',
      );
    } catch (err) {
      clearInterval(timer);
      await beat;
      await this.handleFailure(job, err, controller.signal, inPipeline);
    } finally {
      this.current = undefined;
      // The plaintext copy of the audio never outlives the attempt.
      await audio?.release().catch((err: unknown) => this.logger.warn({ err }, 'could not remove job audio'));
    }
    return true;
  }

  /** Renews the lease; a lost lease aborts the run (someone else has the job now). */
  private async heartbeat(
    job: SourceJob,
    fraction: number,
    stage: JobStage,
    controller: AbortController,
  ): Promise<void> {
    try {
      if (!(await job.heartbeat(fraction, stage)))
        controller.abort(new AppError('conflict', 'job lease lost'));
    } catch (err) {
      if (this.source.isFatal?.(err)) {
        // Revoked mid-job: nothing this worker does for the job can be accepted any more.
        controller.abort(err);
        return;
      }
      this.logger.warn({ err, recordingId: job.recordingId }, 'job heartbeat failed');
    }
  }

  private async handleFailure(
    job: SourceJob,
    err: unknown,
    signal: AbortSignal,
    inPipeline: boolean,
  ): Promise<void> {
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
    const outage = transientOutage(err, inPipeline);
    if (outage) {
      // Not the job's fault: its attempt is given back, and it waits for the outage to pass.
      const delaySeconds = OUTAGE_RETRY_AFTER_SECONDS[outage];
      this.logger.warn(
        { recordingId: job.recordingId, outage, delaySeconds },
        'transcription interrupted by an outage: job handed back, attempt not counted',
      );
      this.outageUntil = this.clock.now().getTime() + delaySeconds * 1000;
      await this.whileOutage(() => job.handBack(delaySeconds));
      return;
    }
    const noEngine = err instanceof NoEngine ? err.message : await this.engine.unusable(err);
    if (noEngine !== undefined) {
      // Not the job's fault: it goes back to the queue as it was, and waits for an engine.
      await job.handBack();
      await this.engine.enterWaiting(noEngine);
      return;
    }
    await job.fail(err instanceof AppError ? err.code : 'internal');
  }

  /** Retries `step` through an outage (job-runner-outage.ts); stop() ends the retries. */
  private whileOutage(step: () => Promise<void>): Promise<void> {
    return whileOutage(step, this.clock, this.opts.random, () => this.stopping);
  }
}
