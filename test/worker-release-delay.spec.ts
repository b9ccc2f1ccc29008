import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { pino } from 'pino';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeWav } from '../src/audio/wav.js';
import { withSystem } from '../src/db/tenant.js';
import { startTransport, type Transport } from '../src/http/listen.js';
import { ensureSelfSignedCert } from '../src/adapters/network/tls.adapter.js';
import { WorkerApiClient } from '../src/adapters/network/worker-api.adapter.js';
import { RemoteJobSource } from '../src/services/transcription/remote-job.service.js';
import { freshIp } from './helpers/auth-client.js';
import { sine16k } from './helpers/audio-files.js';
import { bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { recordingEnv, upload } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Issue 17: a remote worker's hand-back after an outage carries its delay (the backoff the
 * in-process worker already applies), so the job is not due again at once — over real HTTPS with
 * a worker token, through the same RemoteJobSource `sotto worker` uses.
 */
describe(`remote hand-back delay (${backendLabel})`, () => {
  let t: TestApp;
  let transport: Transport;
  let dir: string;
  let dataDir: string;
  let user: TestUser;
  let ca: string;
  const ip = freshIp();
  const wav = encodeWav(sine16k(440, 2, 8000), 16_000);

  beforeAll(async () => {
    dir = mkdtempSync(path.join(tmpdir(), 'sotto-release-'));
    const r = recordingEnv({ SOTTO_HOST: '127.0.0.1', SOTTO_HTTPS_PORT: '0', SOTTO_HTTP_PORT: '0' });
    dataDir = r.dataDir;
    t = await startTestApp({ env: r.env });
    const cert = await ensureSelfSignedCert(path.join(dir, 'tls'), ['sotto.test']);
    ca = cert.certFile;
    transport = await startTransport({ services: t.services, tls: cert });
    user = await createOrgWithUser(t.services, { role: 'owner' });
  });
  afterAll(async () => {
    await transport?.close();
    await t?.close();
    rmSync(dir, { recursive: true, force: true });
    rmSync(dataDir, { recursive: true, force: true });
  });

  const newWorker = async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/org/workers',
      headers: bearer(user.accessToken),
      payload: { name: `w-${Date.now()}` },
      remoteAddress: ip,
    });
    expect(res.statusCode, res.body).toBe(201);
    const { token } = res.json() as { token: string };
    const { readFileSync } = await import('node:fs');
    return {
      token,
      api: new WorkerApiClient({
        baseUrl: `https://127.0.0.1:${transport.address.port}`,
        token,
        ca: readFileSync(ca, 'utf8'),
      }),
    };
  };
  const dueIn = async (id: string) =>
    (
      await withSystem(t.db, (tx) =>
        tx.query<{ due_in: number; attempts: number; leased: boolean }>(
          `SELECT extract(epoch FROM run_after - now())::float AS due_in, attempts,
                  lease_id IS NOT NULL AS leased
             FROM recording_jobs WHERE recording_id = $1`,
          [id],
        ),
      )
    ).rows[0]!;

  it('the delay reaches the queue: not claimable before it, attempt not counted, audited', async () => {
    const { api } = await newWorker();
    const id = (await upload(t, user.accessToken, ip, wav)).json().id as string;
    const source = new RemoteJobSource(api, pino({ level: 'silent' }), { tmpDir: dir });
    const job = await source.claim();
    expect(job?.recordingId).toBe(id);
    // What JobRunner does after an outage (OUTAGE_RETRY_AFTER_SECONDS.unavailable = 5).
    await job!.handBack(5);
    const row = await dueIn(id);
    expect(row.leased).toBe(false);
    expect(row.attempts).toBe(0);
    expect(row.due_in).toBeGreaterThan(3);
    expect(row.due_in).toBeLessThanOrEqual(5.5);
    expect(await api.claim()).toBeNull();
    const audit = await t.db.query<{ details: unknown }>(
      `SELECT details FROM audit_log WHERE action = 'job.released' AND target_id = $1`,
      [id],
    );
    expect(audit.rows.map((r) => r.details)).toEqual([{ delaySeconds: 5 }]);
    // A plain hand-back (a worker stopping) is due at once, as before.
    await withSystem(t.db, (tx) =>
      tx.query('UPDATE recording_jobs SET run_after = now() WHERE recording_id = $1', [id]),
    );
    const again = await source.claim();
    expect(again?.recordingId).toBe(id);
    await again!.handBack();
    expect((await dueIn(id)).due_in).toBeLessThanOrEqual(0.5);
    api.close();
    const gone = await t.app.inject({
      method: 'DELETE',
      url: `/api/v1/recordings/${id}`,
      headers: bearer(user.accessToken),
      remoteAddress: ip,
    });
    expect(gone.statusCode).toBe(204);
  }, 60_000);

  it('hostile delays are refused with 400 and leave the lease as it was', async () => {
    const { api, token } = await newWorker();
    const id = (await upload(t, user.accessToken, ip, wav)).json().id as string;
    const job = await api.claim();
    expect(job?.id).toBe(id);
    for (const delaySeconds of [-1, 601, 1.5, '5', 1e308, null]) {
      const res = await t.app.inject({
        method: 'POST',
        url: `/api/v1/worker/jobs/${id}/release`,
        headers: { authorization: `Bearer ${token}` },
        payload: { leaseId: job!.leaseId, delaySeconds },
        remoteAddress: ip,
      });
      expect(res.statusCode, JSON.stringify(delaySeconds)).toBe(400);
    }
    expect((await dueIn(id)).leased).toBe(true);
    await api.release(id, job!.leaseId, 0);
    expect((await dueIn(id)).leased).toBe(false);
    api.close();
  }, 60_000);
});
