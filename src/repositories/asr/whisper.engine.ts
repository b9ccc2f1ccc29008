import { fork, type ChildProcess } from 'node:child_process';
import { stat } from 'node:fs/promises';
import { createRequire } from 'node:module';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import type { Word } from '../../domain/transcript.js';
import { isWhisperModelName } from '../model.repository.js';
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
import type { HostReply, HostRequest, HostSegment } from './whisper.host.js';

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
}

export interface WhisperLoadInfo {
  /** 'CPU' or the device whisper.cpp reported using ('CUDA0'). */
  backend: string;
  header: GgmlWhisperHeader;
}

const here = fileURLToPath(import.meta.url);
const HOST_FILE = path.join(path.dirname(here), `whisper.host${path.extname(here)}`);
// Running from sources (tests, tsx): the helper needs the same TypeScript loader.
const HOST_EXEC_ARGV = here.endsWith('.ts')
  ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href]
  : [];
const STDERR_TAIL = 8 * 1024;

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

/** Starts a helper process (exported for the spec that shows what it protects us from). */
export function forkWhisperHost(): ChildProcess {
  return fork(HOST_FILE, [], {
    execArgv: HOST_EXEC_ARGV,
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
}

/**
 * The helper's one model serves one call at a time, so calls wait their turn here, scheduled by
 * the same pool that schedules pocketsphinx decoders: live utterances go before upload chunks
 * (a live final waits for at most the call already running), and uploads take turns by
 * recording, so a long file does not hold a short one behind all its chunks. The pool lends a
 * turn, not a decoder: there is one slot.
 */
const TURN = Symbol('whisper turn');
type Turn = typeof TURN;

interface Pending {
  resolve: (segments: HostSegment[]) => void;
  reject: (err: Error) => void;
  onProgress: ((fraction: number) => void) | undefined;
}

export class WhisperEngine implements AsrEngine {
  readonly id = 'whisper' as const;
  private host: ChildProcess | undefined;
  private loading: Promise<WhisperLoadInfo> | undefined;
  private info: WhisperLoadInfo | undefined;
  private stderr = '';
  private onLoadReply: ((reply: HostReply) => void) | undefined;
  private readonly pending = new Map<number, Pending>();
  private nextId = 1;
  private readonly turns = new DecoderPool<Turn>(
    { create: () => Promise.resolve(TURN), destroy: () => undefined, alive: () => true },
    { size: 1, liveReserve: 0 },
  );
  /** Calls waiting or running: close() lets them finish, as it did when they were a chain. */
  private readonly calls = new Set<Promise<unknown>>();

  constructor(private readonly opts: WhisperEngineOptions) {}

  describe(): string {
    const model = this.opts.modelName ?? path.basename(this.opts.modelPath);
    const backend = this.info ? this.info.backend : `not loaded yet, ${this.device.toUpperCase()} requested`;
    return `whisper (whisper.cpp, model ${model}, ${backend})`;
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

  /** Checks and loads the model (once); start-up can call it to fail early. */
  load(): Promise<WhisperLoadInfo> {
    this.loading ??= this.start().catch((err: unknown) => {
      this.loading = undefined;
      this.stopHost();
      throw err;
    });
    return this.loading;
  }

  private async start(): Promise<WhisperLoadInfo> {
    const file = this.opts.modelPath;
    const check = await inspectGgmlModel(file);
    if (!check.ok)
      throw new EngineUnavailableError(`whisper model ${file}: ${check.problem}; ${this.fixHint()}`);
    if (this.opts.expectedBytes !== undefined) {
      const size = (await stat(file)).size;
      if (size !== this.opts.expectedBytes) {
        throw new EngineUnavailableError(
          `whisper model ${file} changed since it was downloaded (${size} bytes, verified ${this.opts.expectedBytes}); ${this.fixHint().replace(/`$/, ' --force`')}`,
        );
      }
    }

    const host = this.spawnHost();
    const reply = await new Promise<HostReply>((resolve, reject) => {
      const timer = setTimeout(
        () => reject(new EngineFailedError('whisper did not finish loading the model in time')),
        this.opts.loadTimeoutMs ?? 120_000,
      );
      this.onLoadReply = (r) => {
        clearTimeout(timer);
        this.onLoadReply = undefined;
        resolve(r);
      };
      this.send({
        type: 'load',
        modelPath: file,
        useGpu: this.device === 'cuda',
        variant: this.device === 'cuda' ? 'cuda' : 'default',
      });
    });
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
    host.channel?.unref();
    this.info = { backend: reply.gpuDevice ?? 'CPU', header: check.header };
    return this.info;
  }

  private spawnHost(): ChildProcess {
    this.stderr = '';
    const child = forkWhisperHost();
    this.host = child;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (this.host === child) this.stderr = (this.stderr + chunk).slice(-STDERR_TAIL);
    });
    child.on('message', (reply: HostReply) => this.onReply(reply));
    child.on('error', (err) => this.onHostGone(child, `could not start: ${err.message}`));
    child.on('exit', (code, signal) =>
      this.onHostGone(child, signal ? `was killed by ${signal}` : `exited with status ${code}`),
    );
    return child;
  }

  private send(req: HostRequest): void {
    this.host?.channel?.ref();
    this.host?.send(req);
  }

  private onReply(reply: HostReply): void {
    if (reply.type === 'loaded' || reply.type === 'load-failed') return this.onLoadReply?.(reply);
    const p = this.pending.get(reply.id);
    if (!p) return;
    if (reply.type === 'progress') return p.onProgress?.(Math.min(1, Math.max(0, reply.percent / 100)));
    this.pending.delete(reply.id);
    if (this.pending.size === 0) this.host?.channel?.unref();
    if (reply.type === 'result') p.resolve(reply.segments);
    else p.reject(new EngineFailedError(`whisper failed: ${reply.message}`));
  }

  private onHostGone(child: ChildProcess, how: string): void {
    if (this.host !== child) return;
    this.host = undefined;
    this.loading = undefined;
    this.info = undefined;
    // The last native message (often a GGML_ASSERT) says why.
    const last = this.stderr.trim().split('\n').at(-1)?.slice(0, 300);
    const err = new EngineFailedError(`the whisper helper process ${how}${last ? `: ${last}` : ''}`);
    if (this.onLoadReply) {
      this.onLoadReply({
        type: 'load-failed',
        problem: 'model',
        message: `${err.message} (the model file may be corrupt)`,
      });
    }
    for (const p of this.pending.values()) p.reject(err);
    this.pending.clear();
  }

  private stopHost(): void {
    const child = this.host;
    this.onLoadReply = undefined;
    if (!child) return;
    this.host = undefined;
    this.loading = undefined;
    this.info = undefined;
    child.kill('SIGKILL');
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
    const id = this.nextId++;
    const duration = pcm.length / SAMPLE_RATE;
    const timeoutMs = this.opts.transcribeTimeoutMs ?? 120_000 + duration * 20_000;
    const segments = await new Promise<HostSegment[]>((resolve, reject) => {
      const giveUp = (err: Error) => {
        // Killing the helper is the one stop that always works; the model reloads on the next call.
        this.pending.delete(id);
        this.stopHost();
        done();
        reject(err);
      };
      const onAbort = () => giveUp(abortError(opts.signal!));
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
      this.pending.set(id, {
        resolve: (s) => {
          done();
          resolve(s);
        },
        reject: (e) => {
          done();
          reject(e);
        },
        onProgress: opts.onProgress,
      });
      // A copy: the IPC serializer sends bytes, and the caller keeps its array.
      const bytes = new Uint8Array(pcm.buffer.slice(pcm.byteOffset, pcm.byteOffset + pcm.byteLength));
      this.send({
        type: 'transcribe',
        id,
        pcm: bytes,
        language: language ?? 'auto',
        threads: this.opts.threads ?? Math.max(1, os.availableParallelism()),
      });
    });
    return finishWords(wordsFromTokens(segments), duration, opts.offsetSeconds ?? 0);
  }

  async close(): Promise<void> {
    while (this.calls.size > 0) await Promise.all(this.calls);
    this.stopHost();
  }
}
