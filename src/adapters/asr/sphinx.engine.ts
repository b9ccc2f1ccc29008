import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import type { Word } from '../../domain/transcript.js';
import { findExecutable } from '../media/executable.adapter.js';
import { DecoderPool } from './decoder-pool.js';
import {
  EngineFailedError,
  EngineUnavailableError,
  SAMPLE_RATE,
  abortError,
  finishWords,
  throwIfAborted,
  withTempWav,
  type AsrEngine,
  type RecognizerSession,
  type ScanOptions,
  type SessionOptions,
  type TranscribeOptions,
  type UtteranceBoundary,
} from './engine.js';
import { SphinxHost, type ScanRecord } from './sphinx-host.js';
import { SphinxSession, cleanWords } from './sphinx-session.js';

/**
 * CMU PocketSphinx from the distribution (Debian: pocketsphinx + pocketsphinx-en-us).
 *
 * Warm (the normal case): a pool of `sotto-sphinx-host` helpers (native/sphinx-host.c, built by
 * `npm install` from libpocketsphinx-dev), each with the model loaded once, serving upload chunks
 * and live utterances alike, with audio streamed in and partial hypotheses out. Measured on the
 * corpus (2-core machine): the same words and times as the command line, no ~0.35–2 s model load
 * per call, and one decoder per core.
 *
 * Cold (fallback, when the helper is not built): `pocketsphinx_continuous -infile X.wav -time yes`
 * per call, which prints every recognised word with start, end and posterior probability.
 *
 * Both are subprocesses, not bindings: a crash or a hang stays out of our process and an abort
 * or the watchdog can kill it outright.
 */
export interface SphinxOptions {
  /** Executable name (spawned through PATH) or path. */
  binary?: string;
  /** Folder holding `en-us/` (acoustic model), `en-us.lm.bin` and `cmudict-en-us.dict`. */
  modelDir?: string;
  /** Where the temporary WAV goes in cold mode (a server: `<data dir>/tmp/asr`; default: the OS temp dir). */
  tmpDir?: string;
  /**
   * The warm helper executable; `false` forces cold mode. Default: the one `npm install` built
   * (native/build/sotto-sphinx-host), when it exists.
   */
  helper?: string | false;
  /** Decoders for batch work (default: the number of cores). */
  concurrency?: number;
  /** Watchdog settings of each helper (tests shorten them). */
  replyTimeoutMs?: number;
  perAudioSecondMs?: number;
  /** Niceness of the decoders made for uploads (default BATCH_NICE; 0: the server's priority). */
  batchNice?: number;
}

// Three levels up from src/adapters/asr (or dist/adapters/asr) is the package root.
const PACKAGE_ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..', '..');
export const SPHINX_HELPER_PATH = path.join(PACKAGE_ROOT, 'native', 'build', 'sotto-sphinx-host');
export const SPHINX_HELPER_HINT =
  'install `libpocketsphinx-dev pkg-config` and run `npm install` (or `node scripts/build-native.mjs`)';

/** The warm helper when it is built (and not switched off), else undefined. */
export function sphinxHelper(opts: SphinxOptions = {}): string | undefined {
  if (opts.helper === false) return undefined;
  const file = opts.helper ?? SPHINX_HELPER_PATH;
  // Always a path (never searched for), so no search path is needed.
  return findExecutable(file.includes('/') ? file : `./${file}`, '');
}

export const SPHINX_DEFAULTS = {
  binary: 'pocketsphinx_continuous',
  modelDir: '/usr/share/pocketsphinx/model/en-us',
} as const;

export const SPHINX_INSTALL_HINT = 'apt-get install pocketsphinx pocketsphinx-en-us';

/**
 * The helper's processing block (BLOCK in native/sphinx-host.c). Its voice detector decides at
 * the end of each block, so a scan fed in whole blocks keeps one block grid from the stream's
 * start, and finds the same utterance ends whatever the size of the pieces it is fed in.
 */
const HOST_BLOCK = 2048;
// Audio is written to a helper in pieces of about 30 s (its frames are ≤ 16 MB).
const SCAN_FEED_SAMPLES = Math.floor((30 * SAMPLE_RATE) / HOST_BLOCK) * HOST_BLOCK;
/**
 * With `onBoundaries`, how much audio the scan takes between reports (about 5 s: ~15 ms of
 * scanning), so a caller waiting for its first piece waits little, for one round trip per step.
 */
