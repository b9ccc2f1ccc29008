import { spawn, type ChildProcess } from 'node:child_process';
import { closeSync, existsSync, mkdtempSync, openSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { freePort } from './helpers/ports.js';
import { testMasterKey } from './helpers/test-app.js';

/**
 * Issue 17, `sotto serve` as a process: a log destination that fails with ENOSPC (stdout is
 * /dev/full) must neither freeze nor kill the server, and a SIGTERM the moment /healthz first
 * answers must shut it down gracefully (the handlers exist before anything listens). PGlite in a
 * temporary data directory: these are about the process, not the database.
 */
const MAIN = path.resolve('src/cli/main.ts');
const dirs: string[] = [];
const children: ChildProcess[] = [];

afterAll(() => {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
});

function get(port: number, urlPath: string): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const req = request(
      { host: '127.0.0.1', port, path: urlPath, rejectUnauthorized: false, timeout: 5000 },
      (res) => {
        let body = '';
        res.on('data', (d: Buffer) => (body += d.toString()));
        res.on('end', () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on('timeout', () => req.destroy(new Error('timeout')));
    req.on('error', reject);
    req.end();
  });
}

async function serveProcess(stdout: 'pipe' | number) {
  const dir = mkdtempSync(path.join(tmpdir(), 'sotto-serve-outage-'));
  dirs.push(dir);
  const port = await freePort();
  const child = spawn(process.execPath, ['--import', 'tsx', MAIN, 'serve'], {
    env: {
      PATH: process.env.PATH ?? '',
      HOME: process.env.HOME ?? '',
      SOTTO_ENV: 'test',
      SOTTO_DATA_DIR: dir,
      SOTTO_MASTER_KEY: testMasterKey(),
      SOTTO_HOST: '127.0.0.1',
      SOTTO_HTTPS_PORT: String(port),
      SOTTO_HTTP_PORT: '0',
      SOTTO_PUBLIC_URL: 'https://sotto.test',
      // No engine needed here (and none is looked for in a loop meanwhile).
      SOTTO_ASR_ENGINE: 'openai',
      SOTTO_OPENAI_BASE_URL: 'http://127.0.0.1:9',
    },
    stdio: ['ignore', stdout, 'pipe'],
  });
  children.push(child);
  let out = '';
  let err = '';
  child.stdout?.on('data', (d: Buffer) => (out += d.toString()));
  child.stderr!.on('data', (d: Buffer) => (err += d.toString()));
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
    child.on('exit', (code, signal) => resolve({ code, signal })),
  );
  let gone = false;
  void exited.then(() => (gone = true));
  /** Polls /healthz until it answers 200 (as a load balancer would); false if the process died. */
  const firstHealthy = async (timeoutMs = 90_000): Promise<boolean> => {
    const end = Date.now() + timeoutMs;
    while (!gone && Date.now() < end) {
      const ok = await get(port, '/healthz').then(
        (r) => r.status === 200,
        () => false,
      );
      if (ok) return true;
      await new Promise((r) => setTimeout(r, 10));
    }
    return false;
  };
  return { child, port, exited, firstHealthy, out: () => out, err: () => err, dir, alive: () => !gone };
}

describe('sotto serve process (issue 17)', () => {
  it.skipIf(!existsSync('/dev/full'))(
    'a log destination failing with ENOSPC (/dev/full) neither freezes nor kills the server',
    async () => {
      const full = openSync('/dev/full', 'w');
      let s: Awaited<ReturnType<typeof serveProcess>>;
      try {
        s = await serveProcess(full);
      } finally {
        closeSync(full);
      }
      expect(await s.firstHealthy(), s.err()).toBe(true);
      // Every request logs (request and response lines): all of them fail to be written.
      for (let i = 0; i < 100; i++) {
        const r = await get(s.port, i % 2 ? '/readyz' : '/api/v1/no-such-route');
        expect([200, 404]).toContain(r.status);
      }
      const started = Date.now();
      expect((await get(s.port, '/healthz')).status).toBe(200);
      expect(Date.now() - started).toBeLessThan(2000);
      expect(s.alive()).toBe(true);
      // Said once on stderr, not once per line.
      expect(s.err().match(/log lines are being dropped/g)).toHaveLength(1);
      s.child.kill('SIGTERM');
      expect(await s.exited).toEqual({ code: 0, signal: null });
    },
    120_000,
  );

  it('a SIGTERM as soon as /healthz answers shuts down gracefully (exit 0, "stopped")', async () => {
    const s = await serveProcess('pipe');
    expect(await s.firstHealthy(), s.err()).toBe(true);
    s.child.kill('SIGTERM');
    const exit = await s.exited;
    expect(exit, `${s.out()}\n${s.err()}`).toEqual({ code: 0, signal: null });
    expect(s.out()).toContain('"msg":"shutting down"');
    expect(s.out()).toContain('"msg":"stopped"');
    // The embedded database was closed properly: its lock is released.
    expect(existsSync(path.join(s.dir, 'db.lock'))).toBe(false);
  }, 120_000);
});
