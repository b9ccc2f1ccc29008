import { readFileSync } from 'node:fs';
import { createInterface } from 'node:readline';
import { Writable } from 'node:stream';
import { setTimeout as sleep } from 'node:timers/promises';
import { loadBotConfig } from '../../config/config.js';
import { AppError } from '../../domain/errors.js';
import {
  CaptureError,
  fileFrames,
  micFrames,
  micRecorder,
  rawFrames,
  MIC_MISSING,
} from '../../adapters/media/audio-capture.adapter.js';
import {
  LiveClient,
  LiveClientError,
  type LiveClientErrorKind,
  type Tokens,
} from '../../adapters/network/live-client.adapter.js';
import { IngestStream, type Auth, type Segment, type StreamEvent } from '../bot-stream.js';
import { WatchStream } from '../bot-watch.js';
import { CliError } from '../cli-error.js';

/**
 * `sotto bot`: a capture client for live recordings (docs/live.md, "sotto bot"). It creates a
 * live recording, streams audio into it (paced in real time, or as fast as acknowledgements
 * allow with --fast), prints the final segments a viewer receives, and on Ctrl-C / SIGTERM stops
 * the recording so it is finalised like an upload. Network drops are resumed by sequence number.
 *
 * Exit status: 0 stopped cleanly; 1 usage or other errors; 2 server unreachable or not a Sotto
 * server (check --api); 3 certificate not trusted; 4 credentials refused; 5 recording gone
 * (not found, no longer live, or closed by the server).
 */
export const BOT_INSECURE_WARNING =
  'WARNING: --insecure: the server certificate is NOT verified. Anyone on the network path can ' +
  'impersonate the server and receive the audio and the login. Use --ca FILE instead.';

const EXIT: Record<LiveClientErrorKind, number> = {
  url: 2,
  network: 2,
  tls: 3,
  auth: 4,
  mfa: 4,
  gone: 5,
  refused: 5,
};

/** Frames buffered until acknowledged: 5 s in flight with --fast; up to 5 min across an outage in real time. */
const FAST_WINDOW = 50;
const REALTIME_WINDOW = 3000;
const STOP_TIMEOUT_MS = 60_000;
const MAX_OUTAGE_MS = 120_000;

export interface BotOptions {
  api: string;
  file?: string;
  stdin?: boolean;
  mic?: boolean;
  title?: string;
  speaker?: string;
  token?: string;
  ca?: string;
  insecure?: boolean;
  fast?: boolean;
}

class BotExit extends Error {
  constructor(
    message: string,
    readonly code: number,
  ) {
    super(message);
  }
}

const clock = (seconds: number) => {
  const m = Math.floor(seconds / 60);
  const s = seconds - m * 60;
  return `${String(m).padStart(2, '0')}:${s.toFixed(1).padStart(4, '0')}`;
};

/** Terminal output: segments on stdout, a status line (TTY) or event lines (pipes) on stderr. */
class Screen {
  private status = '';
  private readonly tty = process.stderr.isTTY === true;

  segment(s: Segment): void {
    this.clear();
    process.stdout.write(`[${clock(s.start)}] ${s.speaker}: ${s.text}\n`);
    this.redraw();
  }

  event(line: string): void {
    this.clear();
    process.stderr.write(`sotto bot: ${line}\n`);
    this.redraw();
  }

  setStatus(line: string): void {
    if (!this.tty) return;
    this.status = line;
    this.redraw();
  }

  done(): void {
    this.clear();
    this.status = '';
  }

  private clear(): void {
    if (this.tty && this.status) process.stderr.write('\r\x1b[K');
  }

  private redraw(): void {
    if (this.tty && this.status) process.stderr.write(`\r\x1b[K${this.status}`);
  }
}

async function ask(question: string, hidden = false): Promise<string> {
  let muted = false;
  const output = new Writable({
    write(chunk: Buffer, _enc, cb) {
      if (!muted) process.stderr.write(chunk);
      cb();
    },
  });
  const rl = createInterface({ input: process.stdin, output, terminal: true });
  try {
    const answer = new Promise<string>((resolve) => rl.question(question, resolve));
    muted = hidden; // the prompt itself is shown; what is typed after it is not
    const value = await answer;
    if (hidden) process.stderr.write('\n');
    return value.trim();
  } finally {
    rl.close();
  }
}

