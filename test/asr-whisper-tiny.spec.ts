import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Word } from '../src/domain/transcript.js';
import { EngineFailedError, EngineUnavailableError, SAMPLE_RATE } from '../src/adapters/asr/engine.js';
import { inspectGgmlModel } from '../src/adapters/asr/ggml-header.js';
import { WhisperEngine } from '../src/adapters/asr/whisper.engine.js';
import {
  buildTinyWhisperModel,
  writeTinyWhisperModel,
  type TinyWhisperModel,
} from '../scripts/make-tiny-whisper-model.js';
import { processesMentioning, readPcm16Wav } from './helpers/pcm.js';
import { FIXTURES } from './helpers/speech-fixtures.js';

/**
 * The whisper engine end to end against whisper.cpp itself. Real weights cannot be downloaded
 * here, so scripts/make-tiny-whisper-model.ts writes a structurally real ggml model with random
 * weights (its decoder steered to a fixed nonsense phrase per 2-second window, see the script):
 * the native library loads it, computes mel spectrograms, runs the encoder over every window,
 * decodes, seeks and times tokens, and the engine turns that into words. The text means nothing;
 * what is asserted is the plumbing around it.
 *
 * Cost: the prebuilt linux-x64 whisper.node binary has no AVX code at all, and whisper.cpp's
 * encoder always spans 1500 frames, so each window costs about 2.5–4.5 s on two shared cores
 * whatever the model's size. Audio lengths are chosen to keep the number of windows small, and
 * time limits are derived from the window time measured in the first transcription.
 */
const tmp = mkdtempSync(path.join(os.tmpdir(), 'asr-whisper-tiny-'));
const modelPath = path.join(tmp, 'ggml-tiny-random.en.bin');
let model: TinyWhisperModel;

beforeAll(async () => {
  model = await writeTinyWhisperModel(modelPath, { seed: 7 });
}, 30_000);
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// Real read speech from the repository's fixtures (LibriVox, via pocketsphinx-testdata); the
// tone is kept for a checkout without them (the model hears nothing anyway).
const LIBRIVOX = path.join(FIXTURES, 'librivox-0880.wav');
const speech: Int16Array = existsSync(LIBRIVOX)
  ? readPcm16Wav(LIBRIVOX)
  : new Int16Array(3 * SAMPLE_RATE).map((_, i) => {
      const t = i / SAMPLE_RATE;
      const envelope = Math.max(0, Math.sin(2 * Math.PI * 4 * t));
      const voice = Math.sin(2 * Math.PI * 140 * t) + 0.5 * Math.sin(2 * Math.PI * 280 * t);
      return Math.round(6000 * envelope * voice);
    });
const seconds = (pcm: Int16Array) => pcm.length / SAMPLE_RATE;
/** `speech` repeated to the given length, for calls that must outlast a deadline. */
function longAudio(secs: number): Int16Array {
  const out = new Int16Array(secs * SAMPLE_RATE);
  for (let i = 0; i < out.length; i += speech.length) out.set(speech.subarray(0, out.length - i), i);
  return out;
}
const shortClip = speech.subarray(0, 1.5 * SAMPLE_RATE); // under 2 s: a single window

/** Helper processes started by this test process (not other spec files' helpers). */
const ourHelpers = () => processesMentioning('whisper.host', { childrenOf: process.pid });
async function until(check: () => boolean, ms = 3_000): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await new Promise((r) => setTimeout(r, 25))) {
    if (check()) return true;
  }
  return check();
}

/** The plumbing every transcription must satisfy, whatever the words. */
function expectWellFormed(words: Word[], durationSeconds: number, offsetSeconds = 0): void {
  expect(words.length).toBeGreaterThan(0);
  let previous = offsetSeconds;
  for (const w of words) {
    expect(model.words).toContain(w.w); // decoded through this file's vocabulary, joined into words
    expect(Number.isFinite(w.start) && Number.isFinite(w.end)).toBe(true);
    expect(w.start).toBeGreaterThanOrEqual(previous);
    expect(w.end).toBeGreaterThanOrEqual(w.start);
    expect(w.end).toBeLessThanOrEqual(offsetSeconds + durationSeconds);
    previous = w.start;
  }
}

