import { spawn, type ChildProcessWithoutNullStreams } from 'node:child_process';
import { setPriority } from 'node:os';
import type { Word } from '../../domain/transcript.js';
import { EngineFailedError, EngineUnavailableError, SAMPLE_RATE } from './engine.js';

/**
 * One warm PocketSphinx decoder: the `sotto-sphinx-host` helper process (native/sphinx-host.c)
 * with its model loaded, driven over stdin/stdout. Requests are answered in order, so a FIFO of
 * waiting replies is all the bookkeeping needed.
 *
 * Watchdog: a request that gets no answer in time (a generous base plus a multiple of the audio
 * still unanswered) kills the helper; so does any protocol error. A dead helper rejects what
 * was waiting with EngineFailedError and is never reused: the pool starts another. Nothing
 * the helper does can block or crash the server.
 */
export interface SphinxHostOptions {
  /** Path of the built helper executable. */
  binary: string;
  /** PocketSphinx arguments (-hmm, -lm, -dict, …). */
  args: string[];
  /** How long loading may take (default 30 s). */
  loadTimeoutMs?: number;
  /** Base allowance for any answer (default 30 s), plus `perAudioSecondMs` per unanswered second. */
  replyTimeoutMs?: number;
  /**
   * Default 5 s per second of audio: over thirty times this decoder's usual 0.15 real-time factor.
   * The watchdog is for a decoder that hangs, not for one that is slow: on a machine loaded ten
   * times over its cores a healthy decoder took more than 2 s per audio second, and killing it
   * failed the job it was doing.
   */
  perAudioSecondMs?: number;
  /**
   * The helper's niceness (Unix `nice`, 0–19; default 0). Batch decoders run niced so that, with
   * uploads keeping every core busy, live decoders and the server itself still get a core at once
   * (see DecoderPool). A process may always lower its children's priority; raising it back needs
   * privileges, which is why a decoder keeps the kind it was made for.
   */
  nice?: number;
}

interface Pending {
  expect: string;
  resolve: (payload: Buffer) => void;
  reject: (err: Error) => void;
}

const STDERR_TAIL = 8 * 1024;
const HEADER = 5;

/** One utterance end found by a scan: where (samples from the scan's start) and the mean there. */
export interface ScanRecord {
  sample: number;
  cmn: Float32Array;
}

export class SphinxHost {
  private readonly child: ChildProcessWithoutNullStreams;
  private readonly pending: Pending[] = [];
  private inbox: Buffer = Buffer.alloc(0);
  private stderr = '';
  private dead: Error | undefined;
  private watchdog: NodeJS.Timeout | undefined;
  /** Samples written since the last reply: what the next answer may have to wait for. */
  private unanswered = 0;
  /** Whether this helper can scan (see `beginScan`); known once `ready` settles. */
  canScan = false;
  /** Floats in a cepstral-mean state (0: the model has none); known once `ready` settles. */
  private cmnFloats = 0;
  readonly ready: Promise<void>;

  constructor(private readonly opts: SphinxHostOptions) {
    this.child = spawn(opts.binary, opts.args, { stdio: ['pipe', 'pipe', 'pipe'] });
    if (opts.nice && this.child.pid !== undefined) {
      try {
        setPriority(this.child.pid, opts.nice);
      } catch {
        // Not permitted by this system (a container's seccomp policy): the decoder just runs at
        // the server's priority, as it did before.
      }
    }
    this.child.stdin.on('error', () => undefined); // EPIPE after a crash: reported through 'exit'
    this.child.stderr.setEncoding('utf8');
    this.child.stderr.on('data', (s: string) => {
      this.stderr = (this.stderr + s).slice(-STDERR_TAIL);
    });
    this.child.stdout.on('data', (chunk: Buffer) => this.onData(chunk));
    // An idle warm decoder must not keep a finishing process alive: referenced only while an
    // answer is awaited (the model load included).
    this.child.unref();
    this.child.on('error', (err: NodeJS.ErrnoException) => {
      this.fail(
        err.code === 'ENOENT' || err.code === 'EACCES'
          ? new EngineUnavailableError(`cannot run the pocketsphinx helper ${opts.binary}: ${err.code}`, {
              cause: err,
            })
          : new EngineFailedError(`cannot start the pocketsphinx helper: ${err.message}`, { cause: err }),
      );
    });
    this.child.on('exit', (code, signal) => {
      const why = signal ? `was killed by ${signal}` : `exited with status ${code}`;
      this.fail(new EngineFailedError(`the pocketsphinx helper ${why}${this.problem()}`));
    });
    this.ready = new Promise<Buffer>((resolve, reject) => {
      this.pending.push({ expect: 'R', resolve, reject });
      this.setRef(true);
      this.arm(opts.loadTimeoutMs ?? 30_000, 'loading the model');
    }).then(
      (payload) => {
        const [, floats, scan] = payload.toString('utf8').split(' ');
        this.cmnFloats = Number(floats) || 0;
        this.canScan = scan === 'scan';
      },
      (err: Error) => {
        // A helper that dies while loading is an installation problem, not a passing failure.
        throw err instanceof EngineFailedError
          ? new EngineUnavailableError(`pocketsphinx could not load its model: ${err.message}`, {
              cause: err,
            })
          : err;
      },
    );
    // Nobody may be listening yet; the rejection is observed through `ready` by the pool.
    this.ready.catch(() => undefined);
  }

