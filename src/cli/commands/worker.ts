import { readFileSync } from 'node:fs';
import { mkdir, mkdtemp, rm } from 'node:fs/promises';
import path from 'node:path';
import type { Logger } from 'pino';
import { loadWorkerConfig } from '../../config/config.js';
import { createLogger } from '../../http/logger.js';
import { selectEngine, type SelectEngineDeps } from '../../adapters/asr/select-engine.js';
import { createAudioDecoder } from '../../adapters/media/audio-decoder.adapter.js';
import { OWNER_TAG, sweepScratch } from '../../adapters/storage/scratch-owner.adapter.js';
import { WorkerApiError, WorkerApiClient } from '../../adapters/network/worker-api.adapter.js';
import { JobRunner } from '../../services/transcription/job-runner.service.js';
import { PipelineService } from '../../services/transcription/pipeline.service.js';
import { RemoteJobSource } from '../../services/transcription/remote-job.service.js';
import { CliError } from '../cli-error.js';

/**
 * `sotto worker`: a transcription worker on another machine (a GPU node). It loads no server
 * configuration, opens no database and never sees the master key: it talks to the API over
 * HTTPS with a worker token, receives only the audio of the job it holds, and sends back the
 * result. The engine is chosen like the server's (SOTTO_ASR_*, whisper models under
 * SOTTO_DATA_DIR/models).
 */
export interface WorkerRunOptions {
  api: string;
  /** Falls back to SOTTO_WORKER_TOKEN (preferred: argv is visible in ps). */
  token?: string | undefined;
  /** PEM file of the CA or self-signed certificate to trust. */
  ca?: string | undefined;
  insecure?: boolean | undefined;
  concurrency?: number | undefined;
  heartbeatMs?: number | undefined;
  pollMs?: number | undefined;
  env?: Record<string, string | undefined>;
  logger?: Logger;
  /** Parent of this process's private folder (default SOTTO_TMP_DIR/worker, or <data dir>/tmp/worker). */
  tmpDir?: string;
  engineDeps?: SelectEngineDeps;
}

export interface RunningWorker {
  /** The worker's identity as the server knows it. */
  identity: { id: string; name: string; orgId: string | null };
  /** Resolves when every slot has stopped (stop(), or a fatal error such as a revoked token). */
  finished: Promise<void>;
  /** The error that stopped the worker on its own, if any. */
  fatal(): unknown;
  /** Hands the jobs in progress back and stops. */
  stop(): Promise<void>;
}

export const INSECURE_WARNING =
  'WARNING: --insecure: the server certificate is NOT verified. Anyone on the network path can ' +
  'impersonate the server, read the audio sent to this worker and forge jobs. Use --ca FILE instead.';

function fatalMessage(err: unknown): string {
  return err instanceof WorkerApiError || err instanceof CliError ? err.message : (err as Error).message;
}

/** Folders of unknown owners (untagged, another machine sharing the parent) go after this. */
const LEFTOVER_AGE_MS = 3600_000;

