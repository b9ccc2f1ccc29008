import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import path from 'node:path';
import type { Word } from '../../domain/transcript.js';
import { findExecutable } from '../executable.repository.js';
import {
  EngineFailedError,
  EngineUnavailableError,
  SAMPLE_RATE,
  abortError,
  finishWords,
  throwIfAborted,
  withTempWav,
  type AsrEngine,
  type TranscribeOptions,
} from './engine.js';

/**
 * CMU PocketSphinx from the distribution (Debian: pocketsphinx + pocketsphinx-en-us), run as a
 * subprocess per call: `pocketsphinx_continuous -infile X.wav -time yes` prints every recognised
 * word with start, end and posterior probability. A subprocess (not a binding) keeps a crash or a
 * hang out of our process and lets an abort kill it outright.
 */
export interface SphinxOptions {
  /** Executable name (looked up on PATH) or path. */
  binary?: string;
  /** Folder holding `en-us/` (acoustic model), `en-us.lm.bin` and `cmudict-en-us.dict`. */
  modelDir?: string;
  /** Where the temporary WAV goes (default: the OS temp dir). */
  tmpDir?: string;
}

export const SPHINX_DEFAULTS = {
  binary: 'pocketsphinx_continuous',
  modelDir: '/usr/share/pocketsphinx/model/en-us',
} as const;

export const SPHINX_INSTALL_HINT = 'apt-get install pocketsphinx pocketsphinx-en-us';

// Keep only the end of stderr: its last lines carry the reason of a failure, and a long run logs a lot.
const STDERR_TAIL_BYTES = 16 * 1024;

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

/** Whether the binary and the en-us model are installed; `reason` says what is missing and how to fix it. */
export function sphinxAvailability(opts: SphinxOptions = {}): { available: boolean; reason?: string } {
  const p = resolvePaths(opts);
  if (!findExecutable(p.binary)) {
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
// Fillers from the noise dictionary (<s>, </s>, <sil>, [NOISE], [SPEECH]) and ++GARBAGE++ markers.
const FILLER = /^(<.*>|\[.*\]|\+\+.*\+\+)$/;
// Alternate pronunciations are printed as word(2), word(3)…
const ALTERNATE = /\(\d+\)$/;

export function parseSphinxOutput(stdout: string): Word[] {
  const words: Word[] = [];
  for (const line of stdout.split('\n')) {
    const m = WORD_LINE.exec(line.trim());
    if (!m) continue;
    const token = m[1]!;
    if (FILLER.test(token)) continue;
    const w = token.replace(ALTERNATE, '');
    if (!w) continue;
    words.push({ w, start: Number(m[2]), end: Number(m[3]), conf: Number(m[4]) });
  }
  return words;
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
  private readonly paths: SphinxPaths;

  constructor(private readonly opts: SphinxOptions = {}) {
    this.paths = resolvePaths(opts);
  }

  describe(): string {
    return `sphinx (pocketsphinx: ${this.paths.binary}, model ${path.dirname(this.paths.hmm)}, CPU)`;
  }

  async transcribe(pcm: Int16Array, opts: TranscribeOptions = {}): Promise<Word[]> {
    throwIfAborted(opts.signal);
    if (opts.language && !/^en\b/i.test(opts.language)) {
      throw new EngineUnavailableError(
        `the sphinx engine only has an English (en-us) model; language "${opts.language}" needs the whisper or openai engine`,
      );
    }
    // Checked here rather than left to pocketsphinx, whose own message for a missing model is cryptic.
    const problem = modelProblem(this.paths);
    if (problem) throw new EngineUnavailableError(problem);
    const duration = pcm.length / SAMPLE_RATE;
    const raw = await withTempWav(pcm, this.opts.tmpDir, (wav) => this.run(wav, opts.signal));
    return finishWords(raw, duration, opts.offsetSeconds ?? 0);
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
