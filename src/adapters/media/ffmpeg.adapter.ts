import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import path from 'node:path';
import type { AudioContainer } from '../../audio/sniff.js';
import { MAX_WAV_CHANNELS } from '../../audio/wav.js';
import { AppError } from '../../domain/errors.js';

/**
 * ffmpeg/ffprobe from the distribution, run as child processes: argument arrays (never a shell),
 * no stdin, one thread, bounded stderr, and killed (SIGKILL: they hold nothing worth a clean
 * shutdown) on abort, on a time budget, or when the consumer stops reading.
 */
export interface FfmpegTools {
  ffmpegPath: string;
  ffprobePath: string;
  /** Decoder and filter threads per process (the machine also runs ASR). */
  threads: number;
}

export const defaultFfmpegTools: FfmpegTools = { ffmpegPath: 'ffmpeg', ffprobePath: 'ffprobe', threads: 1 };

const STDERR_TAIL_CHARS = 4096;
const PROBE_OUTPUT_LIMIT = 1 << 20;

export interface ProcessOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  /** Why we ended it, if we did. */
  killedFor: 'abort' | 'timeout' | 'cleanup' | 'output_limit' | undefined;
  /** Lines written to stderr (only errors at -loglevel error) and the last few KB of them. */
  stderrLines: number;
  stderrTail: string;
}

export interface MediaProcess {
  readonly pid: number | undefined;
  /** Next piece of stdout, or undefined at its end. Time spent here counts against the budget. */
  read(): Promise<Buffer | undefined>;
  /** Resolves once the process has exited and its pipes are closed. */
  readonly done: Promise<ProcessOutcome>;
  kill(reason?: ProcessOutcome['killedFor']): void;
}

export const decoderUnavailable = (tool: string): AppError =>
  new AppError(
    'decoder_unavailable',
    `Decoding this audio format needs ${tool}, which is not installed on the server (install the ffmpeg package; WAV files work without it)`,
  );

/**
 * Starts a process. `budgetMs` limits the time spent waiting for its output (not the time the
 * consumer spends on what it got), so a slow transcription downstream never trips it but a
 * decoder that hangs does.
 */
export async function startMediaProcess(
  command: string,
  args: string[],
  options: { signal?: AbortSignal; budgetMs: number },
): Promise<MediaProcess> {
  const { signal, budgetMs } = options;
  signal?.throwIfAborted();
  const child: ChildProcess = spawn(command, args, { stdio: ['ignore', 'pipe', 'pipe'], windowsHide: true });
  let killedFor: ProcessOutcome['killedFor'];
  let timer: NodeJS.Timeout | undefined;
  const kill = (reason: ProcessOutcome['killedFor'] = 'cleanup'): void => {
    if (child.exitCode === null && child.signalCode === null) {
      killedFor ??= reason;
      child.kill('SIGKILL');
    }
    // Unread output would hold the pipe (and so 'close') open forever.
    child.stdout?.destroy();
  };
  let stderrLines = 0;
  let stderrTail = '';
  child.stderr!.setEncoding('utf8');
  child.stderr!.on('data', (text: string) => {
    for (let i = text.indexOf('\n'); i >= 0; i = text.indexOf('\n', i + 1)) stderrLines++;
    stderrTail = (stderrTail + text).slice(-STDERR_TAIL_CHARS);
  });
  const closed = new Promise<ProcessOutcome>((resolve) => {
    child.once('close', (code: number | null, sig: NodeJS.Signals | null) =>
      resolve({ code, signal: sig, killedFor, stderrLines, stderrTail }),
    );
  });
  try {
    await once(child, 'spawn');
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === 'ENOENT' || code === 'EACCES') throw decoderUnavailable(command);
    throw err;
  }
  const onAbort = (): void => kill('abort');
  signal?.addEventListener('abort', onAbort, { once: true });
  const done = closed.finally(() => {
    signal?.removeEventListener('abort', onAbort);
    clearTimeout(timer);
  });
  if (signal?.aborted) onAbort();

  let spent = 0;
  const stdout = child.stdout![Symbol.asyncIterator]() as AsyncIterator<Buffer>;
  return {
    pid: child.pid,
    done,
    kill,
    async read() {
      const started = performance.now();
      timer = setTimeout(() => kill('timeout'), Math.max(0, budgetMs - spent));
      try {
        const next = await stdout.next();
        return next.done ? undefined : next.value;
      } catch {
        return undefined; // the pipe broke because the process died; `done` says why
      } finally {
        clearTimeout(timer);
        spent += performance.now() - started;
      }
    },
  };
}

/** Runs a process to completion and returns its (bounded) stdout. */
export async function runMediaProcess(
  command: string,
  args: string[],
  options: { signal?: AbortSignal; budgetMs: number; maxOutputBytes?: number },
): Promise<{ stdout: Buffer; outcome: ProcessOutcome }> {
  const proc = await startMediaProcess(command, args, options);
  const limit = options.maxOutputBytes ?? PROBE_OUTPUT_LIMIT;
  const parts: Buffer[] = [];
  let size = 0;
  try {
    for (let part = await proc.read(); part; part = await proc.read()) {
      size += part.length;
      if (size > limit) {
        proc.kill('output_limit');
        break;
      }
      parts.push(part);
    }
  } finally {
    proc.kill();
  }
  return { stdout: Buffer.concat(parts), outcome: await proc.done };
}

export interface DecoderStatus {
  available: boolean;
  ffmpeg: string | undefined;
  ffprobe: string | undefined;
  /** One line for a start-up log. */
  message: string;
}

