import { spawn } from 'node:child_process';
import { randomBytes, randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { parseKeyring } from '../src/crypto/keyring.js';
import { openDatabase } from '../src/db/database.js';
import { backendLabel, usingPostgres, usingRedis } from './helpers/test-app.js';

/**
 * The `sotto` binary as an operator runs it: a child process with a controlled environment
 * (nothing inherited but PATH/HOME), judged by its exit status, stdout and stderr.
 */
const MAIN = path.resolve('src/cli/main.ts');

interface Run {
  code: number | null;
  stdout: string;
  stderr: string;
}

function spawnSotto(args: string[], env: Record<string, string>) {
  return spawn(process.execPath, ['--import', 'tsx', MAIN, ...args], {
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
}

function sotto(args: string[], env: Record<string, string>, timeoutMs = 60_000): Promise<Run> {
  return new Promise((resolve, reject) => {
    const child = spawnSotto(args, env);
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => (stdout += c.toString()));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`sotto ${args.join(' ')} did not finish in ${timeoutMs} ms\n${stdout}\n${stderr}`));
    }, timeoutMs);
    child.on('close', (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

const key = () => randomBytes(32).toString('base64');

describe('sotto serve refuses a bad configuration, naming every bad variable', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sotto-cli-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('names a bad port, a short master key, a bad Redis URL, log level and node id in one message', async () => {
    const r = await sotto(['serve'], {
      SOTTO_DATA_DIR: dir,
      SOTTO_HTTPS_PORT: 'not-a-port',
      SOTTO_MASTER_KEY: Buffer.alloc(16).toString('base64'),
      REDIS_URL: 'http://127.0.0.1:6379',
      SOTTO_LOG_LEVEL: 'loud',
      SOTTO_NODE_ID: 'node one',
    });
    expect(r.code).toBe(1);
    for (const name of [
      'SOTTO_HTTPS_PORT',
      'SOTTO_MASTER_KEY',
      'REDIS_URL',
      'SOTTO_LOG_LEVEL',
      'SOTTO_NODE_ID',
    ]) {
      expect(r.stderr).toContain(name);
    }
    expect(r.stderr).toContain('SOTTO_NODE_ID: 1 to 64 characters of A-Z');
    expect(r.stderr).toContain('must decode to 32 bytes');
    expect(r.stderr).not.toMatch(/\n\s+at /); // a message for an operator, not a stack trace
    expect(existsSync(path.join(dir, 'db'))).toBe(false); // nothing was opened
  });

  it('refuses to start without a master key (no plaintext fallback)', async () => {
    const r = await sotto(['serve'], { SOTTO_DATA_DIR: dir });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('SOTTO_MASTER_KEY');
    expect(r.stderr).toContain('sotto init');
    expect(existsSync(path.join(dir, 'db'))).toBe(false);
  });

  it('refuses a missing or malformed key file, naming SOTTO_MASTER_KEY_FILE', async () => {
    const missing = await sotto(['serve'], {
      SOTTO_DATA_DIR: dir,
      SOTTO_MASTER_KEY_FILE: path.join(dir, 'nope.key'),
    });
    expect(missing.code).toBe(1);
    expect(missing.stderr).toMatch(/SOTTO_MASTER_KEY_FILE: .*nope\.key does not exist/);
    const bad = path.join(dir, 'bad.key');
    writeFileSync(bad, 'this is not a key\n', { mode: 0o600 });
    const malformed = await sotto(['serve'], { SOTTO_DATA_DIR: dir, SOTTO_MASTER_KEY_FILE: bad });
    expect(malformed.code).toBe(1);
    expect(malformed.stderr).toContain('SOTTO_MASTER_KEY_FILE');
    expect(malformed.stderr).toContain('not valid base64');
  });

  it('refuses both key variables at once', async () => {
    const r = await sotto(['serve'], {
      SOTTO_DATA_DIR: dir,
      SOTTO_MASTER_KEY: key(),
      SOTTO_MASTER_KEY_FILE: path.join(dir, 'x.key'),
    });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('SOTTO_MASTER_KEY and SOTTO_MASTER_KEY_FILE are both set');
  });
});

describe('sotto init', () => {
  let dir: string;
  beforeAll(() => {
    dir = mkdtempSync(path.join(tmpdir(), 'sotto-init-'));
  });
  afterAll(() => rmSync(dir, { recursive: true, force: true }));

  it('writes a 0600 key file outside the database files and says to back it up', async () => {
    const dataDir = path.join(dir, 'data');
    const r = await sotto(['init'], { SOTTO_DATA_DIR: dataDir });
    expect(r.code).toBe(0);
    const file = path.join(dataDir, 'keys', 'master.key');
    expect(r.stdout).toContain(file);
    expect(r.stdout).toMatch(/back it up/i);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(path.dirname(file)).mode & 0o777).toBe(0o700);
    expect(statSync(dataDir).mode & 0o777).toBe(0o700);
    expect(path.relative(path.join(dataDir, 'db'), file).startsWith('..')).toBe(true);
    const ring = parseKeyring(readFileSync(file, 'utf8'));
    expect(ring.active.version).toBe(1);
    expect(ring.active.key).toHaveLength(32);
    // The key never reaches the terminal.
    expect(r.stdout + r.stderr).not.toContain(ring.active.key.toString('base64'));
  });

  it('is idempotent with --if-missing and refuses to overwrite without it', async () => {
    const dataDir = path.join(dir, 'idem');
    expect((await sotto(['init', '--if-missing'], { SOTTO_DATA_DIR: dataDir })).code).toBe(0);
    const file = path.join(dataDir, 'keys', 'master.key');
    const first = readFileSync(file, 'utf8');
    const again = await sotto(['init', '--if-missing'], { SOTTO_DATA_DIR: dataDir });
    expect(again.code).toBe(0);
    expect(again.stdout).toBe('');
    expect(readFileSync(file, 'utf8')).toBe(first);
    const overwrite = await sotto(['init'], { SOTTO_DATA_DIR: dataDir });
    expect(overwrite.code).toBe(1);
    expect(overwrite.stderr).toContain('refusing to overwrite');
    expect(readFileSync(file, 'utf8')).toBe(first);
  });

  it('writes nothing when the key comes from the environment', async () => {
    const dataDir = path.join(dir, 'env');
    const r = await sotto(['init', '--if-missing'], { SOTTO_DATA_DIR: dataDir, SOTTO_MASTER_KEY: key() });
    expect(r.code).toBe(0);
    expect(existsSync(path.join(dataDir, 'keys', 'master.key'))).toBe(false);
    const strict = await sotto(['init'], { SOTTO_DATA_DIR: dataDir, SOTTO_MASTER_KEY: key() });
    expect(strict.code).toBe(1);
    expect(strict.stderr).toContain('SOTTO_MASTER_KEY is set');
  });
});

/** An empty PostgreSQL database (no migrations) when the suite runs against PostgreSQL. */
async function emptyDatabase(): Promise<{ env: Record<string, string>; drop: () => Promise<void> }> {
  const adminUrl = process.env.DATABASE_URL;
  if (!adminUrl) return { env: {}, drop: async () => undefined };
  const name = `sotto_cli_${randomUUID().replace(/-/g, '')}`;
  const admin = await openDatabase({ databaseUrl: adminUrl, poolSize: 1 });
  await admin.exec(`CREATE DATABASE ${name}`);
  const url = new URL(adminUrl);
  url.pathname = `/${name}`;
  return {
    env: { DATABASE_URL: url.toString() },
    drop: async () => {
      await admin.exec(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await admin.close();
    },
  };
}

function httpsStatus(port: number, urlPath: string): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: urlPath, rejectUnauthorized: false, agent: false },
      (res) => {
        res.resume();
        resolve(res.statusCode ?? 0);
      },
    );
    req.on('error', reject);
    req.end();
  });
}

