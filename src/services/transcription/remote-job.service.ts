import { mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { backoffMs, type RandomSource } from '../../domain/backoff.js';
import { workerFailureCodes } from '../../domain/errors.js';
import { systemClock, waitOn, type Clock } from '../../adapters/system/clock.adapter.js';
import {
  WorkerApiError,
  type RemoteClaim,
  type WorkerApiClient,
} from '../../adapters/network/worker-api.adapter.js';
import type { JobSource, SourceJob } from './job-runner.types.js';
import type { PipelineResult } from './pipeline.service.js';

/**
 * The remote worker's job source: jobs come from the Sotto API over HTTPS with a worker token.
 * The audio is downloaded into a private temporary folder (0700, file 0600) and removed as soon
 * as the attempt ends, whatever the outcome. Transient network failures of the result calls are
 * retried a few times with backoff before the job is left to its lease (the server then hands it
 * to another worker); a refused token stops the worker (JobSource.isFatal).
 */
export interface RemoteJobSourceOptions {
  /** Parent of the per-job private folders (the OS temp dir by default). */
  tmpDir: string;
  /** Attempts of a result/fail/release call on network errors. */
  retries?: number;
  /** The first retry's longest delay (default 1 s); doubles with each retry, up to 30 s, jittered. */
  retryDelayMs?: number;
  /** The retries wait on this clock (tests move a ManualClock); the system clock by default. */
  clock?: Clock;
  /** The backoff's random source (tests pass a fixed one); Math.random by default. */
  random?: RandomSource;
}

const MAX_RETRY_DELAY_MS = 30_000;

export class RemoteJobSource implements JobSource {
  constructor(
    private readonly api: WorkerApiClient,
    private readonly logger: Pick<Logger, 'info' | 'warn'>,
    private readonly opts: RemoteJobSourceOptions,
  ) {}

  isFatal(err: unknown): boolean {
    return (
      err instanceof WorkerApiError && (err.kind === 'auth' || err.kind === 'tls' || err.kind === 'protocol')
    );
  }

  async claim(): Promise<SourceJob | undefined> {
    const job = await this.api.claim();
    if (!job) return undefined;
    this.logger.info({ recordingId: job.id }, 'claimed a job');
    return this.held(job);
  }

  /** Network errors are retried; a lost lease or a refused token is not. */
  private async retrying<T>(what: string, fn: () => Promise<T>): Promise<T> {
    const retries = this.opts.retries ?? 4;
    for (let attempt = 1; ; attempt++) {
      try {
        return await fn();
      } catch (err) {
        if (!(err instanceof WorkerApiError) || err.kind !== 'network' || attempt > retries) throw err;
        this.logger.warn({ attempt, code: err.kind }, `${what} failed, retrying`);
        const delay = backoffMs(
          { baseMs: this.opts.retryDelayMs ?? 1000, capMs: MAX_RETRY_DELAY_MS },
          attempt,
          this.opts.random,
        );
        await waitOn(this.opts.clock ?? systemClock, delay);
      }
    }
  }

  private held(job: RemoteClaim): SourceJob {
    const { api } = this;
    const lost = (err: unknown) => err instanceof WorkerApiError && err.kind === 'lost';
    return {
      recordingId: job.id,
      language: job.language,
      speakersHint: job.speakersHint,
      checkout: async () => {
        const dir = await mkdtemp(path.join(this.opts.tmpDir, 'sotto-job-'));
        const release = () => rm(dir, { recursive: true, force: true });
        try {
          const file = path.join(dir, 'audio');
          await api.downloadAudio(job.id, job.leaseId, file);
          return { path: file, release };
        } catch (err) {
          await release();
          throw err;
        }
      },
      heartbeat: async (progress) => {
        try {
          await api.heartbeat(job.id, job.leaseId, progress);
          return true;
        } catch (err) {
          if (lost(err)) return false;
          throw err;
        }
      },
      complete: async (r: PipelineResult) => {
        try {
          await this.retrying('sending the result', () =>
            api.complete(job.id, job.leaseId, {
              segments: r.segments,
              speakers: r.speakers,
              durationSeconds: r.durationSeconds,
              channels: r.channels,
              engine: r.engine,
            }),
          );
          return true;
        } catch (err) {
          if (lost(err)) return false;
          throw err;
        }
      },
      fail: async (code) => {
        try {
          // The server accepts known codes only; anything else (a bug here) is reported as internal.
          const known = (workerFailureCodes as readonly string[]).includes(code) ? code : 'internal';
          await this.retrying('reporting the failure', () => api.fail(job.id, job.leaseId, known));
        } catch (err) {
          if (!lost(err)) throw err;
        }
      },
      // The delay (an outage's backoff) goes to the server: the job is not due again before it.
      handBack: async (delaySeconds = 0) => {
        try {
          await this.retrying('handing the job back', () => api.release(job.id, job.leaseId, delaySeconds));
          this.logger.info({ recordingId: job.id }, 'handed the job back');
        } catch (err) {
          // Not fatal: if the server cannot be told, the lease expires and the job is retaken.
          if (!lost(err)) this.logger.warn({ recordingId: job.id, err }, 'could not hand the job back');
        }
      },
    };
  }
}
