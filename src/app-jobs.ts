import path from 'node:path';
import type { Logger } from 'pino';
import type { Config } from './config/config.js';
import type { Database } from './db/database.js';
import type { RandomSource } from './domain/backoff.js';
import type { Clock } from './adapters/system/clock.adapter.js';
import type { createAudioDecoder } from './adapters/media/audio-decoder.adapter.js';
import type { UploadFileStore } from './adapters/storage/upload-file.adapter.js';
import type { AudioStoreService } from './services/recordings/audio-store.service.js';
import type { EngineReadinessService } from './services/transcription/engine-readiness.service.js';
import type { AuditService } from './services/operations/audit.service.js';
import { JobQueueService } from './services/transcription/job-queue.service.js';
import type { JobQueueOptions } from './services/transcription/job-queue.types.js';
import type { KeyService } from './services/keys/key.service.js';
import { PipelineService } from './services/transcription/pipeline.service.js';
import {
  RecordingJobService,
  type JobOptions,
  type PipelineProvider,
} from './services/transcription/recording-job.service.js';

/**
 * The transcription jobs of the composition root (app.ts): the queue the remote worker routes
 * and /readyz use, the in-process worker over a queue of its own, and the lazily chosen pipeline
 * both the worker and live recognition run on.
 */

/** The in-process worker's settings: its loop's (JobOptions) and its queue's (JobQueueOptions). */
export type LocalWorkerOptions = JobOptions & JobQueueOptions;

export interface LocalWorkerDeps {
  db: Database;
  keys: KeyService;
  uploads: UploadFileStore;
  audio: AudioStoreService;
  pipeline: PipelineProvider;
  clock: Clock;
  logger: Pick<Logger, 'info' | 'warn' | 'error'>;
  opts: LocalWorkerOptions;
}

/**
 * The in-process worker and its queue (tests build theirs here too, with their own pipeline). The
 * queue has no audit service: the worker is the server itself; remote workers' steps are audited
 * by the queue the worker routes use.
 */
export function createLocalWorker(deps: LocalWorkerDeps): RecordingJobService {
  const { db, keys, uploads, audio, pipeline, clock, logger, opts } = deps;
  const queue = new JobQueueService({ db, keys, audit: null, clock, logger, opts, audio, uploads });
  return new RecordingJobService({ db, queue, uploads, audio, pipeline, clock, logger, opts });
}

export interface JobServicesDeps {
  config: Config;
  db: Database;
  keys: KeyService;
  audit: AuditService;
  uploads: UploadFileStore;
  audio: AudioStoreService;
  engines: EngineReadinessService;
  decoder: ReturnType<typeof createAudioDecoder>;
  clock: Clock;
  logger: Logger;
  /** The retry backoffs' random source (app.types.ts Deps.random). */
  random?: RandomSource | undefined;
  /** Without a usable engine, how often the in-process worker looks again (default 30 s). */
  engineRecheckMs?: number | undefined;
}

export function createJobServices(deps: JobServicesDeps): {
  jobQueue: JobQueueService;
  jobs: RecordingJobService;
  pipelines: () => Promise<PipelineService>;
} {
  const { config, db, keys, audit, uploads, audio, engines, clock, logger } = deps;
  const queueOpts: JobQueueOptions = {
    leaseSeconds: config.jobs.leaseSeconds,
    maxAttempts: config.jobs.maxAttempts,
    backoffSeconds: config.jobs.backoffSeconds,
    maxLeaseLapses: config.jobs.maxLeaseLapses,
    ...(config.jobs.maxRunningPerOrg ? { maxRunningPerOrg: config.jobs.maxRunningPerOrg } : {}),
    ...(deps.random ? { random: deps.random } : {}),
  };
  // One engine for jobs and live recognition (a whisper model is loaded once).
  const pipelines = lazyPipeline(engines, logger, deps.decoder, clock);
  const jobs = createLocalWorker({
    db,
    keys,
    uploads,
    audio,
    pipeline: pipelines,
    clock,
    logger,
    opts: {
      ...queueOpts,
      pollMs: config.jobs.pollMs,
      concurrency: config.jobs.concurrency,
      heartbeatMs: Math.min(1000, (config.jobs.leaseSeconds * 1000) / 3),
      // Longer than any job may hold a file without renewing its lease.
      sweepOlderThanMs: Math.max(3600_000, config.jobs.leaseSeconds * 2000),
      tmpSweepMs: config.tmpSweepMs,
      engineTmpDir: path.join(config.tmpDir, 'asr'),
      engineRecheckMs: deps.engineRecheckMs ?? 30_000,
      engineReady: () => engines.choose(),
      verifyEngine: () => engines.verify(),
    },
  });
  const jobQueue = new JobQueueService({ db, keys, audit, clock, logger, opts: queueOpts, audio, uploads });
  return { jobQueue, jobs, pipelines };
}

/**
 * The engine is chosen on first use, not at start-up (EngineReadinessService): a server without
 * an engine still serves everything else, and its uploads wait queued for one. A failed choice is
 * not cached, so installing an engine needs no restart.
 */
function lazyPipeline(
  engines: EngineReadinessService,
  logger: Logger,
  decoder: ReturnType<typeof createAudioDecoder>,
  clock: Clock,
): () => Promise<PipelineService> {
  let pipeline: PipelineService | undefined;
  return async () => {
    const { engine } = await engines.choose();
    if (pipeline?.engine !== engine) pipeline = new PipelineService({ decoder, engine, logger, clock });
    return pipeline;
  };
}