describe(`sotto migrate and serve in production mode (${backendLabel})`, () => {
  let dir: string;
  let env: Record<string, string>;
  let drop: () => Promise<void>;

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sotto-prod-'));
    const db = await emptyDatabase();
    drop = db.drop;
    env = {
      SOTTO_ENV: 'production',
      SOTTO_DATA_DIR: dir,
      SOTTO_MASTER_KEY: key(),
      SOTTO_HOST: '127.0.0.1',
      SOTTO_HTTPS_PORT: '0',
      SOTTO_HTTP_PORT: '0',
      SOTTO_PUBLIC_URL: 'https://sotto.test',
      SOTTO_REDIS_PREFIX: `sotto-cli-${randomUUID()}:`,
      ...db.env,
      ...(usingRedis ? { REDIS_URL: process.env.REDIS_URL! } : {}),
    };
  });
  afterAll(async () => {
    await drop?.();
    rmSync(dir, { recursive: true, force: true });
  });

  it(
    'refuses to start with pending migrations, pointing at `sotto migrate`',
    { timeout: 120_000 },
    async () => {
      const r = await sotto(['serve'], env);
      expect(r.code).toBe(1);
      expect(r.stderr).toContain('pending migration');
      expect(r.stderr).toContain('0001_core');
      expect(r.stderr).toContain('sotto migrate');
    },
  );

  it('refuses to start when the configured Redis cannot be reached', async () => {
    const r = await sotto(['serve'], { ...env, REDIS_URL: 'redis://127.0.0.1:1' });
    expect(r.code).toBe(1);
    expect(r.stderr).toContain('REDIS_URL: cannot reach Redis');
  });

  it(
    '`migrate --status` lists, `migrate` applies (without needing the master key)',
    { timeout: 180_000 },
    async () => {
      const { SOTTO_MASTER_KEY: _k, ...noKey } = env;
      const status = await sotto(['migrate', '--status'], noKey);
      expect(status.code).toBe(0);
      expect(status.stdout).toMatch(/pending\s+0001_core/);
      const applied = await sotto(['migrate'], noKey);
      expect(applied.code).toBe(0);
      expect(applied.stdout).toContain('applied 0001_core');
      const after = await sotto(['migrate', '--status'], noKey);
      expect(after.stdout).toMatch(/applied\s+0001_core/);
      expect(after.stdout).toContain('Up to date.');
      expect((await sotto(['migrate'], noKey)).stdout).toContain('already up to date');
    },
  );

  it(
    'then starts, serves HTTPS, logs what it uses, and stops cleanly on SIGTERM',
    { timeout: 120_000 },
    async () => {
      const child = spawnSotto(['serve'], env);
      let out = '';
      let err = '';
      child.stderr.on('data', (c: Buffer) => (err += c.toString()));
      const started = new Promise<{ port: number; line: Record<string, unknown> }>((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error(`serve did not start\n${out}\n${err}`)), 60_000);
        child.stdout.on('data', (c: Buffer) => {
          out += c.toString();
          const listening = /"address":"https:\/\/127\.0\.0\.1:(\d+)"/.exec(out);
          const line = out.split('\n').find((l) => l.includes('"msg":"sotto started"'));
          if (listening && line) {
            clearTimeout(timer);
            resolve({ port: Number(listening[1]), line: JSON.parse(line) as Record<string, unknown> });
          }
        });
        child.on('close', (code) => reject(new Error(`serve exited with ${code}\n${out}\n${err}`)));
      });
      const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
      try {
        const { port, line } = await started;
        expect(line.database).toBe(usingPostgres ? 'postgres' : 'pglite');
        expect(line.redis).toBe(usingRedis ? 'connected' : 'not configured (in-memory rate limits)');
        expect(await httpsStatus(port, '/healthz')).toBe(200);
        expect(await httpsStatus(port, '/readyz')).toBe(200);
        if (!usingPostgres) {
          // The embedded database belongs to this server: a second process is turned away.
          const second = await sotto(['migrate', '--status'], env);
          expect(second.code).toBe(1);
          expect(second.stderr).toContain('in use by process');
        }
      } finally {
        child.kill('SIGTERM');
      }
      expect(await exited).toBe(0);
      expect(out).toContain('"msg":"stopped"');
      expect(existsSync(path.join(dir, 'db.lock'))).toBe(false);
    },
  );
});
