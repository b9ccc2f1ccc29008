import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import path from 'node:path';
import { Writable } from 'node:stream';
import { Redis } from 'ioredis';
import { createServices } from '../../src/app.js';
import { loadConfig } from '../../src/config/config.js';
import type { Database } from '../../src/db/database.js';
import type { Clock } from '../../src/adapters/system/clock.adapter.js';
import { createLogger } from '../../src/http/logger.js';
import { buildServer } from '../../src/http/server.js';
import { freshIp } from './auth-client.js';
import { bearer, createOrgWithUser, type TestUser } from './fixtures.js';
import { createLive, listenTls, openWs, type Conn, type Listening } from './live.js';
import { hasCorpus, noCorpusReason } from './corpus.js';
import { replayWrap } from './replay-engine.js';
import { testMasterKey, usingPostgres, usingRedis, type TestApp } from './test-app.js';

/**
 * Several server instances, one after the other, on ONE database and ONE data directory (same
 * master key, same Redis prefix): what a restart of `sotto serve` looks like to the live spool.
 */
export interface Instance extends TestApp {
  server: Listening;
  /** Graceful: stops the worker, then closes the listener and the app (onClose hooks run). */
  close(): Promise<void>;
}

/**
 * An owner of an org that stores audio, and a live recording of theirs, made through an
 * in-process instance that is then closed: what the multi-process specs set up before they start
 * `sotto serve` processes on the same database.
 */
export async function liveRecordingThenClose(
  local: Instance,
  title: string,
): Promise<{ user: TestUser; ip: string; id: string }> {
  const user = await createOrgWithUser(local.services, { role: 'owner' });
  const ip = freshIp();
  await local.app.inject({
    method: 'PATCH',
    url: '/api/v1/org/settings',
    headers: bearer(user.accessToken),
    payload: { storeAudio: true },
    remoteAddress: ip,
  });
  const id = await createLive(local, user.accessToken, ip, title);
  await local.close();
  return { user, ip, id };
}

export function instanceFactory(db: Database, env: Record<string, string>) {
  const masterKey = testMasterKey();
  const prefix = `sotto-test-${randomUUID()}:`;
  return async (extra: Record<string, string> = {}, opts: { clock?: Clock } = {}): Promise<Instance> => {
    const config = loadConfig({
      SOTTO_ENV: 'test',
      SOTTO_MASTER_KEY: masterKey,
      SOTTO_LOG_LEVEL: 'info',
      SOTTO_PUBLIC_URL: 'https://sotto.test',
      SOTTO_REDIS_PREFIX: prefix,
      SOTTO_ARGON2_CONCURRENCY: '2',
      // Where pocketsphinx is looked for (the config sees only the environment given here).
      PATH: process.env.PATH ?? '',
      ...(process.env.REDIS_URL ? { REDIS_URL: process.env.REDIS_URL } : {}),
      ...env,
      ...extra,
    });
    const logs: string[] = [];
    const sink = new Writable({
      write(chunk, _enc, done) {
        logs.push(String(chunk));
        done();
      },
    });
    const logger = createLogger(config.logLevel, sink);
    const redis = config.redisUrl ? new Redis(config.redisUrl, { maxRetriesPerRequest: 2 }) : undefined;
    const services = await createServices({
      config,
      db,
      redis,
      logger,
      ...(opts.clock ? { clock: opts.clock } : {}),
      engineDeps: { wrap: replayWrap },
    });
    const app = await buildServer({ services });
    await app.ready();
    const server = await listenTls(services);
    return {
      app,
      services,
      db,
      databaseUrl: undefined,
      logs,
      server,
      close: async () => {
        await services.jobs.stop();
        await server.close();
        await app.close();
        redis?.disconnect();
      },
    };
  };
}

const MAIN = path.resolve('src/cli/main.ts');

/**
 * The environment of a production `sotto serve` child on a random port, sharing the test's keys,
 * prefix and data dir (`shared`) and its PostgreSQL database (and Redis, when given).
 */
export function serveEnv(
  shared: Record<string, string>,
  databaseUrl: string,
  redisUrl?: string | undefined,
): Record<string, string> {
  return {
    ...shared,
    SOTTO_ENV: 'production',
    SOTTO_HOST: '127.0.0.1',
    SOTTO_HTTPS_PORT: '0',
    SOTTO_HTTP_PORT: '0',
    SOTTO_PUBLIC_URL: 'https://sotto.test',
    DATABASE_URL: databaseUrl,
    ...(redisUrl ? { REDIS_URL: redisUrl } : {}),
  };
}

/**
 * `sotto serve` as a child process (a real, separate server: its own event loop, memory and
 * connections), resolved once it listens. Its environment is exactly `env` plus PATH and HOME.
 */
export function serve(
  env: Record<string, string>,
): Promise<{ child: ChildProcess; port: number; output: () => string }> {
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve'], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let out = '';
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`serve did not start\n${out}`)), 60_000);
    child.stderr!.on('data', (c: Buffer) => (out += c.toString()));
    child.stdout!.on('data', (c: Buffer) => {
      out += c.toString();
      const listening = /"address":"https:\/\/127\.0\.0\.1:(\d+)"/.exec(out);
      if (listening && out.includes('"msg":"sotto started"')) {
        clearTimeout(timer);
        resolve({ child, port: Number(listening[1]), output: () => out });
      }
    });
    child.on('close', (code) => reject(new Error(`serve exited with ${code}\n${out}`)));
  });
}

/**
 * Opens the ingest socket of `recordingId` on the `sotto serve` child listening on `port`, once
 * the claim of the node that held the recording can be taken: a killed (or paused) node stops
 * beating, and with Redis its claim is taken over once its liveness lapsed, 2 ×
 * SOTTO_LIVE_RECHECK_SECONDS + 1 s after its last beat (liveAliveTtlMs), or at the latest when the
 * claim itself lapses, 3 × SOTTO_LIVE_RECHECK_SECONDS + 10 s past its last renewal (liveClaimTtlMs).
 * Until then the handshake is refused 409, the only refusal expected: any other status fails at
 * once, and so does a claim still held after `timeoutMs`. No vitest here (benches import this file).
 */
export async function openIngestOnceClaimLapses(
  port: number,
  recordingId: string,
  token: string,
  { timeoutMs = 40_000, paceMs = 250 }: { timeoutMs?: number; paceMs?: number } = {},
): Promise<Conn> {
  // An empty CA: the child has its own self-signed certificate (see openWs).
  const node: Listening = { port, ca: '', close: async () => undefined };
  const until = Date.now() + timeoutMs;
  for (;;) {
    const r = await openWs(node, `/api/v1/recordings/${recordingId}/live`, { token });
    if (typeof r !== 'number') return r;
    if (r !== 409)
      throw new Error(`the ingest handshake was refused with ${r}, not 409 (claimed by another node)`);
    if (Date.now() > until)
      throw new Error(`still 409 after ${timeoutMs} ms: the old node's claim did not lapse`);
    await new Promise((res) => setTimeout(res, paceMs));
  }
}

/**
 * Whether the specs that run two `sotto serve` processes can run here, and why not: both share
 * PostgreSQL (an embedded PGlite belongs to one process) and Redis, and stream corpus speech.
 * `why` is appended to the describe title ('' when they run).
 */
export const twoNodeSpecs = {
  skip: !usingPostgres || !usingRedis || !hasCorpus,
  why:
    !usingPostgres || !usingRedis
      ? ': needs DATABASE_URL and REDIS_URL'
      : hasCorpus
        ? ''
        : ` ${noCorpusReason}`,
};
