import { execFileSync } from 'node:child_process';
import { getPriority } from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { planPieces } from '../src/audio/pieces.js';
import { concatPcm } from '../src/audio/pcm-chunker.js';
import { wordErrorRate } from '../src/domain/wer.js';
import { EngineFailedError, SAMPLE_RATE } from '../src/adapters/asr/engine.js';
import { SphinxEngine, sphinxAvailability, sphinxHelper } from '../src/adapters/asr/sphinx.engine.js';
import { readPcm16Wav } from './helpers/pcm.js';
import { FIXTURES, readReferences } from './helpers/speech-fixtures.js';

/**
 * The warm pocketsphinx engine (native/sphinx-host.c behind a decoder pool) with the real
 * recognizer on real human speech (test/fixtures/speech, from Debian's pocketsphinx-testdata):
 * streaming sessions with partials and finals, word timings, warm reuse, abort, and isolation of
 * a crashed or hung decoder from the other sessions.
 */
const installed = sphinxAvailability(process.env.PATH ?? '');
const helper = sphinxHelper();
const skip = !installed.available
  ? installed.reason
  : !helper
    ? 'the warm helper is not built (apt-get install libpocketsphinx-dev pkg-config; npm install)'
    : undefined;

const references = readReferences().filter((r) => r.kind === 'read');
const audio = (file: string) => readPcm16Wav(path.join(FIXTURES, file));
const longest = [...references].sort((a, b) => audio(b.file).length - audio(a.file).length)[0]!;

