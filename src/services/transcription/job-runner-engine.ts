/** The JobRunner's view of the speech-recognition engine: usable, or waited for (no claims meanwhile). */
import type { Logger } from 'pino';
import { AppError } from '../../domain/errors.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import type { JobRunnerOptions, JobSource, PipelineProvider } from './job-runner.types.js';

export const isEngineUnavailable = (err: unknown): err is AppError =>
  err instanceof AppError && err.code === 'engine_unavailable';

/** The selection failed before any job was touched: the server has no engine (not the job's fault). */
export class NoEngine extends Error {
  constructor(engineError: AppError) {
    super(engineError.message, { cause: engineError });
  }
}

export class EngineWatch {
  /** The reason while no engine is usable (the runner claims nothing meanwhile). */
  private waitingForEngine: string | undefined;
  /** A run proved the chosen engine unusable: verifyEngine() must pass before the next claim. */
  private engineSuspect = false;
  /** While waiting for an engine: when to look again (on the clock). */
  private engineCheckAt = 0;
  /** wake() while waiting for an engine: look now. */
  private engineCheckNow = false;

  constructor(
    private readonly source: Pick<JobSource, 'engineUnavailable' | 'engineAvailable'>,
    private readonly pipeline: PipelineProvider,
    private readonly logger: Pick<Logger, 'info' | 'warn'>,
    private readonly clock: Clock,
    private readonly opts: Pick<JobRunnerOptions, 'engineRecheckMs' | 'engineReady' | 'verifyEngine'>,
  ) {}

  /** Why the runner claims nothing now (no usable engine), or undefined when it works normally. */
  get problem(): string | undefined {
    return this.waitingForEngine;
  }

  /** The runner was woken: while waiting for an engine, look again at once. */
  wake(): void {
    this.engineCheckNow = true;
  }

  /** Whether an engine is usable; switches the runner into (and out of) waiting for one. */
  async ready(): Promise<boolean> {
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

  async enterWaiting(reason: string): Promise<void> {
    if (this.waitingForEngine === undefined)
      this.logger.warn({ reason }, 'no usable speech-recognition engine: queued jobs wait for one');
    this.waitingForEngine = reason;
    // Every time, not only the first: recordings queued since then are marked too.
    await this.source.engineUnavailable?.(reason);
  }

  /** After a run failed with engine_unavailable: the reason when the engine cannot work at all. */
  async unusable(err: unknown): Promise<string | undefined> {
    if (!isEngineUnavailable(err) || !this.opts.verifyEngine) return undefined;
    const state = await this.opts.verifyEngine();
    if (state.status === 'ok') return undefined;
    this.engineSuspect = true;
    return state.reason;
  }
}
