import { spawnSync } from 'node:child_process';
import { mkdtempSync, rmSync, statfsSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { encodeWav } from '../src/audio/wav.js';
import { withSystem } from '../src/db/tenant.js';
import { freshIp } from './helpers/auth-client.js';
import { sine16k } from './helpers/audio-files.js';
import { createOrgWithUser, eventually } from './helpers/fixtures.js';
import { pollRecording, upload } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Issue 17: a transient resource failure does not use up a job's attempts. The data directory is
 * a real, small tmpfs that the test fills after the upload, so the worker's private copy of the
 * audio hits ENOSPC. With one attempt allowed, counting it would fail the recording for good;
 * instead the job is handed back with a delay, its attempt not counted, and it is transcribed once
 * space is freed.
 */
const cleanup: (() => Promise<void> | void)[] = [];
afterAll(async () => {
  for (const fn of cleanup.reverse()) await fn();
});

const mountPoint = mkdtempSync(path.join(tmpdir(), 'sotto-jobs-full-'));
const mounted =
  spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=6m,mode=0700', 'tmpfs', mountPoint]).status === 0;
cleanup.push(() => {
  if (mounted) spawnSync('umount', [mountPoint]);
  rmSync(mountPoint, { recursive: true, force: true });
});

describe(`job attempts through an outage (${backendLabel})`, () => {
  it.skipIf(!mounted)(
    'ENOSPC during a job: handed back with a delay, attempt not counted, then done',
    async () => {
      const ip = freshIp();
      const t: TestApp = await startTestApp({
        env: {
          SOTTO_DATA_DIR: mountPoint,
          SOTTO_DISK_MIN_FREE_MB: '0',
          SOTTO_ASR_ENGINE: 'sphinx',
          SOTTO_JOB_POLL_MS: '100',
          SOTTO_JOB_MAX_ATTEMPTS: '1',
        },
      });
      cleanup.push(async () => {
        await t.services.jobs.stop();
        await t.close();
      });
      const user = await createOrgWithUser(t.services, { role: 'owner' });
      const res = await upload(t, user.accessToken, ip, encodeWav(sine16k(440, 10, 8000), 16_000));
      expect(res.statusCode).toBe(202);
      const id = (res.json() as { id: string }).id;
      const job = async () =>
        (
          await withSystem(t.db, (tx) =>
            tx.query<{ attempts: number; due_in: number; leased: boolean }>(
              `SELECT attempts, extract(epoch FROM run_after - now())::float AS due_in,
                    lease_id IS NOT NULL AS leased
               FROM recording_jobs WHERE recording_id = $1`,
              [id],
            ),
          )
        ).rows[0];

      // The disk fills up (about 16 KiB left): the job's private copy of the audio cannot be written.
      const left = statfsSync(mountPoint);
      const filler = path.join(mountPoint, 'filler');
      writeFileSync(filler, Buffer.alloc(Math.max(0, left.bavail * left.bsize - 16 * 1024)));
      await t.services.jobs.start();
      const outcome = await eventually(
        async () =>
          t.logs.find((l) => /transcription interrupted by an outage|"msg":"transcription failed"/.test(l)),
        30_000,
      );
      // Not a failed attempt (which, with one attempt allowed, fails the recording for good).
      expect(outcome).toContain('transcription interrupted by an outage');
      expect(outcome).toContain('"outage":"insufficient_storage"');
      const back = await eventually(async () => {
        const j = await job();
        return j && !j.leased ? j : undefined;
      }, 10_000);
      expect(back.attempts).toBe(0);
      expect(back.due_in).toBeGreaterThan(30); // handed back with a delay, not retried in a loop
      const waiting = (
        await t.app.inject({
          method: 'GET',
          url: `/api/v1/recordings/${id}`,
          headers: { authorization: `Bearer ${user.accessToken}` },
          remoteAddress: ip,
        })
      ).json() as { status: string };
      expect(waiting.status).toBe('queued');

      // Space is freed; the delay is skipped rather than waited for.
      rmSync(filler);
      await withSystem(t.db, (tx) =>
        tx.query('UPDATE recording_jobs SET run_after = now() WHERE recording_id = $1', [id]),
      );
      t.services.jobs.wake();
      const done = await pollRecording(
        t,
        user.accessToken,
        ip,
        id,
        (b) => b.status === 'done' || b.status === 'failed',
        120_000,
      );
      expect(done.status).toBe('done');
    },
    180_000,
  );
});
