/**
 * Real human speech through Sotto, against pocketsphinx run by hand on the same audio.
 *
 * The shared corpus is synthetic voices; these are people (LibriVox read speech, spoken card
 * names, a robot command) from Debian's pocketsphinx-testdata, copied into test/fixtures/speech
 * by scripts/fixtures-speech.sh (sources and licences: test/fixtures/speech/README.md). For each
 * recording, and for a ≥ 30 s track built here from the five LibriVox utterances with pauses
 * between them (so the pipeline has to chunk), this measures:
 *   - direct: `pocketsphinx_continuous` spawned by this file on the WAV, no Sotto code involved;
 *   - Sotto: PipelineService with the sphinx engine chosen the way the app chooses it;
 * and asserts that Sotto's WER, aggregated over the set, is within 2 points of the direct one,
 * and that every word Sotto returns has sane times. Skipped only when pocketsphinx (with its
 * en-us model) is not installed.
 */
import { execFile } from 'node:child_process';
import { accessSync, constants, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadAsrConfig } from '../src/config/config.js';
import { wordErrorRate, type WerResult } from '../src/domain/wer.js';
import type { AsrEngine } from '../src/adapters/asr/engine.js';
import { selectEngine } from '../src/adapters/asr/select-engine.js';
import { createAudioDecoder } from '../src/adapters/media/audio-decoder.adapter.js';
import { PipelineService, type PipelineResult } from '../src/services/transcription/pipeline.service.js';
import { FIXTURES, buildLongTrack, pcmOf, readReferences } from './helpers/speech-fixtures.js';

const run = promisify(execFile);

const RATE = 16_000;
const BINARY = 'pocketsphinx_continuous';
const MODEL = '/usr/share/pocketsphinx/model/en-us';
// Exactly the command a user would type to try pocketsphinx on a file (the task's reference run).
const directArgs = (wav: string): string[] => [
  '-infile',
  wav,
  '-hmm',
  `${MODEL}/en-us`,
  '-lm',
  `${MODEL}/en-us.lm.bin`,
  '-dict',
  `${MODEL}/cmudict-en-us.dict`,
  '-time',
  'yes',
];
/** Allowed loss against the direct run: 2 WER points. */
const TOLERANCE = 0.02;

interface Measured {
  name: string;
  seconds: number;
  direct: WerResult;
  sotto: WerResult;
  result: PipelineResult;
  /** Chunks the pipeline cut the file into. */
  chunks: number;
}

