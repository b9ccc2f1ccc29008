import { randomBytes, randomUUID } from 'node:crypto';
import { Writable } from 'node:stream';
import type { FastifyInstance } from 'fastify';
import { Redis } from 'ioredis';
import { createServices, type Services } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';
import { openDatabase, type Database } from '../../src/db/database.js';
import { migrate } from '../../src/db/migrate.js';
import { buildServer } from '../../src/http/server.js';
import { createLogger } from '../../src/http/logger.js';
import type { Clock } from '../../src/adapters/system/clock.adapter.js';
import { pgliteSnapshot, postgresTemplate } from './db-template.js';
import { replayWrap } from './replay-engine.js';

/**
 * Integration harness. Runs against PGlite (in memory) by default; when DATABASE_URL / REDIS_URL
 * are set (CI does), against a fresh PostgreSQL database and a real Redis with a unique prefix.
 */
export const usingPostgres = Boolean(process.env.DATABASE_URL);
export const usingRedis = Boolean(process.env.REDIS_URL);
export const backendLabel = `${usingPostgres ? 'PostgreSQL' : 'PGlite'}${usingRedis ? ' + Redis' : ''}`;

/** A fresh, migrated database: PGlite in memory, or a new database on the PostgreSQL server. */
export async function freshDatabase(): Promise<{
  db: Database;
  url: string | undefined;
  drop: () => Promise<void>;
}> {
  // Inside a vitest run, a copy of the run's migrated database (test/helpers/db-template.ts);
  // elsewhere (benches) a new one, migrated here.
  const adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) {
    const snapshot = pgliteSnapshot();
    const db = await openDatabase(snapshot ? { pgliteLoadDataDir: snapshot } : {});
    if (!snapshot) await migrate(db);
    return { db, url: undefined, drop: () => db.close() };
  }
  const name = `sotto_test_${randomUUID().replace(/-/g, '')}`;
  const admin = await openDatabase({ databaseUrl: adminUrl, poolSize: 1 });
  const template = postgresTemplate();
  await admin.exec(`CREATE DATABASE ${name}${template ? ` TEMPLATE ${template}` : ''}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  const db = await openDatabase({ databaseUrl: url.toString(), poolSize: 10 });
  if (!template) await migrate(db);
  return {
    db,
    url: url.toString(),
    drop: async () => {
      await db.close();
      await admin.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.close();
    },
  };
}

export interface TestApp {
  app: FastifyInstance;
  services: Services;
  db: Database;
  /** The test database's URL when the suite runs against PostgreSQL (for pg_dump and the like). */
  databaseUrl: string | undefined;
  /** Every log line written while the app ran (to prove nothing secret is logged). */
  logs: string[];
  close(): Promise<void>;
}

export interface TestAppOptions {
  clock?: Clock;
  /** The retry backoffs' random source: `() => 1` makes every delay its ceiling (exact). */
  random?: () => number;
  env?: Record<string, string>;
  /**
   * 'replay' (default): pocketsphinx's answers are replayed from its recordings (replay-engine.ts),
   * the real engine answering only what was never recorded. 'real' for specs of the engine itself,
   * of accuracy, or of partial-text timing.
   */
  engine?: 'replay' | 'real';
}

export function testMasterKey(): string {
  return randomBytes(32).toString('base64');
}

export async function startTestApp(opts: TestAppOptions = {}): Promise<TestApp> {
  const { db, url, drop } = await freshDatabase();
  const prefix = `sotto-test-${randomUUID()}:`;
  const config = loadConfig({
    SOTTO_ENV: 'test',
    SOTTO_MASTER_KEY: testMasterKey(),
    SOTTO_LOG_LEVEL: 'info',
    SOTTO_PUBLIC_URL: 'https://sotto.test',
    SOTTO_REDIS_PREFIX: prefix,
    SOTTO_ARGON2_CONCURRENCY: '2',
    // The whole environment the config sees: without PATH, pocketsphinx would not be found.
    PATH: process.env.PATH ?? '',
    ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
    ...opts.env,
  });
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const logger = createLogger(config.logLevel, sink);
  const redis = config.redisUrl
    ? new Redis(config.redisUrl, { lazyConnect: false, maxRetriesPerRequest: 2 })
    : undefined;
  const services = await createServices({
    config,
    db,
    redis,
    logger,
    ...(opts.clock ? { clock: opts.clock } : {}),
    ...(opts.random ? { random: opts.random } : {}),
    ...(opts.engine === 'real' ? {} : { engineDeps: { wrap: replayWrap } }),
  });
  const app = await buildServer({ services });
  await app.ready();
  return {
    app,
    services,
    db,
    databaseUrl: url,
    logs,
    close: async () => {
      await app.close();
      if (redis) {
        const keys = await redis.keys(`${prefix}*`);
        if (keys.length > 0) await redis.del(...keys);
        redis.disconnect();
      }
      await drop();
    },
  };
}
