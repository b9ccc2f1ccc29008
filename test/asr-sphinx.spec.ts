import { mkdtempSync, readdirSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { wordErrorRate } from '../src/domain/wer.js';
import { EngineFailedError, EngineUnavailableError, SAMPLE_RATE } from '../src/adapters/asr/engine.js';
import { SphinxEngine, parseSphinxOutput, sphinxAvailability } from '../src/adapters/asr/sphinx.engine.js';
import { corpusEntry, corpusFile, corpusIds, hasCorpus, noCorpusReason } from './helpers/corpus.js';
import { processesMentioning, readPcm16Wav } from './helpers/pcm.js';

/**
 * The sphinx engine against the real Debian pocketsphinx on the shared corpus: accuracy (WER
 * against the script each conversation was synthesised from), timing sanity, abort and clean-up.
 */
const installed = sphinxAvailability(process.env.PATH ?? '');
const tmpRoot = mkdtempSync(path.join(os.tmpdir(), 'asr-sphinx-spec-'));
afterAll(() => rmSync(tmpRoot, { recursive: true, force: true }));

function scratchDir(name: string): string {
  const dir = path.join(tmpRoot, name);
  rmSync(dir, { recursive: true, force: true });
  return mkdtempSync(dir);
}

describe('parseSphinxOutput', () => {
  it('keeps words with times and confidences, drops fillers, alternates and hypothesis lines', () => {
    const out = [
      'this is a test of the line',
      '<s> 0.380 0.650 0.999300',
      'this 0.660 0.900 0.690774',
      '<sil> 1.760 1.800 0.727576',
      '[NOISE] 1.800 1.900 0.5',
      '++GARBAGE++ 1.900 1.950 0.5',
      'monday(2) 2.780 3.300 0.756818',
      '</s> 8.540 9.000 1.000000',
      'four words without numbers',
    ].join('\n');
    expect(parseSphinxOutput(out)).toEqual([
      { w: 'this', start: 0.66, end: 0.9, conf: 0.690774 },
      { w: 'monday', start: 2.78, end: 3.3, conf: 0.756818 },
    ]);
  });
});

describe.skipIf(!installed.available)(
  `sphinx engine: failures and abort${installed.available ? '' : ` (skipped: ${installed.reason})`}`,
  () => {
    const shortPcm = () => {
      // 2 s of quiet noise: enough for pocketsphinx to run, nothing to recognise.
      const pcm = new Int16Array(2 * SAMPLE_RATE);
      for (let i = 0; i < pcm.length; i++) pcm[i] = Math.round(Math.sin(i) * 30);
      return pcm;
    };

    it('a missing binary is a clear EngineUnavailableError naming the install command', async () => {
      const tmpDir = scratchDir('missing-binary');
      const engine = new SphinxEngine({
        binary: '/nonexistent/bin/pocketsphinx_continuous',
        tmpDir,
        helper: false,
      });
      const err = await engine.transcribe(shortPcm()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EngineUnavailableError);
      expect((err as Error).message).toMatch(/not found.*apt-get install pocketsphinx pocketsphinx-en-us/);
      expect(readdirSync(tmpDir)).toEqual([]);
      expect(
        sphinxAvailability(process.env.PATH ?? '', { binary: '/nonexistent/bin/pocketsphinx_continuous' }),
      ).toMatchObject({
        available: false,
        reason: expect.stringMatching(/not installed/),
      });
    });

    it('a missing model is a clear EngineUnavailableError', async () => {
      const engine = new SphinxEngine({ modelDir: '/nonexistent/model' });
      await expect(engine.transcribe(shortPcm())).rejects.toThrow(
        /en-us model is missing.*apt-get install pocketsphinx pocketsphinx-en-us/,
      );
      expect(sphinxAvailability(process.env.PATH ?? '', { modelDir: '/nonexistent/model' }).available).toBe(
        false,
      );
    });

    it('a binary that fails is an EngineFailedError, and the temporary WAV is removed', async () => {
      const tmpDir = scratchDir('failing-binary');
      const engine = new SphinxEngine({ binary: '/bin/false', tmpDir, helper: false });
      const err = await engine.transcribe(shortPcm()).catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EngineFailedError);
      expect((err as Error).message).toMatch(/exit status 1/);
      expect(readdirSync(tmpDir)).toEqual([]);
    });

    it('refuses languages its model does not have', async () => {
      await expect(new SphinxEngine().transcribe(shortPcm(), { language: 'de' })).rejects.toThrow(
        /only has an English/,
      );
    });

    it('an already aborted signal rejects without starting anything', async () => {
      const tmpDir = scratchDir('pre-aborted');
      const ac = new AbortController();
      ac.abort();
      const err = await new SphinxEngine({ tmpDir })
        .transcribe(shortPcm(), { signal: ac.signal })
        .catch((e: unknown) => e);
      expect((err as Error).name).toBe('AbortError');
      expect(readdirSync(tmpDir)).toEqual([]);
    });

    it('silence gives no words', async () => {
      const words = await new SphinxEngine().transcribe(new Int16Array(SAMPLE_RATE));
      expect(words).toEqual([]);
    });
  },
);