describe('the tiny whisper model generator', () => {
  it('writes a reproducible file the engine’s header check accepts', async () => {
    const check = await inspectGgmlModel(modelPath);
    expect(check).toMatchObject({
      ok: true,
      header: {
        nVocab: 51864,
        nAudioState: 384,
        nAudioLayer: 1,
        nTextLayer: 1,
        nMels: 80,
        multilingual: false,
      },
    });
    expect(model.bytes).toBeLessThan(20 * 1024 * 1024);
    // Same seed, same bytes: a failure seen once can be reproduced.
    expect(buildTinyWhisperModel({ seed: 7 }).file.equals(readFileSync(modelPath))).toBe(true);
    expect(model.words).toHaveLength(2);
  });
});

describe('whisper engine end to end on the tiny model', () => {
  // One copy of the model: the scheduling below is that of a single context.
  const engine = new WhisperEngine({ modelPath, liveContext: 'off' });
  let windowMs = 4_000; // replaced by the measurement below
  let helperPid: number | undefined;
  let firstLoad: ReturnType<WhisperEngine['load']> | undefined;
  afterAll(() => engine.close());

  it('loads on the CPU and says so', async () => {
    const started = Date.now();
    firstLoad = engine.load();
    const info = await firstLoad;
    console.log(`tiny model loaded in ${Date.now() - started} ms`);
    expect(info.backend).toBe('CPU');
    expect(engine.describe()).toBe('whisper (whisper.cpp, model ggml-tiny-random.en.bin, CPU)');
    expect(ourHelpers()).toHaveLength(1);
    helperPid = ourHelpers()[0];
  });

  it('transcribes speech into timed words across windows, reporting progress up to 1', async () => {
    const progress: number[] = [];
    const started = Date.now();
    const words = await engine.transcribe(speech, { onProgress: (f) => progress.push(f) });
    const elapsed = Date.now() - started;
    const windows = Math.ceil(seconds(speech) / model.windowSeconds);
    windowMs = elapsed / windows;
    console.log(`${seconds(speech)} s in ${elapsed} ms: ${windows} windows, ${Math.round(windowMs)} ms each`);

    expectWellFormed(words, seconds(speech));
    // One phrase per 2-second window: whisper.cpp sought forward through the whole clip.
    expect(words.length).toBe(windows * model.words.length);
    expect(words.at(-1)!.start).toBeGreaterThanOrEqual((windows - 1) * model.windowSeconds);

    expect(progress.length).toBeGreaterThanOrEqual(windows + 1);
    expect(progress[0]).toBe(0);
    expect(progress.at(-1)).toBe(1);
    for (let i = 1; i < progress.length; i++) expect(progress[i]!).toBeGreaterThan(progress[i - 1]!);
  }, 60_000);

  it('reuses the loaded model on the next call (same helper, no second load) and shifts times by the offset', async () => {
    const words = await engine.transcribe(shortClip, { offsetSeconds: 60 });
    expectWellFormed(words, seconds(shortClip), 60);
    expect(words[0]!.start).toBeGreaterThanOrEqual(60);
    // load() is memoised: the same promise means start() — the only sender of 'load' — ran once.
    expect(engine.load()).toBe(firstLoad);
    expect(ourHelpers()).toEqual([helperPid]);
  }, 30_000);

  it('serves the streaming session interface: partials while audio arrives, a final with recording times, one loaded model', async () => {
    const utterance = engine.session({ priority: 'live', group: 'rec-1' }).utterance(30);
    // Fed as live capture would: 0.5 s at a time, asking for text after each.
    const partials: string[] = [];
    for (let at = 0; at < shortClip.length; at += SAMPLE_RATE / 2) {
      utterance.feed(shortClip.subarray(at, at + SAMPLE_RATE / 2));
      partials.push(await utterance.partial());
    }
    // A partial is a whole call over the audio so far: the first comes back with the model's
    // words once that call is done, without blocking the caller meanwhile.
    expect(partials[0]).toBe('');
    let text = partials.at(-1)!;
    for (const end = Date.now() + 4 * windowMs; !text && Date.now() < end;) {
      await new Promise((r) => setTimeout(r, 50));
      text = await utterance.partial();
    }
    expect(text).not.toBe('');
    for (const word of text.split(' ')) expect(model.words).toContain(word);

    const words = await utterance.final();
    expectWellFormed(words, seconds(shortClip), 30);
    expect(words[0]!.start).toBeGreaterThanOrEqual(30);
    expect(engine.load()).toBe(firstLoad);
    expect(ourHelpers()).toEqual([helperPid]);
  }, 60_000);

  it('the one loaded model serves live calls first and takes upload chunks by turns between recordings', async () => {
    // Queued at once while nothing runs: recording A's three chunks, then recording B's one,
    // then a live utterance. A first-come queue would finish them in that order; the live call
    // must instead wait only for the chunk already running, and B must not wait for all of A.
    const finished: string[] = [];
    const call = (name: string, opts: Parameters<WhisperEngine['transcribe']>[1]) =>
      engine.transcribe(shortClip, opts).then((words) => {
        expectWellFormed(words, seconds(shortClip));
        finished.push(name);
      });
    await Promise.all([
      call('A1', { group: 'A' }),
      call('A2', { group: 'A' }),
      call('A3', { group: 'A' }),
      call('B1', { group: 'B' }),
      call('live', { priority: 'live' }),
    ]);
    expect(finished).toEqual(['A1', 'live', 'A2', 'B1', 'A3']);
    expect(ourHelpers()).toEqual([helperPid]);
  }, 60_000);

  it('a call aborted while it waits for its turn leaves the queue without touching the model', async () => {
    const aborter = new AbortController();
    const running = engine.transcribe(shortClip, { group: 'A' });
    const waiting = engine.transcribe(shortClip, { group: 'B', signal: aborter.signal });
    aborter.abort();
    await expect(waiting).rejects.toMatchObject({ name: 'AbortError' });
    expectWellFormed(await running, seconds(shortClip));
    // Aborting a waiting call must not restart the helper (that is only for a running one).
    expect(ourHelpers()).toEqual([helperPid]);
  }, 30_000);
  it('close() ends the helper; the engine loads afresh when used again', async () => {
    await engine.close();
    expect(await until(() => ourHelpers().length === 0)).toBe(true);
    expect(engine.describe()).toMatch(/not loaded yet, CPU requested/);
    await engine.load();
    expect(ourHelpers()).toHaveLength(1);
    expect(ourHelpers()).not.toContain(helperPid);
    await engine.close();
  }, 30_000);

  it('an abort stops a long transcription promptly, and the engine works afterwards', async () => {
    const aborting = new WhisperEngine({ modelPath });
    try {
      await aborting.load();
      const ac = new AbortController();
      let abortedAt = 0;
      const run = aborting.transcribe(longAudio(30), {
        signal: ac.signal,
        onProgress: () => {
          // The first report comes before the first window's encoder; abort in the middle of it.
          if (!abortedAt) {
            abortedAt = -1;
            setTimeout(() => {
              abortedAt = Date.now();
              ac.abort();
            }, 200);
          }
        },
      });
      const err = await run.catch((e: unknown) => e);
      expect(abortedAt).toBeGreaterThan(0);
      expect((err as Error).name).toBe('AbortError');
      expect(Date.now() - abortedAt).toBeLessThan(1_000);
      expect(await until(() => ourHelpers().length === 0)).toBe(true);

      // A fresh helper takes over.
      expectWellFormed(await aborting.transcribe(shortClip), seconds(shortClip));
    } finally {
      await aborting.close();
    }
  }, 60_000);

  it('the watchdog gives up an overrunning call and the next call runs on a fresh helper', async () => {
    // Three windows' time (as measured above, so it scales with the machine's load): a 60-second
    // recording (30 windows) overruns it, a fresh helper's load plus one window does not.
    const limitMs = Math.max(1_000, Math.round(3 * windowMs));
    const guarded = new WhisperEngine({ modelPath, transcribeTimeoutMs: limitMs });
    try {
      await guarded.load();
      const firstHelper = ourHelpers()[0];
      const started = Date.now();
      const err = await guarded.transcribe(longAudio(60)).catch((e: unknown) => e);
      const elapsed = Date.now() - started;
      expect(err).toBeInstanceOf(EngineFailedError);
      expect((err as Error).message).toBe(
        `whisper did not finish within ${Math.round(limitMs / 1000)} s; its helper process was restarted`,
      );
      expect(elapsed).toBeGreaterThanOrEqual(limitMs);
      expect(elapsed).toBeLessThan(limitMs + 1_000);
      expect(await until(() => ourHelpers().length === 0)).toBe(true);

      expectWellFormed(await guarded.transcribe(shortClip), seconds(shortClip));
      expect(ourHelpers()).toHaveLength(1);
      expect(ourHelpers()).not.toContain(firstHelper);
    } finally {
      await guarded.close();
    }
  }, 90_000);
});

