import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sphinxAvailability } from '../src/adapters/asr/sphinx.engine.js';
import { recordingRepository } from '../src/repositories/recordings/recording.repository.js';
import { stageAt } from '../src/services/transcription/pipeline.service.js';
import { jobProgress } from '../src/services/recordings/recording.service.js';
import { freshIp } from './helpers/auth-client.js';
import { bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { recordingEnv, upload } from './helpers/recordings.js';
import { buildLongTrack, readReferences } from './helpers/speech-fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Progress people can trust (docs/panel.md, "Progress"): a job reports its stage (queued,
 * decoding, transcribing, identifying speakers, saving) and a fraction that moves during
 * recognition; the API adds the elapsed time and an estimate of the time left. Real upload, real
 * worker, real sphinx engine on real speech.
 */
const installed = sphinxAvailability(process.env.PATH ?? '');
const ORDER = ['queued', 'decoding', 'transcribing', 'speakers', 'saving'];

interface Seen {
  status: string;
  stage: string | null;
  progress: number;
  elapsedSeconds: number | null;
  remainingSeconds: number | null;
}

describe('stage and estimate arithmetic', () => {
  it('a fraction-only worker gets the stage its fraction falls in', () => {
    expect([0, 0.05, 0.1, 0.5, 0.89, 0.9, 1].map(stageAt)).toEqual([
      'decoding',
      'decoding',
      'transcribing',
      'transcribing',
      'transcribing',
      'speakers',
      'speakers',
    ]);
  });

  it('elapsed from the start of processing; an estimate only once the fraction means something', () => {
    const startedAt = new Date('2026-01-01T10:00:00Z');
    const at = (s: number) => new Date(startedAt.getTime() + s * 1000);
    const row = { status: 'processing' as const, stage: 'transcribing' as const, startedAt };
    expect(jobProgress({ ...row, progress: 0.1 }, at(4))).toEqual({
      stage: 'transcribing',
      elapsedSeconds: 4,
      remainingSeconds: null,
    });
    expect(jobProgress({ ...row, progress: 0.5 }, at(20))).toMatchObject({
      elapsedSeconds: 20,
      remainingSeconds: 20,
    });
    expect(jobProgress({ ...row, progress: 0.8 }, at(40))).toMatchObject({ remainingSeconds: 10 });
    expect(jobProgress({ ...row, status: 'queued', progress: 0 }, at(5))).toEqual({
      stage: 'queued',
      elapsedSeconds: null,
      remainingSeconds: null,
    });
    expect(jobProgress({ ...row, status: 'done', progress: 1 }, at(5)).stage).toBeNull();
    // A row from before the stage column: processing means at least decoding.
    expect(jobProgress({ ...row, stage: null, progress: 0 }, at(1)).stage).toBe('decoding');
  });
});