const SCAN_REPORT_SAMPLES = Math.floor((5 * SAMPLE_RATE) / HOST_BLOCK) * HOST_BLOCK;

// Keep only the end of stderr: its last lines carry the reason of a failure, and a long run logs a lot.
const STDERR_TAIL_BYTES = 16 * 1024;
/**
 * Niceness of the decoders made for uploads. At 10 the kernel gives a niced process about a tenth
 * of the share of one at 0, so while uploads keep both cores busy a live utterance's decoder (and
 * the server answering requests) still runs nearly at full speed; when nothing else wants the
 * cores, uploads get all of them as before.
 */
const BATCH_NICE = 10;

interface SphinxPaths {
  binary: string;
  hmm: string;
  lm: string;
  dict: string;
}

function resolvePaths(opts: SphinxOptions): SphinxPaths {
  const modelDir = opts.modelDir ?? SPHINX_DEFAULTS.modelDir;
  return {
    binary: opts.binary ?? SPHINX_DEFAULTS.binary,
    hmm: path.join(modelDir, 'en-us'),
    lm: path.join(modelDir, 'en-us.lm.bin'),
    dict: path.join(modelDir, 'cmudict-en-us.dict'),
  };
}

function modelProblem(p: SphinxPaths): string | undefined {
  const missing = [path.join(p.hmm, 'mdef'), p.lm, p.dict].filter((f) => !existsSync(f));
  if (missing.length === 0) return undefined;
  return `the pocketsphinx en-us model is missing (${missing.join(', ')}); install it with \`${SPHINX_INSTALL_HINT}\``;
}

/**
 * Whether the binary (looked up along `searchPath`, the PATH config/ read) and the en-us model are
 * installed; `reason` says what is missing and how to fix it.
 */
export function sphinxAvailability(
  searchPath: string,
  opts: SphinxOptions = {},
): { available: boolean; reason?: string } {
  const p = resolvePaths(opts);
  if (!findExecutable(p.binary, searchPath)) {
    return {
      available: false,
      reason: `pocketsphinx is not installed (no executable "${p.binary}"); install it with \`${SPHINX_INSTALL_HINT}\``,
    };
  }
  const problem = modelProblem(p);
  return problem ? { available: false, reason: problem } : { available: true };
}

// "<word> <start> <end> <posterior>" — one line per recognised token with -time yes. The plain
// hypothesis lines also printed on stdout never end in three numbers.
const WORD_LINE = /^(\S+)\s+(\d+(?:\.\d+)?)\s+(\d+(?:\.\d+)?)\s+(\d+(?:\.\d*)?(?:e-?\d+)?)\s*$/;
export function parseSphinxOutput(stdout: string): Word[] {
  const words: Word[] = [];
  for (const line of stdout.split('\n')) {
    const m = WORD_LINE.exec(line.trim());
    if (!m) continue;
    words.push({ w: m[1]!, start: Number(m[2]), end: Number(m[3]), conf: Number(m[4]) });
  }
  return cleanWords(words);
}

function lastProblem(stderr: string): string | undefined {
  const lines = stderr.split('\n').filter((l) => /^(FATAL|ERROR)/.test(l));
  return lines
    .at(-1)
    ?.replace(/^(FATAL|ERROR): "[^"]*", line \d+: /, '')
    .trim();
}

export class SphinxEngine implements AsrEngine {
  readonly id = 'sphinx' as const;
  readonly concurrency: number;
  private readonly paths: SphinxPaths;
  private readonly helper: string | undefined;
  /** Cold by choice (`helper: false`, the bench's engine alone), not for want of the helper. */
  private readonly coldByChoice: boolean;
  private pool: DecoderPool<SphinxHost> | undefined;
  private fedSamples = 0;

  constructor(private readonly opts: SphinxOptions = {}) {
    this.paths = resolvePaths(opts);
    this.helper = sphinxHelper(opts);
    this.coldByChoice = opts.helper === false;
    this.concurrency = this.helper ? Math.max(1, opts.concurrency ?? os.availableParallelism()) : 1;
    if (this.helper) {
      this.session = (session) => {
        this.check(session.language);
        return new SphinxSession(this.decoders(), session, (n) => (this.fedSamples += n));
      };
    }
  }

