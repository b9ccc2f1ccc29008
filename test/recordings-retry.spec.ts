import { rmSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { encodeWav } from '../src/audio/wav.js';
import { withSystem } from '../src/db/tenant.js';
import { freshIp } from './helpers/auth-client.js';
import { sine16k } from './helpers/audio-files.js';
import { addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { pollRecording, recordingEnv, upload } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Issue 17: an admin retries a failed recording whose audio is still stored (POST …/:id/retry):
 * queued again with its attempts from zero, then transcribed. Members may not; a recording that
 * is not failed, or whose audio is gone, is 409. Audited.
 */
describe(`retrying a failed recording (${backendLabel})`, () => {
  let t: TestApp;
  let dataDir: string;
  let owner: TestUser;
  let member: TestUser;
  const ip = freshIp();

  beforeAll(async () => {
    const env = recordingEnv({ SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000' });
    dataDir = env.dataDir;
    t = await startTestApp({ env: env.env });
    owner = await createOrgWithUser(t.services, { role: 'owner' });
    member = await addUser(t.services, owner.orgId, { role: 'member' });
  }, 60_000);
  afterAll(async () => {
    await t?.services.jobs.stop();
    await t?.close();
    rmSync(dataDir, { recursive: true, force: true });
  });

  const call = (token: string, method: 'GET' | 'POST' | 'PATCH', url: string, payload?: object) =>
    t.app.inject({ method, url, headers: bearer(token), remoteAddress: ip, ...(payload ? { payload } : {}) });
  const setStoreAudio = async (storeAudio: boolean) =>
    expect((await call(owner.accessToken, 'PATCH', '/api/v1/org/settings', { storeAudio })).statusCode).toBe(
      200,
    );

  /** An upload whose job then fails for good (a permanent code, as a dead engine would report). */
  const failedRecording = async (): Promise<string> => {
    const res = await upload(t, member.accessToken, ip, encodeWav(sine16k(300, 3, 8000), 16_000));
    expect(res.statusCode).toBe(202);
    const id = (res.json() as { id: string }).id;
    const job = await t.services.jobQueue.claim();
    expect(job?.recordingId).toBe(id);
    expect(await t.services.jobQueue.fail(job!, 'undecodable_audio')).toBe('failed');
    return id;
  };

  it('an admin queues it again, attempts from zero, and it is transcribed; members may not', async () => {
    await setStoreAudio(true);
    const id = await failedRecording();
    expect((await call(owner.accessToken, 'GET', `/api/v1/recordings/${id}`)).json()).toMatchObject({
      status: 'failed',
      error: expect.any(String),
    });
    expect((await call(member.accessToken, 'POST', `/api/v1/recordings/${id}/retry`)).statusCode).toBe(403);

    const res = await call(owner.accessToken, 'POST', `/api/v1/recordings/${id}/retry`);
    expect(res.statusCode, res.body).toBe(202);
    expect(res.json()).toEqual({ id, status: 'queued' });
    const job = await withSystem(t.db, (tx) =>
      tx.query<{ attempts: number }>('SELECT attempts FROM recording_jobs WHERE recording_id = $1', [id]),
    );
    expect(job.rows[0]?.attempts).toBe(0);
    const audit = await withSystem(t.db, (tx) =>
      tx.query("SELECT 1 FROM audit_log WHERE action = 'recording.retried' AND target_id = $1", [id]),
    );
    expect(audit.rows).toHaveLength(1);
    // A second retry while queued: not failed any more.
    expect((await call(owner.accessToken, 'POST', `/api/v1/recordings/${id}/retry`)).statusCode).toBe(409);

    await t.services.jobs.start();
    const done = await pollRecording(
      t,
      owner.accessToken,
      ip,
      id,
      (b) => b.status === 'done' || b.status === 'failed',
    );
    expect(done).toMatchObject({ status: 'done', error: null });
    await t.services.jobs.stop();
  }, 120_000);

  it('409 when the audio is gone (not kept); 404 for an unknown recording', async () => {
    await setStoreAudio(false);
    const id = await failedRecording();
    const res = await call(owner.accessToken, 'POST', `/api/v1/recordings/${id}/retry`);
    expect(res.statusCode).toBe(409);
    expect(res.json().detail).toMatch(/no longer stored/);
    const unknown = await call(owner.accessToken, 'POST', `/api/v1/recordings/${crypto.randomUUID()}/retry`);
    expect(unknown.statusCode).toBe(404);
  }, 60_000);
});
