/**
 * The test suite's replay of pocketsphinx (test/helpers/replay-engine.ts) says what the real
 * recognizer says: an upload through the pipeline and a live-style session of several utterances
 * give the same words replayed as recognised, and a replayed answer starts no decoder. This is
 * also what notices recordings gone stale (a new pocketsphinx or model, a change to how the
 * pipeline cuts audio): then `npm run test:record`.
 */
import { afterAll, describe, expect, it } from 'vitest';
import type { Word } from '../src/domain/transcript.js';
import type { AsrEngine } from '../src/adapters/asr/engine.js';
import { sphinxAvailability, SphinxEngine } from '../src/adapters/asr/sphinx.engine.js';
import { createAudioDecoder } from '../src/adapters/media/audio-decoder.adapter.js';
import { PipelineService } from '../src/services/transcription/pipeline.service.js';
import { readCorpusMono } from './helpers/corpus-audio.js';
import { corpusFile, hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { ReplayEngine, replayMisses, replayMode } from './helpers/replay-engine.js';

const installed = sphinxAvailability(process.env.PATH ?? '');
const skipReason = !hasCorpus ? noCorpusReason : !installed.available ? installed.reason : '';
const silentLogger = { info: () => undefined, debug: () => undefined };
const replaying = replayMode() === 'replay';

/** Three utterances of one voice, as a live session hears them (offsets on the recording). */
function utterancesOf(pcm: Int16Array): { offset: number; pcm: Int16Array }[] {
  const second = 16_000;
  return [
    { offset: 0, pcm: pcm.subarray(0, 6 * second) },
    { offset: 6.5, pcm: pcm.subarray(6.5 * second, 12 * second) },
    { offset: 12.5, pcm: pcm.subarray(12.5 * second, 18 * second) },
  ];
}

async function session(engine: AsrEngine, parts: { offset: number; pcm: Int16Array }[]): Promise<Word[][]> {
  const s = engine.session!({ priority: 'live' });
  const out: Word[][] = [];
  for (const part of parts) {
    const u = s.utterance(part.offset);
    // Fed in 100 ms frames, as the live socket delivers it.
    for (let at = 0; at < part.pcm.length; at += 1600) u.feed(part.pcm.subarray(at, at + 1600));
    out.push(await u.final());
  }
  return out;
}

describe.skipIf(!!skipReason)(
  `the replay of pocketsphinx${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    const real = new SphinxEngine();
    const inner = new SphinxEngine();
    const replay = new ReplayEngine(inner);
    afterAll(async () => {
      await real.close();
      await replay.close();
    });

    it('an upload replayed gives the real words, and starts no decoder', async () => {
      const misses = replayMisses();
      const replayed = await new PipelineService({
        decoder: createAudioDecoder(),
        engine: replay,
        logger: silentLogger,
      }).run({
        file: corpusFile('call-02', 'wav'),
      });
      if (replaying) {
        expect(replayMisses() - misses, 'calls without a recording: run `npm run test:record`').toBe(0);
        expect(inner.stats(), 'no decoder was started').toBeUndefined();
      }
      // The same questions to the real engine (the replay's piece plan: two at once).
      const recognised = await new PipelineService({
        decoder: createAudioDecoder(),
        engine: real,
        logger: silentLogger,
        concurrency: replay.concurrency,
      }).run({ file: corpusFile('call-02', 'wav') });
      expect(replayed.segments.flatMap((s) => s.words)).toEqual(recognised.segments.flatMap((s) => s.words));
      expect(replayed.segments.length).toBeGreaterThan(2);
    }, 90_000);

    it('a session of three utterances: each answer as the real session gives it, adaptation included', async () => {
      const parts = utterancesOf(readCorpusMono('intake-01').pcm);
      const misses = replayMisses();
      const replayed = await session(replay, parts);
      if (replaying) expect(replayMisses() - misses).toBe(0);
      const recognised = await session(real, parts);
      expect(replayed).toEqual(recognised);
      expect(replayed.flat().length).toBeGreaterThan(10);
      // The third utterance heard after the other two is not the same question as heard alone:
      // the replay keys it by what the session heard before (the voice's adaptation).
      const [alone] = await session(replay, parts.slice(2));
      const [aloneReal] = await session(real, parts.slice(2));
      expect(alone).toEqual(aloneReal);
    }, 90_000);
  },
);