describe.skipIf(!installed.available)(
  `recording progress (${backendLabel}) ${installed.reason ?? ''}`,
  () => {
    let t: TestApp;
    let owner: TestUser;
    let dir: string;
    const ip = freshIp();

    beforeAll(async () => {
      // Progress moving during recognition needs recognition that takes time: no replay.
      t = await startTestApp({ env: recordingEnv().env, engine: 'real' });
      owner = await createOrgWithUser(t.services, { role: 'owner' });
      dir = mkdtempSync(path.join(tmpdir(), 'sotto-progress-'));
    });
    afterAll(async () => {
      await t?.services.jobs.stop();
      await t?.close();
      rmSync(dir, { recursive: true, force: true });
    });

    const get = (token: string, id: string) =>
      t.app.inject({
        method: 'GET',
        url: `/api/v1/recordings/${id}`,
        headers: bearer(token),
        remoteAddress: ip,
      });

    it('queued, then decoding → transcribing → speakers → saving with a moving fraction, elapsed time and an estimate', async () => {
      const out = path.join(dir, 'track.wav');
      // The read passages twice: recognition long enough (~9 s here) for several heartbeats (one
      // a second) during it on a fast machine too; once (~4.5 s) left only two values some runs.
      const passages = readReferences().filter((r) => r.file.startsWith('librivox'));
      buildLongTrack([...passages, ...passages], out);
      const res = await upload(t, owner.accessToken, ip, readFileSync(out), { title: 'Progress' });
      expect(res.statusCode).toBe(202);
      const id = (res.json() as { id: string }).id;

      const queued = (await get(owner.accessToken, id)).json() as Seen;
      expect(queued).toMatchObject({
        status: 'queued',
        stage: 'queued',
        elapsedSeconds: null,
        remainingSeconds: null,
      });
      // Another org: exactly 404, the progress fields included.
      const other = await createOrgWithUser(t.services, { role: 'owner' });
      const foreign = await get(other.accessToken, id);
      expect(foreign.statusCode).toBe(404);
      expect(foreign.body).not.toContain('stage');

      // Every stage the worker writes (a poll can miss a short stage such as saving; the writes cannot).
      const stages: string[] = [];
      const setProgress = recordingRepository.setProgress;
      recordingRepository.setProgress = async (tx, rid, progress, now, stage) => {
        if (rid === id && stage && stages.at(-1) !== stage) stages.push(stage);
        return setProgress(tx, rid, progress, now, stage);
      };

      const seen: Seen[] = [];
      try {
        await t.services.jobs.start();
        for (const end = Date.now() + 180_000; Date.now() < end;) {
          const body = (await get(owner.accessToken, id)).json() as Seen;
          seen.push(body);
          if (body.status === 'done' || body.status === 'failed') break;
          await new Promise((r) => setTimeout(r, 100));
        }
      } finally {
        // The repository is a module shared by the spec files after this one (one worker process).
        recordingRepository.setProgress = setProgress;
      }

      const last = seen.at(-1)!;
      expect(last).toMatchObject({
        status: 'done',
        stage: null,
        elapsedSeconds: null,
        remainingSeconds: null,
      });
      const processing = seen.filter((s) => s.status === 'processing');
      expect(processing.length).toBeGreaterThan(3);
      // On a loaded machine a lease may lapse and the job start over (a new attempt: its elapsed
      // time restarts); within one attempt nothing goes back. The last attempt is the one that
      // finished.
      const attempts: Seen[][] = [[]];
      for (const s of processing) {
        const prev = attempts.at(-1)!.at(-1);
        if (prev && (s.elapsedSeconds ?? 0) < (prev.elapsedSeconds ?? 0)) attempts.push([]);
        attempts.at(-1)!.push(s);
      }
      for (const attempt of attempts) {
        // Stages only move forward, through the known ones.
        const idx = attempt.map((s) => ORDER.indexOf(s.stage!));
        expect(idx.every((i) => i > 0)).toBe(true);
        expect(idx).toEqual([...idx].sort((a, b) => a - b));
        // The fraction and the elapsed time never go back.
        const fractions = attempt.map((s) => s.progress);
        expect(fractions).toEqual([...fractions].sort((a, b) => a - b));
        const elapsed = attempt.map((s) => s.elapsedSeconds);
        expect(elapsed.every((e) => e !== null && e >= 0)).toBe(true);
      }
      const final = attempts.at(-1)!;
      const written = stages.map((s) => ORDER.indexOf(s));
      expect(written.slice(written.lastIndexOf(ORDER.indexOf('transcribing')))).toEqual(
        [...written.slice(written.lastIndexOf(ORDER.indexOf('transcribing')))].sort((a, b) => a - b),
      );
      expect(stages).toContain('transcribing');
      expect(stages.at(-1)).toBe('saving');
      // Several values during recognition, not one jump.
      const during = new Set(final.filter((s) => s.stage === 'transcribing').map((s) => s.progress));
      expect(during.size).toBeGreaterThanOrEqual(3);
      // An estimate once the fraction means something.
      const estimated = final.filter((s) => s.remainingSeconds !== null);
      expect(estimated.length).toBeGreaterThan(0);
      expect(estimated.every((s) => s.progress >= 0.15 && s.remainingSeconds! >= 0)).toBe(true);
    }, 480_000);

    it('the list carries the same fields, and a hostile id is refused', async () => {
      const list = await t.app.inject({
        method: 'GET',
        url: '/api/v1/recordings',
        headers: bearer(owner.accessToken),
        remoteAddress: ip,
      });
      expect(list.statusCode).toBe(200);
      const items = (list.json() as { items: Seen[] }).items;
      expect(items.length).toBeGreaterThan(0);
      for (const r of items) expect(r).toHaveProperty('stage');
      for (const bad of ['not-a-uuid', "1' OR '1'='1", '%00'])
        expect([400, 404]).toContain((await get(owner.accessToken, encodeURIComponent(bad))).statusCode);
    });
  },
);
