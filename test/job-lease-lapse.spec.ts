import { rmSync } from 'node:fs';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeWav } from '../src/audio/wav.js';
import { withSystem } from '../src/db/tenant.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { freshIp } from './helpers/auth-client.js';
import { sine16k } from './helpers/audio-files.js';
import { bearer, createOrgWithUser } from './helpers/fixtures.js';
import { pollRecording, recordingEnv, upload } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Issue 17: a job whose holder was killed (its lease lapsed) is claimed again without using an
 * attempt — a crash of the machine is not the recording's fault — but a recording whose holder
 * dies every time fails after SOTTO_JOB_MAX_LEASE_LAPSES reclaims instead of looping for ever.
 * A claim that is never renewed is exactly what a SIGKILLed holder leaves (test/outage-leftovers
 * kills real processes); here the queue is driven directly to count precisely, and the lease lapses
 * by moving the app's clock (leases are on the injected clock, issue 14), not by sleeping.
 */
const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

describe(`lease lapses are not attempts (${backendLabel})`, () => {
  it('a lapsed claim is retaken with the same attempt; too many lapses fail the job as worker_crashed', async () => {
    const r = recordingEnv({
      SOTTO_JOB_LEASE_SECONDS: '1',
      SOTTO_JOB_MAX_ATTEMPTS: '1',
      SOTTO_JOB_MAX_LEASE_LAPSES: '2',
      PATH: process.env.PATH ?? '',
    });
    const clock = new ManualClock();
    const t: TestApp = await startTestApp({ env: r.env, clock });
    cleanup.push(async () => {
      await t.services.jobs.stop();
      await t.close();
      rmSync(r.dataDir, { recursive: true, force: true });
    });
    const ip = freshIp();
    const user = await createOrgWithUser(t.services, { role: 'owner' });
    const wav = encodeWav(sine16k(440, 3, 8000), 16_000);
    const row = async (id: string) =>
      (
        await withSystem(t.db, (tx) =>
          tx.query<{ attempts: number; lease_lapses: number }>(
            'SELECT attempts, lease_lapses FROM recording_jobs WHERE recording_id = $1',
            [id],
          ),
        )
      ).rows[0];

    // A job claimed by a holder that then "dies" (never renews) twice, then run for real: done,
    // although only one attempt is allowed.
    const survivor = (await upload(t, user.accessToken, ip, wav)).json().id as string;
    for (let lapse = 0; lapse <= 2; lapse++) {
      const job = await t.services.jobQueue.claim();
      expect(job?.recordingId).toBe(survivor);
      expect(job).toMatchObject({ attempts: 1, leaseLapses: lapse });
      clock.advance(1300); // the lease (1 s) lapses
      if (lapse === 1) break;
    }
    expect(await row(survivor)).toEqual({ attempts: 1, lease_lapses: 1 });
    expect(await t.services.jobs.runOnce()).toBe(true);
    const done = await pollRecording(t, user.accessToken, ip, survivor, () => true);
    expect(
      done.status,
      t.logs.filter((l) => l.includes('"level":40') || l.includes('"level":50')).join('\n'),
    ).toBe('done');

    // A recording whose holder dies every time: retaken twice, then failed for good on the third lapse.
    const doomed = (await upload(t, user.accessToken, ip, wav)).json().id as string;
    for (let lapse = 0; lapse <= 2; lapse++) {
      const job = await t.services.jobQueue.claim();
      expect(job).toMatchObject({ recordingId: doomed, attempts: 1, leaseLapses: lapse });
      clock.advance(1300);
    }
    expect(await row(doomed)).toEqual({ attempts: 1, lease_lapses: 2 });
    expect(await t.services.jobQueue.claim()).toBeUndefined();
    expect(await row(doomed)).toBeUndefined();
    const failed = await t.app.inject({
      method: 'GET',
      url: `/api/v1/recordings/${doomed}`,
      headers: bearer(user.accessToken),
      remoteAddress: ip,
    });
    expect(failed.json()).toMatchObject({ status: 'failed', error: expect.stringMatching(/worker stopped/) });
    expect(t.logs.some((l) => l.includes('its worker stopped every time'))).toBe(true);

    // A handed-back or failed attempt is unchanged: a real failure still counts (max 1: failed).
    const once = (await upload(t, user.accessToken, ip, wav)).json().id as string;
    const job = (await t.services.jobQueue.claim())!;
    expect(job).toMatchObject({ recordingId: once, attempts: 1, leaseLapses: 0 });
    expect(await t.services.jobQueue.fail(job, 'engine_failed')).toBe('failed');
  }, 120_000);
});
