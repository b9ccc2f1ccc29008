/**
 * Recordings that claim, or really hold, far more audio than they should, through the API:
 * - a WAV whose header declares ten hours while the file holds a second and a half of silence is
 *   taken for what it holds (nothing sized on the header's word), and a silent recording ends
 *   "done" with an empty transcript rather than failing;
 * - a genuine ten hours of silence, compressed into a small FLAC, is refused at upload (413) from
 *   its own header, before anything decodes it, and nothing of it is left behind;
 * - the limit is the operator's (SOTTO_MAX_AUDIO_HOURS): raised above ten hours, the same file is
 *   accepted.
 */
import { readFileSync } from 'node:fs';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { wavHeader } from '../src/audio/wav.js';
import { checkDecoder } from '../src/adapters/media/audio-decoder.adapter.js';
import { ffmpeg, tempFiles } from './helpers/audio-files.js';
import { freshIp } from './helpers/auth-client.js';
import { bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { pollRecording, recordingEnv, stagedFiles, upload } from './helpers/recordings.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

const TEN_HOURS = 10 * 3600;
const decoder = await checkDecoder();
const skip = decoder.available ? '' : ` (skipped: ${decoder.message})`;

describe.skipIf(!decoder.available)(`recordings: ten hours of silence (${backendLabel})${skip}`, () => {
  const { tmp } = tempFiles('sotto-long-');
  const ip = freshIp();
  let t: TestApp;
  let dataDir: string;
  let owner: TestUser;
  const recordingCount = async () =>
    Number((await t.db.query<{ n: string }>('SELECT count(*) AS n FROM recordings')).rows[0]!.n);

  beforeAll(async () => {
    // 8 kHz is enough for silence and keeps the file small: ~20 MB of FLAC for ten hours.
    ffmpeg(
      '-f',
      'lavfi',
      '-i',
      'anullsrc=r=8000:cl=mono',
      '-t',
      String(TEN_HOURS),
      '-c:a',
      'flac',
      tmp('ten.flac'),
    );
    const r = recordingEnv({ SOTTO_RATE_LIMIT_API_PER_MINUTE: '10000' });
    dataDir = r.dataDir;
    t = await startTestApp({ env: r.env });
    owner = await createOrgWithUser(t.services, { role: 'owner' });
  }, 120_000);
  afterAll(async () => {
    await t?.services.jobs.stop();
    await t?.close();
  });

  it('a header claiming ten hours over 1.5 s of silence: accepted for what it holds, done with no segments', async () => {
    const frames = TEN_HOURS * 16000;
    const file = Buffer.concat([wavHeader(16000, 1, frames), Buffer.alloc(1.5 * 16000 * 2)]);
    const res = await upload(t, owner.accessToken, ip, file, { title: 'claims ten hours' });
    expect(res.statusCode, res.body).toBe(202);
    await t.services.jobs.start();
    const done = await pollRecording(
      t,
      owner.accessToken,
      ip,
      res.json().id,
      (b) => b.status === 'done' || b.status === 'failed',
      120_000,
    );
    expect(done).toMatchObject({ status: 'done', progress: 1, error: null });
    expect(done.durationSeconds).toBeCloseTo(1.5, 1);
    const tr = await t.app.inject({
      method: 'GET',
      url: `/api/v1/recordings/${res.json().id}/transcript`,
      headers: bearer(owner.accessToken),
      remoteAddress: ip,
    });
    expect(tr.statusCode, tr.body).toBe(200);
    expect(tr.json().segments).toEqual([]);
    await t.services.jobs.stop();
  }, 150_000);

  it('ten real hours of silence in a 20 MB FLAC: 413 from the header, before decoding, nothing kept', async () => {
    const before = await recordingCount();
    const started = Date.now();
    const res = await upload(t, owner.accessToken, ip, readFileSync(tmp('ten.flac')));
    expect(res.statusCode, res.body).toBe(413);
    expect(res.json()).toMatchObject({ code: 'payload_too_large' });
    expect(res.json().detail).toMatch(/longer than 8 hours/);
    // Decoding ten hours takes minutes on this machine; refusing from the header takes seconds.
    expect(Date.now() - started).toBeLessThan(30_000);
    expect(await recordingCount()).toBe(before);
    expect(stagedFiles(dataDir)).toEqual([]);
  }, 60_000);

  it('the limit is the operator’s: with SOTTO_MAX_AUDIO_HOURS=11 the same file is accepted', async () => {
    const r = recordingEnv({ SOTTO_MAX_AUDIO_HOURS: '11' });
    const wide = await startTestApp({ env: r.env });
    try {
      const user = await createOrgWithUser(wide.services, { role: 'owner' });
      const res = await upload(wide, user.accessToken, ip, readFileSync(tmp('ten.flac')));
      expect(res.statusCode, res.body).toBe(202);
      // The worker is not started: processing ten hours is a benchmark, not a test.
    } finally {
      await wide.close();
    }
  }, 60_000);
});
