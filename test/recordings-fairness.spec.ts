import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sphinxAvailability } from '../src/adapters/asr/sphinx.engine.js';
import { freshIp } from './helpers/auth-client.js';
import { createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { pollRecording, recordingEnv, upload } from './helpers/recordings.js';
import { FIXTURES, buildLongTrack, readReferences } from './helpers/speech-fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Several uploads share the engine fairly (issue 12): a short recording uploaded while a long one
 * is being recognised is transcribed alongside it, taking turns on the decoders, instead of
 * waiting for the long one to finish. Real server, real queue, real pocketsphinx, real speech
 * (test/fixtures/speech).
 */
const installed = sphinxAvailability(process.env.PATH ?? '');

describe.skipIf(!installed.available)(
  `uploads share the engine (${backendLabel})${installed.available ? '' : ` (skipped: ${installed.reason})`}`,
  () => {
    let t: TestApp;
    let user: TestUser;
    let dataDir: string;
    const ip = freshIp();
    const tmp = mkdtempSync(path.join(tmpdir(), 'sotto-fair-'));
    const longWav = path.join(tmp, 'long.wav');
    const read = readReferences().filter((r) => r.kind === 'read');

    beforeAll(async () => {
      // Every read recording twice over: about a minute of speech, recognised in about half a
      // minute on two decoders, while the short one needs a few seconds.
      buildLongTrack([...read, ...read], longWav);
      // The spec polls ten times a second for minutes: not a client the API's rate limit is about.
      const r = recordingEnv({ SOTTO_JOB_CONCURRENCY: '2', SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000' });
      dataDir = r.dataDir;
      // Fairness is about how long real recognition takes: no replay.
      t = await startTestApp({ env: r.env, engine: 'real' });
      user = await createOrgWithUser(t.services, { role: 'member' });
      await t.services.jobs.start();
    });
    afterAll(async () => {
      await t?.services.jobs.stop();
      await t?.close();
      rmSync(tmp, { recursive: true, force: true });
      rmSync(dataDir, { recursive: true, force: true });
    });

    it('a short upload made during a long one is done first, while the long one is still being recognised', async () => {
      const long = await upload(t, user.accessToken, ip, readFileSync(longWav), { title: 'long' });
      expect(long.statusCode, long.body).toBe(202);
      const longId = long.json().id as string;
      // The long one is under way: past decoding, into recognition.
      await pollRecording(
        t,
        user.accessToken,
        ip,
        longId,
        (b) => b.status === 'processing' && b.progress > 0.1,
      );

      const short = await upload(t, user.accessToken, ip, readFileSync(path.join(FIXTURES, read[1]!.file)), {
        title: 'short',
      });
      expect(short.statusCode, short.body).toBe(202);
      const shortId = short.json().id as string;
      await pollRecording(t, user.accessToken, ip, shortId, (b) => b.status === 'done', 120_000);

      const longNow = await pollRecording(t, user.accessToken, ip, longId, () => true);
      console.log(`short upload done while the long one was at ${Math.round(100 * longNow.progress)} %`);
      expect(longNow.status).toBe('processing');
      expect(longNow.progress).toBeLessThan(0.9); // still recognising, not only saving

      const done = await pollRecording(
        t,
        user.accessToken,
        ip,
        longId,
        (b) => b.status !== 'processing',
        300_000,
      );
      expect(done.status).toBe('done');
    }, 420_000);
  },
);
