import { mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { writeTinyWhisperModel, type TinyWhisperModel } from '../scripts/make-tiny-whisper-model.js';
import { freshIp } from './helpers/auth-client.js';
import { createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { createLive, listenTls, mustOpen, streamPcm, type Listening } from './helpers/live.js';
import { pollRecording, recordingEnv } from './helpers/recordings.js';
import { FIXTURES, pcmOf } from './helpers/speech-fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * A live session end to end on the whisper engine: the server configured with
 * SOTTO_ASR_ENGINE=whisper and the tiny random-weight model (scripts/make-tiny-whisper-model.ts;
 * no real weights can be downloaded here), a bot streaming real read speech over WSS, a viewer
 * watching. The words are the tiny model's nonsense; what is proven is the path: the live
 * session's utterance reaches whisper.cpp through the streaming interface, the viewer gets the
 * segment with recording times, and after stop the recording's job transcribes it again on the
 * same loaded model into a transcript.
 */
const tmp = mkdtempSync(path.join(os.tmpdir(), 'live-whisper-'));
const modelPath = path.join(tmp, 'ggml-tiny-random.en.bin');
let model: TinyWhisperModel;

beforeAll(async () => {
  model = await writeTinyWhisperModel(modelPath, { seed: 11 });
}, 30_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

interface Segment {
  type: 'segment';
  id: string;
  start: number;
  end: number;
  text: string;
}

describe(`live transcription on the whisper engine (${backendLabel})`, () => {
  let t: TestApp;
  let server: Listening;
  let owner: TestUser;

  beforeAll(async () => {
    t = await startTestApp({
      env: recordingEnv({ SOTTO_ASR_ENGINE: 'whisper', SOTTO_WHISPER_MODEL: modelPath }).env,
    });
    server = await listenTls(t.services);
    await t.services.jobs.start();
    owner = await createOrgWithUser(t.services, { role: 'owner' });
  }, 60_000);
  afterAll(async () => {
    await t.services.jobs.stop();
    await server.close();
    await t.close();
  });

  it('reports whisper as the active engine', async () => {
    const res = await t.app.inject({ method: 'GET', url: '/readyz' });
    expect(res.body).toMatch(/whisper/);
  });

  it('streams an utterance to a viewer as a whisper segment, then transcribes the recording on the same model', async () => {
    const ip = freshIp();
    const id = await createLive(t, owner.accessToken, ip);
    const viewer = await mustOpen(server, `/api/v1/recordings/${id}/watch`, { token: owner.accessToken });
    await viewer.waitFor((m) => m.type === 'ready');
    const bot = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: owner.accessToken });

    // Real speech with a second of silence each side, so the live voice detector cuts one utterance.
    const speech = pcmOf(path.join(FIXTURES, 'librivox-0880.wav'));
    const pcm = new Int16Array(speech.length + 32_000);
    pcm.set(speech, 16_000);
    await streamPcm(bot, pcm, 'Reader');
    bot.ws.send(JSON.stringify({ type: 'stop' }));
    expect((await viewer.closed).code).toBe(1000);

    const segments = viewer.messages.filter((m) => m.type === 'segment') as unknown as Segment[];
    expect(segments.length).toBeGreaterThan(0);
    for (const s of segments) {
      const words = s.text.split(/\s+/).filter(Boolean);
      expect(words.length).toBeGreaterThan(0);
      for (const w of words) expect(model.words).toContain(w);
      // Recording times: inside the streamed audio, after the leading silence began.
      expect(s.start).toBeGreaterThanOrEqual(0);
      expect(s.end).toBeLessThanOrEqual(pcm.length / 16_000 + 0.01);
      expect(s.end).toBeGreaterThan(s.start);
    }

    // A whisper window takes seconds here, so the job is watched at a pace the API's rate
    // limit allows (pollRecording's 100 ms would be refused after a minute).
    let done = await pollRecording(t, owner.accessToken, ip, id, () => true);
    for (
      const end = Date.now() + 280_000;
      ['queued', 'processing'].includes(done.status) && Date.now() < end;
    ) {
      await new Promise((r) => setTimeout(r, 1_000));
      done = await pollRecording(t, owner.accessToken, ip, id, () => true);
    }
    expect(done.status).toBe('done');
    const transcript = await t.app.inject({
      method: 'GET',
      url: `/api/v1/recordings/${id}/transcript`,
      headers: { authorization: `Bearer ${owner.accessToken}` },
      remoteAddress: ip,
    });
    expect(transcript.statusCode).toBe(200);
    const body = transcript.json() as { segments: { text: string }[] };
    const text = body.segments.map((s) => s.text).join(' ');
    expect(text.length).toBeGreaterThan(0);
    for (const w of text.split(/\s+/).filter(Boolean)) expect(model.words).toContain(w);
  }, 300_000);
});