/** --token / SOTTO_TOKEN, or an interactive login (email, password without echo, TOTP if asked). */
async function authenticate(
  client: LiveClient,
  opts: BotOptions,
): Promise<{ auth: Auth; refreshToken: () => string | undefined }> {
  const given = opts.token ?? loadBotConfig().token;
  if (given)
    return {
      auth: { token: () => given, renew: () => Promise.resolve(false) },
      refreshToken: () => undefined,
    };
  if (!process.stdin.isTTY || opts.stdin)
    throw new BotExit(
      'no access token: set SOTTO_TOKEN (or pass --token), or run in a terminal to log in with a password',
      1,
    );
  const email = await ask('Email: ');
  const password = await ask('Password: ', true);
  let tokens: Tokens;
  try {
    tokens = await client.login(email, password);
  } catch (err) {
    if (!(err instanceof LiveClientError) || err.kind !== 'mfa') throw err;
    tokens = await client.login(email, password, await ask('One-time code: '));
  }
  const auth: Auth = {
    token: () => tokens.accessToken,
    renew: async () => {
      if (!tokens.refreshToken) return false;
      tokens = await client.refresh(tokens.refreshToken);
      return true;
    },
  };
  // Refresh tokens rotate: the one to log out with is the latest.
  return { auth, refreshToken: () => tokens.refreshToken };
}

function source(opts: BotOptions, signal: AbortSignal, searchPath: string): AsyncGenerator<Buffer> {
  if (opts.file) return fileFrames(opts.file, signal);
  if (opts.stdin) return rawFrames(process.stdin, signal);
  return micFrames(signal, searchPath);
}

