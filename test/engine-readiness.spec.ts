import { randomUUID } from 'node:crypto';
import { mkdtempSync, rmSync } from 'node:fs';
import { request as httpsRequest } from 'node:https';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Writable } from 'node:stream';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createServices, type Services } from '../src/app.js';
import { loadConfig } from '../src/config/config.js';
import { withSystem } from '../src/db/tenant.js';
import { startTransport, type Transport } from '../src/http/listen.js';
import { createLogger } from '../src/http/logger.js';
import { pcmToWav } from '../src/adapters/asr/engine.js';
import type { SphinxOptions } from '../src/adapters/asr/sphinx.engine.js';
import { sphinxAvailability } from '../src/adapters/asr/sphinx.engine.js';
import { ensureSelfSignedCert, type SelfSignedResult } from '../src/adapters/network/tls.adapter.js';
import { sine16k } from './helpers/audio-files.js';
import { addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { multipart } from './helpers/recordings.js';
import { backendLabel, freshDatabase, testMasterKey } from './helpers/test-app.js';

/**
 * A server without a speech-recognition engine: it starts and is ready, /readyz says "none" (enums
 * only, as before), owners/admins learn the fix from GET /api/v1/org/transcription (members and
 * other orgs learn nothing), and an upload waits queued with a human reason, its attempts
 * untouched, then runs by itself once pocketsphinx "appears" (the override below is lifted; the
 * worker looks again every 300 ms here, 30 s by default). Everything over real HTTPS.
 */
interface Answer {
  status: number;
  body: string;
  json: () => Record<string, unknown>;
}

const hasSphinx = sphinxAvailability(process.env.PATH ?? '').available;

describe(`a server without a speech-recognition engine (${backendLabel})`, () => {
  let services: Services;
  let transport: Transport;
  let cert: SelfSignedResult;
  let drop: () => Promise<void>;
  let dataDir: string;
  const logs: string[] = [];
  // Mutable on purpose: lifting the override is "apt-get install pocketsphinx" for the server.
  const sphinx: SphinxOptions = { binary: '/nonexistent/pocketsphinx_continuous' };
  let owner: TestUser;
  let admin: TestUser;
  let member: TestUser;
  let other: TestUser;

  const https = (
    pathAndQuery: string,
    opts: { token?: string; method?: string; body?: Buffer; headers?: Record<string, string> } = {},
  ): Promise<Answer> =>
    new Promise((resolve, reject) => {
      const req = httpsRequest(
        {
          host: '127.0.0.1',
          servername: 'localhost',
          port: transport.address.port,
          path: pathAndQuery,
          method: opts.method ?? 'GET',
          ca: cert.cert,
          agent: false,
          headers: { ...(opts.token ? bearer(opts.token) : {}), ...opts.headers },
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on('data', (c: Buffer) => chunks.push(c));
          res.on('end', () => {
            const body = Buffer.concat(chunks).toString('utf8');
            resolve({
              status: res.statusCode ?? 0,
              body,
              json: () => JSON.parse(body) as Record<string, unknown>,
            });
          });
        },
      );
      req.on('error', reject);
      req.end(opts.body);
    });

  const status = (user: TestUser) => https('/api/v1/org/transcription', { token: user.accessToken });

  beforeAll(async () => {
    dataDir = mkdtempSync(path.join(tmpdir(), 'sotto-engine-'));
    const fresh = await freshDatabase();
    drop = fresh.drop;
    const config = loadConfig({
      SOTTO_ENV: 'test',
      SOTTO_MASTER_KEY: testMasterKey(),
      SOTTO_LOG_LEVEL: 'info',
      SOTTO_PUBLIC_URL: 'https://sotto.test',
      SOTTO_DATA_DIR: dataDir,
      SOTTO_ASR_ENGINE: 'auto',
      PATH: process.env.PATH ?? '',
      SOTTO_JOB_POLL_MS: '100',
      SOTTO_REDIS_PREFIX: `sotto-test-${randomUUID()}:`,
    });
    const sink = new Writable({
      write(chunk, _enc, done) {
        logs.push(String(chunk));
        done();
      },
    });
    services = await createServices({
      config,
      db: fresh.db,
      redis: undefined,
      logger: createLogger(config.logLevel, sink),
      engineDeps: { sphinx },
      engineRecheckMs: 300,
    });
    cert = await ensureSelfSignedCert(path.join(dataDir, 'tls'), ['localhost']);
    transport = await startTransport({ services, tls: cert });
    owner = await createOrgWithUser(services, { role: 'owner' });
    admin = await addUser(services, owner.orgId, { role: 'admin' });
    member = await addUser(services, owner.orgId, { role: 'member' });
    other = await createOrgWithUser(services, { role: 'owner' });
  });
  afterAll(async () => {
    await services?.jobs.stop();
    await transport?.close();
    await drop?.();
    if (dataDir) rmSync(dataDir, { recursive: true, force: true });
  });

  it('is ready without an engine, and /readyz says so with enums only', async () => {
    const res = await https('/readyz');
    expect(res.status).toBe(200);
    expect(res.json()).toEqual({
      status: 'ok',
      checks: {
        database: 'ok',
        redis: 'not_configured',
        disk: 'ok',
        storage: 'ok',
        engine: 'none',
        remoteWorkers: 'none',
        publicUrl: 'ok',
        // SOTTO_MASTER_KEY from the environment carries no creation date (test/key-age.spec.ts).
        masterKeyAge: 'unknown',
        load: 'ok',
      },
      engine: { status: 'none', missing: 'none_installed' },
    });
    // Public: no paths, commands or messages.
    expect(res.body).not.toMatch(/\/|apt-get|pocketsphinx/);
  });

  it('owners and admins get the fix; members and support headers do not', async () => {
    for (const user of [owner, admin]) {
      const res = await status(user);
      expect(res.status, res.body).toBe(200);
      expect(res.json()).toEqual({
        engine: { status: 'none', missing: 'none_installed' },
        activeRemoteWorkers: 0,
        waiting: true,
        fix: expect.stringContaining('sudo apt-get install -y pocketsphinx pocketsphinx-en-us') as string,
      });
      expect(res.json().fix).toMatch(/sotto models pull base\.en/);
      expect(res.body).not.toContain(dataDir);
    }
    const denied = await status(member);
    expect(denied.status).toBe(403);
    expect(denied.body).not.toMatch(/apt-get|pocketsphinx|models pull/);
    expect((await https('/api/v1/org/transcription')).status).toBe(401);
  });

  it('refuses hostile input: unknown query parameters, another org named anywhere, other methods', async () => {
    const withQuery = await https(`/api/v1/org/transcription?orgId=${other.orgId}`, {
      token: owner.accessToken,
    });
    expect(withQuery.status).toBe(400);
    expect(withQuery.body).not.toContain(other.orgId);
    const junk = await https(`/api/v1/org/transcription?${'x'.repeat(3000)}=%00%ff`, {
      token: owner.accessToken,
    });
    expect(junk.status).toBe(400);
    // X-Sotto-Org is for platform support only: an org owner cannot switch org with it.
    const header = await https('/api/v1/org/transcription', {
      token: owner.accessToken,
      headers: { 'x-sotto-org': other.orgId },
    });
    expect(header.status).toBe(200);
    expect(header.json()).toMatchObject({ activeRemoteWorkers: 0, waiting: true });
    for (const method of ['POST', 'PUT', 'DELETE', 'PATCH']) {
      const res = await https('/api/v1/org/transcription', { token: owner.accessToken, method });
      expect(res.status).toBe(404);
    }
    const bad = await https('/api/v1/org/transcription', { token: 'not-a-token' });
    expect(bad.status).toBe(401);
  });

  it("counts only the caller's org's remote workers (and platform ones): another org's worker changes nothing", async () => {
    const created = await https('/api/v1/org/workers', {
      token: other.accessToken,
      method: 'POST',
      body: Buffer.from(JSON.stringify({ name: 'gpu-1' })),
      headers: { 'content-type': 'application/json' },
    });
    expect(created.status, created.body).toBe(201);
    const tokenId = created.json().id as string;
    const seen = (at: string | null) =>
      withSystem(services.db, (tx) =>
        tx.query('UPDATE worker_tokens SET last_used_at = $2 WHERE id = $1', [tokenId, at]),
      );
    await seen(new Date().toISOString());
    const theirs = (await status(other)).json();
    expect(theirs).toMatchObject({ activeRemoteWorkers: 1, waiting: false, fix: null });
    const ours = (await status(owner)).json();
    expect(ours).toMatchObject({ activeRemoteWorkers: 0, waiting: true });
    expect((await https('/readyz')).json().checks).toMatchObject({ remoteWorkers: 'active' });
    // A worker not seen for minutes is not active.
    await seen(new Date(Date.now() - 3600_000).toISOString());
    expect((await status(other)).json()).toMatchObject({ activeRemoteWorkers: 0, waiting: true });
  });

  it.skipIf(!hasSphinx)(
    'an upload waits queued with the reason, uses no attempt, and runs once an engine appears',
    async () => {
      await services.jobs.start();
      const audio = pcmToWav(sine16k(440, 1.5));
      const body = multipart({ title: 'waits for an engine' }, { data: audio });
      const res = await https('/api/v1/recordings', {
        token: member.accessToken,
        method: 'POST',
        body: body.payload,
        headers: body.headers,
      });
      expect(res.status, res.body).toBe(202);
      const id = res.json().id as string;
      const get = async () => (await https(`/api/v1/recordings/${id}`, { token: member.accessToken })).json();
      // Polled in the database (the API is asked once per state: it is rate limited per client).
      const until = async (
        done: (r: { status: string; error_code: string | null }) => boolean,
        ms: number,
      ) => {
        const end = Date.now() + ms;
        for (;;) {
          const r = await services.db.query<{ status: string; error_code: string | null }>(
            'SELECT status, error_code FROM recordings WHERE id = $1',
            [id],
          );
          if (done(r.rows[0]!) || Date.now() > end) return;
          await new Promise((resolve) => setTimeout(resolve, 100));
        }
      };

      await until((r) => r.error_code !== null, 10_000);
      const rec = await get();
      expect(rec).toMatchObject({ status: 'queued', error: null, progress: 0 });
      expect(rec.waiting).toMatch(/^Waiting for a speech-recognition engine: install one on the server/);
      expect(rec.waiting).toContain('sudo apt-get install -y pocketsphinx pocketsphinx-en-us');
      // Several re-checks later: still queued, and no attempt was used.
      await new Promise((r) => setTimeout(r, 1000));
      const job = await services.db.query<{ attempts: number; lease_id: string | null }>(
        'SELECT attempts, lease_id FROM recording_jobs WHERE recording_id = $1',
        [id],
      );
      expect(job.rows[0]).toEqual({ attempts: 0, lease_id: null });
      expect((await get()).status).toBe('queued');
      expect(services.jobs.engineProblem).toMatch(/sotto models pull base\.en/);

      // "apt-get install pocketsphinx": the next re-check finds it, no restart.
      delete sphinx.binary;
      await until((r) => r.status === 'done' || r.status === 'failed', 90_000);
      const done = await get();
      expect(done).toMatchObject({ status: 'done', waiting: null, error: null });
      expect(services.jobs.engineProblem).toBeUndefined();
      const ready = (await https('/readyz')).json();
      expect(ready.engine).toEqual({ status: 'ok', id: 'sphinx', model: 'en-us' });
      expect((await status(owner)).json()).toMatchObject({
        engine: { status: 'ok', id: 'sphinx' },
        waiting: false,
        fix: null,
      });
      // The selection was logged with the engine; no log line carries the title.
      expect(logs.join('')).toContain('speech-recognition engine selected');
      expect(logs.join('')).toContain('no usable speech-recognition engine');
      expect(logs.join('')).not.toContain('waits for an engine');
    },
    120_000,
  );
});
