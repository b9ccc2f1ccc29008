import { randomBytes } from 'node:crypto';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { EngineUnavailableError } from '../src/adapters/asr/engine.js';
import { WhisperEngine, forkWhisperHost, wordsFromTokens } from '../src/adapters/asr/whisper.engine.js';
import { processesMentioning } from './helpers/pcm.js';

/**
 * The whisper engine's failure handling. No whisper model can be downloaded on this machine, so
 * real recognition is not exercised here (the sphinx spec does that); what is proven: the native
 * package loads, and missing, corrupt and crash-inducing model files end in clear errors while
 * the test process (standing in for the server) carries on.
 */
const require = createRequire(import.meta.url);
const tmp = mkdtempSync(path.join(os.tmpdir(), 'asr-whisper-spec-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const TINY_EN = [51864, 1500, 384, 6, 4, 448, 384, 6, 4, 80, 1];
/** A ggml file whose header is plausible (tiny.en) followed by `rest`. */
function ggmlFile(name: string, hparams: number[], rest: Buffer): string {
  const head = Buffer.alloc(48);
  head.writeUInt32LE(0x67676d6c, 0);
  hparams.forEach((v, i) => head.writeInt32LE(v, 4 + i * 4));
  const file = path.join(tmp, name);
  writeFileSync(file, Buffer.concat([head, rest]));
  return file;
}

const second = new Int16Array(16_000);
const helpers = () => processesMentioning('whisper.host', { childrenOf: process.pid });

describe('whisper.node package', () => {
  it('loads, with the prebuilt native module for this platform', () => {
    const whisper = require('@fugood/whisper.node') as { initWhisper?: unknown };
    expect(typeof whisper.initWhisper).toBe('function');
    const native = require(`@fugood/node-whisper-${process.platform}-${process.arch}`) as {
      WhisperContext?: unknown;
    };
    expect(typeof native.WhisperContext).toBe('function');
  });
});

describe('whisper engine: bad model files give clear errors, never a crash', () => {
  it('a missing model names `sotto models pull`', async () => {
    const engine = new WhisperEngine({ modelPath: path.join(tmp, 'ggml-base.en.bin'), modelName: 'base.en' });
    const err = await engine.transcribe(second).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineUnavailableError);
    expect((err as Error).message).toMatch(/does not exist; run `sotto models pull base.en`/);
    expect(engine.describe()).toMatch(
      /whisper \(whisper.cpp, model base.en, not loaded yet, CPU requested\)/,
    );
  });

  it('random bytes saved as .bin are refused before native code reads them', async () => {
    const file = path.join(tmp, 'random.bin');
    writeFileSync(file, randomBytes(2 * 1024 * 1024));
    const err = await new WhisperEngine({ modelPath: file }).transcribe(second).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineUnavailableError);
    expect((err as Error).message).toMatch(
      /not a ggml model.*point SOTTO_WHISPER_MODEL at a whisper.cpp ggml .bin file/,
    );
    expect(helpers()).toEqual([]);
  });

  it('a truncated download (HTML error page, a few bytes) is refused', async () => {
    const file = path.join(tmp, 'page.bin');
    writeFileSync(file, '<html>Entry not found</html>');
    await expect(new WhisperEngine({ modelPath: file }).load()).rejects.toThrow(/too small to be a model/);
  });

  it('the header whisper.cpp would abort the process on is refused — and it really would abort', async () => {
    const file = ggmlFile('bad-ftype.bin', [...TINY_EN.slice(0, 10), 99], randomBytes(2 * 1024 * 1024));
    await expect(new WhisperEngine({ modelPath: file }).load()).rejects.toThrow(
      /header does not describe a whisper model/,
    );

    // Handed straight to whisper.cpp (in a helper process), the same file kills it with SIGABRT.
    const host = forkWhisperHost();
    let stderr = '';
    host.stderr?.on('data', (d: Buffer) => (stderr += d.toString()));
    const exit = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) =>
      host.on('exit', (code, signal) => resolve({ code, signal })),
    );
    host.send({ type: 'load', modelPath: file, useGpu: false, variant: 'default' });
    expect(await exit).toEqual({ code: null, signal: 'SIGABRT' });
    expect(stderr).toMatch(/GGML_ASSERT/);
  });

  it('a plausible header over garbage fails inside the helper with whisper.cpp’s reason; no helper is left', async () => {
    const file = ggmlFile('garbage.bin', TINY_EN, randomBytes(2 * 1024 * 1024));
    const engine = new WhisperEngine({ modelPath: file, modelName: 'tiny.en' });
    const err = await engine.transcribe(second).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineUnavailableError);
    expect((err as Error).message).toMatch(
      /whisper cannot load the model .*garbage.bin: Failed to initialize whisper context.*run `sotto models pull tiny.en`/,
    );
    await new Promise((r) => setTimeout(r, 200));
    expect(helpers()).toEqual([]);
  });

  it('a helper that dies while loading (a native abort) is a clean error, and the next call starts a new one', async () => {
    const file = ggmlFile('slow.bin', TINY_EN, randomBytes(2 * 1024 * 1024));
    const engine = new WhisperEngine({ modelPath: file });
    const loading = engine.load();
    let pids: number[] = [];
    for (let i = 0; i < 200 && pids.length === 0; i++) {
      await new Promise((r) => setTimeout(r, 10));
      pids = helpers();
    }
    expect(pids).toHaveLength(1);
    process.kill(pids[0]!, 'SIGABRT'); // what a GGML_ASSERT does to the helper
    const err = await loading.catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineUnavailableError);
    expect((err as Error).message).toMatch(/helper process was killed by SIGABRT.*may be corrupt/);

    // Not stuck: the next attempt runs a fresh helper (which then reports the garbage file).
    await expect(engine.load()).rejects.toThrow(/Failed to initialize whisper context/);
  });

  it('a model whose size changed since `models pull` verified it is refused', async () => {
    const file = ggmlFile('ggml-tiny.en.bin', TINY_EN, Buffer.alloc(2 * 1024 * 1024));
    await expect(
      new WhisperEngine({ modelPath: file, modelName: 'tiny.en', expectedBytes: 77_691_713 }).load(),
    ).rejects.toThrow(/changed since it was downloaded .* run `sotto models pull tiny.en --force`/);
  });
});

