import { spawn, type ChildProcess } from 'node:child_process';
import { randomUUID } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { startTransport } from '../src/http/listen.js';
import { ensureSelfSignedCert } from '../src/adapters/network/tls.adapter.js';
import { freshIp } from './helpers/auth-client.js';
import { corpusFile, hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { bearer, createOrgWithUser } from './helpers/fixtures.js';
import { instanceFactory, serve, serveEnv } from './helpers/live-instances.js';
import { finishedDone, uploadQueued } from './helpers/job-steps.js';
import { multipart, recordingEnv } from './helpers/recordings.js';
import {
  backendLabel,
  freshDatabase,
  startTestApp,
  testMasterKey,
  usingPostgres,
  usingRedis,
} from './helpers/test-app.js';

/**
 * Issue 17, item 4: plaintext a killed process leaves behind (a partial upload, the decrypted
 * work copy, a remote worker's job folder) is removed by another process's scheduled sweep within
 * the configured interval, without touching the files a live process still uses. Real processes
 * killed with SIGKILL mid-job; the sweep runs every second here (SOTTO_TMP_SWEEP_SECONDS).
 */
const MAIN = path.resolve('src/cli/main.ts');
const TAG = /^s[0-9a-f]{10}-(\d+)-[0-9a-f]{12}_/;
const SWEEP_SECONDS = 1;
const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const ownerPid = (name: string) => Number(TAG.exec(name)?.[1] ?? NaN);
const list = (dir: string) => (existsSync(dir) ? readdirSync(dir) : []);

async function until<T>(what: string, fn: () => T | undefined, timeoutMs = 120_000): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = fn();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await sleep(20);
  }
}

/** Milliseconds until `fn` holds (polled every 20 ms), or throws after `timeoutMs`. */
async function msUntil(what: string, fn: () => boolean, timeoutMs: number): Promise<number> {
  const start = Date.now();
  await until(what, () => (fn() ? true : undefined), timeoutMs);
  return Date.now() - start;
}

/**
 * An upload that keeps streaming (16 kB every 400 ms, above the minimum rate) and never ends:
 * the server holds a partial staged file for it until stop().
 */
function trickleUpload(port: number, token: string): { stop(): void } {
  const body = multipart({}, { data: Buffer.alloc(0) });
  const boundary = /boundary=(.*)$/.exec(body.headers['content-type']!)![1]!;
  const head = Buffer.from(
    `--${boundary}\r\ncontent-disposition: form-data; name="audio"; filename="a.wav"\r\ncontent-type: audio/wav\r\n\r\n`,
  );
  const req = request({
    host: '127.0.0.1',
    port,
    method: 'POST',
    path: '/api/v1/recordings',
    rejectUnauthorized: false,
    headers: {
      ...bearer(token),
      'content-type': body.headers['content-type'],
      'content-length': String(head.length + 100 * 1024 * 1024),
    },
  });
  req.on('error', () => undefined);
  req.on('response', (res) => res.resume());
  req.write(head);
  const chunk = Buffer.alloc(16 * 1024, 7);
  const timer = setInterval(() => req.write(chunk), 400);
  return {
    stop: () => {
      clearInterval(timer);
      req.destroy();
    },
  };
}

function killAll(children: ChildProcess[]) {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) c.kill('SIGKILL');
}

describe.skipIf(!usingPostgres || !hasCorpus)(
  `plaintext of a SIGKILLed \`sotto serve\` is swept by another node (${backendLabel})${usingPostgres ? '' : ': two server processes need a shared PostgreSQL'}${hasCorpus ? '' : ` ${noCorpusReason}`}`,
  () => {
    it('partial upload and work copy of the killed node go within the interval; the live node keeps its own', async () => {
      const { db, url, drop } = await freshDatabase();
      const env = recordingEnv({
        SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000',
        SOTTO_TMP_SWEEP_SECONDS: String(SWEEP_SECONDS),
        SOTTO_JOB_LEASE_SECONDS: '3',
        // One attempt only: the killed holder's claim must not use it (lease lapses are not attempts).
        SOTTO_JOB_MAX_ATTEMPTS: '1',
      });
      const shared = {
        ...env.env,
        SOTTO_MASTER_KEY: testMasterKey(),
        SOTTO_REDIS_PREFIX: `sotto-leftovers-${randomUUID()}:`,
      };
      const local = await instanceFactory(db, shared)();
      const children: ChildProcess[] = [];
      const uploads: { stop(): void }[] = [];
      cleanup.push(async () => {
        for (const u of uploads) u.stop();
        killAll(children);
        await local.close();
        await drop();
        rmSync(env.dataDir, { recursive: true, force: true });
      });
      const user = await createOrgWithUser(local.services, { role: 'owner' });
      const ip = freshIp();
      const childEnv = serveEnv(shared, url!, usingRedis ? process.env.REDIS_URL : undefined);
      const nodes = [await serve(childEnv), await serve(childEnv)];
      children.push(...nodes.map((n) => n.child));
      const pids = nodes.map((n) => n.child.pid!);

      const uploadsDir = path.join(env.dataDir, 'tmp', 'uploads');
      const workDir = path.join(env.dataDir, 'tmp', 'work');
      // One upload in progress on each node.
      for (const n of nodes) uploads.push(trickleUpload(n.port, user.accessToken));
      const partial = await until('a partial upload on both nodes', () => {
        const names = list(uploadsDir);
        return pids.every((p) => names.some((n) => ownerPid(n) === p)) ? names : undefined;
      });
      // A real recording; whichever node claims it holds its decrypted work copy.
      const id = await uploadQueued(local, user.accessToken, ip, readFileSync(corpusFile('call-02', 'wav')));
      const work = await until('a work copy', () => list(workDir).find((n) => pids.includes(ownerPid(n))));
      const victim = ownerPid(work);
      const survivor = pids.find((p) => p !== victim)!;
      const victimUpload = partial.find((n) => ownerPid(n) === victim)!;
      const survivorUpload = partial.find((n) => ownerPid(n) === survivor)!;
      process.kill(victim, 'SIGKILL');
      const killed = Date.now();
      expect(existsSync(path.join(workDir, work))).toBe(true);
      expect(existsSync(path.join(uploadsDir, victimUpload))).toBe(true);

      // The survivor's schedule removes both within the interval (plus one pass of slack).
      await msUntil(
        "the killed node's plaintext to go",
        () => !existsSync(path.join(workDir, work)) && !existsSync(path.join(uploadsDir, victimUpload)),
        (SWEEP_SECONDS * 2 + 3) * 1000,
      );
      expect(Date.now() - killed).toBeLessThan((SWEEP_SECONDS * 2 + 3) * 1000);
      // The survivor's own upload, still streaming, was never touched.
      expect(existsSync(path.join(uploadsDir, survivorUpload))).toBe(true);
      for (const u of uploads) u.stop();
      // The job the killed node held is taken again once its lease lapses, and finishes.
      await finishedDone(local, user.accessToken, ip, id);
    }, 400_000);
  },
);

