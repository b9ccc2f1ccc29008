import path from 'node:path';
import type { Logger } from 'pino';
import { loadConfig, type Config } from '../../config/config.js';
import { isPathInside } from '../../config/paths.js';
import { createLogger } from '../../http/logger.js';
import { startTransport, type Transport } from '../../http/listen.js';
import { ensureSelfSignedCert, readTlsFiles, type TlsMaterial } from '../../adapters/network/tls.adapter.js';
import { openRuntime, type Runtime } from '../runtime.js';
import type { Services } from '../../app.js';
import { checkDecoder } from '../../adapters/media/ffmpeg.adapter.js';
import { defaultNodeId } from '../../config/node-id.js';
import { holdNodeId, NodeIdInUseError, type NodeIdLock } from '../../adapters/system/node-id-lock.adapter.js';
import { CliError } from '../cli-error.js';
import {
  ENGINE_FIX,
  type EngineReadinessService,
} from '../../services/transcription/engine-readiness.service.js';

/**
 * `sotto serve`: config (once; any bad variable stops the process), database, Redis, schema
 * check, services, then the listeners. Stops cleanly on SIGINT/SIGTERM.
 */
export interface RunningServer {
  config: Config;
  runtime: Runtime;
  transport: Transport;
  close(): Promise<void>;
}

export interface ServeOptions {
  env?: Record<string, string | undefined>;
  logger?: Logger;
}

async function tlsMaterial(config: Config, logger: Logger): Promise<TlsMaterial> {
  if (config.tls) return readTlsFiles(config.tls.certFile, config.tls.keyFile);
  const hosts = [new URL(config.publicUrl).hostname, config.host];
  const cert = await ensureSelfSignedCert(path.join(config.dataDir, 'tls'), hosts);
  logger[cert.generated ? 'warn' : 'info'](
    { certFile: cert.certFile, fingerprint: cert.fingerprint },
    cert.generated
      ? 'generated a self-signed certificate: browsers will warn; set SOTTO_TLS_CERT/SOTTO_TLS_KEY for production'
      : 'using the self-signed certificate from the data directory',
  );
  return cert;
}

/**
 * Which speech-recognition engine this server will use, said at start (the choice itself logs
 * "speech-recognition engine selected" with its description and reason), or a warning naming the
 * fix. Never fatal: the server runs without one, uploads wait queued, and the worker looks again
 * every 30 s, so installing an engine later needs no restart.
 */
async function logEngine(engines: EngineReadinessService, logger: Logger): Promise<string> {
  try {
    const engine = await engines.state();
    if (engine.status === 'ok') return engine.description;
    logger.warn(
      { reason: engine.reason },
      `no speech-recognition engine is usable: uploads wait queued until one is; ${ENGINE_FIX}`,
    );
  } catch (err) {
    logger.warn(
      { err },
      'could not check the speech-recognition engine; uploads wait queued until one works',
    );
  }
  return 'none';
}

/**
 * The object store, checked once at start. Not fatal (the bucket may be created a minute later,
 * and /readyz keeps saying `storage` until then), but named plainly: without it nothing can be
 * kept or played back. Bucket and endpoint only, never credentials.
 */
async function logStorage(storage: Services['storage'], config: Config, logger: Logger): Promise<string> {
  if (config.storage.kind === 'local') return 'local';
  const { bucket, endpoint, prefix } = config.storage.s3;
  const status = await storage.check().catch(() => 'failed' as const);
  const where = { bucket, prefix, endpoint: endpoint ?? 'aws', status };
  const why = {
    ok: '',
    no_bucket: 'the bucket does not exist: create it (SOTTO_S3_BUCKET)',
    denied:
      'access to the bucket was refused: check SOTTO_S3_ACCESS_KEY_ID / SOTTO_S3_SECRET_ACCESS_KEY and the bucket policy',
    failed:
      'the object store could not be reached: check SOTTO_S3_ENDPOINT, the network and SOTTO_S3_CA_FILE',
  }[status];
  if (status !== 'ok')
    logger.error(where, `object storage unusable: ${why}; /readyz reports storage: ${status} until fixed`);
  return `s3:${status}`;
}

