import { fork, type ChildProcess } from 'node:child_process';
import { createRequire } from 'node:module';
import path from 'node:path';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { EngineFailedError } from './engine.js';
import type { HostReply, HostRequest, HostSegment } from './whisper.host.js';

const here = fileURLToPath(import.meta.url);
const HOST_FILE = path.join(path.dirname(here), `whisper.host${path.extname(here)}`);
// Running from sources (tests, tsx): the helper needs the same TypeScript loader.
const HOST_EXEC_ARGV = here.endsWith('.ts')
  ? ['--import', pathToFileURL(createRequire(import.meta.url).resolve('tsx')).href]
  : [];
const STDERR_TAIL = 8 * 1024;

/** Starts a helper process (exported for the spec that shows what it protects us from). */
export function forkWhisperHost(): ChildProcess {
  return fork(HOST_FILE, [], {
    execArgv: HOST_EXEC_ARGV,
    serialization: 'advanced',
    stdio: ['ignore', 'ignore', 'pipe', 'ipc'],
  });
}

export interface HostCall {
  resolve: (segments: HostSegment[]) => void;
  reject: (err: Error) => void;
  onProgress: ((fraction: number) => void) | undefined;
}

type LoadRequest = Extract<HostRequest, { type: 'load' }>;
type TranscribeRequest = Extract<HostRequest, { type: 'transcribe' }>;

/**
 * One whisper helper process (whisper.host.ts) at a time, and the calls waiting on it: the
 * engine (whisper.engine.ts) decides what to load and where a call runs; this holds the process,
 * matches its answers to requests, and fails every waiting request with the helper's last native
 * message (often a GGML_ASSERT) when it dies. Whatever was loaded dies with the process: `onGone`
 * tells the engine so, whether the helper exited or was stopped.
 */
export class WhisperHostClient {
  private child: ChildProcess | undefined;
  private stderr = '';
  /** Waiting for the helper's answer to a 'load', per slot. */
  private readonly loadReplies = new Map<number, (reply: HostReply) => void>();
  private readonly calls = new Map<number, HostCall>();
  private nextId = 1;
  /** Counts helpers started, so an answer meant for an earlier helper is recognised as stale. */
  private started = 0;

  constructor(private readonly onGone: () => void) {}

  /** Which helper is running (0: none); compare before and after an await. */
  get generation(): number {
    return this.child ? this.started : 0;
  }

  /** Transcriptions sent and not answered yet. */
  get waiting(): number {
    return this.calls.size;
  }

  spawn(): void {
    this.stderr = '';
    const child = forkWhisperHost();
    this.child = child;
    this.started++;
    child.stderr?.setEncoding('utf8');
    child.stderr?.on('data', (chunk: string) => {
      if (this.child === child) this.stderr = (this.stderr + chunk).slice(-STDERR_TAIL);
    });
    child.on('message', (reply: HostReply) => this.onReply(reply));
    child.on('error', (err) => this.onExit(child, `could not start: ${err.message}`));
    child.on('exit', (code, signal) =>
      this.onExit(child, signal ? `was killed by ${signal}` : `exited with status ${code}`),
    );
  }

  /** Asks the helper to load the model into a slot; the helper's answer. */
  load(request: Omit<LoadRequest, 'type'>, timeoutMs: number): Promise<HostReply> {
    const { slot } = request;
    return new Promise<HostReply>((resolve, reject) => {
      const timer = setTimeout(() => {
        this.loadReplies.delete(slot);
        reject(new EngineFailedError('whisper did not finish loading the model in time'));
      }, timeoutMs);
      this.loadReplies.set(slot, (r) => {
        clearTimeout(timer);
        this.loadReplies.delete(slot);
        resolve(r);
      });
      this.send({ type: 'load', ...request });
    });
  }

  /** Sends a transcription; its answer reaches `call`. Returns the request id. */
  transcribe(request: Omit<TranscribeRequest, 'type' | 'id'>, call: HostCall): number {
    const id = this.nextId++;
    this.calls.set(id, call);
    this.send({ type: 'transcribe', id, ...request });
    return id;
  }

  isWaiting(id: number): boolean {
    return this.calls.has(id);
  }

  /** Who receives the answer of request `id` from now on (undefined: nobody, it is forgotten). */
  redirect(id: number, call: HostCall | undefined): void {
    if (call) this.calls.set(id, call);
    else this.calls.delete(id);
  }

  /** An idle helper must not keep the process alive (a CLI run ends while the model stays loaded). */
  unrefWhenIdle(): void {
    if (this.calls.size === 0) this.child?.channel?.unref();
  }

  /**
   * Kills the helper: the one stop that always works. Loads waiting for it get no answer (their
   * callers stopped it); calls still waiting fail now rather than at their own watchdog, which
   * would then stop the next helper.
   */
  stop(): void {
    const child = this.child;
    this.loadReplies.clear();
    if (!child) return;
    this.forget();
    child.kill('SIGKILL');
    const err = new EngineFailedError('the whisper helper process was restarted after another call failed');
    for (const call of this.calls.values()) call.reject(err);
    this.calls.clear();
  }

  private send(req: HostRequest): void {
    this.child?.channel?.ref();
    this.child?.send(req);
  }

  private onReply(reply: HostReply): void {
    if (reply.type === 'loaded' || reply.type === 'load-failed')
      return this.loadReplies.get(reply.slot)?.(reply);
    const call = this.calls.get(reply.id);
    if (!call) return;
    if (reply.type === 'progress') return call.onProgress?.(Math.min(1, Math.max(0, reply.percent / 100)));
    this.calls.delete(reply.id);
    this.unrefWhenIdle();
    if (reply.type === 'result') call.resolve(reply.segments);
    else call.reject(new EngineFailedError(`whisper failed: ${reply.message}`));
  }

  private onExit(child: ChildProcess, how: string): void {
    if (this.child !== child) return;
    this.forget();
    // The last native message (often a GGML_ASSERT) says why.
    const last = this.stderr.trim().split('\n').at(-1)?.slice(0, 300);
    const err = new EngineFailedError(`the whisper helper process ${how}${last ? `: ${last}` : ''}`);
    for (const [slot, answer] of [...this.loadReplies]) {
      answer({
        type: 'load-failed',
        slot,
        problem: 'model',
        message: `${err.message} (the model file may be corrupt)`,
      });
    }
    for (const call of this.calls.values()) call.reject(err);
    this.calls.clear();
  }

  private forget(): void {
    this.child = undefined;
    this.onGone();
  }
}
