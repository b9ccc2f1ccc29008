/**
 * The mono clustering diarizer on the shared corpus: issue 3's DER target (≤ 10% on two-speaker
 * files, md-eval DER with a ±0.25 s collar), speaker-count estimation, the `speakers` hint, and
 * inputs that break naive front ends.
 */
import { describe, expect, it } from 'vitest';
import { diarizationErrorRate } from './helpers/der.js';
import { diarize, type Diarizer } from '../src/audio/diarize.js';
import { ClusteringDiarizer } from '../src/audio/diarize-cluster.js';
import type { SpeakerTurn } from '../src/domain/transcript.js';
import { corpusEntry, hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { readCorpusMono } from './helpers/corpus-audio.js';

const diarizer: Diarizer = new ClusteringDiarizer();
const speakersOf = (turns: SpeakerTurn[]): string[] => [...new Set(turns.map((t) => t.speaker))];

describe.skipIf(!hasCorpus)(
  `mono diarization on the corpus${hasCorpus ? '' : ` (skipped: ${noCorpusReason})`}`,
  () => {
    for (const id of ['intake-01', 'call-02']) {
      it(`${id}: two speakers found, DER ≤ 10%`, () => {
        const { pcm, sampleRate } = readCorpusMono(id);
        const ref = corpusEntry(id);
        const turns = diarizer.diarize(pcm, sampleRate);
        const score = diarizationErrorRate(ref.turns, turns);
        console.log(
          `${id} mono DER ${(100 * score.der).toFixed(2)}% (collar 0.25 s), ${speakersOf(turns).length} speakers`,
        );
        expect(speakersOf(turns)).toEqual(['S1', 'S2']);
        expect(score.der).toBeLessThanOrEqual(0.1);
        // Stricter than the target, to catch regressions early: also without any collar.
        expect(diarizationErrorRate(ref.turns, turns, { collar: 0 }).der).toBeLessThanOrEqual(0.1);
        // Labels follow first appearance, and the first speaker of the reference is S1.
        expect(turns[0]!.speaker).toBe('S1');
        expect(score.mapping.S1).toBe(ref.turns[0]!.speaker);
        // Turns are ordered and well-formed.
        turns.forEach((t, i) => {
          expect(t.end).toBeGreaterThan(t.start);
          if (i > 0) expect(t.start).toBeGreaterThanOrEqual(turns[i - 1]!.start);
        });
      });
    }

    it('solo-03: one speaker', () => {
      const { pcm, sampleRate } = readCorpusMono('solo-03');
      const turns = diarizer.diarize(pcm, sampleRate);
      expect(speakersOf(turns)).toEqual(['S1']);
      expect(diarizationErrorRate(corpusEntry('solo-03').turns, turns).der).toBeLessThanOrEqual(0.1);
    });

    it('honours the speakers hint, above and below the estimate', () => {
      const solo = readCorpusMono('solo-03');
      expect(speakersOf(diarizer.diarize(solo.pcm, solo.sampleRate, { speakers: 2 }))).toHaveLength(2);
      const intake = readCorpusMono('intake-01');
      const one = diarizer.diarize(intake.pcm, intake.sampleRate, { speakers: 1 });
      expect(speakersOf(one)).toEqual(['S1']);
      expect(speakersOf(diarizer.diarize(intake.pcm, intake.sampleRate, { speakers: 3 }))).toHaveLength(3);
      const call = readCorpusMono('call-02');
      const two = diarizer.diarize(call.pcm, call.sampleRate, { speakers: 2 });
      expect(diarizationErrorRate(corpusEntry('call-02').turns, two).der).toBeLessThanOrEqual(0.1);
      expect(() => diarizer.diarize(call.pcm, call.sampleRate, { speakers: 0 })).toThrow(RangeError);
      expect(() => diarizer.diarize(call.pcm, call.sampleRate, { speakers: 1.5 })).toThrow(RangeError);
    });

    it('copes with clipping and a DC offset (gain ×6, +4000 offset, ~17% of samples clipped)', () => {
      const { pcm, sampleRate } = readCorpusMono('intake-01');
      const harsh = pcm.map((v) => Math.max(-32768, Math.min(32767, v * 6 + 4000)));
      const clipped = harsh.filter((v) => v === 32767 || v === -32768).length / harsh.length;
      expect(clipped).toBeGreaterThan(0.1);
      const turns = diarizer.diarize(harsh, sampleRate);
      expect(speakersOf(turns)).toHaveLength(2);
      expect(diarizationErrorRate(corpusEntry('intake-01').turns, turns).der).toBeLessThanOrEqual(0.1);
    });

    it('copes with a quiet recording (−34 dB) and gives the same turns for Int16 and Float32 input', () => {
      const { pcm, sampleRate } = readCorpusMono('call-02');
      const quiet = pcm.map((v) => Math.round(v * 0.02));
      expect(
        diarizationErrorRate(corpusEntry('call-02').turns, diarizer.diarize(quiet, sampleRate)).der,
      ).toBeLessThanOrEqual(0.1);
      const asFloat = Float32Array.from(pcm, (v) => v / 32768);
      expect(diarizer.diarize(asFloat, sampleRate)).toEqual(diarizer.diarize(pcm, sampleRate));
    });

    it('finds speaker changes inside one speech region (turns butted together, no pause)', () => {
      const { pcm, sampleRate } = readCorpusMono('intake-01');
      const parts: Int16Array[] = [];
      const ref: SpeakerTurn[] = [];
      let offset = 0;
      for (const t of corpusEntry('intake-01').turns) {
        const part = pcm.subarray(Math.round(t.start * sampleRate), Math.round(t.end * sampleRate));
        ref.push({
          speaker: t.speaker,
          start: offset / sampleRate,
          end: (offset + part.length) / sampleRate,
        });
        parts.push(part);
        offset += part.length;
      }
      const tight = new Int16Array(offset);
      parts.reduce((o, p) => (tight.set(p, o), o + p.length), 0);
      const result = new ClusteringDiarizer().run(tight, sampleRate);
      // The VAD can no longer separate the turns: changes must be found within regions.
      expect(result.regions.length).toBeLessThan(ref.length);
      expect(result.speakers).toBe(2);
      expect(diarizationErrorRate(ref, result.turns).der).toBeLessThanOrEqual(0.1);
    });

    it('a dual-mono file (same signal on both channels) goes to the clustering diarizer', () => {
      const { pcm, sampleRate } = readCorpusMono('call-02');
      const result = diarize([pcm, pcm.slice()], sampleRate, diarizer);
      expect(result.method).toBe('clustering');
      expect(diarizationErrorRate(corpusEntry('call-02').turns, result.turns).der).toBeLessThanOrEqual(0.1);
    });
  },
);

describe('mono diarization edge cases', () => {
  it('all silence, empty, or a few samples → no turns', () => {
    expect(diarizer.diarize(new Int16Array(16000 * 20), 16000)).toEqual([]);
    expect(diarizer.diarize(new Float32Array(0), 16000)).toEqual([]);
    expect(diarizer.diarize(new Int16Array(50), 16000)).toEqual([]);
    expect(diarize([], 16000, diarizer).turns).toEqual([]);
  });

  it('a very short utterance is one speaker, inside the input', () => {
    const sr = 16000;
    const pcm = new Float32Array(Math.round(0.8 * sr));
    for (let i = Math.round(0.2 * sr); i < Math.round(0.6 * sr); i++) {
      let v = 0;
      for (let h = 1; h < 15; h++) v += Math.sin((2 * Math.PI * 130 * h * i) / sr) / h;
      pcm[i] = 0.2 * v;
    }
    const turns = diarizer.diarize(pcm, sr);
    expect(turns).toHaveLength(1);
    expect(turns[0]!.speaker).toBe('S1');
    expect(turns[0]!.start).toBeGreaterThanOrEqual(0.05);
    expect(turns[0]!.end).toBeLessThanOrEqual(0.8);
    // A hint larger than the evidence cannot invent speakers from nothing.
    expect(speakersOf(diarizer.diarize(pcm, sr, { speakers: 4 })).length).toBeLessThanOrEqual(1);
  });
});