const cudaLoads = (() => {
  try {
    require(`@fugood/node-whisper-${process.platform}-${process.arch}-cuda`);
    return true;
  } catch {
    return false;
  }
})();

describe.skipIf(cudaLoads)(
  `whisper engine: CUDA requested where it cannot run${cudaLoads ? ' (skipped: this machine has a CUDA runtime)' : ''}`,
  () => {
    it('is an error naming what is missing, not a silent fall-back to the CPU', async () => {
      const file = ggmlFile('cuda.bin', TINY_EN, randomBytes(2 * 1024 * 1024));
      const err = await new WhisperEngine({ modelPath: file, device: 'cuda' })
        .load()
        .catch((e: unknown) => e);
      expect(err).toBeInstanceOf(EngineUnavailableError);
      expect((err as Error).message).toMatch(/CUDA build of whisper cannot be loaded.*SOTTO_ASR_DEVICE=cpu/);
    });
  },
);

describe('wordsFromTokens', () => {
  it('joins token segments into words, keeps punctuation on its word, drops annotations', () => {
    const seg = (text: string, t0: number, t1: number) => ({ text, t0, t1 });
    expect(
      wordsFromTokens([
        seg(' Hello', 0, 400),
        seg(',', 400, 420),
        seg(' Dav', 500, 700),
        seg('id', 700, 900),
        seg('.', 900, 910),
        seg(' [BLANK_AUDIO]', 1000, 2000),
        seg(' -', 2000, 2010),
        seg(' 10', 2100, 2300),
      ]),
    ).toEqual([
      { w: 'Hello,', start: 0, end: 0.42, conf: 1 },
      { w: 'David.', start: 0.5, end: 0.91, conf: 1 },
      { w: '10', start: 2.1, end: 2.3, conf: 1 },
    ]);
  });
});

/**
 * A structurally complete whisper model (tiny.en shapes, one layer each side) whose weights are
 * all zero: whisper.cpp loads it for real, so the load path, the backend report and the helper's
 * life cycle run against the native library. It recognises nothing, and whisper.node 1.1.3 never
 * settles its transcription (a failed or stopped native run leaves the promise pending) — which
 * is exactly the case the engine's watchdog and abort exist for.
 */
