/**
 * VAD and chunker against the shared corpus: detected speech must match the reference turn
 * times, streaming must equal batch, and chunks must cut in the silences between turns.
 */
import { describe, expect, it } from 'vitest';
import { planChunks } from '../src/audio/chunker.js';
import { diarizationErrorRate } from './helpers/der.js';
import { detectSpeech, VadStream } from '../src/audio/vad.js';
import { corpusEntry, hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { readCorpusMono } from './helpers/corpus-audio.js';

const IDS = ['intake-01', 'call-02', 'solo-03'];

describe.skipIf(!hasCorpus)(`VAD on the corpus${hasCorpus ? '' : ` (skipped: ${noCorpusReason})`}`, () => {
  for (const id of IDS) {
    it(`${id}: detects the reference speech with little miss or false alarm`, () => {
      const { pcm, sampleRate } = readCorpusMono(id);
      const turns = corpusEntry(id).turns;
      const regions = detectSpeech(pcm, sampleRate);
      // Scored as one-speaker DER without collar: pure speech/non-speech accuracy, time-weighted.
      const asOne = <T extends { start: number; end: number }>(xs: T[]) =>
        xs.map((x) => ({ speaker: 'speech', start: x.start, end: x.end }));
      const score = diarizationErrorRate(asOne(turns), asOne(regions), { collar: 0 });
      // Reference turns include the short pauses between a speaker's sentences, which a VAD
      // rightly calls silence: a few percent of miss is expected, false alarm should be tiny.
      expect(score.missed / score.total).toBeLessThan(0.06);
      expect(score.falseAlarm / score.total).toBeLessThan(0.04);
      // Every reference turn is found, and nothing is found outside the turns.
      for (const t of turns) expect(regions.some((r) => r.start < t.end && r.end > t.start)).toBe(true);
      for (const r of regions) expect(turns.some((t) => r.start < t.end && r.end > t.start)).toBe(true);
      // Regions start within 0.25 s of a turn's start where a turn starts.
      for (const t of turns) {
        const first = regions.find((r) => r.end > t.start)!;
        expect(Math.abs(first.start - t.start)).toBeLessThan(0.25);
      }
    });
  }

  it('streams: 20 ms blocks give exactly the batch regions', () => {
    const { pcm, sampleRate } = readCorpusMono('call-02');
    const vad = new VadStream(sampleRate);
    const got = [];
    for (let i = 0; i < pcm.length; i += 320) got.push(...vad.push(pcm.subarray(i, i + 320)));
    got.push(...vad.end());
    expect(got).toEqual(detectSpeech(pcm, sampleRate));
  });

  it('chunks a conversation in the silences between turns', () => {
    const { pcm, sampleRate } = readCorpusMono('intake-01');
    const { turns, duration } = corpusEntry('intake-01');
    const regions = detectSpeech(pcm, sampleRate);
    const chunks = planChunks(regions, pcm.length / sampleRate, sampleRate, { maxSeconds: 15 });
    expect(chunks.length).toBeGreaterThanOrEqual(4);
    for (const c of chunks) {
      expect(c.end - c.start).toBeLessThanOrEqual(15);
      expect(c.hardCut).toBe(false);
      expect(c.end).toBeLessThanOrEqual(duration + 0.01);
      // A chunk edge never falls inside a reference turn (allowing the VAD's edge tolerance).
      for (const edge of [c.start, c.end]) {
        expect(turns.some((t) => edge > t.start + 0.3 && edge < t.end - 0.3)).toBe(false);
      }
    }
    // All reference speech is inside some chunk.
    for (const t of turns) {
      for (let x = t.start + 0.2; x < t.end - 0.2; x += 0.1)
        expect(chunks.some((c) => x >= c.start && x <= c.end)).toBe(true);
    }
  });
});