/** Whether the binary is on PATH and the model files the direct command names exist. */
function pocketsphinxMissing(): string {
  const onPath = (process.env.PATH ?? '').split(path.delimiter).some((dir) => {
    try {
      accessSync(path.join(dir, BINARY), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
  if (!onPath) return `${BINARY} is not on PATH (apt-get install pocketsphinx pocketsphinx-en-us)`;
  for (const f of [`${MODEL}/en-us/mdef`, `${MODEL}/en-us.lm.bin`, `${MODEL}/cmudict-en-us.dict`]) {
    try {
      accessSync(f, constants.R_OK);
    } catch {
      return `the pocketsphinx en-us model is missing (${f}; apt-get install pocketsphinx-en-us)`;
    }
  }
  return '';
}

/**
 * Words from `-time yes` output ("word start end posterior" lines), parsed here rather than with
 * the engine's parser so the baseline owes nothing to Sotto. Sentence markers, fillers and noise
 * tokens are not words; "word(2)" is an alternate pronunciation of "word".
 */
function parseDirect(stdout: string): string[] {
  const words: string[] = [];
  for (const line of stdout.split('\n')) {
    const m = /^(\S+) \d+(?:\.\d+)? \d+(?:\.\d+)? \S+$/.exec(line.trim());
    if (!m || /^(<.*>|\[.*\]|\+\+.*\+\+)$/.test(m[1]!)) continue;
    words.push(m[1]!.replace(/\(\d+\)$/, ''));
  }
  return words;
}

async function direct(wav: string): Promise<string[]> {
  const { stdout } = await run(BINARY, directArgs(wav), { maxBuffer: 64 * 1024 * 1024 });
  return parseDirect(stdout);
}

/** Pools errors and reference words, so short files weigh by their words, not one vote each. */
function pooled(results: WerResult[]): number {
  const errors = results.reduce((s, r) => s + r.substitutions + r.deletions + r.insertions, 0);
  return errors / results.reduce((s, r) => s + r.referenceWords, 0);
}

/** At most `limit` tasks at once: the machine (and CI) has few cores, pocketsphinx is CPU-bound. */
async function inParallel<T>(tasks: (() => Promise<T>)[], limit: number): Promise<T[]> {
  const out: T[] = new Array<T>(tasks.length);
  let next = 0;
  const worker = async (): Promise<void> => {
    while (next < tasks.length) {
      const i = next++;
      out[i] = await tasks[i]!();
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, tasks.length) }, worker));
  return out;
}

const pct = (x: number): string => `${(100 * x).toFixed(1)}%`;
const detail = (r: WerResult): string =>
  `S${r.substitutions} D${r.deletions} I${r.insertions} / ${r.referenceWords}`;

const missing = pocketsphinxMissing();
// Said out loud: a skipped suite's title only shows in verbose output.
if (missing) console.warn(`test/real-speech.spec.ts skipped: ${missing}`);
const refs = readReferences();
const LONG = 'librivox-long (built)';
const LONG_SMALL = 'librivox-long, chunks ≤ 8 s';

describe.skipIf(!!missing)(
  `real speech (pocketsphinx-testdata) through Sotto vs pocketsphinx directly${missing ? ` (skipped: ${missing})` : ''}`,
  () => {
    const measured = new Map<string, Measured>();
    // Made in beforeAll, not here: a skipped suite still runs this body, and would leak them.
    let tmp: string | undefined;
    let long: { text: string; spans: [number, number][] } = { text: '', spans: [] };
    let engine: AsrEngine | undefined;

    afterAll(async () => {
      await engine?.close?.();
      if (tmp) rmSync(tmp, { recursive: true, force: true });
    });

    beforeAll(async () => {
      tmp = mkdtempSync(path.join(os.tmpdir(), 'real-speech-spec-'));
      const longWav = path.join(tmp, 'librivox-long.wav');
      long = buildLongTrack(
        refs.filter((r) => r.kind === 'read'),
        longWav,
      );
      // The engine the app would pick with SOTTO_ASR_ENGINE=sphinx (src/app.ts lazyPipeline).
      const { dataDir, ...asr } = loadAsrConfig({
        SOTTO_ASR_ENGINE: 'sphinx',
        SOTTO_DATA_DIR: tmp,
        PATH: process.env.PATH ?? '',
      });
      const chosen = (await selectEngine(asr, dataDir)).engine;
      engine = chosen;
      const decoder = createAudioDecoder();

      const jobs = [
        ...refs.map((r) => ({
          name: r.file,
          file: path.join(FIXTURES, r.file),
          text: r.text,
          max: undefined,
        })),
        { name: LONG, file: longWav, text: long.text, max: undefined },
        { name: LONG_SMALL, file: longWav, text: long.text, max: 8 },
      ];
      const directCache = new Map<string, Promise<string[]>>();
      const started = performance.now();
      const results = await inParallel(
        jobs.map((job) => async (): Promise<Measured> => {
          // Chunks (or scanned pieces) are counted from the pipeline's debug line for each: whether
          // it recognises them with whole-chunk calls or through a session is the engine's business.
          let chunks = 0;
          const logger = {
            info: () => undefined,
            debug: (o: unknown) => {
              if (typeof o === 'object' && o !== null && ('chunk' in o || 'piece' in o)) chunks++;
            },
          };
          const pipeline = new PipelineService({
            decoder,
            engine: chosen,
            logger,
            // The small-chunk row keeps the VAD chunks with lead-ins (engines without a scan).
            ...(job.max ? { chunking: { maxSeconds: job.max }, scan: false } : {}),
          });
          // One direct run per distinct file (the two long rows share theirs).
          if (!directCache.has(job.file)) directCache.set(job.file, direct(job.file));
          const [directWords, result] = await Promise.all([
            directCache.get(job.file)!,
            pipeline.run({ file: job.file }),
          ]);
          return {
            name: job.name,
            seconds: pcmOf(job.file).length / RATE,
            direct: wordErrorRate(job.text, directWords),
            sotto: wordErrorRate(
              job.text,
              result.segments.flatMap((s) => s.words.map((w) => w.w)),
            ),
            result,
            chunks,
          };
        }),
        // One file at a time: its direct run and its pipeline run already go side by side, and
        // the pipeline may recognise several chunks at once; more would only queue on 2 cores.
        1,
      );
      for (const m of results) measured.set(m.name, m);

      const header = [
        'file',
        'audio s',
        'WER direct',
        'WER Sotto',
        'Δ points',
        'direct S/D/I',
        'Sotto S/D/I',
      ];
      const rows = results.map((m) => [
        m.name,
        m.seconds.toFixed(1),
        pct(m.direct.wer),
        pct(m.sotto.wer),
        (100 * (m.sotto.wer - m.direct.wer)).toFixed(1),
        detail(m.direct),
        detail(m.sotto),
      ]);
      const single = results.filter((m) => refs.some((r) => r.file === m.name));
      for (const [label, set] of [
        [`pooled: ${refs.length} recordings`, single],
        ['pooled: recordings + long', results.filter((m) => m.name !== LONG_SMALL)],
      ] as const) {
        const d = pooled(set.map((m) => m.direct));
        const s = pooled(set.map((m) => m.sotto));
        rows.push([label, '', pct(d), pct(s), (100 * (s - d)).toFixed(1), '', '']);
      }
      const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
      const line = (cells: string[]): string =>
        `| ${cells.map((c, i) => c.padEnd(widths[i]!)).join(' | ')} |`;
      console.log(
        [
          `real speech: ${chosen.describe()}, pipeline concurrency ${chosen.concurrency ?? 1}, ` +
            `${((performance.now() - started) / 1000).toFixed(1)} s`,
          line(header),
          `|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`,
          ...rows.map(line),
          ...[LONG, LONG_SMALL].map((n) => {
            const m = measured.get(n)!;
            return `${n}: ${m.chunks} chunks`;
          }),
        ].join('\n'),
      );
    }, 180_000);

    it('pooled over the recordings and the long track, Sotto is within 2 WER points of pocketsphinx', () => {
      const set = [...measured.values()].filter((m) => m.name !== LONG_SMALL);
      expect(set).toHaveLength(refs.length + 1);
      expect(pooled(set.map((m) => m.sotto))).toBeLessThanOrEqual(
        pooled(set.map((m) => m.direct)) + TOLERANCE,
      );
    });

    it('on the ≥ 30 s track, recognised in several chunks, Sotto is within 2 WER points', () => {
      for (const name of [LONG, LONG_SMALL]) {
        const m = measured.get(name)!;
        expect(m.seconds).toBeGreaterThanOrEqual(30);
        expect(m.chunks, `${name}: chunks`).toBeGreaterThanOrEqual(name === LONG ? 2 : 5);
        expect(m.sotto.wer, name).toBeLessThanOrEqual(m.direct.wer + TOLERANCE);
      }
    });

    for (const name of [...refs.map((r) => r.file), LONG, LONG_SMALL]) {
      it(`${name}: words are inside the audio, in time order, and the duration is right`, () => {
        const { result, seconds } = measured.get(name)!;
        expect(result.durationSeconds).toBeCloseTo(seconds, 2);
        const words = result.segments.flatMap((s) => s.words);
        expect(words.length).toBeGreaterThan(0);
        let previous = 0;
        for (const w of words) {
          expect(w.start, `"${w.w}" start`).toBeGreaterThanOrEqual(previous);
          expect(w.end, `"${w.w}" end`).toBeGreaterThanOrEqual(w.start);
          expect(w.end, `"${w.w}" end`).toBeLessThanOrEqual(result.durationSeconds);
          previous = w.start;
        }
        for (const s of result.segments) {
          expect(s.start).toBe(s.words[0]!.start);
          expect(s.end).toBeGreaterThanOrEqual(s.words.at(-1)!.end);
        }
      });
    }

    it('on the long track, words sit on the utterances, none in the pauses between them', () => {
      for (const name of [LONG, LONG_SMALL]) {
        const words = measured.get(name)!.result.segments.flatMap((s) => s.words);
        // A word belongs to the utterance containing its midpoint; the edges of a pause may hold
        // a breath or the tail of a word, so only its middle must be free of words.
        const slack = 0.3;
        for (const w of words) {
          const mid = (w.start + w.end) / 2;
          const inside = long.spans.some(([a, b]) => mid >= a - slack && mid <= b + slack);
          expect(inside, `${name}: "${w.w}" at ${mid.toFixed(2)} s is in a pause`).toBe(true);
        }
        for (const [a, b] of long.spans) {
          expect(
            words.some((w) => w.start >= a - slack && w.end <= b + slack),
            `${name}: no word in ${a.toFixed(2)}–${b.toFixed(2)} s`,
          ).toBe(true);
        }
      }
    });
  },
);