export async function startWorker(opts: WorkerRunOptions): Promise<RunningWorker> {
  const cfg = loadWorkerConfig(opts.env);
  const logger = opts.logger ?? createLogger(cfg.logLevel);
  const token = opts.token ?? cfg.token;
  if (!token) throw new CliError('no worker token: set SOTTO_WORKER_TOKEN (or pass --token)');
  if (opts.ca && opts.insecure) throw new CliError('--ca and --insecure exclude each other');
  const concurrency = opts.concurrency ?? 1;
  if (!Number.isInteger(concurrency) || concurrency < 1 || concurrency > 64)
    throw new CliError('--concurrency must be a whole number from 1 to 64');
  let ca: string | undefined;
  if (opts.ca) {
    try {
      ca = readFileSync(opts.ca, 'utf8');
    } catch (err) {
      throw new CliError(`--ca: cannot read ${opts.ca} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
    }
  }
  if (opts.insecure) {
    process.stderr.write(`${INSECURE_WARNING}\n`);
    logger.warn('server certificate verification is disabled (--insecure)');
  }
  let api: WorkerApiClient;
  try {
    api = new WorkerApiClient({ baseUrl: opts.api, token, ca, insecure: opts.insecure });
  } catch (err) {
    throw new CliError(fatalMessage(err));
  }
  // One private (0700) folder for this process, named by its owner tag; the engine's WAVs and each
  // job's audio go inside it. Killed workers' folders are swept now and on a schedule by any
  // worker sharing the parent (scratch-owner.adapter.ts), so their plaintext lasts minutes.
  const base = opts.tmpDir ?? cfg.workDir;
  let root = '';
  const sweep = async () => {
    const removed = await sweepScratch(base, { olderThanMs: LEFTOVER_AGE_MS, now: Date.now() });
    if (removed > 0) logger.info({ removed }, 'removed plaintext leftovers of stopped workers');
  };
  try {
    await mkdir(base, { recursive: true, mode: 0o700 });
    await sweep();
    // A name of its own even for two workers in one process (tests): one's stop must not remove the other's.
    root = await mkdtemp(path.join(base, `${OWNER_TAG}worker-`));
  } catch (err) {
    api.close();
    throw new CliError(
      `cannot use the work folder ${base}: ${(err as NodeJS.ErrnoException).code ?? 'error'}`,
    );
  }
  const sweepTimer = setInterval(() => {
    sweep().catch((err: unknown) => logger.warn({ err }, 'scratch sweep failed'));
  }, cfg.tmpSweepMs);
  sweepTimer.unref();
  let identity: RunningWorker['identity'];
  let pipeline: PipelineService;
  try {
    // Checks URL, certificate and token before anything else, with a message for each.
    identity = await api.whoami();
    const { engine, reason } = await selectEngine(cfg.asr, cfg.dataDir, { tmpDir: root, ...opts.engineDeps });
    logger.info({ engine: engine.describe(), reason }, 'speech-recognition engine selected');
    pipeline = new PipelineService({ decoder: createAudioDecoder(), engine, logger });
    await engine.warm?.();
  } catch (err) {
    api.close();
    clearInterval(sweepTimer);
    await rm(root, { recursive: true, force: true });
    throw new CliError(fatalMessage(err));
  }
  const source = new RemoteJobSource(api, logger, { tmpDir: root });
  const runners = Array.from(
    { length: concurrency },
    () =>
      new JobRunner(source, () => Promise.resolve(pipeline), logger, {
        pollMs: opts.pollMs ?? 2000,
        heartbeatMs: opts.heartbeatMs ?? 5000,
      }),
  );
  let stopping: Promise<void> | undefined;
  const stop = () =>
    (stopping ??= (async () => {
      clearInterval(sweepTimer);
      await Promise.all(runners.map((r) => r.stop()));
      api.close();
      await pipeline.engine.close?.();
      await rm(root, { recursive: true, force: true });
    })());
  for (const r of runners) r.start();
  const finished = Promise.all(
    runners.map(async (r) => {
      await r.finished();
      // One slot refused (revoked token, bad certificate): the others stop too.
      if (r.fatal) await stop();
    }),
  ).then(() => stopping);
  logger.info(
    { worker: identity.id, scope: identity.orgId ? 'org' : 'platform', concurrency },
    'sotto worker started',
  );
  return {
    identity,
    finished,
    fatal: () => runners.find((r) => r.fatal)?.fatal,
    stop,
  };
}

const SHUTDOWN_GRACE_MS = 15_000;

export interface WorkerCommandOptions {
  api: string;
  token?: string;
  ca?: string;
  insecure?: boolean;
  concurrency: number;
  heartbeatSeconds: number;
}

/**
 * The command's action (worker-command.ts): runs until SIGINT/SIGTERM, which hands the jobs in
 * progress back, or until a fatal error (a revoked token), which ends it with that error.
 */
export async function runWorkerCommand(opts: WorkerCommandOptions): Promise<void> {
  if (!Number.isFinite(opts.heartbeatSeconds) || opts.heartbeatSeconds <= 0)
    throw new CliError('--heartbeat-seconds must be a positive number');
  const worker = await startWorker({
    api: opts.api,
    token: opts.token,
    ca: opts.ca,
    insecure: opts.insecure,
    concurrency: opts.concurrency,
    heartbeatMs: opts.heartbeatSeconds * 1000,
  });
  const signal = new Promise<NodeJS.Signals>((resolve) => {
    process.once('SIGINT', resolve);
    process.once('SIGTERM', resolve);
  });
  const ended = await Promise.race([signal, worker.finished.then(() => undefined)]);
  if (ended) {
    // A second signal, or a hand-back that hangs, ends the process the hard way.
    const force = (): never => process.exit(1);
    process.once('SIGINT', force);
    process.once('SIGTERM', force);
    setTimeout(force, SHUTDOWN_GRACE_MS).unref();
    await worker.stop();
    process.stderr.write(`sotto worker: stopped (${ended}); the job in progress was handed back\n`);
    return;
  }
  const fatal = worker.fatal();
  if (fatal) throw new CliError(fatalMessage(fatal));
}