  /** Whether decoders stay loaded (the helper is built) or each call starts pocketsphinx_continuous. */
  get warmMode(): boolean {
    return this.helper !== undefined;
  }

  describe(): string {
    const model = path.dirname(this.paths.hmm);
    return this.helper
      ? `sphinx (pocketsphinx, warm decoders: ${this.concurrency} + 1 for live, model ${model}, CPU)`
      : `sphinx (pocketsphinx: ${this.paths.binary} per call, cold${this.coldByChoice ? '' : `: the warm helper is not built, ${SPHINX_HELPER_HINT}`}; model ${model}, CPU)`;
  }

  async transcribe(pcm: Int16Array, opts: TranscribeOptions = {}): Promise<Word[]> {
    throwIfAborted(opts.signal);
    this.check(opts.language);
    if (this.helper) {
      const utterance = this.session!({
        priority: opts.priority ?? 'batch',
        ...(opts.group ? { group: opts.group } : {}),
        ...(opts.signal ? { signal: opts.signal } : {}),
      }).utterance(opts.offsetSeconds ?? 0);
      utterance.feed(pcm);
      const words = await utterance.final();
      opts.onProgress?.(1);
      return words;
    }
    const duration = pcm.length / SAMPLE_RATE;
    const raw = await withTempWav(pcm, this.opts.tmpDir, (wav) => this.run(wav, opts.signal));
    return finishWords(raw, duration, opts.offsetSeconds ?? 0);
  }

  /**
   * One warm decoder listens to the whole recording with a one-word grammar instead of the
   * language model (native/sphinx-host.c, 'G'): its voice detector and cepstral mean run exactly
   * as in recognition, at ~3 % of the cost (call-02, 32 s: 0.15 s against 4.7 s).
   */
  async scan(pcm: Int16Array, opts: ScanOptions): Promise<UtteranceBoundary[] | undefined> {
    if (!this.helper) return undefined;
    this.check(undefined);
    const { signal } = opts;
    const lease = await this.decoders().acquire({
      priority: 'batch',
      ...(opts.group ? { group: opts.group } : {}),
      ...(signal ? { signal } : {}),
    });
    if (!lease.decoder.canScan) {
      lease.release();
      return undefined;
    }
    const onAbort = () => lease.decoder.kill('aborted');
    signal?.addEventListener('abort', onAbort, { once: true });
    try {
      const host = lease.decoder;
      const boundaries = (records: ScanRecord[]): UtteranceBoundary[] =>
        records.map((p) => ({ sample: p.sample, state: { engine: 'sphinx', data: p.cmn } }));
      const all: UtteranceBoundary[] = [];
      await host.beginScan();
      const step = opts.onBoundaries ? SCAN_REPORT_SAMPLES : SCAN_FEED_SAMPLES;
      for (let at = 0; at < pcm.length; at += step) {
        host.feed(pcm.subarray(at, Math.min(pcm.length, at + step)));
        if (!opts.onBoundaries || at + step >= pcm.length) continue;
        const found = boundaries(await host.scanSoFar());
        all.push(...found);
        if (found.length > 0) opts.onBoundaries(found);
      }
      const rest = boundaries(await host.finishScan());
      lease.release();
      all.push(...rest);
      if (rest.length > 0) opts.onBoundaries?.(rest);
      return all;
    } catch (err) {
      lease.release(true);
      throw signal?.aborted ? abortError(signal) : err;
    } finally {
      signal?.removeEventListener('abort', onAbort);
    }
  }

  /** Streaming sessions exist in warm mode only (callers fall back to whole-chunk calls). */
  readonly session?: (opts: SessionOptions) => RecognizerSession;

  async warm(): Promise<void> {
    if (!this.helper) return;
    this.check(undefined);
    // The live decoder and two batch ones: the first live utterance and the first upload's first
    // pieces start without a model load, and a many-core machine does not load every model at once.
    await this.decoders().warm(Math.min(3, this.concurrency + 1));
  }

  /** Pool counters and the audio recognised so far (tests and benches read them). */
  stats() {
    return this.pool ? { ...this.pool.stats(), recognisedSeconds: this.fedSamples / SAMPLE_RATE } : undefined;
  }

