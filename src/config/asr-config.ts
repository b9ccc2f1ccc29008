import path from 'node:path';
import { z } from 'zod';
import { ConfigError, asrShape, issuesAsProblems, schema, type Env } from './env-schema.js';

/** The speech-recognition settings (docs/engines.md); the mapping below is the type. */
export type AsrConfig = ReturnType<typeof asrFrom>;

export function asrFrom(v: z.output<z.ZodObject<typeof asrShape>>) {
  return {
    engine: v.SOTTO_ASR_ENGINE,
    device: v.SOTTO_ASR_DEVICE,
    /** Batch decoders (pocketsphinx); undefined: one per core. */
    concurrency: v.SOTTO_ASR_CONCURRENCY,
    whisperModel: v.SOTTO_WHISPER_MODEL,
    whisperLiveContext: v.SOTTO_WHISPER_LIVE_CONTEXT,
    openai: {
      baseUrl: v.SOTTO_OPENAI_BASE_URL,
      apiKey: v.SOTTO_OPENAI_API_KEY,
      model: v.SOTTO_OPENAI_MODEL,
      timeoutMs: v.SOTTO_OPENAI_TIMEOUT_SECONDS * 1000,
    },
    /** PATH: the directories searched for the engine's executables. */
    searchPath: v.PATH,
  };
}

export function asrProblems(asr: AsrConfig): string[] {
  return asr.engine === 'openai' && !asr.openai.baseUrl
    ? ['SOTTO_OPENAI_BASE_URL: required when SOTTO_ASR_ENGINE=openai']
    : [];
}

/** Just the speech-recognition settings and the data dir: what `sotto models` needs (no master key). */
export function loadAsrConfig(env: Env = process.env): AsrConfig & { dataDir: string } {
  const parsed = z.object({ SOTTO_DATA_DIR: schema.shape.SOTTO_DATA_DIR, ...asrShape }).safeParse(env);
  if (!parsed.success) {
    throw new ConfigError(issuesAsProblems(parsed.error));
  }
  const asr = asrFrom(parsed.data);
  const problems = asrProblems(asr);
  if (problems.length > 0) throw new ConfigError(problems);
  return { ...asr, dataDir: path.resolve(parsed.data.SOTTO_DATA_DIR) };
}
