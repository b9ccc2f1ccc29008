import { expect } from 'vitest';
import { pollRecording, upload } from './recordings.js';
import type { TestApp } from './test-app.js';

/**
 * The steps shared by the specs that kill a job's holder mid-job (recordings-jobs.spec.ts stops
 * the in-process worker, outage-leftovers.spec.ts SIGKILLs a server or a worker): the upload whose
 * job is then held, and the wait for the job to be taken again once its lease lapses and finish.
 */

/** Uploads `audio` and returns the new recording's id; its job is queued (202). */
export async function uploadQueued(t: TestApp, token: string, ip: string, audio: Buffer): Promise<string> {
  const res = await upload(t, token, ip, audio);
  expect(res.statusCode, res.body).toBe(202);
  return (res.json() as { id: string }).id;
}

/**
 * Waits for the recording's job to end, done or failed (up to 5 minutes: a lapsed lease, then a
 * whole recognition on a busy machine), expects it done, and returns the recording as the API
 * shows it.
 */
export async function finishedDone(
  t: TestApp,
  token: string,
  ip: string,
  id: string,
): Promise<Awaited<ReturnType<typeof pollRecording>>> {
  const done = await pollRecording(
    t,
    token,
    ip,
    id,
    (b) => b.status === 'done' || b.status === 'failed',
    300_000,
  );
  expect(done.status).toBe('done');
  return done;
}
