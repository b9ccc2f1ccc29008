import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../src/db/tenant.js';
import { pcmToWav } from '../src/adapters/asr/engine.js';
import { freshIp } from './helpers/auth-client.js';
import { sine16k } from './helpers/audio-files.js';
import { createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { insertQueuedRecording, recordingEnv, upload } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Jobs start at once when queued: the in-process worker LISTENs for the trigger's NOTIFY
 * (PostgreSQL: its own connection; PGlite: the embedded listener) instead of waiting for its next
 * poll. The poll interval is a minute here, so any claim within a few seconds was a wake-up.
 */
const POLL_MS = 60_000;

describe(`queued jobs wake the worker at once (${backendLabel})`, () => {
  let t: TestApp;
  let user: TestUser;
  const ip = freshIp();

  const claimedWithin = async (id: string, ms: number): Promise<number | undefined> => {
    const began = Date.now();
    while (Date.now() - began < ms) {
      // Claimed: the attempt is counted (a job without audio is then released for a retry).
      const r = await t.db.query<{ status: string; attempts: number | null }>(
        `SELECT r.status, j.attempts FROM recordings r LEFT JOIN recording_jobs j ON j.recording_id = r.id
          WHERE r.id = $1`,
        [id],
      );
      const row = r.rows[0];
      if (row && (row.status !== 'queued' || (row.attempts ?? 0) > 0)) return Date.now() - began;
      await new Promise((resolve) => setTimeout(resolve, 20));
    }
    return undefined;
  };

  beforeAll(async () => {
    const r = recordingEnv({ SOTTO_JOB_POLL_MS: String(POLL_MS) });
    t = await startTestApp({ env: r.env });
    user = await createOrgWithUser(t.services, { role: 'member' });
    await t.services.jobs.start();
    // Let the worker's first look find nothing: from now on it sleeps for a whole poll interval.
    await new Promise((resolve) => setTimeout(resolve, 1500));
  });
  afterAll(async () => {
    await t?.services.jobs.stop();
    await t?.close();
  });

  it('an upload is claimed well before the poll interval', async () => {
    const res = await upload(t, user.accessToken, ip, pcmToWav(sine16k(300, 1)));
    expect(res.statusCode, res.body).toBe(202);
    const took = await claimedWithin(res.json().id as string, 10_000);
    expect(took, 'not claimed within 10 s although the poll interval is 60 s').toBeDefined();
    expect(took!).toBeLessThan(POLL_MS / 6);
  });

  it('so is a job queued by any other path (a live recording stopped, a job handed back), once per commit', async () => {
    // What live finalise does: the recording and its job in one transaction (audio not needed to be claimed).
    const id = randomUUID();
    await withTenant(t.db, { orgId: user.orgId, userId: user.userId }, async (tx) => {
      await insertQueuedRecording(tx, user, { id });
    });
    const took = await claimedWithin(id, 10_000);
    expect(took).toBeDefined();
    expect(took!).toBeLessThan(POLL_MS / 6);
  });

  it('a rolled-back enqueue wakes nobody into a claim, and a delayed retry waits for its time', async () => {
    const id = randomUUID();
    await withTenant(t.db, { orgId: user.orgId, userId: user.userId }, async (tx) => {
      await insertQueuedRecording(tx, user, { id });
      throw new Error('rolled back');
    }).catch(() => undefined);
    const later = randomUUID();
    await withTenant(t.db, { orgId: user.orgId, userId: user.userId }, async (tx) => {
      await insertQueuedRecording(tx, user, { id: later, runAfter: new Date(Date.now() + 3600_000) });
    });
    expect(await claimedWithin(later, 1500)).toBeUndefined();
    const rows = await t.db.query('SELECT 1 FROM recordings WHERE id = $1', [id]);
    expect(rows.rows).toHaveLength(0);
  });
});
