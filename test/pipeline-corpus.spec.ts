/**
 * The transcription pipeline end to end on the shared corpus with the real pocketsphinx engine:
 * chunked recognition must not lose accuracy against pocketsphinx on the whole WAV (issue 3:
 * within 2 WER points), diarization must find the reference speakers and put ≥ 90 % of words on
 * the right one, progress is real, and the report built from the result matches the reference.
 * Each file is transcribed once directly and once through the pipeline, then reused.
 */
import { beforeAll, describe, expect, it } from 'vitest';
import type { Segment } from '../src/domain/transcript.js';
import { wordErrorRate } from '../src/domain/wer.js';
import { sphinxAvailability, SphinxEngine } from '../src/adapters/asr/sphinx.engine.js';
import { createAudioDecoder } from '../src/adapters/media/audio-decoder.adapter.js';
import { PipelineService, type PipelineResult } from '../src/services/transcription/pipeline.service.js';
import { buildReport } from '../src/services/recordings/report.service.js';
import {
  corpusEntry,
  corpusFile,
  corpusIds,
  hasCorpus,
  noCorpusReason,
  type CorpusEntry,
} from './helpers/corpus.js';
import { readCorpusMono } from './helpers/corpus-audio.js';

const installed = sphinxAvailability(process.env.PATH ?? '');
const skipReason = !hasCorpus ? noCorpusReason : !installed.available ? installed.reason : '';
const silentLogger = { info: () => undefined, debug: () => undefined };

interface Run {
  ref: CorpusEntry;
  directWer: number;
  pipelineWer: number;
  result: PipelineResult;
  progress: number[];
}

/** Reference speaker at time t: the turn containing it, else the nearest turn. */
function referenceSpeakerAt(ref: CorpusEntry, t: number): string {
  let best = ref.turns[0]!;
  let bestDistance = Infinity;
  for (const turn of ref.turns) {
    const d = t < turn.start ? turn.start - t : t > turn.end ? t - turn.end : 0;
    if (d < bestDistance) [best, bestDistance] = [turn, d];
  }
  return best.speaker;
}

/** Share of words whose speaker, mapped to the reference by majority vote, is the reference one. */
function speakerAgreement(ref: CorpusEntry, segments: readonly Segment[]): number {
  const votes = new Map<string, Map<string, number>>();
  const pairs: [string, string][] = [];
  for (const s of segments) {
    for (const w of s.words) {
      const truth = referenceSpeakerAt(ref, (w.start + w.end) / 2);
      pairs.push([s.speaker, truth]);
      const v = votes.get(s.speaker) ?? new Map<string, number>();
      v.set(truth, (v.get(truth) ?? 0) + 1);
      votes.set(s.speaker, v);
    }
  }
  const mapping = new Map(
    [...votes].map(([hyp, v]) => [hyp, [...v].sort((a, b) => b[1] - a[1])[0]![0]] as const),
  );
  return pairs.filter(([hyp, truth]) => mapping.get(hyp) === truth).length / Math.max(1, pairs.length);
}

