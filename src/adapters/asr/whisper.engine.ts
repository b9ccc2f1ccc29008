import { stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { Word } from '../../domain/transcript.js';
import { isWhisperModelName } from '../storage/model.adapter.js';
import { DecoderPool } from './decoder-pool.js';
import { inspectGgmlModel, type GgmlWhisperHeader } from './ggml-header.js';
import {
  EngineFailedError,
  EngineUnavailableError,
  SAMPLE_RATE,
  abortError,
  finishWords,
  throwIfAborted,
  type AsrEngine,
  type RecognizerSession,
  type SessionOptions,
  type TranscribeOptions,
} from './engine.js';
import { WholeUtteranceSession } from './whole-utterance-session.js';
import { WhisperHostClient } from './whisper-host-client.js';
import type { HostReply, HostSegment } from './whisper.host.js';

export { forkWhisperHost } from './whisper-host-client.js';

/**
 * whisper.cpp through @fugood/whisper.node, run in a helper process (whisper.host.ts) that keeps
 * the model loaded between calls. The model file is checked before native code reads it, and
 * whatever still goes wrong natively (an abort, a crash) ends the helper, not the server: the
 * caller gets an error and the next call starts a fresh helper.
 *
 * Which backend really ran is read from whisper.cpp's own log at load time, because the package
 * falls back to the CPU silently when the CUDA runtime is missing; asking for CUDA and not getting
 * it is an error, not a quiet ten-fold slowdown.
 */
export interface WhisperEngineOptions {
  modelPath: string;
  /** Catalogue name ('base.en') when the model came from `sotto models pull`: used in hints. */
  modelName?: string;
  device?: 'cpu' | 'cuda';
  /** The size `sotto models pull` verified; a different size means the file changed since. */
  expectedBytes?: number;
  /** CPU threads for inference (default: all cores). */
  threads?: number;
  /** How long loading may take before the helper is given up (default 2 minutes). */
  loadTimeoutMs?: number;
  /**
   * Longest one call may take before the helper is restarted (default 2 minutes plus 20 times
   * the audio's duration). whisper.node 1.1.x never settles a transcription that fails or is
   * stopped natively, so without this a failed call would hang for ever.
   */
  transcribeTimeoutMs?: number;
  /**
   * A second copy of the model for live calls, loaded the first time a live utterance finds the
   * first copy busy with an upload chunk, so live text never waits for a chunk (up to a 30 s
   * window) to finish. Costs the model's size again in memory. 'auto' (default): only for
   * models up to 1 GiB (tiny … small, quantised turbo), where that is cheap.
   */
  liveContext?: 'auto' | 'on' | 'off';
}

/** Models up to this size get the live context under 'auto'. */
const AUTO_LIVE_CONTEXT_BYTES = 1024 ** 3;

export interface WhisperLoadInfo {
  /** 'CPU' or the device whisper.cpp reported using ('CUDA0'). */
  backend: string;
  header: GgmlWhisperHeader;
}

/** Joins whisper's token-level segments (maxLen 1) into words: a token with a leading space starts one. */
export function wordsFromTokens(segments: HostSegment[]): Word[] {
  const words: Word[] = [];
  let current: Word | undefined;
  for (const seg of segments) {
    const token = seg.text.trim();
    if (!token) continue;
    const start = seg.t0 / 1000;
    const end = seg.t1 / 1000;
    if (!current || /^\s/.test(seg.text)) {
      current = { w: token, start, end, conf: 1 };
      words.push(current);
    } else {
      current.w += token;
      current.end = Math.max(current.end, end);
    }
  }
  // Non-speech annotations ([BLANK_AUDIO], (music)) and stray punctuation are not words.
  return words.filter((w) => !/^[[(].*[\])]$/.test(w.w) && /[\p{L}\p{N}]/u.test(w.w));
}

/**
 * A loaded copy of the model serves one call at a time, so calls wait their turn here, scheduled
 * by the same pool that schedules pocketsphinx decoders: live utterances go before upload chunks,
 * and uploads take turns by recording, so a long file does not hold a short one behind all its
 * chunks. The pool lends a turn, at most two at once, one of them live only; the context a call
 * runs on is chosen when it runs (slotFor): upload chunks always on the first copy, a live call
 * on the first copy when it is free, else on the second, the live context (see liveContext).
 * Without that context the helper queues the live call behind the running chunk (at most one
 * window).
 */
type Turn = object;

export class WhisperEngine implements AsrEngine {
  readonly id = 'whisper' as const;
  /** The helper process; what was loaded lives and dies with it. */
  private readonly host = new WhisperHostClient(() => {
    this.loading = undefined;
    this.info = undefined;
    this.liveSlot = undefined;
    this.liveLoaded = false;
  });
  private loading: Promise<WhisperLoadInfo> | undefined;
  private info: WhisperLoadInfo | undefined;
  /** The live context of the current helper: loading or loaded (true), or refused (false). */
  private liveSlot: Promise<boolean> | undefined;
  private modelBytes = 0;
  private readonly turns = new DecoderPool<Turn>(
    { create: () => Promise.resolve({}), destroy: () => undefined, alive: () => true },
    { size: 1, liveReserve: 1 },
  );
  /** Calls sent to the first copy of the model and not yet answered. */
  private firstSlotCalls = 0;
  /** Calls waiting or running: close() lets them finish, as it did when they were a chain. */
  private readonly calls = new Set<Promise<unknown>>();

  constructor(private readonly opts: WhisperEngineOptions) {}

  describe(): string {
    const model = this.opts.modelName ?? path.basename(this.opts.modelPath);
    const backend = this.info ? this.info.backend : `not loaded yet, ${this.device.toUpperCase()} requested`;
    const live = this.liveContextWanted() ? ', a second context for live calls' : '';
    return `whisper (whisper.cpp, model ${model}, ${backend}${live})`;
  }

  private get device(): 'cpu' | 'cuda' {
    return this.opts.device ?? 'cpu';
  }

  private fixHint(): string {
    const name = this.opts.modelName;
    return name && isWhisperModelName(name)
      ? `run \`sotto models pull ${name}\``
      : 'point SOTTO_WHISPER_MODEL at a whisper.cpp ggml .bin file';
  }

  private liveContextWanted(): boolean {
    const mode = this.opts.liveContext ?? 'auto';
    return (
      mode === 'on' || (mode === 'auto' && this.modelBytes > 0 && this.modelBytes <= AUTO_LIVE_CONTEXT_BYTES)
    );
  }

  /** Copies of the model loaded in the helper now (1, or 2 with the live context). */
  contexts(): number {
    return this.info ? 1 + (this.liveLoaded ? 1 : 0) : 0;
  }
  private liveLoaded = false;

  /** Checks and loads the model (once); start-up can call it to fail early. */
  load(): Promise<WhisperLoadInfo> {
    this.loading ??= this.start().catch((err: unknown) => {
      this.loading = undefined;
      this.host.stop();
      throw err;
    });
    return this.loading;
  }

  private async start(): Promise<WhisperLoadInfo> {
    const file = this.opts.modelPath;
    const check = await inspectGgmlModel(file);
    if (!check.ok)
      throw new EngineUnavailableError(`whisper model ${file}: ${check.problem}; ${this.fixHint()}`);
    const size = (await stat(file)).size;
    this.modelBytes = size;
    if (this.opts.expectedBytes !== undefined) {
      if (size !== this.opts.expectedBytes) {
        throw new EngineUnavailableError(
          `whisper model ${file} changed since it was downloaded (${size} bytes, verified ${this.opts.expectedBytes}); ${this.fixHint().replace(/`$/, ' --force`')}`,
        );
      }
    }

    this.host.spawn();
    const reply = await this.loadSlot(0);
    if (reply.type === 'load-failed') {
      throw new EngineUnavailableError(
        reply.problem === 'model'
          ? `whisper cannot load the model ${file}: ${reply.message}; ${this.fixHint()}`
          : `${reply.message}; ${this.device === 'cuda' ? 'install the NVIDIA driver with the CUDA 12 runtime and cuBLAS, or set SOTTO_ASR_DEVICE=cpu' : 'reinstall Sotto (npm ci)'}`,
      );
    }
    if (reply.type !== 'loaded')
      throw new EngineFailedError(`unexpected reply from the whisper helper: ${reply.type}`);
    if (this.device === 'cuda' && !reply.gpuDevice?.startsWith('CUDA')) {
      throw new EngineUnavailableError(
        `SOTTO_ASR_DEVICE=cuda but whisper.cpp did not use a CUDA device (${reply.noGpuReason ?? reply.gpuDevice ?? 'no GPU reported'}); ` +
          'check the NVIDIA driver, CUDA 12 runtime and cuBLAS, or set SOTTO_ASR_DEVICE=cpu',
      );
    }
    this.host.unrefWhenIdle();
    this.info = { backend: reply.gpuDevice ?? 'CPU', header: check.header };
    return this.info;
  }

  /** Asks the helper to load the model into a slot; the helper's answer. */
  private loadSlot(slot: number): Promise<HostReply> {
    return this.host.load(
      {
        slot,
        modelPath: this.opts.modelPath,
        useGpu: this.device === 'cuda',
        variant: this.device === 'cuda' ? 'cuda' : 'default',
      },
      this.opts.loadTimeoutMs ?? 120_000,
    );
  }

  /**
   * The context a call runs on. Slot 1, the live context, only for a live call while the first
   * copy is busy; it is loaded on first use. When it is not wanted or could not be loaded (then
   * not tried again until the helper restarts: a machine short of memory should not retry on
   * every utterance), slot 0, where the helper queues the call behind the running one.
   */
  private async slotFor(priority: 'live' | 'batch'): Promise<number> {
    if (priority !== 'live' || this.firstSlotCalls === 0 || !this.liveContextWanted()) return 0;
    const helper = this.host.generation;
    this.liveSlot ??= this.loadSlot(1).then(
      (reply) => {
        const ok = reply.type === 'loaded' && this.host.generation === helper;
        if (ok) this.liveLoaded = true;
        return ok;
      },
      () => false,
    );
    return (await this.liveSlot) ? 1 : 0;
  }

  /**
   * Live and batch alike through the streaming interface: the loaded model recognises each
   * utterance whole at its end, and partials are whole calls over the audio so far, taken as
   * fast as the model finishes them (WholeUtteranceSession).
   */
  session(opts: SessionOptions): RecognizerSession {
    return new WholeUtteranceSession(this, opts);
  }

  transcribe(pcm: Int16Array, opts: TranscribeOptions = {}): Promise<Word[]> {
    const call = this.inTurn(pcm, opts);
    const settled = call.catch(() => undefined).finally(() => this.calls.delete(settled));
    this.calls.add(settled);
    return call;
  }

  private async inTurn(pcm: Int16Array, opts: TranscribeOptions): Promise<Word[]> {
    const turn = await this.turns.acquire({
      priority: opts.priority ?? 'batch',
      ...(opts.group !== undefined ? { group: opts.group } : {}),
      ...(opts.signal ? { signal: opts.signal } : {}),
    });
    try {
      return await this.run(pcm, opts);
    } finally {
      turn.release();
    }
  }

  private async run(pcm: Int16Array, opts: TranscribeOptions): Promise<Word[]> {
    throwIfAborted(opts.signal);
    const info = await this.load();
    const slot = await this.slotFor(opts.priority ?? 'batch');
    if (slot === 0) this.firstSlotCalls++;
    try {
      return await this.runOn(slot, info, pcm, opts);
    } finally {
      if (slot === 0) this.firstSlotCalls--;
    }
  }

  private async runOn(
    slot: number,
    info: WhisperLoadInfo,
    pcm: Int16Array,
    opts: TranscribeOptions,
  ): Promise<Word[]> {
    throwIfAborted(opts.signal);
    let language = opts.language;
    if (!info.header.multilingual) {
      if (language && !/^en\b/i.test(language)) {
        throw new EngineUnavailableError(
          `the whisper model ${this.opts.modelName ?? path.basename(this.opts.modelPath)} is English-only; language "${language}" needs a multilingual model (e.g. large-v3-turbo)`,
        );
      }
      language = 'en';
    }
    const duration = pcm.length / SAMPLE_RATE;
    const timeoutMs = this.opts.transcribeTimeoutMs ?? 120_000 + duration * 20_000;
    // A copy: the IPC serializer sends bytes, and the caller keeps its array.
    const bytes = new Uint8Array(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.byteLength));
    const threads = this.opts.threads ?? Math.max(1, os.availableParallelism());
    const segments = await new Promise<HostSegment[]>((resolve, reject) => {
      const startedAt = Date.now();
      let id = 0;
      const giveUp = (err: Error, kill = true) => {
        done();
        if (kill) {
          // Killing the helper is the one stop that always works; the model reloads on the next call.
          this.host.redirect(id, undefined);
          this.host.stop();
        } else {
          // Another call runs on the other copy of the model, and killing the helper would fail
          // it too: this call's native work runs out on its own and its answer is dropped. The
          // watchdog still ends the helper if it never answers.
          const dropped = setTimeout(
            () => {
              if (this.host.isWaiting(id)) this.host.stop();
            },
            Math.max(0, timeoutMs - (Date.now() - startedAt)),
          );
          dropped.unref();
          const forget = () => clearTimeout(dropped);
          this.host.redirect(id, { resolve: forget, reject: forget, onProgress: undefined });
        }
        reject(err);
      };
      const onAbort = () => giveUp(abortError(opts.signal!), this.host.waiting <= 1);
      const timer = setTimeout(
        () =>
          giveUp(
            new EngineFailedError(
              `whisper did not finish within ${Math.round(timeoutMs / 1000)} s; its helper process was restarted`,
            ),
          ),
        timeoutMs,
      );
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      const done = () => {
        clearTimeout(timer);
        opts.signal?.removeEventListener('abort', onAbort);
      };
      id = this.host.transcribe(
        {
          slot,
          pcm: bytes,
          language: language ?? 'auto',
          // Beside a running chunk, the live call takes half the threads: both go on at once
          // instead of fighting over every core (ggml's threads spin while they wait).
          threads: slot === 1 ? Math.max(1, Math.floor(threads / 2)) : threads,
        },
        {
          resolve: (s) => {
            done();
            resolve(s);
          },
          reject: (e) => {
            done();
            reject(e);
          },
          onProgress: opts.onProgress,
        },
      );
    });
    return finishWords(wordsFromTokens(segments), duration, opts.offsetSeconds ?? 0);
  }

  async close(): Promise<void> {
    while (this.calls.size > 0) await Promise.all(this.calls);
    this.host.stop();
  }
}
