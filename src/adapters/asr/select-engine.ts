import { existsSync } from 'node:fs';
import path from 'node:path';
import { ModelStore, resolveWhisperModel } from '../storage/model.adapter.js';
import { EngineUnavailableError, type AsrEngine } from './engine.js';
import { OpenAiEngine } from './openai.engine.js';
import {
  SPHINX_INSTALL_HINT,
  SphinxEngine,
  sphinxAvailability,
  type SphinxOptions,
} from './sphinx.engine.js';
import { WhisperEngine } from './whisper.engine.js';

/**
 * SOTTO_ASR_ENGINE → an engine. `auto` prefers whisper when its model is installed (far more
 * accurate), then the distribution's pocketsphinx, and otherwise explains both ways to get one.
 * An explicitly chosen engine that is not installed is an error, never a silent substitute.
 */
/** The settings this needs (config's EngineSettings has this shape). */
export interface EngineSettings {
  engine: 'auto' | 'whisper' | 'sphinx' | 'openai';
  device: 'cpu' | 'cuda';
  concurrency?: number | undefined;
  whisperModel: string;
  /** See WhisperEngineOptions.liveContext (default auto). */
  whisperLiveContext?: 'auto' | 'on' | 'off';
  openai: { baseUrl: string | undefined; apiKey: string | undefined; model: string; timeoutMs: number };
  /** PATH, where pocketsphinx is looked for. */
  searchPath: string;
}

export interface EngineChoice {
  engine: AsrEngine;
  /** Why this engine (for the start-up log line). */
  reason: string;
}

export interface SelectEngineDeps {
  /** Overrides for tests (a missing binary, another model folder). */
  sphinx?: SphinxOptions;
  /**
   * Where engines that read files write their temporary audio: the data dir's `tmp/asr` on a
   * server, the worker's own folder on a remote worker (never the OS temp dir, which nothing sweeps).
   */
  tmpDir?: string;
  /** Wraps the chosen engine (tests: a replay of the real recognizer's recorded answers). */
  wrap?: (engine: AsrEngine) => AsrEngine;
}

export function modelsDir(dataDir: string): string {
  return path.join(dataDir, 'models');
}

export const NO_ENGINE_MESSAGE =
  'no speech-recognition engine is installed. Either download a whisper model: `sotto models pull base.en` ' +
  `(or another size: tiny.en, small.en, medium.en, large-v3-turbo), or install PocketSphinx: \`${SPHINX_INSTALL_HINT}\``;

async function whisperEngine(asr: EngineSettings, dataDir: string): Promise<WhisperEngine> {
  const dir = modelsDir(dataDir);
  const model = resolveWhisperModel(dir, asr.whisperModel);
  const recorded = model.catalog ? (await new ModelStore(dir).readManifest())[model.name] : undefined;
  return new WhisperEngine({
    modelPath: model.path,
    ...(model.catalog ? { modelName: model.name } : {}),
    device: asr.device,
    ...(asr.whisperLiveContext ? { liveContext: asr.whisperLiveContext } : {}),
    ...(recorded ? { expectedBytes: recorded.bytes } : {}),
  });
}

function sphinxOptions(asr: EngineSettings, deps: SelectEngineDeps): SphinxOptions {
  return {
    ...(asr.concurrency ? { concurrency: asr.concurrency } : {}),
    ...(deps.tmpDir ? { tmpDir: deps.tmpDir } : {}),
    ...deps.sphinx,
  };
}

export async function selectEngine(
  asr: EngineSettings,
  dataDir: string,
  deps: SelectEngineDeps = {},
): Promise<EngineChoice> {
  const choice = await chooseEngine(asr, dataDir, deps);
  return deps.wrap ? { ...choice, engine: deps.wrap(choice.engine) } : choice;
}

async function chooseEngine(
  asr: EngineSettings,
  dataDir: string,
  deps: SelectEngineDeps,
): Promise<EngineChoice> {
  switch (asr.engine) {
    case 'whisper':
      return { engine: await whisperEngine(asr, dataDir), reason: 'SOTTO_ASR_ENGINE=whisper' };
    case 'sphinx': {
      const sphinx = sphinxAvailability(asr.searchPath, deps.sphinx);
      if (!sphinx.available)
        throw new EngineUnavailableError(`SOTTO_ASR_ENGINE=sphinx, but ${sphinx.reason}`);
      return { engine: new SphinxEngine(sphinxOptions(asr, deps)), reason: 'SOTTO_ASR_ENGINE=sphinx' };
    }
    case 'openai': {
      if (!asr.openai.baseUrl)
        throw new EngineUnavailableError('SOTTO_ASR_ENGINE=openai needs SOTTO_OPENAI_BASE_URL');
      const engine = new OpenAiEngine({
        baseUrl: asr.openai.baseUrl,
        apiKey: asr.openai.apiKey,
        model: asr.openai.model,
        timeoutMs: asr.openai.timeoutMs,
      });
      return { engine, reason: 'SOTTO_ASR_ENGINE=openai' };
    }
    case 'auto': {
      const model = resolveWhisperModel(modelsDir(dataDir), asr.whisperModel);
      if (existsSync(model.path)) {
        return {
          engine: await whisperEngine(asr, dataDir),
          reason: `auto: whisper model ${model.name} is installed`,
        };
      }
      const sphinx = sphinxAvailability(asr.searchPath, deps.sphinx);
      if (sphinx.available) {
        return {
          engine: new SphinxEngine(sphinxOptions(asr, deps)),
          reason: `auto: no whisper model at ${model.path}, pocketsphinx is installed`,
        };
      }
      throw new EngineUnavailableError(NO_ENGINE_MESSAGE);
    }
  }
}
