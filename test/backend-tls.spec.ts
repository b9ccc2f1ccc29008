import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { runMigrate } from '../src/cli/commands/migrate.js';
import { CliError } from '../src/cli/cli-error.js';
import { connectRedis, openDataStore, openRuntime } from '../src/cli/runtime.js';
import { ConfigError, loadBootstrapConfig, loadConfig } from '../src/config/config.js';
import { createLogger } from '../src/http/logger.js';
import {
  makePki,
  startTlsPostgres,
  startTlsRedis,
  tlsBackendsMissing,
  type TestPki,
  type TlsServer,
} from './helpers/tls-backends.js';

/**
 * Issue 15, TLS to PostgreSQL and Redis (ASVS 12.3.x): against a PostgreSQL cluster and a
 * redis-server of this test's own that accept TLS only, with a CA made here, through the same
 * config parse and connection code `sotto serve` and `sotto migrate` use. Connects with the right
 * CA; refused with another CA; refused when the certificate does not name the host (the server
 * certificate names `localhost`, so `127.0.0.1` is a mismatch under verify-full).
 */
const missing = tlsBackendsMissing();
const dir = mkdtempSync(path.join(tmpdir(), 'sotto-backend-tls-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function configProblems(load: () => unknown): string[] {
  try {
    load();
  } catch (err) {
    if (err instanceof ConfigError) return err.problems;
    throw err;
  }
  throw new Error('expected a ConfigError');
}

describe('backend TLS configuration', () => {
  const key = randomBytes(32).toString('base64');
  const base = { SOTTO_DATA_DIR: dir, SOTTO_MASTER_KEY: key };
  const notPem = path.join(dir, 'not-a-cert.pem');
  beforeAll(() => writeFileSync(notPem, 'hello'));

  it('names each bad TLS variable in one error', () => {
    const p = configProblems(() =>
      loadConfig({
        ...base,
        SOTTO_ENV: 'production',
        SOTTO_PUBLIC_URL: 'https://sotto.example',
        DATABASE_URL: 'postgres://sotto@db.example.com/sotto?sslmode=require',
        SOTTO_DATABASE_CA_FILE: notPem,
        REDIS_URL: 'redis://cache.example.com:6379',
        SOTTO_REDIS_CA_FILE: path.join(dir, 'missing.pem'),
      }),
    );
    expect(p.some((l) => l.startsWith('DATABASE_URL: sslmode=require does not verify'))).toBe(true);
    expect(p).toContain(`SOTTO_DATABASE_CA_FILE: ${notPem} holds no PEM certificate`);
    expect(p.some((l) => l.startsWith('SOTTO_REDIS_CA_FILE: set, but REDIS_URL is redis://'))).toBe(true);
    expect(p.some((l) => l.startsWith('REDIS_URL: cache.example.com is not on this machine'))).toBe(true);
  });

  it('refuses plaintext to a remote server in production unless explicitly accepted', () => {
    const prod = { ...base, SOTTO_ENV: 'production', SOTTO_PUBLIC_URL: 'https://sotto.example' };
    const p = configProblems(() =>
      loadConfig({ ...prod, DATABASE_URL: 'postgres://sotto@10.0.0.5/sotto', REDIS_URL: 'redis://10.0.0.6' }),
    );
    expect(p.some((l) => l.startsWith('DATABASE_URL: 10.0.0.5 is not on this machine'))).toBe(true);
    expect(p.some((l) => l.startsWith('REDIS_URL: 10.0.0.6 is not on this machine'))).toBe(true);
    // sotto migrate reads the same rule.
    expect(
      configProblems(() =>
        loadBootstrapConfig({ ...prod, DATABASE_URL: 'postgres://sotto@db.example.com/sotto' }),
      ).some((l) => l.startsWith('DATABASE_URL: db.example.com is not on this machine')),
    ).toBe(true);
    const accepted = loadConfig({
      ...prod,
      DATABASE_URL: 'postgres://sotto@10.0.0.5/sotto?sslmode=disable',
      REDIS_URL: 'redis://10.0.0.6',
      SOTTO_REDIS_ALLOW_PLAINTEXT: 'true',
    });
    expect(accepted.databaseTls).toBeUndefined();
    expect(accepted.databaseUrl).toBe('postgres://sotto@10.0.0.5/sotto');
    expect(accepted.redisTls).toBeUndefined();
    // Loopback needs no TLS, in production too.
    const local = loadConfig({
      ...prod,
      DATABASE_URL: 'postgres://sotto@127.0.0.1/sotto',
      REDIS_URL: 'redis://[::1]:6379',
    });
    expect(local.databaseTls).toBeUndefined();
  });

  it('turns sslmode=verify-full and rediss:// into verifying TLS settings, the URL stripped of ssl parameters', () => {
    const c = loadConfig({
      ...base,
      DATABASE_URL: 'postgres://sotto:pw@db.example.com:5432/sotto?sslmode=verify-full&application_name=x',
      REDIS_URL: 'rediss://cache.example.com:6380',
    });
    expect(c.databaseTls).toEqual({ ca: undefined });
    expect(c.databaseUrl).toBe('postgres://sotto:pw@db.example.com:5432/sotto?application_name=x');
    expect(c.redisTls).toEqual({ ca: undefined });
  });

  it('judges the host pg really connects to: a ?host= parameter wins over the URL host', () => {
    const prod = { ...base, SOTTO_ENV: 'production', SOTTO_PUBLIC_URL: 'https://sotto.example' };
    const p = configProblems(() =>
      loadConfig({ ...prod, DATABASE_URL: 'postgres://u@127.0.0.1/db?host=db.remote' }),
    );
    expect(p.some((l) => l.startsWith('DATABASE_URL: db.remote is not on this machine'))).toBe(true);
    const twice = configProblems(() =>
      loadConfig({ ...prod, DATABASE_URL: 'postgres://u@127.0.0.1/db?host=localhost&host=db.remote' }),
    );
    expect(twice).toContain('DATABASE_URL: host is given more than once');
    expect(
      configProblems(() =>
        loadConfig({ ...prod, DATABASE_URL: 'postgres://u@127.0.0.1/db?hostaddr=10.0.0.5' }),
      ).some((l) => l.startsWith('DATABASE_URL: hostaddr is not supported')),
    ).toBe(true);
    // A local socket directory given as ?host= is still local.
    const socket = loadConfig({ ...prod, DATABASE_URL: 'postgres://u@localhost/db?host=/run/postgresql' });
    expect(socket.databaseTls).toBeUndefined();
  });

  it('refuses REDIS_URL query parameters that would override the TLS settings', async () => {
    for (const url of ['rediss://cache.example.com?tls=', 'rediss://cache.example.com?tls=RedisCloudFixed']) {
      expect(configProblems(() => loadConfig({ ...base, REDIS_URL: url }))).toContain(
        'REDIS_URL: tls not supported in the URL (TLS comes from rediss:// and SOTTO_REDIS_CA_FILE)',
      );
    }
    expect(loadConfig({ ...base, REDIS_URL: 'rediss://cache.example.com?family=6' }).redisTls).toEqual({
      ca: undefined,
    });
    // connectRedis does not trust its caller either: never a plain socket when TLS was asked for.
    await expect(connectRedis('rediss://127.0.0.1:1?tls=', { ca: undefined })).rejects.toThrow(
      'REDIS_URL: its query parameters override the TLS settings',
    );
  });
});

describe.skipIf(missing !== undefined)(
  `backend TLS, real servers${missing ? ` (skipped: ${missing})` : ''}`,
  () => {
    let pki: TestPki;
    let pg: TlsServer;
    let redis: TlsServer;

    beforeAll(async () => {
      pki = makePki(path.join(dir, 'pki'));
      [pg, redis] = await Promise.all([startTlsPostgres(pki), startTlsRedis(pki)]);
    }, 90_000);
    afterAll(async () => {
      await Promise.all([pg?.stop(), redis?.stop()]);
    });

    const pgUrl = (host: string) => `postgres://postgres@${host}:${pg.port}/postgres?sslmode=verify-full`;
    const env = (over: Record<string, string>) => ({
      SOTTO_DATA_DIR: path.join(dir, 'data'),
      SOTTO_MASTER_KEY: randomBytes(32).toString('base64'),
      SOTTO_LOG_LEVEL: 'silent',
      ...over,
    });

    it('sotto migrate and sotto serve’s runtime connect with the right CA, over TLS, LISTEN and pub/sub included', async () => {
      const out: string[] = [];
      const migrated = await runMigrate({
        status: false,
        env: env({ DATABASE_URL: pgUrl('localhost'), SOTTO_DATABASE_CA_FILE: pki.caFile }),
        print: (l) => out.push(l),
      });
      expect(migrated.applied.length).toBeGreaterThan(0);

      const config = loadConfig(
        env({
          DATABASE_URL: pgUrl('localhost'),
          SOTTO_DATABASE_CA_FILE: pki.caFile,
          REDIS_URL: `rediss://localhost:${redis.port}`,
          SOTTO_REDIS_CA_FILE: pki.caFile,
        }),
      );
      const runtime = await openRuntime(config, { logger: createLogger('silent') });
      try {
        const ready = await runtime.services.health.readiness();
        expect(ready).toMatchObject({ database: 'ok', redis: 'ok' });
      } finally {
        await runtime.close();
      }

      // The pool's connections and the LISTEN connection both negotiated TLS.
      const store = await openDataStore(config);
      try {
        const { rows } = await store.db.query<{ ssl: boolean }>(
          'SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()',
        );
        expect(rows[0]?.ssl).toBe(true);
        let notified = 0;
        const stop = await store.db.listen('sotto_tls_probe', () => notified++);
        await store.db.query("SELECT pg_notify('sotto_tls_probe', '')");
        await expect.poll(() => notified, { timeout: 5000 }).toBe(1);
        const { rows: listeners } = await store.db.query<{ n: string }>(
          "SELECT count(*)::text AS n FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.query = 'LISTEN sotto_tls_probe' AND s.ssl",
        );
        expect(listeners[0]?.n).toBe('1');
        await stop();
      } finally {
        await store.close();
      }

      // ioredis and a duplicate (what the live bus subscribes on) over the TLS-only port.
      const client = await connectRedis(config.redisUrl!, config.redisTls);
      const sub = client.duplicate();
      try {
        const got = new Promise<string>((resolve) =>
          sub.on('message', (_c: string, m: string) => resolve(m)),
        );
        await sub.subscribe('sotto-tls-probe');
        await client.publish('sotto-tls-probe', 'over tls');
        expect(await got).toBe('over tls');
      } finally {
        sub.disconnect();
        client.disconnect();
      }
    }, 120_000);

    it('refuses a server whose certificate another CA signed', async () => {
      const config = loadConfig(
        env({
          DATABASE_URL: pgUrl('localhost'),
          SOTTO_DATABASE_CA_FILE: pki.otherCaFile,
          REDIS_URL: `rediss://localhost:${redis.port}`,
          SOTTO_REDIS_CA_FILE: pki.otherCaFile,
        }),
      );
      const store = await openDataStore(config);
      try {
        await expect(store.db.query('SELECT 1')).rejects.toThrow(/self[- ]signed|unable to (get|verify)/i);
      } finally {
        await store.close();
      }
      await expect(connectRedis(config.redisUrl!, config.redisTls)).rejects.toThrow(CliError);
      await expect(connectRedis(config.redisUrl!, config.redisTls)).rejects.toThrow(
        /self[- ]signed|unable to (get|verify)/i,
      );
    });

    it('refuses a certificate that does not name the host (verify-full)', async () => {
      const config = loadConfig(
        env({
          DATABASE_URL: pgUrl('127.0.0.1'),
          SOTTO_DATABASE_CA_FILE: pki.caFile,
          REDIS_URL: `rediss://127.0.0.1:${redis.port}`,
          SOTTO_REDIS_CA_FILE: pki.caFile,
        }),
      );
      const store = await openDataStore(config);
      try {
        await expect(store.db.query('SELECT 1')).rejects.toThrow(/does not match|altnames/i);
      } finally {
        await store.close();
      }
      await expect(connectRedis(config.redisUrl!, config.redisTls)).rejects.toThrow(
        /does not match|altnames/i,
      );
    });

    it('refuses plaintext: the servers speak only TLS, so a client without it gets nothing', async () => {
      const config = loadConfig(env({ DATABASE_URL: `postgres://postgres@localhost:${pg.port}/postgres` }));
      expect(config.databaseTls).toBeUndefined();
      const store = await openDataStore(config);
      try {
        await expect(store.db.query('SELECT 1')).rejects.toThrow(/no pg_hba.conf entry|SSL off/i);
      } finally {
        await store.close();
      }
    });
  },
);
