/** The JobRunner's contract with where its jobs come from (job-runner.service.ts). */
import type { RandomSource } from '../../domain/backoff.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
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
