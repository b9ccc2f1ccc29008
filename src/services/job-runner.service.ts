import type { Logger } from 'pino';
import { backoffMs, type BackoffPolicy, type RandomSource } from '../domain/backoff.js';
import { AppError } from '../domain/errors.js';
import { OUTAGE_RETRY_AFTER_SECONDS, outageOf, type Outage } from '../domain/outage.js';
import { systemClock, type Clock } from '../repositories/clock.repository.js';
import type { PipelineResult, PipelineService, PipelineStage } from './pipeline.service.js';

/** What a job is doing, as its heartbeat reports it: the pipeline's stages, then the save. */
export type JobStage = PipelineStage | 'saving';

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
  /** No usable engine: nothing is claimed meanwhile (the in-process source marks queued recordings). */
  engineUnavailable?(reason: string): Promise<void>;
  /** An engine is usable again after engineUnavailable(). */
  engineAvailable?(): Promise<void>;
}

export interface SourceJob {
  readonly recordingId: string;
  readonly language: string | null;
  readonly speakersHint: number | null;
  /** The audio as a private local file; release() removes it. */
  checkout(): Promise<{ path: string; release(): Promise<void> }>;
  /** Renews the lease and reports progress and stage; false when the lease was lost. */
  heartbeat(progress: number, stage?: JobStage): Promise<boolean>;
  /** Stores the result; false when the lease was lost meanwhile (nothing stored). */
  complete(result: PipelineResult): Promise<boolean>;
  /** Reports a failed attempt by error code (the queue decides: retry later, or fail for good). */
  fail(code: string): Promise<void>;
  /**
   * Gives the job back, the attempt not counted: at once (the worker is stopping), or due again
   * after `delaySeconds` (an outage: the database, Redis or the disk failed, not the job).
   */
  handBack(delaySeconds?: number): Promise<void>;
}

export interface JobRunnerOptions {
  /** How often the loop looks for work (a real timer: it sets the pace, the clock says what is due). */
  pollMs: number;
  /** Progress and lease renewal are sent at most this often. */
  heartbeatMs: number;
  /** Longest wait between claims after repeated errors (they back off exponentially up to this). */
  maxBackoffMs?: number;
  /** Without a usable engine, how often to look again (default 30 s, on `clock`); wake() looks at once. */
  engineRecheckMs?: number;
  /** Decides what is due: the engine re-check, the end of an outage pause, the outage deadline. */
  clock?: Clock;
  /** The backoffs' random source (tests pass a fixed one); Math.random by default. */
  random?: RandomSource;
  /**
   * Checked before each claim: rejects with engine_unavailable while no engine can be chosen (so
   * no job is claimed only to wait). Without it, only a runner already waiting for an engine
   * checks, with the pipeline provider.
   */
  engineReady?: () => Promise<unknown>;
  /**
   * Tries the engine itself (EngineReadinessService.verify): after a run failed with
   * engine_unavailable, tells "the engine cannot work at all" (the job is handed back, its
   * attempt not counted, and the runner waits) from "this job cannot run on it" (the job fails).
   * Without it such a run fails its job as before.
   */
  verifyEngine?: () => Promise<{ status: 'ok' } | { status: 'none'; reason: string }>;
}

/** How long the runner keeps trying to record a result or a hand-back through an outage. */
const OUTAGE_RETRY_MS = 60_000;
/** The retries through an outage: the first within 500 ms, never more than 8 s apart. */
const OUTAGE_BACKOFF = { baseMs: 500, capMs: 8000, minMs: 50 };

const isEngineUnavailable = (err: unknown): err is AppError =>
  err instanceof AppError && err.code === 'engine_unavailable';

/**
 * An outage the job must not pay for. A typed verdict (AppError) is never second-guessed; and a
 * broken connection inside the engine run (a helper process that died on this audio: EPIPE,
 * ECONNRESET) may be the job's own doing, so only a full disk counts there.
 */
function transientOutage(err: unknown, inPipeline: boolean): Outage | undefined {
  if (err instanceof AppError) return undefined;
  const outage = outageOf(err);
  return inPipeline && outage === 'unavailable' ? undefined : outage;
}

/** The selection failed before any job was touched: the server has no engine (not the job's fault). */
class NoEngine extends Error {
  constructor(engineError: AppError) {
    super(engineError.message, { cause: engineError });
  }
}

export class JobRunner {
  private running: Promise<void> | undefined;
  private stopping = false;
  private abandon = false;
  private current: AbortController | undefined;
  private wakeUp: (() => void) | undefined;
  private woken = false;
  private fatalError: unknown;
  /** The reason while no engine is usable (the runner claims nothing meanwhile). */
  private waitingForEngine: string | undefined;
  /** A run proved the chosen engine unusable: verifyEngine() must pass before the next claim. */
  private engineSuspect = false;
  /** Set when an outage interrupted a job: the loop claims nothing before this time (on the clock). */
  private outageUntil: number | undefined;
  /** While waiting for an engine: when to look again (on the clock). */
  private engineCheckAt = 0;
  /** wake() while waiting for an engine: look now. */
  private engineCheckNow = false;
  private readonly clock: Clock;
  private readonly errorBackoff: BackoffPolicy;

