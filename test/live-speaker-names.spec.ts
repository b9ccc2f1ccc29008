import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../src/db/tenant.js';
import { sphinxAvailability } from '../src/adapters/asr/sphinx.engine.js';
import { liveSpeakerNames } from '../src/services/live/live-speakers.js';
import { freshIp } from './helpers/auth-client.js';
import { bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { createLive, listenTls, mustOpen, streamPcm, type Listening } from './helpers/live.js';
import { pollRecording, recordingEnv } from './helpers/recordings.js';
import { FIXTURES, pcmOf } from './helpers/speech-fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * Names given while live ("Dr Rossi": the `participant` of an ingest stream, `sotto bot
 * --speaker`, the panel's name field) carry into the final transcript made by the job, through
 * the real stop (spool → sealed WAV → queued job → stored transcript).
 */
const RATE = 16_000;
const installed = sphinxAvailability(process.env.PATH ?? '');

/** Fixture utterances with `gap` seconds of faint room tone between them. */
function speech(files: string[], gap = 1.5): Int16Array {
  const parts = files.map((f) => pcmOf(path.join(FIXTURES, f)));
  const pause = Int16Array.from({ length: gap * RATE }, (_, i) => ((i * 7919) % 13) - 6);
  const all = new Int16Array(parts.reduce((n, p) => n + p.length + pause.length, 0));
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.length + pause.length;
  }
  return all;
}

describe('liveSpeakerNames', () => {
  it('names each channel after its stream, a lone stream only when one voice was heard', () => {
    expect(liveSpeakerNames(['Dr Rossi', 'Client'], { speakers: ['S1', 'S2'], channels: 2 })).toEqual({
      S1: 'Dr Rossi',
      S2: 'Client',
    });
    // A channel where nothing was recognised has no speaker to name.
    expect(liveSpeakerNames(['Dr Rossi', 'Client'], { speakers: ['S2'], channels: 2 })).toEqual({
      S2: 'Client',
    });
    expect(liveSpeakerNames(['Dr Rossi'], { speakers: ['S1'], channels: 1 })).toEqual({ S1: 'Dr Rossi' });
    // One microphone, two voices: which one is Dr Rossi is not known.
    expect(liveSpeakerNames(['Dr Rossi'], { speakers: ['S1', 'S2'], channels: 1 })).toEqual({});
    // The default label is the default name already.
    expect(liveSpeakerNames(['Speaker 1', 'Guest'], { speakers: ['S1', 'S2'], channels: 2 })).toEqual({
      S2: 'Guest',
    });
    // Channels and labels that do not line up: nothing is guessed.
    expect(liveSpeakerNames(['A', 'B'], { speakers: ['S1'], channels: 1 })).toEqual({});
  });
});

describe.skipIf(!installed.available)(
  `live speaker names reach the final transcript (${backendLabel}) ${installed.reason ?? ''}`,
  () => {
    let t: TestApp;
    let server: Listening;
    let owner: TestUser;
    const ip = freshIp();

    beforeAll(async () => {
      t = await startTestApp({ env: recordingEnv().env });
      server = await listenTls(t.services);
      owner = await createOrgWithUser(t.services, { role: 'owner' });
      await t.services.jobs.start();
    });
    afterAll(async () => {
      await t?.services.jobs.stop();
      await server?.close();
      await t?.close();
    });

    const get = (token: string, url: string) =>
      t.app.inject({ method: 'GET', url, headers: bearer(token), remoteAddress: ip });

    const keptSpeakers = (id: string) =>
      withTenant(t.db, { orgId: owner.orgId, userId: null }, async (tx) => {
        const r = await tx.query<{ enc: Uint8Array | null }>(
          'SELECT live_speakers_enc AS enc FROM recordings WHERE id = $1',
          [id],
        );
        return r.rows[0]?.enc ?? null;
      });

    it('two participants: each channel of the stored transcript carries its stream label', async () => {
      await t.services.jobs.stop(); // the labels are looked at while the job waits
      const id = await createLive(t, owner.accessToken, ip, 'Intake');
      const a = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: owner.accessToken });
      const b = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: owner.accessToken });
      await Promise.all([
        streamPcm(a, speech(['librivox-0870.wav', 'librivox-0890.wav']), 'Dr Rossi'),
        streamPcm(b, speech(['cards-001.wav', 'cards-002.wav', 'cards-003.wav']), 'Client Bianchi'),
      ]);
      a.ws.send(JSON.stringify({ type: 'stop' }));
      expect((await a.closed).code).toBe(1000);
      await pollRecording(t, owner.accessToken, ip, id, (r) => r.status === 'queued');
      // Kept encrypted on the row until the job has used them.
      const kept = await keptSpeakers(id);
      expect(kept).not.toBeNull();
      expect(Buffer.from(kept!).toString('latin1')).not.toContain('Rossi');

      await t.services.jobs.start();
      const done = await pollRecording(t, owner.accessToken, ip, id, (r) =>
        ['done', 'failed'].includes(r.status),
      );
      expect(done).toMatchObject({ status: 'done', channels: 2 });
      const transcript = (await get(owner.accessToken, `/api/v1/recordings/${id}/transcript`)).json() as {
        speakers: { id: string; name: string }[];
        segments: { speaker: string; text: string }[];
      };
      expect(transcript.speakers).toEqual([
        { id: 'S1', name: 'Dr Rossi' },
        { id: 'S2', name: 'Client Bianchi' },
      ]);
      // The cards reader (the second stream) said "clubs"; Dr Rossi never did.
      const clubs = transcript.segments.filter((s) => s.text.includes('clubs'));
      expect(clubs.length).toBeGreaterThan(0);
      expect(clubs.every((s) => s.speaker === 'S2')).toBe(true);
      expect(await keptSpeakers(id)).toBeNull();

      // The names are the transcript's own: exports use them, renames replace them.
      const txt = await get(owner.accessToken, `/api/v1/recordings/${id}/export?format=txt`);
      expect(txt.statusCode).toBe(200);
      expect(txt.body).toContain('Dr Rossi:');
      // Another org sees nothing of it: exactly 404.
      const other = await createOrgWithUser(t.services, { role: 'owner' });
      expect((await get(other.accessToken, `/api/v1/recordings/${id}/transcript`)).statusCode).toBe(404);
      expect((await get(other.accessToken, `/api/v1/recordings/${id}`)).statusCode).toBe(404);
      // Names are personal data: never in a log line.
      expect(t.logs.join('\n')).not.toContain('Bianchi');
    }, 180_000);

    it('one participant and one voice: the single speaker is named after the stream', async () => {
      const id = await createLive(t, owner.accessToken, ip);
      const bot = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: owner.accessToken });
      await streamPcm(bot, speech(['librivox-0880.wav', 'librivox-0930.wav']), 'Dr Rossi');
      bot.ws.send(JSON.stringify({ type: 'stop' }));
      expect((await bot.closed).code).toBe(1000);
      const done = await pollRecording(t, owner.accessToken, ip, id, (r) =>
        ['done', 'failed'].includes(r.status),
      );
      expect(done).toMatchObject({ status: 'done', channels: 1 });
      const transcript = (await get(owner.accessToken, `/api/v1/recordings/${id}/transcript`)).json() as {
        speakers: { id: string; name: string }[];
      };
      expect(transcript.speakers).toEqual([{ id: 'S1', name: 'Dr Rossi' }]);
    }, 180_000);

    it('labels that cannot be read are dropped: the transcript is stored, its speakers unnamed', async () => {
      await t.services.jobs.stop();
      const id = await createLive(t, owner.accessToken, ip);
      const bot = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: owner.accessToken });
      await streamPcm(bot, speech(['librivox-0880.wav']), 'Dr Rossi');
      bot.ws.send(JSON.stringify({ type: 'stop' }));
      expect((await bot.closed).code).toBe(1000);
      await pollRecording(t, owner.accessToken, ip, id, (r) => r.status === 'queued');
      // One byte of the sealed labels flipped on the row: their integrity check fails.
      await withTenant(t.db, { orgId: owner.orgId, userId: null }, (tx) =>
        tx.query(
          `UPDATE recordings SET live_speakers_enc = overlay(live_speakers_enc placing
             decode(lpad(to_hex(get_byte(live_speakers_enc, 40) # 1), 2, '0'), 'hex') from 41 for 1)
           WHERE id = $1`,
          [id],
        ),
      );
      await t.services.jobs.start();
      const done = await pollRecording(t, owner.accessToken, ip, id, (r) =>
        ['done', 'failed'].includes(r.status),
      );
      expect(done.status).toBe('done');
      const transcript = (await get(owner.accessToken, `/api/v1/recordings/${id}/transcript`)).json() as {
        speakers: { id: string; name: string | null }[];
        segments: unknown[];
      };
      expect(transcript.segments.length).toBeGreaterThan(0);
      expect(transcript.speakers.map((sp) => sp.name)).not.toContain('Dr Rossi');
      expect(await keptSpeakers(id)).toBeNull();
      expect(t.logs.join('\n')).toContain('live speaker names unreadable');
    }, 180_000);
  },
);