  get pid(): number | undefined {
    return this.child.pid;
  }

  get alive(): boolean {
    return !this.dead;
  }

  /** Starts a stream; `cmn` is a cepstral mean carried from an earlier stream of the same voice. */
  async begin(cmn?: Float32Array): Promise<void> {
    const payload = cmn ? Buffer.from(cmn.buffer, cmn.byteOffset, cmn.byteLength) : undefined;
    await this.request('B', payload, 'K');
  }

  /**
   * Starts a scan: audio fed next is only listened to (no language model), and `finishScan` says
   * where this decoder would end each utterance and its cepstral mean there.
   */
  async beginScan(cmn?: Float32Array): Promise<void> {
    const payload = cmn ? Buffer.from(cmn.buffer, cmn.byteOffset, cmn.byteLength) : undefined;
    await this.request('G', payload, 'K');
  }

  /** Ends a scan: each utterance end as a sample count from the scan's start and the mean after it. */
  async finishScan(): Promise<ScanRecord[]> {
    return this.scanRecords(await this.request('F', undefined, 'U'));
  }

  /** The utterance ends a scan found since the last call (in the audio fed so far). */
  async scanSoFar(): Promise<ScanRecord[]> {
    return this.scanRecords(await this.request('P', undefined, 'U'));
  }

  private scanRecords(payload: Buffer): ScanRecord[] {
    const out: ScanRecord[] = [];
    // Records are equal-sized: a u32 then the mean's floats.
    const size = 4 + this.cmnFloats * 4;
    if (payload.length % size !== 0) {
      this.kill('answering a scan with a malformed record list');
      throw new EngineFailedError('the pocketsphinx helper answered a scan with malformed records');
    }
    for (let at = 0; at + size <= payload.length; at += size) {
      out.push({
        sample: payload.readUInt32LE(at),
        cmn: new Float32Array(
          payload.buffer.slice(payload.byteOffset + at + 4, payload.byteOffset + at + size),
        ),
      });
    }
    return out;
  }