  constructor(
    private readonly source: JobSource,
    private readonly pipeline: PipelineProvider,
    private readonly logger: Pick<Logger, 'info' | 'warn' | 'error'>,
    private readonly opts: JobRunnerOptions,
  ) {
    this.clock = opts.clock ?? systemClock;
    const { pollMs, maxBackoffMs = 30_000 } = opts;
    this.errorBackoff = { baseMs: pollMs * 2, capMs: maxBackoffMs, minMs: pollMs };
  }

  get started(): boolean {
    return this.running !== undefined;
  }

  /** Why the runner claims nothing now (no usable engine), or undefined when it works normally. */
  get engineProblem(): string | undefined {
    return this.waitingForEngine;
  }

  /**
   * Looks for a job now instead of at the next poll (a job was queued: LISTEN/NOTIFY). A wake-up
   * while a job runs is remembered, so the next claim follows at once.
   */
  wake(): void {
    this.woken = true;
    this.engineCheckNow = true;
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
        worked = (await this.engineReady()) ? await this.runOnce() : false;
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

  /** Whether an engine is usable; switches the runner into (and out of) waiting for one. */
  private async engineReady(): Promise<boolean> {
    const now = this.clock.now().getTime();
    if (this.waitingForEngine !== undefined && !this.engineCheckNow && now < this.engineCheckAt) return false;
    this.engineCheckNow = false;
    let problem: string | undefined;
    try {
      if (this.opts.engineReady) await this.opts.engineReady();
      else if (this.waitingForEngine !== undefined) await this.pipeline();
      if (this.engineSuspect && this.opts.verifyEngine) {
        const state = await this.opts.verifyEngine();
        if (state.status === 'none') problem = state.reason;
        else this.engineSuspect = false;
      }
    } catch (err) {
      if (!isEngineUnavailable(err)) throw err;
      problem = err.message;
    }
    if (problem !== undefined) {
      this.engineCheckAt = now + (this.opts.engineRecheckMs ?? 30_000);
      await this.enterWaiting(problem);
      return false;
    }
    if (this.waitingForEngine !== undefined) {
      this.waitingForEngine = undefined;
      // Waiting again later (a run proving the engine unusable) looks again at once.
      this.engineCheckAt = 0;
      this.logger.info('a speech-recognition engine is usable: taking queued jobs again');
      await this.source.engineAvailable?.();
    }
    return true;
  }

  private async enterWaiting(reason: string): Promise<void> {
    if (this.waitingForEngine === undefined)
      this.logger.warn({ reason }, 'no usable speech-recognition engine: queued jobs wait for one');
    this.waitingForEngine = reason;
    // Every time, not only the first: recordings queued since then are marked too.
    await this.source.engineUnavailable?.(reason);
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
    const claimedAt = performance.now();
    const ms = (from: number) => Math.round(performance.now() - from);
    try {
      audio = await job.checkout();
      const checkoutMs = ms(claimedAt);
      const pipelineAt = performance.now();
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
      const savingAt = performance.now();
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
    const noEngine = err instanceof NoEngine ? err.message : await this.engineUnusable(err);
    if (noEngine !== undefined) {
      // Not the job's fault: it goes back to the queue as it was, and waits for an engine.
      await job.handBack();
      await this.enterWaiting(noEngine);
      return;
    }
    await job.fail(err instanceof AppError ? err.code : 'internal');
  }

  /**
   * Runs `step` again while it fails with an outage (backing off, for at most OUTAGE_RETRY_MS on
   * the clock): the database that failed the job is usually the one that must record it. Past
   * that, the lease expires and the job is claimed again.
   */
  private async whileOutage(step: () => Promise<void>): Promise<void> {
    const until = this.clock.now().getTime() + OUTAGE_RETRY_MS;
    for (let attempt = 1; ; attempt++) {
      try {
        return await step();
      } catch (err) {
        const delay = backoffMs(OUTAGE_BACKOFF, attempt, this.opts.random);
        if (!outageOf(err) || this.stopping || this.clock.now().getTime() + delay > until) throw err;
        await new Promise((resolve) => setTimeout(resolve, delay));
      }
    }
  }

  /** After a run failed with engine_unavailable: the reason when the engine cannot work at all. */
  private async engineUnusable(err: unknown): Promise<string | undefined> {
    if (!isEngineUnavailable(err) || !this.opts.verifyEngine) return undefined;
    const state = await this.opts.verifyEngine();
    if (state.status === 'ok') return undefined;
    this.engineSuspect = true;
    return state.reason;
  }
}