export async function runBot(opts: BotOptions): Promise<void> {
  const inputs = [opts.file !== undefined, opts.stdin === true, opts.mic === true].filter(Boolean).length;
  if (inputs !== 1) throw new BotExit('give exactly one of --file FILE, --stdin or --mic', 1);
  if (opts.ca && opts.insecure) throw new BotExit('--ca and --insecure exclude each other', 1);
  const { searchPath } = loadBotConfig();
  // Before a recording is created for nothing.
  if (opts.mic && !micRecorder(searchPath)) throw new BotExit(MIC_MISSING, 1);
  let ca: string | undefined;
  if (opts.ca) {
    try {
      ca = readFileSync(opts.ca, 'utf8');
    } catch (err) {
      throw new BotExit(
        `--ca: cannot read ${opts.ca} (${(err as NodeJS.ErrnoException).code ?? 'error'})`,
        1,
      );
    }
  }
  if (opts.insecure) process.stderr.write(`${BOT_INSECURE_WARNING}\n`);
  const client = new LiveClient({ baseUrl: opts.api, ca, insecure: opts.insecure });
  const screen = new Screen();
  const abort = new AbortController();
  let signalled: string | undefined;
  let created = false;
  const onSignal = (sig: NodeJS.Signals) => {
    // A second Ctrl-C, or one before a recording exists: leave now.
    if (signalled || !created) process.exit(1);
    signalled = sig;
    screen.event(`${sig}: stopping the recording…`);
    abort.abort();
  };
  process.on('SIGINT', onSignal);
  process.on('SIGTERM', onSignal);
  const { auth, refreshToken } = await authenticate(client, opts);
  try {
    const id = await client.createLive(auth.token(), opts.title);
    created = true;
    screen.event(`live recording ${id}`);
    const onEvent = (e: StreamEvent) => {
      if (e.type === 'reconnecting')
        screen.event(`connection lost (${e.reason}); reconnecting${e.delayMs ? ` in ${e.delayMs} ms` : ''}`);
      else if (e.type === 'connected' && e.resumedAt !== undefined)
        screen.event(`resumed at frame ${e.resumedAt}`);
      else if (e.type === 'missed')
        screen.event(
          `${e.count} segment(s) went out while the viewer was reconnecting; the stored transcript has them`,
        );
    };
    let segments = 0;
    // The utterance being spoken, shown on the status line only (stdout stays finals-only).
    let partial: { id: string; speaker: string; text: string } | undefined;
    const finals = new Set<string>();
    const watch = new WatchStream(client, id, auth, {
      maxOutageMs: MAX_OUTAGE_MS,
      onEvent,
      onSegment: (s) => {
        segments++;
        finals.add(s.id);
        if (partial?.id === s.id) partial = undefined;
        screen.segment(s);
      },
      onPartial: (p) => {
        if (!finals.has(p.id)) partial = p;
      },
    });
    // Subscribe before the first frame: segments are not replayed to late viewers.
    await Promise.race([watch.ready, watch.finished]);
    const ingest = new IngestStream(client, id, opts.speaker, auth, {
      windowFrames: opts.fast ? FAST_WINDOW : REALTIME_WINDOW,
      maxOutageMs: MAX_OUTAGE_MS,
      onEvent,
    });
    const ended = ingest.done();
    ended.catch(() => undefined);
    const statusTimer = setInterval(() => {
      const p = ingest.progress;
      const line = `● live ${clock(p.sent / 10)} sent · ${clock(p.acked / 10)} received · ${segments} segment(s)`;
      const heard = partial ? ` · ${partial.speaker}: …${partial.text}` : '';
      // One terminal line: the newest words of the partial are the ones worth showing.
      const room = (process.stderr.columns || 80) - 1 - line.length;
      screen.setStatus(
        line + (heard.length <= room ? heard : room > 8 ? ` · …${heard.slice(-(room - 4))}` : ''),
      );
    }, 500);
    try {
      // Real time: frame n leaves at t0 + its start time (a clock, not accumulated sleeps).
      const paced = !opts.fast && !opts.mic;
      const t0 = performance.now();
      let samples = 0;
      let endedEarly = false;
      void ended.then(
        () => (endedEarly = true),
        () => (endedEarly = true),
      );
      try {
        for await (const frame of source(opts, abort.signal, searchPath)) {
          if (abort.signal.aborted || endedEarly) break;
          if (paced) {
            const wait = t0 + samples / 16 - performance.now();
            if (wait > 0) await sleep(wait, undefined, { signal: abort.signal }).catch(() => undefined);
            if (abort.signal.aborted) break;
          }
          await ingest.write(frame);
          samples += frame.length / 2;
        }
      } catch (err) {
        // Ctrl-C interrupts a decoder or recorder mid-read: that is the normal way out.
        if (!abort.signal.aborted) throw err;
      }
      if (endedEarly) {
        const r = await ended;
        throw new BotExit(`the server ended the recording (${r.reason}); status ${r.status ?? 'unknown'}`, 5);
      }
      screen.setStatus('● stopping: waiting for the server to receive everything…');
      if (!(await ingest.flush(STOP_TIMEOUT_MS)))
        screen.event(
          `the server did not acknowledge ${ingest.progress.held} frame(s) in time; stopping anyway`,
        );
      // After a network drop the viewer reconnects on its own; stopped before it is back, it would
      // miss the last finals (they come from the backlog, which the stop drops).
      if (!(await watch.watching(STOP_TIMEOUT_MS)))
        screen.event(
          'the viewer is not connected; segments may be missing here (the stored transcript has them)',
        );
      const status = await ingest.stop(STOP_TIMEOUT_MS);
      if (status === undefined) throw new BotExit('the server did not confirm the stop in time', 5);
      // The viewer gets the last utterances' segments, then `stopped`.
      const grace = new AbortController();
      await Promise.race([
        // The recording is stopped: a viewer that drops now and finds it gone (409) has ended.
        watch.finished.catch((err: unknown) => {
          if (!(err instanceof LiveClientError && err.kind === 'gone')) throw err;
        }),
        sleep(STOP_TIMEOUT_MS, undefined, { signal: grace.signal }).catch(() => undefined),
      ]);
      grace.abort(); // a pending timer would keep the process alive
      watch.close();
      screen.done();
      screen.event(
        `recording ${id} stopped: ${status} (${segments} segment(s), ${clock(samples / 16_000)} of audio)`,
      );
    } finally {
      clearInterval(statusTimer);
      watch.close();
    }
  } finally {
    process.off('SIGINT', onSignal);
    process.off('SIGTERM', onSignal);
    const refresh = refreshToken();
    if (refresh) await client.logout(auth.token(), refresh);
    client.close();
  }
}

function exitFor(err: unknown): BotExit {
  if (err instanceof BotExit) return err;
  if (err instanceof LiveClientError) return new BotExit(err.message, EXIT[err.kind]);
  if (err instanceof CaptureError || err instanceof AppError) return new BotExit(err.message, 1);
  return new BotExit((err as Error).message, 1);
}

/**
 * The command's action (bot-command.ts): usage errors end as a CliError (status 1); the others
 * are printed here and leave the status that names their cause.
 */
export async function runBotCommand(opts: BotOptions): Promise<void> {
  try {
    await runBot(opts);
  } catch (err) {
    const exit = exitFor(err);
    if (exit.code === 1) throw new CliError(exit.message);
    process.stderr.write(`sotto: ${exit.message}\n`);
    process.exitCode = exit.code;
  }
}