describe.skipIf(!hasCorpus)(
  `plaintext of a SIGKILLed \`sotto worker\` is swept by another worker (${backendLabel})${hasCorpus ? '' : ` ${noCorpusReason}`}`,
  () => {
    it("the killed worker's job folder goes within the interval; the live worker's stays", async () => {
      const dir = mkdtempSync(path.join(tmpdir(), 'sotto-leftovers-'));
      const r = recordingEnv({
        SOTTO_HOST: '127.0.0.1',
        SOTTO_HTTPS_PORT: '0',
        SOTTO_HTTP_PORT: '0',
        SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000',
        SOTTO_JOB_LEASE_SECONDS: '3',
        // One attempt only: the killed holder's claim must not use it (lease lapses are not attempts).
        SOTTO_JOB_MAX_ATTEMPTS: '1',
      });
      const t = await startTestApp({ env: r.env });
      const cert = await ensureSelfSignedCert(path.join(dir, 'tls'), ['sotto.test']);
      const transport = await startTransport({ services: t.services, tls: cert });
      const children: ChildProcess[] = [];
      cleanup.push(async () => {
        killAll(children);
        await transport.close();
        await t.close();
        rmSync(dir, { recursive: true, force: true });
        rmSync(r.dataDir, { recursive: true, force: true });
      });
      const user = await createOrgWithUser(t.services, { role: 'owner' });
      const ip = freshIp();
      const tokenRes = await t.app.inject({
        method: 'POST',
        url: '/api/v1/org/workers',
        headers: bearer(user.accessToken),
        remoteAddress: ip,
        payload: { name: 'leftovers' },
      });
      expect(tokenRes.statusCode, tokenRes.body).toBe(201);
      const { token } = tokenRes.json() as { token: string };
      const scratch = path.join(dir, 'scratch');
      const worker = () => {
        const child = spawn(
          process.execPath,
          [
            '--import',
            'tsx',
            MAIN,
            'worker',
            '--api',
            `https://127.0.0.1:${transport.address.port}`,
            '--ca',
            cert.certFile,
            '--heartbeat-seconds',
            '1',
          ],
          {
            env: {
              PATH: process.env.PATH ?? '',
              HOME: process.env.HOME ?? '',
              SOTTO_WORKER_TOKEN: token,
              SOTTO_ASR_ENGINE: 'sphinx',
              SOTTO_DATA_DIR: r.dataDir,
              SOTTO_TMP_DIR: scratch,
              SOTTO_TMP_SWEEP_SECONDS: String(SWEEP_SECONDS),
            },
            stdio: ['ignore', 'ignore', 'ignore'],
          },
        );
        children.push(child);
        return child.pid!;
      };
      const pids = [worker(), worker()];
      const base = path.join(scratch, 'worker');
      // Each worker has its own folder, named by its owner tag.
      const folders = await until('both workers started', () => {
        const names = list(base);
        return pids.every((p) => names.some((n) => ownerPid(n) === p)) ? names : undefined;
      });
      const id = await uploadQueued(t, user.accessToken, ip, readFileSync(corpusFile('call-02', 'wav')));
      const holder = await until('a job folder with the audio', () =>
        folders.find((f) => list(path.join(base, f)).some((j) => existsSync(path.join(base, f, j, 'audio')))),
      );
      const victim = ownerPid(holder);
      const survivorFolder = folders.find((f) => f !== holder)!;
      process.kill(victim, 'SIGKILL');
      expect(existsSync(path.join(base, holder))).toBe(true);
      await msUntil(
        "the killed worker's folder to go",
        () => !existsSync(path.join(base, holder)),
        (SWEEP_SECONDS * 2 + 3) * 1000,
      );
      expect(existsSync(path.join(base, survivorFolder))).toBe(true);
      // The other worker takes the job once the lease lapses and finishes it.
      await finishedDone(t, user.accessToken, ip, id);
    }, 400_000);
  },
);
