import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem, withTenant } from '../src/db/tenant.js';
import { recordingRepository } from '../src/repositories/recordings/recording.repository.js';
import { recordingJobRepository } from '../src/repositories/transcription/recording-job.repository.js';
import { call, freshIp } from './helpers/auth-client.js';
import { createOrgWithUser, someoneWaitsOnLock } from './helpers/fixtures.js';
import { insertQueuedRecording } from './helpers/recordings.js';
import { startTestApp, usingPostgres, type TestApp } from './helpers/test-app.js';

/**
 * A recording deleted while a worker claims its job (found by the PostgreSQL pass under load: a
 * DELETE answered 500, "deadlock detected"). The worker's transactions lock the job row, then the
 * recording; the deletion locked the recording, then the job through the foreign key's cascade.
 * It now removes the job first, in the worker's order. Needs two real connections: PostgreSQL only
 * (PGlite has one connection and cannot interleave transactions).
 */
describe.skipIf(!usingPostgres)('recording deletion beside a worker claiming its job (PostgreSQL)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => t?.close());

  it('waits for the claim, then deletes: 204, no deadlock, nothing left', async () => {
    const owner = await createOrgWithUser(t.services, { role: 'owner' });
    const id = await withTenant(t.db, { orgId: owner.orgId, userId: null }, (tx) =>
      insertQueuedRecording(tx, owner),
    );
    let claimed!: () => void;
    const jobLocked = new Promise<void>((r) => (claimed = r));
    // The worker's claim as JobQueueService makes it: the job row, then (once the deletion is
    // waiting on a lock) the recording's status.
    const worker = withSystem(t.db, async (tx) => {
      const now = new Date();
      const job = await recordingJobRepository.claim(tx, { now, until: new Date(now.getTime() + 60_000) });
      expect(job?.recordingId).toBe(id);
      claimed();
      await someoneWaitsOnLock(t.db, 'transactionid');
      await recordingRepository.markProcessing(tx, id, now);
    });
    await jobLocked;
    const res = await call(t, freshIp(), {
      method: 'DELETE',
      url: `/api/v1/recordings/${id}`,
      headers: { authorization: `Bearer ${owner.accessToken}` },
    });
    await worker;
    expect(res.statusCode, res.body).toBe(204);
    const left = await t.db.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM recordings WHERE id = $1)::int + (SELECT count(*) FROM recording_jobs WHERE recording_id = $1)::int AS n`,
      [id],
    );
    expect(left.rows[0]!.n).toBe(0);
  }, 30_000);
});
