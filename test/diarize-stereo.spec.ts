/**
 * Channel diarization on the corpus's stereo files (first speaker left, second right): issue 3's
 * target DER ≤ 2% (md-eval, ±0.25 s collar), crosstalk suppression and overlapping speech.
 */
import { describe, expect, it } from 'vitest';
import { diarizationErrorRate } from './helpers/der.js';
import { diarize, diarizeChannels, isDualMono } from '../src/audio/diarize.js';
import { ClusteringDiarizer } from '../src/audio/diarize-cluster.js';
import type { SpeakerTurn } from '../src/domain/transcript.js';
import { corpusEntry, hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { readCorpusStereo } from './helpers/corpus-audio.js';

const speakersOf = (turns: SpeakerTurn[]): string[] => [...new Set(turns.map((t) => t.speaker))];

/** Each channel picks up the other at `gain` (−26 dB at 0.05): a typical headset/phone bleed. */
function withBleed([left, right]: Int16Array[], gain: number): Int16Array[] {
  return [left!.map((v, i) => v + gain * right![i]!), right!.map((v, i) => v + gain * left![i]!)];
}

describe.skipIf(!hasCorpus)(
  `channel diarization on the corpus${hasCorpus ? '' : ` (skipped: ${noCorpusReason})`}`,
  () => {
    for (const id of ['intake-01', 'call-02']) {
      it(`${id}: one speaker per channel, DER ≤ 2%`, () => {
        const { channels, sampleRate } = readCorpusStereo(id);
        const ref = corpusEntry(id);
        const result = diarize(channels, sampleRate, new ClusteringDiarizer());
        expect(result.method).toBe('channels');
        const score = diarizationErrorRate(ref.turns, result.turns);
        console.log(`${id} stereo DER ${(100 * score.der).toFixed(2)}% (collar 0.25 s)`);
        expect(score.der).toBeLessThanOrEqual(0.02);
        expect(diarizationErrorRate(ref.turns, result.turns, { collar: 0 }).der).toBeLessThanOrEqual(0.05);
        // S1 is the left channel, which carries the first reference speaker.
        expect(score.mapping).toEqual({ S1: ref.speakers[0], S2: ref.speakers[1] });
      });
    }

    it('solo-03 (speech left, digital silence right): one speaker', () => {
      const { channels, sampleRate } = readCorpusStereo('solo-03');
      expect(isDualMono(channels)).toBe(false);
      const { turns } = diarizeChannels(channels, sampleRate);
      expect(speakersOf(turns)).toEqual(['S1']);
      expect(diarizationErrorRate(corpusEntry('solo-03').turns, turns).der).toBeLessThanOrEqual(0.02);
    });

    it('suppresses crosstalk: −26 dB and −16 dB bleed leave DER ≤ 2%; without suppression it fails', () => {
      const { channels, sampleRate } = readCorpusStereo('call-02');
      const ref = corpusEntry('call-02').turns;
      for (const gain of [0.05, 0.15]) {
        const { turns } = diarizeChannels(withBleed(channels, gain), sampleRate);
        expect(diarizationErrorRate(ref, turns).der, `bleed gain ${gain}`).toBeLessThanOrEqual(0.02);
      }
      // The same input with the comparison disabled: each channel "hears" both speakers.
      const naive = diarizeChannels(withBleed(channels, 0.05), sampleRate, { bleedDb: 1000 });
      expect(diarizationErrorRate(ref, naive.turns).der).toBeGreaterThan(0.5);
    });

    it('keeps real overlaps on both channels', () => {
      // Move the right channel 1.2 s earlier: every answer now starts 0.6 s before the question ends.
      const { channels, sampleRate } = readCorpusStereo('call-02');
      const [left, right] = channels as [Int16Array, Int16Array];
      const shift = Math.round(1.2 * sampleRate);
      const moved = new Int16Array(right.length);
      moved.set(right.subarray(shift));
      const entry = corpusEntry('call-02');
      const second = entry.speakers[1]!;
      const ref = entry.turns.map((t) =>
        t.speaker === second ? { ...t, start: t.start - 1.2, end: t.end - 1.2 } : t,
      );
      let overlap = 0;
      for (const a of ref)
        for (const b of ref)
          if (a.speaker < b.speaker)
            overlap += Math.max(0, Math.min(a.end, b.end) - Math.max(a.start, b.start));
      expect(overlap).toBeGreaterThan(1.5);
      const { turns } = diarizeChannels([left, moved], sampleRate);
      const score = diarizationErrorRate(ref, turns);
      expect(score.der).toBeLessThanOrEqual(0.02);
      // Both speakers are active together somewhere in the hypothesis too.
      const s1 = turns.filter((t) => t.speaker === 'S1');
      const s2 = turns.filter((t) => t.speaker === 'S2');
      expect(s1.some((a) => s2.some((b) => Math.min(a.end, b.end) - Math.max(a.start, b.start) > 0.2))).toBe(
        true,
      );
    });

    it('all-silent channels give no turns', () => {
      const silent = [new Int16Array(16000 * 5), new Int16Array(16000 * 5)];
      expect(diarize(silent, 16000, new ClusteringDiarizer()).turns).toEqual([]);
      const quietNoise = silent.map((c, k) => c.map((_, i) => ((i * (k + 3) * 7919) % 13) - 6));
      expect(diarizeChannels(quietNoise, 16000).turns).toEqual([]);
    });
  },
);
