import { existsSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createLocalWorker } from '../src/app-jobs.js';
import { withSystem } from '../src/db/tenant.js';
import { AppError } from '../src/domain/errors.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { recordingJobRepository } from '../src/repositories/transcription/recording-job.repository.js';
import { UploadFileStore } from '../src/adapters/storage/upload-file.adapter.js';
import { freshIp } from './helpers/auth-client.js';
import { corpusFile, hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { finishedDone, uploadQueued } from './helpers/job-steps.js';
import { pollRecording, recordingEnv, stagedFiles, upload } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * The queue under failure: a worker killed mid-job (its lease expires, another run takes the job
 * and finishes it once), a stale worker that cannot write after losing its lease, and a transient
 * engine failure retried after a backoff. Leases and backoffs are on the app's clock: the tests
 * move it past them instead of sleeping (the workers' polls still tick in real time).
 */
describe.skipIf(!hasCorpus)(
  `recording jobs survive failures (${backendLabel}) ${hasCorpus ? '' : noCorpusReason}`,
  () => {
    let t: TestApp;
    let dataDir: string;
    let user: TestUser;
    const ip = freshIp();
    const clock = new ManualClock();
    const audio = () => readFileSync(corpusFile('solo-03', 'wav'));

    const jobRow = async (id: string) =>
      (
        await t.db.query<{ attempts: number; lease_id: string | null }>(
          'SELECT attempts, lease_id FROM recording_jobs WHERE recording_id = $1',
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

    beforeAll(async () => {
      const r = recordingEnv({
        SOTTO_JOB_LEASE_SECONDS: '2',
        SOTTO_JOB_BACKOFF_SECONDS: '1',
        // The tests poll ten times a second from one IP: a recognition slowed by a busy machine
        // spent the API's 300 a minute and failed the next poll with 429.
        SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000',
      });
      dataDir = r.dataDir;
      // A worker is killed mid-job: recognition must take its real time, not a replay's instant.
      t = await startTestApp({ env: r.env, clock, engine: 'real' });
      user = await createOrgWithUser(t.services, { role: 'member' });
    });
    afterAll(async () => {
      await t?.services.jobs.stop();
      await t?.close();
    });

    it('a worker killed mid-job: the job is taken again after its lease and finishes once', async () => {
      const id = await uploadQueued(t, user.accessToken, ip, audio());
      await t.services.jobs.start();
      await pollRecording(
        t,
        user.accessToken,
        ip,
        id,
        (b) => b.status === 'processing' && b.progress > 0,
        300_000,
      );
      // What a killed process leaves: the job still leased, the audio still sealed (never plain).
      await t.services.jobs.stop({ abandon: true });
      expect((await jobRow(id))?.lease_id).toBeTruthy();
      expect(stagedFiles(dataDir)).toEqual([]);
      expect(existsSync(path.join(dataDir, 'audio', user.orgId, `${id}.bin`))).toBe(true);
      const mid = await pollRecording(t, user.accessToken, ip, id, () => true);
      expect(mid.status).toBe('processing');
      expect(await transcripts(id)).toBe(0);

      // Its lease (2 s) lapses; the next worker takes the job.
      clock.advance(2_000);
      await t.services.jobs.start();
      const done = await finishedDone(t, user.accessToken, ip, id);
      expect(done.progress).toBe(1);
      expect(await transcripts(id)).toBe(1);
      expect(await jobRow(id)).toBeUndefined();
      // The audio is removed right after the result commits; stop() waits for that step.
      await t.services.jobs.stop();
      expect(stagedFiles(dataDir)).toEqual([]);
    }, 600_000);

    it('a worker that lost its lease cannot claim the job back or complete it', async () => {
      const res = await upload(t, user.accessToken, ip, audio());
      const id = res.json().id as string;
      // The queue's times are the caller's clock: the lease lapses by moving `now`, not by sleeping.
      const t0 = clock.now().getTime();
      const lease = (atMs: number, seconds: number) => ({
        now: new Date(t0 + atMs),
        until: new Date(t0 + atMs + seconds * 1000),
      });
      const first = await withSystem(t.db, (tx) => recordingJobRepository.claim(tx, lease(0, 1)));
      expect(first?.recordingId).toBe(id);
      // While leased nobody else gets it.
      expect(await withSystem(t.db, (tx) => recordingJobRepository.claim(tx, lease(999, 1)))).toBeUndefined();
      const second = await withSystem(t.db, (tx) => recordingJobRepository.claim(tx, lease(1500, 60)));
      expect(second?.recordingId).toBe(id);
      // A lapsed lease (its holder died) is not an attempt: it is counted apart (job-lease-lapse.spec.ts).
      expect(second).toMatchObject({ attempts: 1, leaseLapses: 1 });
      expect(await withSystem(t.db, (tx) => recordingJobRepository.holdsLease(tx, id, first!.leaseId))).toBe(
        false,
      );
      expect(
        await withSystem(t.db, (tx) => recordingJobRepository.renew(tx, id, first!.leaseId, lease(1500, 60))),
      ).toBe(false);
      expect(await withSystem(t.db, (tx) => recordingJobRepository.holdsLease(tx, id, second!.leaseId))).toBe(
        true,
      );
      // Clean up through the API: the hard delete also removes the staged audio.
      const del = await t.app.inject({
        method: 'DELETE',
        url: `/api/v1/recordings/${id}`,
        headers: { authorization: `Bearer ${user.accessToken}` },
        remoteAddress: ip,
      });
      expect(del.statusCode).toBe(204);
      expect(stagedFiles(dataDir)).toEqual([]);
    });

    it('a transient engine failure is retried after a backoff; without an engine the job waits, its attempt not counted', async () => {
      const uploads = new UploadFileStore(path.join(dataDir, 'tmp', 'uploads'));
      let calls = 0;
      const real = t.services.jobs as unknown as {
        deps: { pipeline: () => Promise<{ run: (i: unknown) => Promise<unknown> }> };
      };
      const worker = createLocalWorker({
        db: t.db,
        keys: t.services.keys,
        uploads,
        audio: t.services.audio,
        pipeline: async () => {
          calls++;
          if (calls === 1) throw new AppError('engine_failed', 'the engine crashed');
          return (await real.deps.pipeline()) as never;
        },
        clock: t.services.clock,
        logger: t.services.logger,
        opts: {
          pollMs: 100,
          leaseSeconds: 30,
          maxAttempts: 3,
          backoffSeconds: 1,
          // The backoff at its ceiling: the first retry is due exactly 2 s later on the clock.
          random: () => 1,
          heartbeatMs: 500,
          sweepOlderThanMs: 3600_000,
        },
      });
      const res = await upload(t, user.accessToken, ip, audio());
      const id = res.json().id as string;
      await worker.start();
      try {
        await pollRecording(t, user.accessToken, ip, id, () => calls >= 1);
        const retry = await jobRow(id);
        expect(retry?.attempts).toBe(1);
        // Not due again before its backoff (2 s) has passed on the clock.
        expect(await pollRecording(t, user.accessToken, ip, id, () => true)).toMatchObject({
          status: 'queued',
        });
        clock.advance(2_000);
        await finishedDone(t, user.accessToken, ip, id);
        expect(calls).toBe(2);
        expect(await transcripts(id)).toBe(1);
      } finally {
        await worker.stop();
      }
      expect(stagedFiles(dataDir)).toEqual([]);

      const unavailable = createLocalWorker({
        db: t.db,
        keys: t.services.keys,
        uploads,
        audio: t.services.audio,
        pipeline: () => Promise.reject(new AppError('engine_unavailable', 'no engine')),
        clock: t.services.clock,
        logger: t.services.logger,
        opts: {
          pollMs: 100,
          leaseSeconds: 30,
          maxAttempts: 3,
          backoffSeconds: 1,
          heartbeatMs: 500,
          sweepOlderThanMs: 3600_000,
        },
      });
      // No engine is not the job's fault: it waits queued, with the reason, its attempts untouched.
      const bad = await upload(t, user.accessToken, ip, audio());
      await unavailable.start();
      try {
        const waiting = await pollRecording(
          t,
          user.accessToken,
          ip,
          bad.json().id,
          (b) => typeof (b as { waiting?: unknown }).waiting === 'string',
        );
        expect(waiting).toMatchObject({ status: 'queued', error: null });
        expect(waiting.waiting).toMatch(/^Waiting for a speech-recognition engine/);
        expect(await jobRow(bad.json().id)).toEqual({ attempts: 0, lease_id: null });
      } finally {
        await unavailable.stop();
      }
      expect(stagedFiles(dataDir)).toEqual([]);
      // The shared worker takes it from there (its engine is installed).
      await t.services.jobs.start();
      const done = await finishedDone(t, user.accessToken, ip, bad.json().id);
      expect(done).toMatchObject({ waiting: null });
      await t.services.jobs.stop();
    }, 600_000);

    it("the sweep keeps this live process's staged files, and removes unowned old ones no job needs", async () => {
      const uploads = new UploadFileStore(path.join(dataDir, 'tmp', 'uploads'));
      const { Readable } = await import('node:stream');
      const mine = await uploads.save(Readable.from([Buffer.from('an upload in progress')]), 1000);
      // An untagged file (written before owner tags, or by another machine sharing the folder).
      const orphan = path.join(dataDir, 'tmp', 'uploads', 'left-behind.upload');
      writeFileSync(orphan, 'left behind by a killed upload');
      expect(stagedFiles(dataDir)).toHaveLength(2);
      // Younger than the threshold: kept (it could be an upload in progress elsewhere).
      expect(await uploads.sweep(new Set(), 3600_000, Date.now())).toBe(0);
      expect(await uploads.sweep(new Set([orphan]), 0, Date.now() + 10)).toBe(0);
      // Without the jobs' list (database down) only the owner rule applies.
      expect(await uploads.sweep(null, 0, Date.now() + 10)).toBe(0);
      expect(await uploads.sweep(new Set(), 0, Date.now() + 10)).toBe(1);
      // This process is alive: its own file stays whatever its age.
      expect(stagedFiles(dataDir)).toEqual([path.basename(mine.path)]);
      await uploads.remove(mine.path);
    });
  },
);