  /** Process ids of the helpers, idle and lent (diagnostics, and tests that kill one). */
  helperPids(): { idle: number[]; busy: number[] } {
    const d = this.pool?.decoders() ?? { idle: [], lent: [] };
    const pids = (hosts: SphinxHost[]) => hosts.map((h) => h.pid).filter((p): p is number => p !== undefined);
    return { idle: pids(d.idle), busy: pids(d.lent) };
  }

  async close(): Promise<void> {
    this.pool?.close();
    this.pool = undefined;
  }

  private check(language: string | undefined): void {
    if (language && !/^en\b/i.test(language)) {
      throw new EngineUnavailableError(
        `the sphinx engine only has an English (en-us) model; language "${language}" needs the whisper or openai engine`,
      );
    }
    // Checked here rather than left to pocketsphinx, whose own message for a missing model is cryptic.
    const problem = modelProblem(this.paths);
    if (problem) throw new EngineUnavailableError(problem);
  }

  private decoders(): DecoderPool<SphinxHost> {
    const { hmm, lm, dict } = this.paths;
    const args = ['-hmm', hmm, '-lm', lm, '-dict', dict, '-samprate', String(SAMPLE_RATE)];
    const helper = this.helper!;
    this.pool ??= new DecoderPool<SphinxHost>(
      {
        create: async (kind) => {
          const host = new SphinxHost({
            binary: helper,
            args,
            ...(kind === 'batch' ? { nice: this.opts.batchNice ?? BATCH_NICE } : {}),
            ...(this.opts.replyTimeoutMs ? { replyTimeoutMs: this.opts.replyTimeoutMs } : {}),
            ...(this.opts.perAudioSecondMs ? { perAudioSecondMs: this.opts.perAudioSecondMs } : {}),
          });
          await host.ready;
          return host;
        },
        destroy: (host) => host.kill('released'),
        alive: (host) => host.alive,
      },
      { size: this.concurrency, liveReserve: 1 },
    );
    return this.pool;
  }

  private run(wavPath: string, signal: AbortSignal | undefined): Promise<Word[]> {
    const { binary, hmm, lm, dict } = this.paths;
    // Argument array, no shell: no path can be interpreted as anything but a file name.
    const args = ['-infile', wavPath, '-hmm', hmm, '-lm', lm, '-dict', dict, '-time', 'yes'];
    args.push('-samprate', String(SAMPLE_RATE));
    return new Promise<Word[]>((resolve, reject) => {
      throwIfAborted(signal);
      const child = spawn(binary, args, { stdio: ['ignore', 'pipe', 'pipe'] });
      const out: Buffer[] = [];
      let stderr = '';
      let settled = false;
      const finish = (fn: () => void) => {
        if (settled) return;
        settled = true;
        signal?.removeEventListener('abort', onAbort);
        fn();
      };
      const onAbort = () => {
        child.kill('SIGKILL');
      };
      signal?.addEventListener('abort', onAbort, { once: true });

      child.stdout.on('data', (chunk: Buffer) => out.push(chunk));
      child.stderr.setEncoding('utf8');
      child.stderr.on('data', (chunk: string) => {
        stderr = (stderr + chunk).slice(-STDERR_TAIL_BYTES);
      });
      child.on('error', (err: NodeJS.ErrnoException) => {
        finish(() =>
          reject(
            err.code === 'ENOENT' || err.code === 'EACCES'
              ? new EngineUnavailableError(
                  `cannot run pocketsphinx ("${binary}": ${err.code === 'ENOENT' ? 'not found' : 'not executable'}); install it with \`${SPHINX_INSTALL_HINT}\``,
                  { cause: err },
                )
              : new EngineFailedError(`cannot start pocketsphinx: ${err.message}`, { cause: err }),
          ),
        );
      });
      // 'close' (not 'exit'): stdout is fully read by then.
      child.on('close', (code, sig) => {
        finish(() => {
          if (signal?.aborted) return reject(abortError(signal));
          if (code === 0) return resolve(parseSphinxOutput(Buffer.concat(out).toString('utf8')));
          const problem = lastProblem(stderr);
          reject(
            new EngineFailedError(
              `pocketsphinx failed (${sig ? `killed by ${sig}` : `exit status ${code}`})${problem ? `: ${problem}` : ''}`,
            ),
          );
        });
      });
    });
  }
}