describe.skipIf(!!skipReason)(
  `pipeline on the corpus with pocketsphinx${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    const engine = new SphinxEngine();
    const pipeline = new PipelineService({ decoder: createAudioDecoder(), engine, logger: silentLogger });
    const runs = new Map<string, Run>();

    beforeAll(async () => {
      for (const id of corpusIds()) {
        const ref = corpusEntry(id);
        const progress: number[] = [];
        const [direct, result] = await Promise.all([
          engine.transcribe(readCorpusMono(id).pcm),
          pipeline.run({ file: corpusFile(id, 'wav'), onProgress: (f) => progress.push(f) }),
        ]);
        const directWer = wordErrorRate(
          ref.text,
          direct.map((w) => w.w),
        ).wer;
        const pipelineWer = wordErrorRate(
          ref.text,
          result.segments.flatMap((s) => s.words.map((w) => w.w)),
        ).wer;
        console.log(
          `${id}: WER direct ${(100 * directWer).toFixed(2)}%, pipeline ${(100 * pipelineWer).toFixed(2)}%, ` +
            `${result.speakers.length} speakers, ${result.segments.length} segments`,
        );
        runs.set(id, { ref, directWer, pipelineWer, result, progress });
      }
    }, 240_000);

    for (const id of corpusIds()) {
      it(`${id}: WER within 2 points of pocketsphinx on the whole file`, () => {
        const run = runs.get(id)!;
        expect(run.pipelineWer).toBeLessThanOrEqual(run.directWer + 0.02);
        expect(run.result.engine).toBe('sphinx');
        expect(run.result.channels).toBe(1);
        expect(run.result.durationSeconds).toBeCloseTo(run.ref.duration, 1);
      });

      it(`${id}: the reference number of speakers, ≥ 90 % of words on the right speaker`, () => {
        const { ref, result } = runs.get(id)!;
        expect(result.speakers).toHaveLength(ref.speakers.length);
        expect(result.speakers).toEqual(result.speakers.map((_, i) => `S${i + 1}`));
        const agreement = speakerAgreement(ref, result.segments);
        console.log(`${id}: ${(100 * agreement).toFixed(1)}% of words on the reference speaker`);
        expect(agreement).toBeGreaterThanOrEqual(0.9);
      });

      it(`${id}: segments are well-formed`, () => {
        const { result } = runs.get(id)!;
        expect(result.segments.length).toBeGreaterThan(0);
        result.segments.forEach((s, i) => {
          expect(s.id).toBe(`seg-${String(i + 1).padStart(4, '0')}`);
          expect(result.speakers).toContain(s.speaker);
          expect(s.text).toBe(s.words.map((w) => w.w).join(' '));
          expect(s.start).toBe(s.words[0]!.start);
          expect(s.end).toBeGreaterThan(s.start);
          expect(s.end - s.start).toBeLessThanOrEqual(30);
          for (let k = 1; k < s.words.length; k++) {
            expect(s.words[k]!.start).toBeGreaterThanOrEqual(s.words[k - 1]!.start);
            // A pause longer than a second starts a new segment.
            expect(s.words[k]!.start - s.words[k - 1]!.end).toBeLessThanOrEqual(1);
          }
          for (const w of s.words) expect(w.conf).toBeGreaterThanOrEqual(0);
          if (i > 0) expect(s.start).toBeGreaterThanOrEqual(result.segments[i - 1]!.start);
        });
      });

      it(`${id}: progress is monotonic, passes through each stage and ends at 1`, () => {
        const { progress, ref } = runs.get(id)!;
        expect(progress.length).toBeGreaterThanOrEqual(3);
        for (let k = 1; k < progress.length; k++) expect(progress[k]!).toBeGreaterThan(progress[k - 1]!);
        expect(progress[0]!).toBeLessThanOrEqual(0.1);
        expect(progress).toContain(0.1);
        expect(progress).toContain(0.9);
        expect(progress.at(-1)).toBe(1);
        // Recognition progress is real: a recording of more than one 30 s chunk reports values
        // strictly between the decode and diarization marks.
        if (ref.duration > 30) expect(progress.some((f) => f > 0.1 && f < 0.9)).toBe(true);
      });

      it(`${id}: report — shares sum to 1, turns within ±1 of the reference`, () => {
        const { ref, result } = runs.get(id)!;
        const report = buildReport(result);
        const shares = report.speakers.reduce((s, x) => s + x.share, 0);
        expect(shares).toBeCloseTo(1, 3);
        expect(Math.abs(report.turns - ref.turns.length)).toBeLessThanOrEqual(1);
        expect(report.speakers.map((s) => s.speaker)).toEqual(result.speakers);
        expect(report.speechSeconds + report.silenceSeconds).toBeCloseTo(result.durationSeconds, 1);
        const refSpeech = ref.turns.reduce((s, t) => s + t.end - t.start, 0);
        expect(Math.abs(report.speechSeconds - refSpeech)).toBeLessThan(0.15 * refSpeech);
        expect(report.speakers.reduce((s, x) => s + x.words, 0)).toBe(
          result.segments.reduce((s, x) => s + x.words.length, 0),
        );
        expect(report.topKeywords.length).toBeGreaterThan(0);
      });
    }

    it('short chunks (≤ 8 s, many seams) keep the accuracy of the whole-file run', async () => {
      const id = 'call-02';
      const chunks: unknown[] = [];
      const small = new PipelineService({
        decoder: createAudioDecoder(),
        engine,
        logger: { info: () => undefined, debug: (o: unknown) => void chunks.push(o) },
        chunking: { maxSeconds: 8 },
        scan: false,
      });
      const result = await small.run({ file: corpusFile(id, 'wav') });
      const run = runs.get(id)!;
      const wer = wordErrorRate(
        run.ref.text,
        result.segments.flatMap((s) => s.words.map((w) => w.w)),
      ).wer;
      console.log(`${id} in ${chunks.length} chunks of ≤ 8 s: WER ${(100 * wer).toFixed(2)}%`);
      expect(chunks.length).toBeGreaterThanOrEqual(5);
      expect(wer).toBeLessThanOrEqual(run.directWer + 0.02);
      expect(speakerAgreement(run.ref, result.segments)).toBeGreaterThanOrEqual(0.9);
    }, 90_000);
  },
);
