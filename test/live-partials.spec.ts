import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { freshIp } from './helpers/auth-client.js';
import { hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { readCorpusMono } from './helpers/corpus-audio.js';
import { createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { createLive, frames, listenTls, mustOpen, type Conn, type Listening } from './helpers/live.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel, startTestApp, usingRedis, type TestApp } from './helpers/test-app.js';

/**
 * Partial results (docs/live.md): while an utterance is still being spoken, viewers get its
 * words so far, under the id its final segment will carry, and the final replaces them. Real
 * sphinx engine, corpus audio paced like a live conversation (the recogniser must be idle for a
 * partial to run, as it is in real time; a file pushed at once keeps it busy with finals).
 */
interface Said {
  type: 'partial' | 'segment';
  id: string;
  speaker: string;
  start: number;
  end: number;
  text: string;
}

/** 100 ms frames on a clock, `speed` times faster than real time; resolves at the last ack. */
async function streamPaced(c: Conn, pcm: Int16Array, speed: number): Promise<void> {
  c.ws.send(JSON.stringify({ type: 'start', participant: 'Clinician' }));
  const all = frames(pcm);
  const t0 = Date.now();
  for (let i = 0; i < all.length; i++) {
    const due = t0 + (i * 100) / speed - Date.now();
    if (due > 0) await new Promise((r) => setTimeout(r, due));
    c.ws.send(all[i]!);
  }
  await c.waitFor((m) => m.type === 'ack' && m.seq === all.length - 1);
}

const words = (s: string) => s.toLowerCase().split(/\s+/).filter(Boolean);

async function session(
  env: Record<string, string>,
  seconds: number,
  spyOn?: (prefix: string, id: string) => Promise<(() => Buffer[]) | undefined>,
  speed = 1.5,
) {
  const t: TestApp = await startTestApp({
    env: recordingEnv({ ...env, SOTTO_LIVE_MAX_PER_ORG: '20' }).env,
    // Partial text and its timing are what this spec is about: the real recognizer.
    engine: 'real',
  });
  let server: Listening | undefined;
  try {
    server = await listenTls(t.services);
    const owner: TestUser = await createOrgWithUser(t.services, { role: 'owner' });
    const id = await createLive(t, owner.accessToken, freshIp());
    const wire = await spyOn?.(t.services.config.redisPrefix, id);
    const viewer = await mustOpen(server, `/api/v1/recordings/${id}/watch`, { token: owner.accessToken });
    await viewer.waitFor((m) => m.type === 'ready');
    const bot = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: owner.accessToken });
    const { pcm } = readCorpusMono('intake-01');
    await streamPaced(bot, pcm.subarray(0, seconds * 16_000), speed);
    bot.ws.send(JSON.stringify({ type: 'stop' }));
    expect((await viewer.closed).code).toBe(1000);
    const said = viewer.messages.filter(
      (m) => m.type === 'partial' || m.type === 'segment',
    ) as unknown as Said[];
    // Everything else published for the recording: the stop's progress and its end.
    const events = viewer.messages.filter((m) => m.type === 'stopping' || m.type === 'stopped').length;
    return { said, events, wire: wire?.() };
  } finally {
    await t.services.jobs.stop();
    await server?.close();
    await t.close();
  }
}

describe.skipIf(!hasCorpus)(
  `live partial results (${backendLabel}) ${hasCorpus ? '' : noCorpusReason}`,
  () => {
    let spy: Redis | undefined;
    beforeAll(() => {
      if (usingRedis) spy = new Redis(process.env.REDIS_URL!);
    });
    afterAll(() => spy?.disconnect());

    it('a long utterance shows partials first, under the id of its final; none after the final; sealed on Redis', async () => {
      // Real time and a partial every second: a partial needs an idle recogniser, and on a loaded
      // 2-core machine (CI runs two heavy files at once) 1.5× speed left it busy with finals.
      const { said, events, wire } = await session(
        { SOTTO_LIVE_PARTIAL_SECONDS: '1' },
        45,
        async (prefix, id) => {
          if (!spy) return undefined;
          const got: Buffer[] = [];
          spy.on('messageBuffer', (_c: Buffer, m: Buffer) => got.push(m));
          await spy.subscribe(`${prefix}live:${id}`);
          return () => got;
        },
        1,
      );
      const partials = said.filter((m) => m.type === 'partial');
      const finals = said.filter((m) => m.type === 'segment');
      expect(finals.length).toBeGreaterThanOrEqual(3);
      expect(partials.length).toBeGreaterThanOrEqual(1);
      for (const p of partials) {
        // Exactly the announced shape: no words, no seq (a partial is not a segment).
        expect(Object.keys(p).sort()).toEqual(['end', 'id', 'speaker', 'start', 'text', 'type']);
        expect(p.speaker).toBe('Clinician');
        const at = said.indexOf(p);
        const final = said.findIndex((m) => m.type === 'segment' && m.id === p.id);
        // Replaced by the final with the same id, which comes after it.
        expect(final, `partial ${p.id} "${p.text}" has no final`).toBeGreaterThan(at);
        const f = said[final]!;
        // The last partial before its final is (mostly) what the final says: the first ones of
        // an utterance are the decoder's early guesses over half a second of speech, and sphinx
        // revises them as the sentence goes on.
        const later = said.slice(at + 1, final).some((m) => m.type === 'partial' && m.id === p.id);
        if (!later) {
          const known = new Set(words(f.text));
          const pw = words(p.text);
          expect(
            pw.filter((w) => known.has(w)).length / pw.length,
            `"${p.text}" vs "${f.text}"`,
          ).toBeGreaterThan(0.5);
        }
        expect(p.start).toBeGreaterThanOrEqual(f.start - 0.5);
        expect(p.end).toBeLessThanOrEqual(f.end + 0.5);
      }
      // No partial after the final of its utterance.
      for (const [i, m] of said.entries())
        if (m.type === 'partial')
          expect(said.slice(0, i).some((s) => s.type === 'segment' && s.id === m.id)).toBe(false);
      if (wire) {
        // Partials cross Redis sealed like segments: one message each, no words in clear.
        expect(wire.length).toBe(said.length + events);
        const raw = Buffer.concat(wire).toString('latin1');
        expect(raw).not.toContain('partial');
        for (const p of partials)
          for (const w of words(p.text).filter((x) => x.length > 4)) expect(raw).not.toContain(w);
      }
    }, 180_000);

    it('SOTTO_LIVE_PARTIALS=false: finals only', async () => {
      const { said } = await session({ SOTTO_LIVE_PARTIALS: 'false' }, 27);
      expect(said.filter((m) => m.type === 'segment').length).toBeGreaterThanOrEqual(2);
      expect(said.filter((m) => m.type === 'partial')).toEqual([]);
    }, 120_000);
  },
);