async function toolVersion(command: string): Promise<string | undefined> {
  try {
    const { stdout, outcome } = await runMediaProcess(command, ['-hide_banner', '-version'], {
      budgetMs: 10_000,
      maxOutputBytes: 64 * 1024,
    });
    if (outcome.code !== 0) return undefined;
    return /version (\S+)/.exec(stdout.toString('utf8'))?.[1] ?? 'unknown';
  } catch {
    return undefined;
  }
}

/**
 * Whether ffmpeg and ffprobe can run. The server calls this at start-up and warns when they are
 * missing: native WAV still works, every other format fails its job with `decoder_unavailable`.
 */
export async function checkDecoder(tools: Partial<FfmpegTools> = {}): Promise<DecoderStatus> {
  const { ffmpegPath, ffprobePath } = { ...defaultFfmpegTools, ...tools };
  const [ffmpeg, ffprobe] = await Promise.all([toolVersion(ffmpegPath), toolVersion(ffprobePath)]);
  const available = ffmpeg !== undefined && ffprobe !== undefined;
  const missing = [ffmpeg ? undefined : ffmpegPath, ffprobe ? undefined : ffprobePath].filter(Boolean);
  return {
    available,
    ffmpeg,
    ffprobe,
    message: available
      ? `audio decoder: ffmpeg ${ffmpeg}`
      : `audio decoder: ${missing.join(' and ')} not found; only PCM WAV uploads can be processed (install the distribution's ffmpeg package)`,
  };
}

/** ffmpeg demuxer per sniffed container: ffmpeg never guesses the format of an upload itself. */
const DEMUXER: Record<AudioContainer, string> = {
  wav: 'wav',
  flac: 'flac',
  ogg: 'ogg',
  mp3: 'mp3',
  mp4: 'mov',
  aac: 'aac',
  webm: 'matroska',
  matroska: 'matroska',
};

/** `file:` keeps ffmpeg from reading a path as another protocol or an option. */
function fileUrl(file: string): string {
  return `file:${path.resolve(file)}`;
}

/** Only local files, read with the demuxer the bytes were sniffed as. */
const inputArgs = (file: string, container: AudioContainer): string[] => [
  ...['-protocol_whitelist', 'file', '-f', DEMUXER[container]],
  ...(file ? ['-i', fileUrl(file)] : []),
];

/**
 * Arguments to decode the first audio stream of `file` to interleaved float32 at `rate`, keeping
 * its channels (the caller derives the mono mix and per-channel PCM itself, identically to the
 * native WAV path; float so the mix is rounded once).
 */
export function ffmpegPcmArgs(
  tools: FfmpegTools,
  file: string,
  container: AudioContainer,
  channels: number,
  rate: number,
): string[] {
  const threads = String(tools.threads);
  return [
    ...['-nostdin', '-hide_banner', '-loglevel', 'error', '-threads', threads, '-filter_threads', threads],
    ...inputArgs(file, container),
    ...['-map', '0:a:0', '-vn', '-sn', '-dn'],
    ...['-ac', String(channels), '-ar', String(rate), '-c:a', 'pcm_f32le', '-f', 'f32le', 'pipe:1'],
  ];
}

export interface ProbedStream {
  codec: string;
  channels: number;
  sampleRate: number;
  /** Seconds; undefined when the container does not say. */
  duration: number | undefined;
}

interface ProbeJson {
  streams?: {
    codec_type?: string;
    codec_name?: string;
    channels?: number;
    sample_rate?: string;
    duration?: string;
  }[];
  format?: { duration?: string };
}

const undecodable = (message: string, reason: string): AppError =>
  new AppError('undecodable_audio', message, { reason });

function finite(value: string | undefined): number | undefined {
  const n = Number(value);
  return value !== undefined && Number.isFinite(n) && n >= 0 ? n : undefined;
}

/** ffprobe's view of the first audio stream; 422 when there is none or it cannot be read. */
export async function ffprobeAudio(
  tools: FfmpegTools,
  file: string,
  container: AudioContainer,
  options: { signal?: AbortSignal; budgetMs: number },
): Promise<ProbedStream> {
  const unreadable = () =>
    undecodable(`The file could not be read as ${container.toUpperCase()}`, 'unreadable');
  const args = [
    ...['-v', 'error', '-hide_banner'],
    ...inputArgs('', container),
    ...[
      '-of',
      'json',
      '-show_entries',
      'stream=codec_type,codec_name,channels,sample_rate,duration:format=duration',
    ],
    fileUrl(file),
  ];
  const { stdout, outcome } = await runMediaProcess(tools.ffprobePath, args, options);
  options.signal?.throwIfAborted();
  if (outcome.killedFor === 'timeout') throw undecodable('The file took too long to inspect', 'timeout');
  if (outcome.code !== 0) throw unreadable();
  let parsed: ProbeJson;
  try {
    parsed = JSON.parse(stdout.toString('utf8')) as ProbeJson;
  } catch {
    throw unreadable();
  }
  const stream = parsed.streams?.find((s) => s.codec_type === 'audio');
  if (!stream) throw undecodable('The file contains no audio', 'no_audio_stream');
  const channels = Number(stream.channels);
  const sampleRate = Number(stream.sample_rate);
  if (!Number.isInteger(channels) || channels < 1 || channels > MAX_WAV_CHANNELS)
    throw undecodable(`Audio with ${stream.channels ?? 'no'} channels is not supported`, 'channels');
  if (!Number.isFinite(sampleRate) || sampleRate <= 0) throw unreadable();
  return {
    codec: stream.codec_name ?? 'unknown',
    channels,
    sampleRate,
    duration: finite(stream.duration) ?? finite(parsed.format?.duration),
  };
}
