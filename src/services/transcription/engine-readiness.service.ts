import type { Logger } from 'pino';
import { AppError } from '../../domain/errors.js';
import { SAMPLE_RATE, type AsrEngine, type EngineId } from '../../adapters/asr/engine.js';
import { modelsDir, type EngineChoice, type EngineSettings } from '../../adapters/asr/select-engine.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { resolveWhisperModel } from '../../adapters/storage/model.adapter.js';

/**
 * Whether this server has a usable speech-recognition engine, and which. The engine is still
 * chosen on first use (`choose`), not fixed at start-up: a failed choice is not kept, so
 * installing an engine later needs no restart. `sotto serve` asks once at start to log the
 * outcome; the in-process worker asks before each claim (no engine: nothing is claimed, queued
 * recordings wait marked "waiting for an engine", and no attempt is used); /readyz and the
 * admins' status route report it.
 */

/** What an operator runs to get an engine (also shown to users whose recordings wait for one). */
export const ENGINE_FIX =
  'install one on the server with `sudo apt-get install -y pocketsphinx pocketsphinx-en-us` ' +
  '(or download a whisper model: `sotto models pull base.en`), or start a remote worker (`sotto worker`)';

/** Why an engine is missing, as an enum (for /readyz, which never carries free text). */
export type EngineMissing = 'none_installed' | 'configured_engine_unavailable' | 'engine_unusable';

export type EngineState =
  | { status: 'ok'; id: EngineId; model: string | null; description: string; reason: string }
  | { status: 'none'; missing: EngineMissing; reason: string };

export interface EngineReadinessOptions {
  /** SOTTO_ASR_ENGINE: `auto` finding nothing is "none installed", an explicit choice "configured … unavailable". */
  configured: 'auto' | 'whisper' | 'sphinx' | 'openai';
  /**
   * The model's public name per engine (a catalog name, `en-us`…), never a path or URL: /readyz
   * shows it. null: not told.
   */
  modelName?: (id: EngineId) => string | null;
  /** A failed choice is reused this long by state() (it is polled by /readyz). */
  stateTtlMs?: number;
  /** The app's clock: the failed choice's age is read on it (tests advance it). */
  clock: Clock;
}

/** The configured model's public name per engine, for /readyz: never a path (a custom whisper file is its file name). */
export function engineModelName(asr: EngineSettings, dataDir: string, id: EngineId): string | null {
  switch (id) {
    case 'whisper':
      try {
        return resolveWhisperModel(modelsDir(dataDir), asr.whisperModel).name;
      } catch {
        return null;
      }
    case 'sphinx':
      return 'en-us';
    case 'openai':
      return asr.openai.model;
  }
}

// A name, not a path or URL (a custom model is reported as such).
const safeModelName = (name: string | null): string | null =>
  name === null ? null : /^[\w][\w.:-]{0,63}$/.test(name) ? name : 'custom';

const isUnavailable = (err: unknown): err is AppError =>
  err instanceof AppError && err.code === 'engine_unavailable';

export class EngineReadinessService {
  private choice: Promise<EngineChoice> | undefined;
  private failed: { state: EngineState & { status: 'none' }; at: number } | undefined;
  /** Set when the chosen engine failed verify(): it exists but cannot transcribe anything. */
  private unusable: string | undefined;

  constructor(
    private readonly select: () => Promise<EngineChoice>,
    private readonly logger: Pick<Logger, 'info' | 'warn'>,
    private readonly opts: EngineReadinessOptions,
  ) {}

  /**
   * The engine for jobs and live recognition: chosen on first use and kept (a whisper model is
   * loaded once). Rejects with engine_unavailable while there is none; that is not kept.
   */
  choose(): Promise<EngineChoice> {
    this.choice ??= this.select().then(
      (c) => {
        this.failed = undefined;
        this.logger.info(
          { engine: c.engine.describe(), reason: c.reason },
          'speech-recognition engine selected',
        );
        // Decoders loaded now, not in front of the first live utterance or upload.
        c.engine
          .warm?.()
          .catch((err: unknown) =>
            this.logger.warn({ err: (err as Error).name }, 'warming the speech-recognition engine failed'),
          );
        return c;
      },
      (err: unknown) => {
        this.choice = undefined;
        if (isUnavailable(err)) this.failed = { state: this.none(err.message, false), at: this.now() };
        throw err;
      },
    );
    return this.choice;
  }

  /** Releases the engine's models and helper processes (shutdown); a later use chooses again. */
  async close(): Promise<void> {
    const choice = this.choice;
    this.choice = undefined;
    const chosen = await choice?.catch(() => undefined);
    await chosen?.engine.close?.();
  }

  /** The current state; never rejects for a missing engine (that is `status: 'none'`). */
  async state(): Promise<EngineState> {
    if (!this.choice && this.failed && this.now() - this.failed.at < (this.opts.stateTtlMs ?? 5000))
      return this.failed.state;
    try {
      const c = await this.choose();
      if (this.unusable) return this.none(this.unusable, true);
      return {
        status: 'ok',
        id: c.engine.id,
        model: safeModelName(this.opts.modelName?.(c.engine.id) ?? null),
        description: c.engine.describe(),
        reason: c.reason,
      };
    } catch (err) {
      if (isUnavailable(err)) return this.none(err.message, false);
      throw err;
    }
  }

  /**
   * Tries the engine on half a second of silence. A job whose run failed with engine_unavailable
   * asks this to tell the two cases apart: the server's engine cannot work at all (the job waits,
   * its attempt not counted) or only that job cannot run on it (a language the engine lacks: the
   * job fails). Other errors (a run that failed) do not make the engine unusable.
   */
  async verify(): Promise<EngineState> {
    let engine: AsrEngine;
    try {
      engine = (await this.choose()).engine;
    } catch (err) {
      if (isUnavailable(err)) return this.none(err.message, false);
      throw err;
    }
    const was = this.unusable;
    try {
      await engine.transcribe(new Int16Array(SAMPLE_RATE / 2));
      this.unusable = undefined;
    } catch (err) {
      this.unusable = isUnavailable(err) ? err.message : undefined;
    }
    if (this.unusable && this.unusable !== was)
      this.logger.warn(
        { engine: engine.describe(), reason: this.unusable },
        `the speech-recognition engine cannot transcribe; uploads wait queued until it can: ${ENGINE_FIX}`,
      );
    else if (was && !this.unusable)
      this.logger.info({ engine: engine.describe() }, 'speech-recognition engine usable again');
    return this.state();
  }

  private none(reason: string, unusable: boolean): EngineState & { status: 'none' } {
    const missing: EngineMissing = unusable
      ? 'engine_unusable'
      : this.opts.configured === 'auto'
        ? 'none_installed'
        : 'configured_engine_unavailable';
    return { status: 'none', missing, reason };
  }

  private now(): number {
    return this.opts.clock.now().getTime();
  }
}