export async function startServe(opts: ServeOptions = {}): Promise<RunningServer> {
  const config = loadConfig(opts.env);
  const logger = opts.logger ?? createLogger(config.logLevel);
  // The node id, held before any service starts (node-id.ts says why it is never shared).
  const nodeId = config.nodeId ?? defaultNodeId(config);
  const held = nodeId ? await holdServeNodeId(nodeId, config) : undefined;
  const runtime = await openRuntime(config, { logger, nodeId }).catch(async (err: unknown) => {
    await held?.release();
    throw err;
  });
  try {
    const tls = config.trustProxy ? undefined : await tlsMaterial(config, logger);
    const transport = await startTransport({ services: runtime.services, tls });
    const decoder = await checkDecoder();
    logger[decoder.available ? 'info' : 'warn']({ ffmpeg: decoder.ffmpeg }, decoder.message);
    const engine = await logEngine(runtime.services.engines, logger);
    // Crypto-shredding only reaches backups the per-org keys are not in (docs/security.md).
    if (config.keyStore.kind === 'dir' && isPathInside(config.keyStore.dir, config.dataDir))
      logger.warn(
        { keyDir: config.keyStore.dir },
        'SOTTO_KEY_DIR is inside SOTTO_DATA_DIR: a backup of the data directory then holds the keys that decrypt it, so a deleted organization stays readable there; move it out and back it up separately',
      );
    // An old master key is logged once per start (and shown in /readyz, `sotto keys status`).
    await runtime.services.keyAge.warnIfDue(logger);
    const storage = await logStorage(runtime.services.storage, config, logger);
    // The in-process transcription worker (sweeps leftover staged uploads first).
    await runtime.services.jobs.start();
    // This node's org-export builder (expiry is a scheduler task; see docs/lifecycle.md).
    runtime.services.orgExports.start();
    // Webhook deliveries: due ones every 2 s, each claimed once across nodes (docs/webhooks.md).
    runtime.services.webhooks.start();
    // Periodic maintenance (retention → cold archive, sweeps), one node per task and interval.
    runtime.services.scheduler.start();
    // This node's public URL beside the other nodes' (a disagreement is logged and in /readyz).
    await runtime.services.nodes.start();
    // Logged last: "started" means everything runs (callers wait for this line, then may signal).
    logger.info(
      {
        env: config.env,
        database: runtime.services.db.kind,
        redis: config.redisUrl ? 'connected' : 'not configured (in-memory rate limits)',
        masterKeySource: config.masterKeySource.kind,
        storage,
        activeMasterKeyVersion: config.masterKeys.active.version,
        engine,
        nodeId: nodeId ?? 'random (SOTTO_HTTPS_PORT=0)',
      },
      'sotto started',
    );
    let closing: Promise<void> | undefined;
    return {
      config,
      runtime,
      transport,
      close: () =>
        (closing ??= (async () => {
          try {
            // Stop accepting first (no new request starts work on a closing node; live sessions are
            // suspended by the app's onClose hook), then stop every loop side by side: one that
            // throws must not leave the others running. The database closes last.
            await transport.close();
          } catch (err) {
            logger.error({ err }, 'closing the listeners failed');
          }
          try {
            const services = runtime.services;
            const stops = {
              scheduler: () => services.scheduler.stop(),
              nodes: () => services.nodes.stop(),
              webhooks: () => services.webhooks.stop(),
              orgExports: () => services.orgExports.stop(),
              // Hands the job in progress back to the queue before the database closes.
              jobs: () => services.jobs.stop(),
            };
            const results = await Promise.allSettled(Object.values(stops).map(async (stop) => stop()));
            Object.keys(stops).forEach((name, i) => {
              const r = results[i]!;
              if (r.status === 'rejected') logger.error({ err: r.reason, service: name }, 'stopping failed');
            });
          } finally {
            await runtime.close();
            await held?.release();
          }
        })()),
    };
  } catch (err) {
    await runtime.close();
    await held?.release();
    throw err;
  }
}

async function holdServeNodeId(nodeId: string, config: Config): Promise<NodeIdLock> {
  try {
    return await holdNodeId(nodeId, config.redisPrefix);
  } catch (err) {
    if (!(err instanceof NodeIdInUseError)) throw err;
    throw new CliError(
      `${config.nodeId ? 'SOTTO_NODE_ID' : `the node id derived from this host and SOTTO_HTTPS_PORT`} ${nodeId} is in use by another \`sotto serve\` on this host: two running servers must never share one (give each its own SOTTO_NODE_ID or port)`,
    );
  }
}
