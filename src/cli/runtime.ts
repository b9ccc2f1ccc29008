import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { Redis } from 'ioredis';
import type { Logger } from 'pino';
import type { Services } from '../app.js';
import type { BackendTls } from '../config/backend-tls.js';
import type { Config } from '../config/config.js';
import { openDatabase, type Database } from '../db/database.js';
import { migrate, pendingMigrations } from '../db/migrate.js';
import { createLogger } from '../http/logger.js';
import { liveFileKeyring } from '../adapters/storage/master-key-file.adapter.js';
import { CliError } from './cli-error.js';
import {
  LockedError,
  acquireProcessLock,
  type ProcessLock,
} from '../adapters/system/process-lock.adapter.js';

/**
 * Opens what every command that touches data needs — database, Redis, services — with the same
 * rules for all: the embedded database is locked to one process, the schema must be current, and
 * a configured Redis must answer. Anything opened is closed again if a later step fails.
 */

export interface Runtime {
  config: Config;
  services: Services;
  close(): Promise<void>;
}

export interface OpenedDatabase {
  db: Database;
  close(): Promise<void>;
}

export function pgliteDir(dataDir: string): string {
  return path.join(dataDir, 'db');
}

/** Opens PostgreSQL (DATABASE_URL) or the embedded PGlite under `${dataDir}/db`, locked to this process. */
export async function openDataStore(opts: {
  databaseUrl: string | undefined;
  databaseTls: BackendTls | undefined;
  dataDir: string;
}): Promise<OpenedDatabase> {
  if (opts.databaseUrl) {
    const db = await openDatabase({ databaseUrl: opts.databaseUrl, tls: opts.databaseTls });
    return { db, close: () => db.close() };
  }
  const dir = pgliteDir(opts.dataDir);
  let lock: ProcessLock;
  try {
    mkdirSync(opts.dataDir, { recursive: true, mode: 0o700 });
    lock = acquireProcessLock(path.join(opts.dataDir, 'db.lock'));
  } catch (err) {
    if (err instanceof LockedError) {
      throw new CliError(
        `the embedded database in ${dir} is in use by process ${err.pid} (one process at a time): stop it first, or use PostgreSQL (DATABASE_URL)`,
      );
    }
    throw err;
  }
  try {
    const db = await openDatabase({ pgliteDir: dir });
    return {
      db,
      close: async () => {
        try {
          await db.close();
        } finally {
          lock.release();
        }
      },
    };
  } catch (err) {
    lock.release();
    throw err;
  }
}

/** Applies migrations when the config says so; otherwise refuses to run on an outdated schema. */
export async function ensureSchema(db: Database, config: Config, logger: Logger): Promise<void> {
  if (config.migrateOnStart) {
    const applied = await migrate(db);
    if (applied.length > 0) logger.info({ applied }, 'applied database migrations');
    return;
  }
  const pending = await pendingMigrations(db);
  if (pending.length > 0) {
    throw new CliError(
      `the database has ${pending.length} pending migration(s) (${pending.map((m) => m.name).join(', ')}); ` +
        'run `sotto migrate` first (production mode never migrates on start unless SOTTO_MIGRATE_ON_START=true)',
    );
  }
}

/**
 * ioredis with the config's TLS (rediss://): options, not the URL, carry the CA, and
 * `duplicate()` copies them, so the live bus's subscriber connections verify the same way.
 */
export async function connectRedis(url: string, tls?: BackendTls): Promise<Redis> {
  const redis = new Redis(url, {
    lazyConnect: true,
    maxRetriesPerRequest: 3,
    connectTimeout: 5_000,
    ...(tls ? { tls: { rejectUnauthorized: true, ...(tls.ca ? { ca: tls.ca } : {}) } } : {}),
  });
  // ioredis lets the URL's query parameters override these options (the config refuses them):
  // never connect with TLS settings other than the ones asked for.
  const effective = redis.options.tls as { rejectUnauthorized?: boolean; ca?: unknown } | undefined;
  if (
    tls &&
    (typeof effective !== 'object' || effective.rejectUnauthorized !== true || effective.ca !== tls.ca)
  ) {
    redis.disconnect();
    throw new CliError('REDIS_URL: its query parameters override the TLS settings: remove them');
  }
  // Without a listener ioredis prints every reconnect error; readiness (/readyz) reports it instead.
  // The last one is kept for the start-up message: a refused certificate otherwise reads only
  // "Connection is closed".
  let cause: Error | undefined;
  redis.on('error', (err: Error) => (cause = err));
  try {
    await redis.connect();
    await redis.ping();
  } catch (err) {
    redis.disconnect();
    throw new CliError(`REDIS_URL: cannot reach Redis (${(cause ?? (err as Error)).message})`);
  }
  redis.removeAllListeners('error');
  redis.on('error', () => undefined);
  return redis;
}

export interface RuntimeOptions {
  logger?: Logger;
  /** The node id this process holds (`sotto serve` only): Deps.nodeId. */
  nodeId?: string | undefined;
}

export async function openRuntime(config: Config, opts: RuntimeOptions = {}): Promise<Runtime> {
  const logger = opts.logger ?? createLogger(config.logLevel);
  // Redis first: an unreachable Redis stops start-up before the database is touched.
  const redis = config.redisUrl ? await connectRedis(config.redisUrl, config.redisTls) : undefined;
  let store: OpenedDatabase;
  try {
    store = await openDataStore(config);
  } catch (err) {
    redis?.disconnect();
    throw err;
  }
  try {
    await ensureSchema(store.db, config, logger);
    // A file keyring is re-read when a version rotated in by another process shows up.
    const masterKeys =
      config.masterKeySource.kind === 'file'
        ? liveFileKeyring(config.masterKeySource.path, config.masterKeys)
        : config.masterKeys;
    // The whole app is loaded only by the commands that open it: `sotto bot`, `sotto worker` and
    // `--help` start in a fraction of the time (each import of it cost about a second).
    const { createServices } = await import('../app.js');
    const services = await createServices({
      config: { ...config, masterKeys },
      db: store.db,
      redis,
      logger,
      ...(opts.nodeId ? { nodeId: opts.nodeId } : {}),
    });
    return {
      config,
      services,
      close: async () => {
        if (redis) await redis.quit().catch(() => redis?.disconnect());
        await store.close();
      },
    };
  } catch (err) {
    redis?.disconnect();
    await store.close();
    throw err;
  }
}