/** pocketsphinx_continuous on the same file: the engine alone, no Sotto code. */
function cliWords(file: string): string[] {
  const model = '/usr/share/pocketsphinx/model/en-us';
  const out = execFileSync(
    'pocketsphinx_continuous',
    ['-infile', path.join(FIXTURES, file), '-hmm', `${model}/en-us`, '-lm', `${model}/en-us.lm.bin`],
    { stdio: ['ignore', 'pipe', 'ignore'], encoding: 'utf8' },
  );
  // Without -time, stdout is one hypothesis line per utterance.
  return out.split(/\s+/).filter(Boolean);
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe.skipIf(skip !== undefined)(`warm pocketsphinx engine${skip ? ` (skipped: ${skip})` : ''}`, () => {
  const engines: SphinxEngine[] = [];
  const engine = (opts: ConstructorParameters<typeof SphinxEngine>[0] = {}) => {
    const e = new SphinxEngine({ concurrency: 2, ...opts });
    engines.push(e);
    return e;
  };
  afterAll(async () => Promise.all(engines.map((e) => e.close())));

  it(
    'gives the command line’s words on real read speech, with sane timings',
    { timeout: 60_000 },
    async () => {
      const e = engine();
      let cliErrors = 0;
      let ourErrors = 0;
      let refWords = 0;
      for (const ref of references) {
        const pcm = audio(ref.file);
        const words = await e.transcribe(pcm);
        const ours = wordErrorRate(
          ref.text,
          words.map((w) => w.w),
        );
        const cli = wordErrorRate(ref.text, cliWords(ref.file));
        ourErrors += ours.wer * ours.referenceWords;
        cliErrors += cli.wer * cli.referenceWords;
        refWords += ours.referenceWords;
        const duration = pcm.length / SAMPLE_RATE;
        for (const [i, w] of words.entries()) {
          expect(w.start).toBeGreaterThanOrEqual(0);
          expect(w.end).toBeGreaterThanOrEqual(w.start);
          expect(w.end).toBeLessThanOrEqual(duration);
          if (i > 0) expect(w.start).toBeGreaterThanOrEqual(words[i - 1]!.start);
        }
      }
      const [ours, cli] = [ourErrors / refWords, cliErrors / refWords];
      console.log(
        `read speech WER: warm engine ${(ours * 100).toFixed(1)}%, pocketsphinx_continuous ${(cli * 100).toFixed(1)}%`,
      );
      expect(ours).toBeLessThanOrEqual(cli + 0.02);
      expect(ours).toBeLessThan(0.5);
    },
  );

  it(
    'streams: partials grow while audio arrives, the final has the words with recording times',
    { timeout: 60_000 },
    async () => {
      const e = engine();
      await e.warm();
      const pcm = audio(longest.file);
      const session = e.session!({ priority: 'live' });
      const utterance = session.utterance(100);
      const partials: string[] = [];
      const frame = SAMPLE_RATE / 10;
      for (let at = 0; at < pcm.length; at += frame) {
        utterance.feed(pcm.subarray(at, at + frame));
        // Half a second of audio at 4× real time between partials.
        if ((at / frame) % 5 === 4) {
          await sleep(125);
          partials.push(await utterance.partial());
        }
      }
      const words = await utterance.final();
      const text = words.map((w) => w.w);
      expect(partials.filter(Boolean).length).toBeGreaterThanOrEqual(3);
      // Each partial's words are (mostly) a beginning of the final sentence: it grows, it is revised.
      const last = partials.at(-1)!.split(' ');
      expect(last.filter((w) => text.includes(w)).length / last.length).toBeGreaterThan(0.7);
      expect(partials.at(-1)!.split(' ').length).toBeGreaterThan(partials.find(Boolean)!.split(' ').length);
      expect(wordErrorRate(longest.text, text).wer).toBeLessThan(0.5);
      expect(words[0]!.start).toBeGreaterThanOrEqual(100);
      expect(words.at(-1)!.end).toBeLessThanOrEqual(100 + pcm.length / SAMPLE_RATE);
    },
  );

  it('stays warm: many calls, one decoder, no model loaded again', { timeout: 60_000 }, async () => {
    const e = engine({ concurrency: 1 });
    const pcm = audio(references[1]!.file);
    const first = await e.transcribe(pcm);
    for (let i = 0; i < 4; i++)
      expect((await e.transcribe(pcm)).map((w) => w.w)).toEqual(first.map((w) => w.w));
    expect(e.stats()).toMatchObject({ created: 1, decoders: 1, busy: 0 });
  });

  it(
    'scans: pieces cut at its utterance ends and started from its state give one pass’s words',
    { timeout: 90_000 },
    async () => {
      const e = engine({ concurrency: 2 });
      // Every read recording back to back, a second of silence between them: ~30 s of speech.
      const gap = new Int16Array(SAMPLE_RATE);
      const parts = references.flatMap((r) => [audio(r.file), gap]);
      const pcm = concatPcm(parts);

      const boundaries = (await e.scan(pcm, {}))!;
      expect(boundaries.length).toBeGreaterThanOrEqual(references.length - 1);
      for (const [i, b] of boundaries.entries()) {
        expect(b.sample).toBeGreaterThan(i > 0 ? boundaries[i - 1]!.sample : 0);
        expect(b.sample).toBeLessThanOrEqual(pcm.length);
        expect(b.state.engine).toBe('sphinx');
        // Mean, running sum and frame count of the 13 cepstra (after a first utterance, frames).
        expect(b.state.data).toHaveLength(27);
        expect(b.state.data.every(Number.isFinite)).toBe(true);
        expect(b.state.data[26]).toBeGreaterThan(0);
      }
      // A scan recognises nothing: the engine's recognised-audio counter does not move.
      expect(e.stats()?.recognisedSeconds ?? 0).toBe(0);
      // Reported as it goes (onBoundaries, in several reports): the same ends and states, each once.
      const reports: number[][] = [];
      const streamed = (await e.scan(pcm, { onBoundaries: (b) => reports.push(b.map((x) => x.sample)) }))!;
      expect(streamed.map((b) => b.sample)).toEqual(boundaries.map((b) => b.sample));
      expect(streamed.map((b) => [...b.state.data])).toEqual(boundaries.map((b) => [...b.state.data]));
      expect(reports.flat()).toEqual(boundaries.map((b) => b.sample));
      expect(reports.length).toBeGreaterThan(1);

      const onePass = (await e.transcribe(pcm)).map((w) => w.w);
      const pieces = planPieces(boundaries, pcm.length, {
        parallel: 2,
        sampleRate: SAMPLE_RATE,
        minSeconds: 1,
      });
      expect(pieces.length).toBeGreaterThanOrEqual(4);
      const recognisePieces = (resume: boolean) =>
        Promise.all(
          pieces.map(async (piece) => {
            const u = e.session!({
              priority: 'batch',
              ...(resume && piece.resume ? { resume: piece.resume } : {}),
            }).utterance(piece.start / SAMPLE_RATE);
            u.feed(pcm.subarray(piece.start, piece.end));
            return u.final();
          }),
        ).then((found) =>
          found
            .flat()
            .sort((a, b) => a.start - b.start)
            .map((w) => w.w),
        );
      const resumed = await recognisePieces(true);
      const differences = wordErrorRate(onePass.join(' '), resumed).wer;
      // The same pieces each started from the model's initial state instead (what a decoder
      // without the scan's state would do): the voice's adaptation is what keeps the words.
      const cold = wordErrorRate(onePass.join(' '), await recognisePieces(false)).wer;
      console.log(
        `${pieces.length} pieces from ${boundaries.length} utterance ends: ${(100 * differences).toFixed(1)}% of one pass’s words differ (${(100 * cold).toFixed(1)}% when started cold)`,
      );
      expect(differences).toBeLessThanOrEqual(0.02);
      expect(cold).toBeGreaterThan(differences);

      // Silence has no utterance to end.
      expect(await e.scan(new Int16Array(5 * SAMPLE_RATE), {})).toEqual([]);
    },
  );

  it(
    'upload decoders run niced, the live decoder at the server’s priority, as the kernel sees them',
    { timeout: 60_000 },
    async () => {
      const e = engine({ concurrency: 2 });
      await e.warm(); // the live decoder and two for uploads
      const niceness = () => e.helperPids().idle.map((pid) => getPriority(pid) - getPriority());
      expect(niceness().sort((x, y) => x - y)).toEqual([0, 10, 10]);
      // Both upload decoders busy: a live utterance runs on the un-niced one, at once.
      const long = audio(longest.file);
      const uploads = [e.transcribe(long), e.transcribe(long)];
      const live = e.session!({ priority: 'live' }).utterance(0);
      live.feed(audio(references[1]!.file));
      for (let i = 0; i < 200 && e.helperPids().busy.length < 3; i++) await sleep(10);
      const busy = e.helperPids().busy.map((pid) => getPriority(pid) - getPriority());
      expect(busy.sort((x, y) => x - y)).toEqual([0, 10, 10]);
      expect((await live.final()).length).toBeGreaterThan(3);
      await Promise.all(uploads);
      expect(e.stats()?.created).toBe(3);
    },
  );

  it('a voice’s adaptation travels with its session, not with the decoder', { timeout: 60_000 }, async () => {
    const e = engine({ concurrency: 1 });
    const [a, b] = [references[0]!, references[2]!];
    // The same utterance after a different voice's audio on the same decoder gives the same words
    // as on a fresh one: each session starts from its own cepstral mean.
    const fresh = await e.transcribe(audio(b.file));
    const other = e.session!({ priority: 'batch' }).utterance(0);
    other.feed(audio(a.file));
    await other.final();
    expect((await e.transcribe(audio(b.file))).map((w) => w.w)).toEqual(fresh.map((w) => w.w));
    expect(e.stats()?.created).toBe(1);
  });

  it(
    'abort ends the utterance at once and the engine goes on with a fresh decoder',
    { timeout: 60_000 },
    async () => {
      const e = engine({ concurrency: 1 });
      await e.warm();
      const ac = new AbortController();
      const long = new Int16Array(SAMPLE_RATE * 120);
      const base = audio(longest.file);
      for (let at = 0; at + base.length <= long.length; at += base.length) long.set(base, at);
      const run = e.transcribe(long, { signal: ac.signal });
      await sleep(200);
      const t0 = performance.now();
      ac.abort();
      const err = await run.catch((x: unknown) => x);
      expect((err as Error).name).toBe('AbortError');
      expect(performance.now() - t0).toBeLessThan(1000);
      expect((await e.transcribe(audio(references[1]!.file))).length).toBeGreaterThan(3);
    },
  );

  it(
    'a decoder that crashes fails its own session only; the others finish and the pool heals',
    { timeout: 60_000 },
    async () => {
      const e = engine({ concurrency: 2 });
      await e.warm();
      const pcm = audio(longest.file);
      const a = e.session!({ priority: 'batch', group: 'a' }).utterance(0);
      const b = e.session!({ priority: 'batch', group: 'b' }).utterance(0);
      a.feed(pcm);
      b.feed(pcm);
      for (let i = 0; i < 100 && e.helperPids().busy.length < 2; i++) await sleep(10);
      const busy = e.helperPids().busy;
      expect(busy).toHaveLength(2);
      process.kill(busy[0]!, 'SIGKILL');
      const results = await Promise.allSettled([a.final(), b.final()]);
      const failed = results.filter((r) => r.status === 'rejected');
      const ok = results.filter((r) => r.status === 'fulfilled');
      expect(failed).toHaveLength(1);
      expect((failed[0] as PromiseRejectedResult).reason).toBeInstanceOf(EngineFailedError);
      expect(String((failed[0] as PromiseRejectedResult).reason)).toMatch(/killed by SIGKILL/);
      expect(
        wordErrorRate(
          longest.text,
          (ok[0] as PromiseFulfilledResult<{ w: string }[]>).value.map((w) => w.w),
        ).wer,
      ).toBeLessThan(0.5);
      // The next requests get a new decoder for the dead one.
      const again = await Promise.all([e.transcribe(pcm), e.transcribe(pcm)]);
      expect(again.every((w) => w.length > 3)).toBe(true);
    },
  );

  it(
    'a hung decoder is killed by its watchdog; other sessions are untouched',
    { timeout: 60_000 },
    async () => {
      // Short enough to wait for, long enough that the healthy decoder's real work (the same
      // audio) never trips it on a loaded machine: the two share these settings.
      const watchdog = { replyTimeoutMs: 4000, perAudioSecondMs: 500 };
      const e = engine({ concurrency: 2, ...watchdog });
      await e.warm();
      const pcm = audio(references[1]!.file);
      const limit = watchdog.replyTimeoutMs + (pcm.length / SAMPLE_RATE) * watchdog.perAudioSecondMs;
      const a = e.session!({ priority: 'batch', group: 'a' }).utterance(0);
      for (let i = 0; i < 100 && e.helperPids().busy.length === 0; i++) await sleep(10);
      const [pid] = e.helperPids().busy;
      if (pid === undefined) throw new Error('no decoder lent to the session');
      process.kill(pid, 'SIGSTOP'); // alive but answering nothing: a hang, as a native loop would be
      a.feed(pcm);
      const t0 = performance.now();
      const hung = a.final().catch((x: unknown) => x);
      const other = await e.transcribe(pcm);
      expect(other.length).toBeGreaterThan(3);
      const err = await hung;
      expect(err).toBeInstanceOf(EngineFailedError);
      expect(String(err)).toMatch(/hung/);
      // Killed by its watchdog, within the limit (and scheduling slack), not by anything later.
      expect(performance.now() - t0).toBeLessThan(limit + 2000);
      // Really gone (killed and reaped), not left stopped.
      const gone = () => {
        try {
          process.kill(pid, 0);
          return false;
        } catch {
          return true;
        }
      };
      for (let i = 0; i < 50 && !gone(); i++) await sleep(20);
      expect(gone()).toBe(true);
    },
  );
});
