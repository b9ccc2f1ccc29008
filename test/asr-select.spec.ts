import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { afterAll, describe, expect, it } from 'vitest';
import { ConfigError, loadAsrConfig } from '../src/config/config.js';
import { EngineUnavailableError } from '../src/adapters/asr/engine.js';
import { selectEngine, type EngineSettings } from '../src/adapters/asr/select-engine.js';
import { sphinxAvailability } from '../src/adapters/asr/sphinx.engine.js';

/** SOTTO_ASR_ENGINE resolution: `auto`'s order, explicit choices, and the message when nothing is installed. */
const tmp = mkdtempSync(path.join(os.tmpdir(), 'asr-select-spec-'));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

const settings = (over: Partial<EngineSettings> = {}): EngineSettings => ({
  engine: 'auto',
  device: 'cpu',
  whisperModel: 'base.en',
  openai: { baseUrl: undefined, apiKey: undefined, model: 'whisper-1', timeoutMs: 1000 },
  searchPath: process.env.PATH ?? '',
  ...over,
});
const noSphinx = { sphinx: { binary: '/nonexistent/pocketsphinx_continuous' } };
const installed = sphinxAvailability(process.env.PATH ?? '');

function dataDir(name: string, withModel: boolean): string {
  const dir = path.join(tmp, name);
  mkdirSync(path.join(dir, 'models'), { recursive: true });
  if (withModel) writeFileSync(path.join(dir, 'models', 'ggml-base.en.bin'), 'x');
  return dir;
}

describe('selectEngine', () => {
  it('auto picks whisper when the configured model is installed', async () => {
    const choice = await selectEngine(settings(), dataDir('with-model', true), noSphinx);
    expect(choice.engine.id).toBe('whisper');
    expect(choice.reason).toMatch(/whisper model base.en is installed/);
  });

  it.skipIf(!installed.available)('auto falls back to pocketsphinx without a whisper model', async () => {
    const choice = await selectEngine(settings(), dataDir('no-model', false));
    expect(choice.engine.id).toBe('sphinx');
    expect(choice.reason).toMatch(/pocketsphinx is installed/);
  });

  it('auto with nothing installed tells the user both ways to get an engine', async () => {
    const err = await selectEngine(settings(), dataDir('nothing', false), noSphinx).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(EngineUnavailableError);
    expect((err as Error).message).toMatch(/sotto models pull base.en/);
    expect((err as Error).message).toMatch(/apt-get install pocketsphinx pocketsphinx-en-us/);
  });

  it('an explicit engine that is not installed is an error, not a substitute', async () => {
    await expect(selectEngine(settings({ engine: 'sphinx' }), dataDir('x1', true), noSphinx)).rejects.toThrow(
      /SOTTO_ASR_ENGINE=sphinx, but pocketsphinx is not installed/,
    );
    // whisper without its model: chosen, and the first use explains what is missing.
    const { engine } = await selectEngine(settings({ engine: 'whisper' }), dataDir('x2', false));
    await expect(engine.transcribe(new Int16Array(16))).rejects.toThrow(/sotto models pull base.en/);
  });

  it('openai needs a base URL and then talks to it', async () => {
    await expect(selectEngine(settings({ engine: 'openai' }), tmp)).rejects.toThrow(/SOTTO_OPENAI_BASE_URL/);
    const { engine } = await selectEngine(
      settings({
        engine: 'openai',
        openai: { baseUrl: 'http://10.0.0.5:8000/v1', apiKey: 'k', model: 'm', timeoutMs: 5 },
      }),
      tmp,
    );
    expect(engine.id).toBe('openai');
    expect(engine.describe()).toBe(
      'openai-compatible (http://10.0.0.5:8000/v1/audio/transcriptions, model m)',
    );
  });
});

describe('ASR configuration', () => {
  it('defaults: auto, cpu, base.en, whisper-1', () => {
    expect(loadAsrConfig({ SOTTO_DATA_DIR: tmp })).toEqual({
      engine: 'auto',
      device: 'cpu',
      whisperModel: 'base.en',
      whisperLiveContext: 'auto',
      concurrency: undefined,
      openai: { baseUrl: undefined, apiKey: undefined, model: 'whisper-1', timeoutMs: 600_000 },
      searchPath: '',
      dataDir: tmp,
    });
  });

  it('reads every variable', () => {
    const asr = loadAsrConfig({
      SOTTO_DATA_DIR: tmp,
      SOTTO_ASR_ENGINE: 'openai',
      SOTTO_ASR_DEVICE: 'cuda',
      SOTTO_WHISPER_MODEL: '/opt/models/ggml-large-v3-turbo-q5_0.bin',
      SOTTO_WHISPER_LIVE_CONTEXT: 'off',
      SOTTO_OPENAI_BASE_URL: 'https://gpu.example.internal/v1',
      SOTTO_OPENAI_API_KEY: 'sk-x',
      SOTTO_OPENAI_MODEL: 'Systran/faster-whisper-large-v3',
      SOTTO_OPENAI_TIMEOUT_SECONDS: '120',
      PATH: '/opt/sphinx/bin:/usr/bin',
    });
    expect(asr).toMatchObject({
      engine: 'openai',
      device: 'cuda',
      whisperModel: '/opt/models/ggml-large-v3-turbo-q5_0.bin',
      whisperLiveContext: 'off',
      openai: {
        baseUrl: 'https://gpu.example.internal/v1',
        apiKey: 'sk-x',
        model: 'Systran/faster-whisper-large-v3',
        timeoutMs: 120_000,
      },
      searchPath: '/opt/sphinx/bin:/usr/bin',
    });
  });

  it('names every bad variable', () => {
    const err = (() => {
      try {
        loadAsrConfig({
          SOTTO_ASR_ENGINE: 'kaldi',
          SOTTO_ASR_DEVICE: 'tpu',
          SOTTO_WHISPER_MODEL: '../../etc/passwd',
          SOTTO_OPENAI_BASE_URL: 'ftp://x',
        });
      } catch (e) {
        return e;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    const text = (err as ConfigError).problems.join('\n');
    for (const v of [
      'SOTTO_ASR_ENGINE',
      'SOTTO_ASR_DEVICE',
      'SOTTO_WHISPER_MODEL',
      'SOTTO_OPENAI_BASE_URL',
    ]) {
      expect(text).toContain(v);
    }
    expect(() => loadAsrConfig({ SOTTO_ASR_ENGINE: 'openai' })).toThrow(/SOTTO_OPENAI_BASE_URL: required/);
  });
});