describe('the live context: a second copy of the model for live calls', () => {
  /** Resolves once the call has begun computing (its first progress report). */
  const started = () => {
    let mark: () => void = () => undefined;
    const begun = new Promise<void>((r) => (mark = r));
    return { begun, onProgress: () => mark() };
  };

  it('is loaded only when a live call finds the first copy busy, and the live call then finishes before the chunk', async () => {
    const engine = new WhisperEngine({ modelPath });
    try {
      await engine.load();
      expect(engine.describe()).toMatch(/a second context for live calls/); // auto: a small model
      // A live call with nothing else running takes the first copy: no second one is loaded.
      expectWellFormed(await engine.transcribe(shortClip, { priority: 'live' }), seconds(shortClip));
      expect(engine.contexts()).toBe(1);

      const finished: string[] = [];
      const chunk = started();
      const upload = engine
        .transcribe(longAudio(10), { group: 'A', onProgress: chunk.onProgress })
        .then((words) => {
          expectWellFormed(words, 10);
          finished.push('chunk');
        });
      await chunk.begun;
      const live = engine.transcribe(shortClip, { priority: 'live' }).then((words) => {
        expectWellFormed(words, seconds(shortClip));
        finished.push('live');
      });
      await Promise.all([upload, live]);
      // With one copy the live call would wait for all five windows of the chunk.
      expect(finished).toEqual(['live', 'chunk']);
      expect(engine.contexts()).toBe(2);
      expect(ourHelpers()).toHaveLength(1); // both copies in the one helper process
    } finally {
      await engine.close();
    }
  }, 120_000);

  it('aborting a live call beside a running chunk leaves the chunk and the helper alone', async () => {
    const engine = new WhisperEngine({ modelPath, liveContext: 'on' });
    try {
      await engine.load();
      const helper = ourHelpers()[0];
      const chunk = started();
      const upload = engine.transcribe(longAudio(6), { group: 'A', onProgress: chunk.onProgress });
      await chunk.begun;
      const ac = new AbortController();
      const live = started();
      const aborted = engine
        .transcribe(shortClip, { priority: 'live', signal: ac.signal, onProgress: live.onProgress })
        .catch((e: unknown) => e);
      await live.begun;
      ac.abort();
      expect(((await aborted) as Error).name).toBe('AbortError');
      expectWellFormed(await upload, 6);
      expect(ourHelpers()).toEqual([helper]);
      // The next live call still gets an answer (after the dropped one's work ran out).
      expectWellFormed(await engine.transcribe(shortClip, { priority: 'live' }), seconds(shortClip));
      expect(ourHelpers()).toEqual([helper]);
    } finally {
      await engine.close();
    }
  }, 120_000);

  it("'off' keeps one copy: the live call waits for the running chunk", async () => {
    const engine = new WhisperEngine({ modelPath, liveContext: 'off' });
    try {
      await engine.load();
      expect(engine.describe()).not.toMatch(/second context/);
      const finished: string[] = [];
      const chunk = started();
      const upload = engine
        .transcribe(longAudio(4), { group: 'A', onProgress: chunk.onProgress })
        .then(() => {
          finished.push('chunk');
        });
      await chunk.begun;
      const live = engine.transcribe(shortClip, { priority: 'live' }).then(() => {
        finished.push('live');
      });
      await Promise.all([upload, live]);
      expect(finished).toEqual(['chunk', 'live']);
      expect(engine.contexts()).toBe(1);
    } finally {
      await engine.close();
    }
  }, 120_000);
});