function zeroModel(name: string): string {
  const S = 384;
  const V = 51864;
  const parts: Buffer[] = [];
  const i32 = (...v: number[]) => {
    const b = Buffer.alloc(4 * v.length);
    v.forEach((x, i) => b.writeInt32LE(x, i * 4));
    return b;
  };
  parts.push(i32(0x67676d6c, V, 1500, S, 6, 1, 448, S, 6, 1, 80, 1));
  parts.push(i32(80, 201), Buffer.alloc(80 * 201 * 4));
  parts.push(i32(50256));
  for (let t = 0; t < 50256; t++) {
    const w = Buffer.from(` w${t}`);
    parts.push(i32(w.length), w);
  }
  const F32 = 0;
  const F16 = 1;
  const tensor = (tname: string, shape: number[], type: number) => {
    const n = Buffer.from(tname);
    parts.push(i32(shape.length, n.length, type, ...shape), n);
    parts.push(Buffer.alloc(shape.reduce((a, b) => a * b, 1) * (type === F32 ? 4 : 2)));
  };
  const block = (prefix: string, cross: boolean) => {
    tensor(`${prefix}mlp_ln.weight`, [S], F32);
    tensor(`${prefix}mlp_ln.bias`, [S], F32);
    tensor(`${prefix}mlp.0.weight`, [S, 4 * S], F16);
    tensor(`${prefix}mlp.0.bias`, [4 * S], F32);
    tensor(`${prefix}mlp.2.weight`, [4 * S, S], F16);
    tensor(`${prefix}mlp.2.bias`, [S], F32);
    for (const a of cross ? ['attn', 'cross_attn'] : ['attn']) {
      tensor(`${prefix}${a}_ln.weight`, [S], F32);
      tensor(`${prefix}${a}_ln.bias`, [S], F32);
      tensor(`${prefix}${a}.query.weight`, [S, S], F16);
      tensor(`${prefix}${a}.query.bias`, [S], F32);
      tensor(`${prefix}${a}.key.weight`, [S, S], F16);
      tensor(`${prefix}${a}.value.weight`, [S, S], F16);
      tensor(`${prefix}${a}.value.bias`, [S], F32);
      tensor(`${prefix}${a}.out.weight`, [S, S], F16);
      tensor(`${prefix}${a}.out.bias`, [S], F32);
    }
  };
  tensor('encoder.positional_embedding', [S, 1500], F32);
  tensor('encoder.conv1.weight', [3, 80, S], F16);
  tensor('encoder.conv1.bias', [1, S], F32);
  tensor('encoder.conv2.weight', [3, S, S], F16);
  tensor('encoder.conv2.bias', [1, S], F32);
  tensor('encoder.ln_post.weight', [S], F32);
  tensor('encoder.ln_post.bias', [S], F32);
  block('encoder.blocks.0.', false);
  tensor('decoder.positional_embedding', [S, 448], F32);
  tensor('decoder.token_embedding.weight', [S, V], F16);
  tensor('decoder.ln.weight', [S], F32);
  tensor('decoder.ln.bias', [S], F32);
  block('decoder.blocks.0.', true);
  const file = path.join(tmp, name);
  writeFileSync(file, Buffer.concat(parts));
  return file;
}

describe('whisper engine against the native library (zero-weight model)', () => {
  const model = zeroModel('ggml-zero.en.bin');
  const audio = new Int16Array(2 * 16_000).map((_, i) => Math.round(Math.sin(i / 7) * 3000));

  it('loads the model in its helper and reports the CPU backend it really used', async () => {
    const engine = new WhisperEngine({ modelPath: model });
    try {
      const info = await engine.load();
      expect(info.backend).toBe('CPU');
      expect(info.header).toMatchObject({ nVocab: 51864, nAudioState: 384, multilingual: false });
      // A small model: under the default 'auto' the live context is wanted (loaded on first need).
      expect(engine.describe()).toBe(
        'whisper (whisper.cpp, model ggml-zero.en.bin, CPU, a second context for live calls)',
      );
      expect(helpers()).toHaveLength(1);
      // An English-only model refuses other languages instead of transcribing them badly.
      await expect(engine.transcribe(audio, { language: 'de' })).rejects.toThrow(/English-only/);
    } finally {
      await engine.close();
    }
    await new Promise((r) => setTimeout(r, 200));
    expect(helpers()).toEqual([]);
  });

  it('a transcription that never settles is given up by the watchdog; the next call gets a fresh helper', async () => {
    const engine = new WhisperEngine({ modelPath: model, transcribeTimeoutMs: 3_000 });
    try {
      const started = Date.now();
      const err = await engine.transcribe(audio).catch((e: unknown) => e);
      expect((err as Error).message).toBe(
        'whisper did not finish within 3 s; its helper process was restarted',
      );
      expect(Date.now() - started).toBeLessThan(15_000);
      await new Promise((r) => setTimeout(r, 200));
      expect(helpers()).toEqual([]);
      expect((await engine.load()).backend).toBe('CPU');
    } finally {
      await engine.close();
    }
  });

  it('aborting a running transcription kills the helper promptly', async () => {
    const engine = new WhisperEngine({ modelPath: model });
    try {
      await engine.load();
      const ac = new AbortController();
      const run = engine.transcribe(audio, { signal: ac.signal });
      await new Promise((r) => setTimeout(r, 300));
      const at = Date.now();
      ac.abort();
      const err = await run.catch((e: unknown) => e);
      expect((err as Error).name).toBe('AbortError');
      expect(Date.now() - at).toBeLessThan(1_000);
      await new Promise((r) => setTimeout(r, 200));
      expect(helpers()).toEqual([]);
    } finally {
      await engine.close();
    }
  });
});
