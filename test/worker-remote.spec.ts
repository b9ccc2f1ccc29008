import { spawn } from 'node:child_process';
import { createHash } from 'node:crypto';
import {
  createServer as createNetServer,
  connect,
  type AddressInfo,
  type Server as NetServer,
  type Socket,
} from 'node:net';
import { mkdtempSync, readFileSync, readdirSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startWorker, type RunningWorker } from '../src/cli/commands/worker.js';
import { startTransport, type Transport } from '../src/http/listen.js';
import { WorkerApiError } from '../src/adapters/network/worker-api.adapter.js';
import { ensureSelfSignedCert, type SelfSignedResult } from '../src/adapters/network/tls.adapter.js';
import { freshIp } from './helpers/auth-client.js';
import { corpusFile, hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { writeCorpusClip } from './helpers/corpus-clip.js';
import { bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { pollRecording, recordingEnv, upload } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Remote workers end to end: a real HTTPS server (TLS 1.3, generated certificate), the remote
 * worker running in-process through the same code as `sotto worker`, the sphinx engine on corpus
 * audio, and once the actual CLI process stopped with SIGTERM mid-job.
 */
const MAIN = path.resolve('src/cli/main.ts');

describe.skipIf(!hasCorpus)(
  `remote transcription workers over HTTPS (${backendLabel}) ${hasCorpus ? '' : noCorpusReason}`,
  () => {
    let t: TestApp;
    let transport: Transport;
    let cert: SelfSignedResult;
    let dir: string;
    let dataDir: string;
    let user: TestUser;
    let apiUrl: string;
    const ip = freshIp();
    const short = () => readFileSync(corpusFile('solo-03', 'wav'));
    const longer = () => readFileSync(corpusFile('call-02', 'wav'));
    /**
     * The first three turns of call-02 (~16 s, cut in a pause): long enough that a job is still
     * recognising well after its progress first moves, half the whole call for the run to its end.
     */
    let midLength: () => Buffer;
    const quiet = pino({ level: 'silent' });

    const api = (method: string, url: string, token: string, payload?: Record<string, unknown>) =>
      t.app.inject({
        method: method as 'GET',
        url,
        headers: bearer(token),
        remoteAddress: ip,
        ...(payload ? { payload } : {}),
      });

    const newToken = async (name: string) => {
      const res = await api('POST', '/api/v1/org/workers', user.accessToken, { name });
      expect(res.statusCode, res.body).toBe(201);
      return res.json() as { id: string; token: string };
    };

    const worker = (token: string, extra: Partial<Parameters<typeof startWorker>[0]> = {}) =>
      startWorker({
        api: apiUrl,
        token,
        ca: cert.certFile,
        pollMs: 100,
        heartbeatMs: 300,
        logger: quiet,
        tmpDir: dir,
        env: {
          SOTTO_ASR_ENGINE: 'sphinx',
          SOTTO_DATA_DIR: dataDir,
          SOTTO_LOG_LEVEL: 'silent',
          PATH: process.env.PATH ?? '',
        },
        ...extra,
      });

    const jobRow = async (id: string) =>
      (
        await t.db.query<{ lease_id: string | null; worker_token_id: string | null }>(
          'SELECT lease_id, worker_token_id FROM recording_jobs WHERE recording_id = $1',
          [id],
        )
      ).rows[0];
    const transcripts = async (id: string) =>
      Number(
        (
          await t.db.query<{ n: string }>('SELECT count(*) AS n FROM transcripts WHERE recording_id = $1', [
            id,
          ])
        ).rows[0]!.n,
      );
    const transcript = async (id: string) => {
      const res = await api('GET', `/api/v1/recordings/${id}/transcript`, user.accessToken);
      expect(res.statusCode, res.body).toBe(200);
      const body = res.json() as { segments: unknown[]; speakers: unknown[] };
      return { segments: body.segments, speakers: body.speakers };
    };
    const finished = (id: string) =>
      pollRecording(
        t,
        user.accessToken,
        ip,
        id,
        (b) => b.status === 'done' || b.status === 'failed',
        300_000,
      );
    /** No plaintext audio left behind by a worker (its private temp folders are gone). */
    const workerTempDirs = (parent = dir) => readdirSync(parent).filter((n) => /_worker-/.test(n));

    beforeAll(async () => {
      dir = mkdtempSync(path.join(tmpdir(), 'sotto-wrk-'));
      const r = recordingEnv({
        SOTTO_HOST: '127.0.0.1',
        SOTTO_HTTPS_PORT: '0',
        SOTTO_HTTP_PORT: '0',
        // The tests poll recording status every 100 ms for minutes.
        SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000',
      });
      dataDir = r.dataDir;
      t = await startTestApp({ env: r.env });
      cert = await ensureSelfSignedCert(path.join(dir, 'tls'), ['sotto.test']);
      transport = await startTransport({ services: t.services, tls: cert });
      apiUrl = `https://127.0.0.1:${transport.address.port}`;
      user = await createOrgWithUser(t.services, { role: 'owner' });
      const clip = writeCorpusClip('call-02', 3, dir).file;
      midLength = () => readFileSync(clip);
    });
    afterAll(async () => {
      await t?.services.jobs.stop();
      await transport?.close();
      await t?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    it('a remote worker transcribes an upload; the transcript equals the in-process worker’s', async () => {
      const w = await newToken('remote-1');
      const remote = await upload(t, user.accessToken, ip, short());
      expect(remote.statusCode, remote.body).toBe(202);
      const running = await worker(w.token);
      let done;
      try {
        expect(running.identity).toEqual({ id: w.id, name: 'remote-1', orgId: user.orgId });
        done = await finished(remote.json().id);
      } finally {
        await running.stop();
      }
      expect(done.status).toBe('done');
      expect(done.engine).toMatch(/sphinx/i);
      expect(await transcripts(remote.json().id)).toBe(1);
      expect(workerTempDirs()).toEqual([]);

      const local = await upload(t, user.accessToken, ip, short());
      await t.services.jobs.start();
      try {
        expect((await finished(local.json().id)).status).toBe('done');
      } finally {
        await t.services.jobs.stop();
      }
      const a = await transcript(remote.json().id);
      const b = await transcript(local.json().id);
      expect(a.segments.length).toBeGreaterThan(0);
      expect(a).toEqual(b);

      const audit = await t.db.query<{ action: string; actor_id: string; details: Record<string, unknown> }>(
        `SELECT action, actor_id, details FROM audit_log WHERE org_id = $1 AND actor_kind = 'worker' AND target_id = $2 ORDER BY seq`,
        [user.orgId, remote.json().id],
      );
      expect(audit.rows.map((r) => r.action)).toEqual(['job.claimed', 'job.audio_read', 'job.completed']);
      expect(audit.rows.every((r) => r.actor_id === w.id)).toBe(true);
      // Ids and counts only: no word of the transcript in the audit details.
      const words = (a.segments as { text: string }[]).map((s) => s.text).join(' ');
      for (const word of words.split(/\s+/).filter((x) => x.length > 4)) {
        expect(JSON.stringify(audit.rows)).not.toContain(word);
      }
    }, 600_000);

    it('a worker holding job X cannot fetch job Y’s audio; X’s audio is the uploaded bytes', async () => {
      const w1 = await newToken('x-holder');
      const w2 = await newToken('y-holder');
      const x = (await upload(t, user.accessToken, ip, short())).json().id as string;
      const y = (await upload(t, user.accessToken, ip, short())).json().id as string;
      const cx = await api('POST', '/api/v1/worker/jobs/claim', w1.token, {});
      expect(cx.json().job.id).toBe(x);
      const cy = await api('POST', '/api/v1/worker/jobs/claim', w2.token, {});
      expect(cy.json().job.id).toBe(y);
      const leaseX = cx.json().job.leaseId as string;
      const leaseY = cy.json().job.leaseId as string;
      expect((await api('GET', `/api/v1/worker/jobs/${y}/audio?lease=${leaseX}`, w1.token)).statusCode).toBe(
        404,
      );
      expect((await api('GET', `/api/v1/worker/jobs/${y}/audio?lease=${leaseY}`, w1.token)).statusCode).toBe(
        404,
      );
      const audio = await api('GET', `/api/v1/worker/jobs/${x}/audio?lease=${leaseX}`, w1.token);
      expect(audio.statusCode).toBe(200);
      const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
      expect(sha(audio.rawPayload)).toBe(sha(short()));
      for (const [id, lease, token] of [
        [x, leaseX, w1.token],
        [y, leaseY, w2.token],
      ] as const) {
        expect(
          (await api('POST', `/api/v1/worker/jobs/${id}/release`, token, { leaseId: lease })).statusCode,
        ).toBe(200);
      }
      // Deleted (their jobs go with them) so later tests start from an empty queue.
      for (const id of [x, y]) {
        expect((await api('DELETE', `/api/v1/recordings/${id}`, user.accessToken)).statusCode).toBe(204);
        expect(await jobRow(id)).toBeUndefined();
      }
    }, 600_000);

    it('a token revoked mid-job: the worker stops, its result is refused, another worker finishes once', async () => {
      const w1 = await newToken('revoked-mid-job');
      const w2 = await newToken('takes-over');
      const id = (await upload(t, user.accessToken, ip, midLength())).json().id as string;
      const first: RunningWorker = await worker(w1.token);
      try {
        await pollRecording(
          t,
          user.accessToken,
          ip,
          id,
          (b) => b.status === 'processing' && b.progress > 0,
          300_000,
        );
        const held = await jobRow(id);
        expect(held?.worker_token_id).toBe(w1.id);
        expect((await api('DELETE', `/api/v1/org/workers/${w1.id}`, user.accessToken)).statusCode).toBe(204);
        // The job is back in the queue at once, not after the lease.
        expect((await jobRow(id))?.lease_id ?? null).toBeNull();
        // The revoked token reaches nothing: audio, heartbeat and result are all 401.
        const lease = held!.lease_id!;
        expect(
          (await api('GET', `/api/v1/worker/jobs/${id}/audio?lease=${lease}`, w1.token)).statusCode,
        ).toBe(401);
        const result = {
          leaseId: lease,
          segments: [],
          speakers: [],
          durationSeconds: 1,
          channels: 1,
          engine: 'x',
        };
        expect((await api('POST', `/api/v1/worker/jobs/${id}/complete`, w1.token, result)).statusCode).toBe(
          401,
        );
        await first.finished;
        expect(first.fatal()).toBeInstanceOf(WorkerApiError);
        expect((first.fatal() as WorkerApiError).kind).toBe('auth');
      } finally {
        await first.stop();
      }
      expect(await transcripts(id)).toBe(0);

      const second = await worker(w2.token);
      try {
        const end = await finished(id);
        expect(end.status, JSON.stringify(end)).toBe('done');
      } finally {
        await second.stop();
      }
      expect(await transcripts(id)).toBe(1);
      const completed = await t.db.query<{ actor_id: string }>(
        `SELECT actor_id FROM audit_log WHERE action = 'job.completed' AND target_id = $1`,
        [id],
      );
      expect(completed.rows.map((r) => r.actor_id)).toEqual([w2.id]);
      expect(workerTempDirs()).toEqual([]);
    }, 600_000);

    it('a worker whose server is unreachable for a while keeps retrying and resumes', async () => {
      // A TCP relay in front of the server that can be taken down and brought back on the same port.
      const sockets = new Set<Socket>();
      const relay = () =>
        createNetServer((c) => {
          const up = connect(transport.address.port, '127.0.0.1');
          sockets.add(c).add(up);
          c.pipe(up).pipe(c);
          c.on('error', () => up.destroy());
          up.on('error', () => c.destroy());
        });
      const listen = (srv: NetServer, port: number) =>
        new Promise<number>((resolve) =>
          srv.listen(port, '127.0.0.1', () => resolve((srv.address() as AddressInfo).port)),
        );
      /** Stops listening and cuts every open connection (close() alone waits for keep-alive ones). */
      const down = (server: NetServer) => {
        const closed = new Promise<void>((resolve) => server.close(() => resolve()));
        for (const sock of sockets) sock.destroy();
        sockets.clear();
        return closed;
      };
      let srv = relay();
      const port = await listen(srv, 0);
      const w = await newToken('flaky-network');
      const running = await worker(w.token, { api: `https://127.0.0.1:${port}` });
      try {
        await down(srv);
        const id = (await upload(t, user.accessToken, ip, short())).json().id as string;
        await new Promise((r) => setTimeout(r, 2000));
        expect((await pollRecording(t, user.accessToken, ip, id, () => true)).status).toBe('queued');
        srv = relay();
        await listen(srv, port);
        expect((await finished(id)).status).toBe('done');
        expect(running.fatal()).toBeUndefined();
      } finally {
        await running.stop();
        await down(srv);
      }
    }, 120_000);

    describe('the `sotto worker` process', () => {
      const run = (args: string[], env: Record<string, string>) =>
        spawn(process.execPath, ['--import', 'tsx', MAIN, 'worker', ...args], {
          env: {
            PATH: process.env.PATH ?? '',
            HOME: process.env.HOME ?? '',
            TMPDIR: dir,
            SOTTO_TMP_DIR: dir,
            SOTTO_ASR_ENGINE: 'sphinx',
            SOTTO_DATA_DIR: dataDir,
            ...env,
          },
          stdio: ['ignore', 'pipe', 'pipe'],
        });
      const outcome = (child: ReturnType<typeof run>) =>
        new Promise<{ code: number | null; out: string; err: string }>((resolve) => {
          let out = '';
          let err = '';
          child.stdout.on('data', (c: Buffer) => (out += c.toString()));
          child.stderr.on('data', (c: Buffer) => (err += c.toString()));
          child.on('close', (code) => resolve({ code, out, err }));
        });

      it('says clearly what is wrong: no token, untrusted certificate, wrong URL, refused token', async () => {
        const w = await newToken('cli-checks');
        // Independent processes: started together (each one's start-up is most of its time).
        const [none, untrusted, wrong, plain, forged, insecure] = await Promise.all([
          outcome(run(['--api', apiUrl, '--ca', cert.certFile], {})),
          outcome(run(['--api', apiUrl], { SOTTO_WORKER_TOKEN: w.token })),
          outcome(
            run(['--api', 'https://127.0.0.1:1', '--ca', cert.certFile], { SOTTO_WORKER_TOKEN: w.token }),
          ),
          outcome(run(['--api', 'http://127.0.0.1:1'], { SOTTO_WORKER_TOKEN: w.token })),
          outcome(
            run(['--api', apiUrl, '--ca', cert.certFile], {
              SOTTO_WORKER_TOKEN: `${w.token.slice(0, -2)}zz`,
            }),
          ),
          outcome(
            run(['--api', apiUrl, '--insecure', '--ca', cert.certFile], { SOTTO_WORKER_TOKEN: w.token }),
          ),
        ]);
        expect(none.code).toBe(1);
        expect(none.err).toContain('SOTTO_WORKER_TOKEN');
        expect(untrusted.code).toBe(1);
        expect(untrusted.err).toMatch(/certificate .* is not trusted.*--ca/);
        expect(wrong.code).toBe(1);
        expect(wrong.err).toMatch(/cannot reach https:\/\/127\.0\.0\.1:1/);
        expect(plain.code).toBe(1);
        expect(plain.err).toContain('https://');
        expect(forged.code).toBe(1);
        expect(forged.err).toContain('refused the worker token');
        expect(insecure.code).toBe(1);
        expect(insecure.err).toContain('exclude each other');
        for (const r of [none, untrusted, wrong, forged]) expect(r.err + r.out).not.toContain(w.token);
      }, 180_000);

      it('a token revoked while the worker runs ends the process with status 1 and a clear message', async () => {
        const w = await newToken('cli-revoked');
        const child = run(['--api', apiUrl, '--ca', cert.certFile], { SOTTO_WORKER_TOKEN: w.token });
        const result = outcome(child);
        let out = '';
        await new Promise<void>((resolve, reject) => {
          const timer = setTimeout(() => reject(new Error(`worker did not start: ${out}`)), 60_000);
          child.stdout.on('data', (c: Buffer) => {
            out += c.toString();
            if (out.includes('sotto worker started')) {
              clearTimeout(timer);
              resolve();
            }
          });
        });
        expect((await api('DELETE', `/api/v1/org/workers/${w.id}`, user.accessToken)).statusCode).toBe(204);
        const r = await result;
        expect(r.code).toBe(1);
        expect(r.err).toContain('refused the worker token');
      }, 120_000);

      it('SIGTERM mid-job hands the job back and exits 0', async () => {
        const w = await newToken('cli-sigterm');
        const id = (await upload(t, user.accessToken, ip, longer())).json().id as string;
        const child = run(['--api', apiUrl, '--ca', cert.certFile, '--heartbeat-seconds', '0.3'], {
          SOTTO_WORKER_TOKEN: w.token,
        });
        const result = outcome(child);
        try {
          await pollRecording(
            t,
            user.accessToken,
            ip,
            id,
            (b) => b.status === 'processing' && b.progress > 0,
            300_000,
          );
          expect((await jobRow(id))?.worker_token_id).toBe(w.id);
        } finally {
          child.kill('SIGTERM');
        }
        const r = await result;
        expect(r.code, r.err).toBe(0);
        expect(r.err).toContain('handed back');
        expect(r.out + r.err).not.toContain(w.token);
        expect((await jobRow(id))?.lease_id ?? null).toBeNull();
        const status = await pollRecording(t, user.accessToken, ip, id, () => true);
        expect(status.status).toBe('queued');
        expect(await transcripts(id)).toBe(0);
        const released = await t.db.query(
          `SELECT 1 FROM audit_log WHERE action = 'job.released' AND actor_id = $1 AND target_id = $2`,
          [w.id, id],
        );
        expect(released.rows).toHaveLength(1);
        // Its private audio copy is gone with it.
        // (SOTTO_TMP_DIR/worker: the folder exists, the worker's own folder in it is gone.)
        expect(workerTempDirs(path.join(dir, 'worker'))).toEqual([]);
      }, 300_000);
    });
  },
);