const corpusReady = hasCorpus && installed.available;
const skipReason = !hasCorpus ? noCorpusReason : (installed.reason ?? '');

describe.skipIf(!corpusReady)(
  `sphinx engine on the shared corpus${corpusReady ? '' : ` (skipped: ${skipReason})`}`,
  () => {
    const ids = corpusIds();
    const measured: Record<string, string> = {};
    afterAll(() => console.log(`sphinx WER per corpus file: ${JSON.stringify(measured)}`));

    for (const id of ids) {
      it(`${id}: WER below 0.3, words time-ordered and inside the audio`, { timeout: 60_000 }, async () => {
        const entry = corpusEntry(id);
        const pcm = readPcm16Wav(corpusFile(id, 'wav'));
        const duration = pcm.length / SAMPLE_RATE;
        expect(Math.abs(duration - entry.duration)).toBeLessThan(0.05);

        const words = await new SphinxEngine().transcribe(pcm, { language: 'en' });
        const r = wordErrorRate(
          entry.text,
          words.map((w) => w.w),
        );
        measured[id] =
          `${(r.wer * 100).toFixed(1)}% (S${r.substitutions} D${r.deletions} I${r.insertions} / ${r.referenceWords})`;
        console.log(`sphinx ${id}: WER ${measured[id]}`);
        expect(r.wer).toBeLessThan(0.3);

        expect(words.length).toBeGreaterThan(r.referenceWords * 0.7);
        for (const [i, w] of words.entries()) {
          expect(w.w).toMatch(/^[a-z0-9'.-]+$/);
          expect(w.start).toBeGreaterThanOrEqual(0);
          expect(w.end).toBeGreaterThanOrEqual(w.start);
          expect(w.end).toBeLessThanOrEqual(duration);
          expect(w.conf).toBeGreaterThanOrEqual(0);
          expect(w.conf).toBeLessThanOrEqual(1);
          if (i > 0) expect(w.start).toBeGreaterThanOrEqual(words[i - 1]!.end);
        }
        // Every word lies inside a scripted turn (0.3 s of slack for the recogniser's boundaries).
        for (const w of words) {
          const inside = entry.turns.some((t) => w.start >= t.start - 0.3 && w.end <= t.end + 0.3);
          expect(inside, `${w.w} ${w.start}-${w.end} outside every turn`).toBe(true);
        }
      });
    }

    it('offsetSeconds shifts every word to recording time', { timeout: 30_000 }, async () => {
      const id = ids.find((i) => corpusEntry(i).turns.length === 1) ?? ids[0]!;
      const slice = readPcm16Wav(corpusFile(id, 'wav')).subarray(0, 4 * SAMPLE_RATE);
      const engine = new SphinxEngine();
      const [plain, shifted] = [
        await engine.transcribe(slice),
        await engine.transcribe(slice, { offsetSeconds: 100 }),
      ];
      expect(plain.length).toBeGreaterThan(2);
      expect(shifted.map((w) => w.w)).toEqual(plain.map((w) => w.w));
      for (const [i, w] of shifted.entries()) expect(w.start).toBeCloseTo(plain[i]!.start + 100, 3);
    });

    it(
      'aborting kills pocketsphinx promptly and leaves no process or temporary file',
      { timeout: 30_000 },
      async () => {
        const tmpDir = scratchDir('abort');
        const longest = ids.map((i) => corpusEntry(i)).sort((a, b) => b.duration - a.duration)[0]!;
        const pcm = readPcm16Wav(corpusFile(longest.id, 'wav'));
        const ac = new AbortController();
        // Cold mode (one pocketsphinx_continuous per call); the warm helper's abort is in asr-sphinx-warm.
        const run = new SphinxEngine({ tmpDir, helper: false }).transcribe(pcm, { signal: ac.signal });
        // Wait until the subprocess is really running on our temporary file.
        const deadline = Date.now() + 5_000;
        while (processesMentioning(tmpDir).length === 0 && Date.now() < deadline) {
          await new Promise((r) => setTimeout(r, 20));
        }
        expect(processesMentioning(tmpDir).length).toBe(1);
        const abortedAt = Date.now();
        ac.abort();
        const err = await run.catch((e: unknown) => e);
        const took = Date.now() - abortedAt;
        expect((err as Error).name).toBe('AbortError');
        expect(took).toBeLessThan(1_000);
        expect(processesMentioning(tmpDir)).toEqual([]);
        expect(readdirSync(tmpDir)).toEqual([]);
      },
    );
  },
);