  /** Audio for the open stream; answered only through the next partial or final. */
  feed(pcm: Int16Array): void {
    if (this.dead || pcm.length === 0) return;
    this.unanswered += pcm.length;
    this.write('A', Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength));
  }

  /** Tokens of finished sub-utterances and of the open hypothesis, fillers included. */
  async partial(): Promise<string[]> {
    const lines = (await this.request('P', undefined, 'H')).toString('utf8').split('\n');
    const out: string[] = [];
    for (const line of lines) {
      if (line.startsWith('~\t')) out.push(...line.slice(2).split(' ').filter(Boolean));
      else {
        const w = parseWordLine(line);
        if (w) out.push(w.w);
      }
    }
    return out;
  }

  /** Closes the utterance: its words (seconds from the stream start) and the cepstral mean now. */
  async final(): Promise<{ words: Word[]; cmn: Float32Array }> {
    // Both expectations are queued now: the two replies may arrive in one read.
    const [words, cmn] = await Promise.all([this.request('F', undefined, 'W'), this.expect('C')]);
    return {
      words: words
        .toString('utf8')
        .split('\n')
        .map(parseWordLine)
        .filter((w): w is Word => w !== undefined),
      cmn: new Float32Array(cmn.buffer.slice(cmn.byteOffset, cmn.byteOffset + cmn.byteLength)),
    };
  }

  /** Ends the helper at once (a hung or unwanted decoder). */
  kill(reason = 'stopped'): void {
    this.fail(new EngineFailedError(`the pocketsphinx helper was ${reason}`));
  }

  private request(op: string, payload: Buffer | undefined, expect: string): Promise<Buffer> {
    if (this.dead) return Promise.reject(this.dead);
    this.write(op, payload);
    return this.expect(expect);
  }

  private expect(op: string): Promise<Buffer> {
    if (this.dead) return Promise.reject(this.dead);
    return new Promise<Buffer>((resolve, reject) => {
      this.pending.push({ expect: op, resolve, reject });
      this.setRef(true);
      if (!this.watchdog) this.armForAudio();
    });
  }

  private setRef(on: boolean): void {
    for (const stream of [this.child.stdout, this.child.stderr, this.child.stdin] as unknown as {
      ref?: () => void;
      unref?: () => void;
    }[]) {
      if (on) stream.ref?.();
      else stream.unref?.();
    }
  }

  private armForAudio(): void {
    const seconds = this.unanswered / SAMPLE_RATE;
    const ms = (this.opts.replyTimeoutMs ?? 30_000) + seconds * (this.opts.perAudioSecondMs ?? 5000);
    this.arm(ms, `recognising ${seconds.toFixed(1)} s of audio`);
  }

  private arm(ms: number, what: string): void {
    clearTimeout(this.watchdog);
    this.watchdog = setTimeout(() => {
      this.fail(
        new EngineFailedError(`the pocketsphinx helper hung ${what} (no answer in ${ms} ms); it was killed`),
      );
    }, ms);
    this.watchdog.unref();
  }

  private write(op: string, payload?: Buffer): void {
    if (this.dead) return;
    const head = Buffer.alloc(HEADER);
    head[0] = op.charCodeAt(0);
    head.writeUInt32LE(payload?.length ?? 0, 1);
    this.child.stdin.write(payload?.length ? Buffer.concat([head, payload]) : head);
  }

  private onData(chunk: Buffer): void {
    this.inbox = this.inbox.length ? Buffer.concat([this.inbox, chunk]) : chunk;
    while (this.inbox.length >= HEADER) {
      const len = this.inbox.readUInt32LE(1);
      if (this.inbox.length < HEADER + len) break;
      const op = String.fromCharCode(this.inbox[0]!);
      const payload = this.inbox.subarray(HEADER, HEADER + len);
      this.inbox = this.inbox.subarray(HEADER + len);
      if (op === 'E') {
        this.fail(new EngineFailedError(`pocketsphinx: ${payload.toString('utf8')}${this.problem()}`));
        return;
      }
      const next = this.pending.shift();
      if (!next || next.expect !== op) {
        this.fail(new EngineFailedError(`the pocketsphinx helper answered "${op}" out of turn`));
        return;
      }
      this.unanswered = 0;
      clearTimeout(this.watchdog);
      this.watchdog = undefined;
      if (this.pending.length > 0) this.armForAudio();
      else this.setRef(false);
      next.resolve(Buffer.from(payload));
    }
  }

  private fail(err: Error): void {
    if (this.dead) return;
    this.dead = err;
    clearTimeout(this.watchdog);
    if (this.child.exitCode === null && this.child.signalCode === null) this.child.kill('SIGKILL');
    for (const p of this.pending.splice(0)) p.reject(err);
  }

  private problem(): string {
    const line = this.stderr
      .split('\n')
      .filter((l) => /^(FATAL|ERROR)/.test(l))
      .at(-1)
      ?.replace(/^(FATAL|ERROR): "[^"]*", line \d+: /, '')
      .trim();
    return line ? `: ${line}` : '';
  }
}

function parseWordLine(line: string): Word | undefined {
  const parts = line.split('\t');
  if (parts.length !== 4) return undefined;
  const [w, start, end, conf] = parts as [string, string, string, string];
  return { w, start: Number(start), end: Number(end), conf: Number(conf) };
}