describe('damaged copies of the tiny model fail cleanly', () => {
  it('a truncated file is an EngineUnavailableError naming whisper.cpp’s reason; no helper is left', async () => {
    const file = path.join(tmp, 'truncated.bin');
    const bytes = readFileSync(modelPath);
    writeFileSync(file, bytes.subarray(0, Math.floor(bytes.length * 0.6)));
    const err = await new WhisperEngine({ modelPath: file }).transcribe(shortClip).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineUnavailableError);
    expect((err as Error).message).toMatch(
      /whisper cannot load the model .*truncated\.bin: Failed to initialize whisper context.*not all tensors loaded/,
    );
    expect(await until(() => ourHelpers().length === 0)).toBe(true);
  }, 30_000);

  it('a corrupted tensor name is refused the same way', async () => {
    const file = path.join(tmp, 'renamed.bin');
    const bytes = Buffer.from(readFileSync(modelPath));
    const at = bytes.indexOf('decoder.token_embedding.weight');
    bytes.write('decoder.token_embedding.weighs', at, 'latin1');
    writeFileSync(file, bytes);
    const err = await new WhisperEngine({ modelPath: file }).load().catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineUnavailableError);
    expect((err as Error).message).toMatch(/unknown tensor 'decoder\.token_embedding\.weighs'/);
    expect(await until(() => ourHelpers().length === 0)).toBe(true);
  }, 30_000);
});
