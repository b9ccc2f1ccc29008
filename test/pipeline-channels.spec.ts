/**
 * The pipeline on a two-channel call recording (one speaker per channel, exact), through ffmpeg
 * (FLAC), abort (the engine subprocess dies promptly, nothing left behind), bad input, and the
 * pure word→speaker→segment rules.
 */
import { mkdtempSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { assignSpeakers, buildSegments } from '../src/domain/segments.js';
import type { SpeakerTurn, Word } from '../src/domain/transcript.js';
import { sphinxAvailability, SphinxEngine } from '../src/adapters/asr/sphinx.engine.js';
import { checkDecoder, createAudioDecoder } from '../src/adapters/media/audio-decoder.adapter.js';
import { PipelineService } from '../src/services/transcription/pipeline.service.js';
import { corpusEntry, corpusFile, hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { processesMentioning } from './helpers/pcm.js';

const installed = sphinxAvailability(process.env.PATH ?? '');
const decoderStatus = await checkDecoder();
const skipReason = !hasCorpus ? noCorpusReason : !installed.available ? installed.reason : '';
const silentLogger = { info: () => undefined, debug: () => undefined };
const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'pipeline-channels-spec-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

const word = (w: string, start: number, end: number): Word => ({ w, start, end, conf: 0.9 });

describe('words to speakers to segments', () => {
  it('assigns each word to the speaker overlapping it most, else the nearest turn', () => {
    const turns: SpeakerTurn[] = [
      { speaker: 'S1', start: 0, end: 2 },
      { speaker: 'S2', start: 1.9, end: 4 },
      { speaker: 'S1', start: 6, end: 7 },
    ];
    const words = [word('a', 0.1, 0.5), word('b', 1.8, 2.3), word('c', 4.5, 4.8), word('d', 5.6, 5.9)];
    expect(assignSpeakers(words, turns).map((w) => w.speaker)).toEqual(['S1', 'S2', 'S2', 'S1']);
    expect(assignSpeakers(words, []).map((w) => w.speaker)).toEqual(['S1', 'S1', 'S1', 'S1']);
  });

  it('starts a new segment at a speaker change, a pause over 1 s and past 30 s', () => {
    const tagged = [
      { ...word('one', 0, 0.4), speaker: 'S1' },
      { ...word('two', 0.5, 0.9), speaker: 'S1' },
      { ...word('three', 2.0, 2.4), speaker: 'S1' }, // 1.1 s pause
      { ...word('four', 2.5, 2.9), speaker: 'S2' }, // speaker change
    ];
    for (let t = 3; t < 40; t += 0.5) tagged.push({ ...word('x', t, t + 0.4), speaker: 'S2' });
    const segments = buildSegments(tagged);
    expect(segments.map((s) => s.text.split(' ')[0])).toEqual(['one', 'three', 'four', 'x']);
    expect(segments.map((s) => s.id)).toEqual(['seg-0001', 'seg-0002', 'seg-0003', 'seg-0004']);
    expect(segments[0]).toMatchObject({ speaker: 'S1', start: 0, end: 0.9, text: 'one two' });
    for (const s of segments) expect(s.end - s.start).toBeLessThanOrEqual(30);
    expect(segments.flatMap((s) => s.words)).toHaveLength(tagged.length);
  });
});

describe.skipIf(!!skipReason)(
  `pipeline: channels, formats, abort${skipReason ? ` (skipped: ${skipReason})` : ''}`,
  () => {
    const engine = new SphinxEngine();
    const pipeline = new PipelineService({ decoder: createAudioDecoder(), engine, logger: silentLogger });
    // The path of engines that cannot scan (whisper, a remote API): VAD chunks with speech lead-ins.
    const chunked = new PipelineService({
      decoder: createAudioDecoder(),
      engine,
      logger: silentLogger,
      scan: false,
    });
    afterAll(() => engine.close());

    it.each([
      ['joined speech, scanned', pipeline],
      ['chunks with speech lead-ins', chunked],
    ])(
      'stereo call (%s): one speaker per channel, every word on its channel’s speaker',
      async (how, p) => {
        const ref = corpusEntry('call-02');
        const result = await p.run({ file: corpusFile('call-02', 'stereo.wav') });
        const perSecond = result.recognisedSeconds / result.durationSeconds;
        if (how === 'joined speech, scanned' && engine.warmMode) {
          // Each party's speech once (plus its pads), not each channel whole nor lead-ins twice.
          expect(perSecond).toBeGreaterThan(0.8);
          expect(perSecond).toBeLessThan(1.15);
        } else {
          expect(perSecond).toBeGreaterThan(1.3);
        }
        expect(result.channels).toBe(2);
        expect(result.speakers).toEqual(['S1', 'S2']);
        // Left channel = first reference speaker = S1, right = S2.
        const label = new Map(ref.speakers.map((s, i) => [s, `S${i + 1}`]));
        let inside = 0;
        for (const s of result.segments) {
          for (const w of s.words) {
            const mid = (w.start + w.end) / 2;
            const turn = ref.turns.find((t) => mid >= t.start && mid <= t.end);
            if (!turn) continue;
            inside++;
            expect(s.speaker, `"${w.w}" at ${mid}`).toBe(label.get(turn.speaker));
          }
        }
        expect(inside).toBeGreaterThan(50);
        // One segment per reference turn: turns are separated by pauses and speaker changes.
        expect(result.segments.map((s) => s.speaker)).toEqual(ref.turns.map((t) => label.get(t.speaker)));
      },
      90_000,
    );

    it.skipIf(!decoderStatus.available)(
      'decodes other containers through ffmpeg (FLAC)',
      async () => {
        const result = await pipeline.run({ file: corpusFile('solo-03', 'flac'), speakers: 1 });
        expect(result.speakers).toEqual(['S1']);
        expect(result.segments.map((s) => s.text).join(' ')).toMatch(/\w+ \w+ \w+/);
      },
      60_000,
    );

    it('abort stops the engine promptly and leaves no process or temp file', async () => {
      const tmpDir = mkdtempSync(path.join(tmpRoot, 'abort-'));
      const engine = new SphinxEngine({ tmpDir });
      const aborting = new PipelineService({ decoder: createAudioDecoder(), engine, logger: silentLogger });
      const controller = new AbortController();
      let abortedAt = 0;
      let busy: number[] = [];
      // Aborted once recognition runs: warm decoders busy with this recording (or, without the
      // helper, a pocketsphinx_continuous working on a temporary WAV under tmpDir). Not after a
      // fixed delay: on a loaded machine the decoding and the scan before it took longer than
      // 1.5 s once, and the abort then found no decoder at work.
      const timer = setInterval(() => {
        if (abortedAt) return;
        busy = engine.warmMode ? engine.helperPids().busy : processesMentioning(tmpDir);
        if (busy.length === 0) return;
        abortedAt = performance.now();
        controller.abort();
      }, 50);
      const run = aborting.run({ file: corpusFile('intake-01', 'wav'), signal: controller.signal });
      await expect(run).rejects.toMatchObject({ name: 'AbortError' });
      clearInterval(timer);
      // The abort hit running recognition, which stopped at once: its processes are gone.
      expect(busy.length).toBeGreaterThan(0);
      expect(performance.now() - abortedAt).toBeLessThan(2000);
      const alive = (pid: number) => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      for (let i = 0; i < 50 && busy.some(alive); i++) await new Promise((r) => setTimeout(r, 20));
      expect(busy.filter(alive)).toEqual([]);
      expect(processesMentioning(tmpDir)).toEqual([]);
      // No temporary audio anywhere under tmpDir (the warm engine writes none).
      expect(readdirSync(tmpDir)).toEqual([]);
      await engine.close();
    }, 60_000);

    it('an already-aborted signal rejects before any work', async () => {
      const controller = new AbortController();
      controller.abort();
      await expect(
        pipeline.run({ file: corpusFile('solo-03', 'wav'), signal: controller.signal }),
      ).rejects.toMatchObject({ name: 'AbortError' });
    });

    it('refuses a bad speakers hint and a file that is not audio', async () => {
      await expect(pipeline.run({ file: corpusFile('solo-03', 'wav'), speakers: 0 })).rejects.toThrow(
        RangeError,
      );
      await expect(pipeline.run({ file: corpusFile('solo-03', 'wav'), speakers: 1.5 })).rejects.toThrow(
        RangeError,
      );
      const notAudio = path.join(tmpRoot, 'notes.txt');
      writeFileSync(notAudio, 'just some text, not a recording\n'.repeat(20));
      await expect(pipeline.run({ file: notAudio })).rejects.toMatchObject({
        code: 'unsupported_media_type',
      });
    });
  },
);
