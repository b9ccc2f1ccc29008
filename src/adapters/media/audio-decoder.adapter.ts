import { open, stat, type FileHandle } from 'node:fs/promises';
import { PcmChunker, type PcmChunk } from '../../audio/pcm-chunker.js';
import { Resampler } from '../../audio/resample.js';
import {
  SNIFF_BYTES,
  id3TagLength,
  sniffAfterTag,
  sniffAudio,
  type AudioContainer,
  type SniffResult,
} from '../../audio/sniff.js';
import {
  MAX_WAV_HEADER_BYTES,
  parseWavHeader,
  readFloatChannels,
  type WavFormat,
  type WavHeader,
} from '../../audio/wav.js';
import { AppError } from '../../domain/errors.js';
import {
  defaultFfmpegTools,
  ffmpegPcmArgs,
  ffprobeAudio,
  startMediaProcess,
  type FfmpegTools,
  type MediaProcess,
} from './ffmpeg.adapter.js';

export { checkDecoder, type DecoderStatus } from './ffmpeg.adapter.js';
export type { PcmChunk } from '../../audio/pcm-chunker.js';

/**
 * Turns an audio file on disk into 16 kHz PCM16: a mono mix for ASR/VAD and, for multichannel
 * recordings (calls), one array per channel for exact per-speaker diarization. PCM WAV is read
 * natively; everything else goes through ffmpeg. Output comes as fixed-size chunks so hours of
 * audio never have to sit in memory twice; `decodeAll` collects them for short files and tests.
 */
export const DECODE_RATE = 16_000;

export interface AudioDecoderConfig extends Partial<FfmpegTools> {
  /** Longest recording accepted, in seconds (413 beyond). */
  maxAudioSeconds?: number;
  /** Time one decode may spend waiting for the decoder (not for its consumer). */
  maxDecodeMs?: number;
  /** Time a probe may take. */
  probeTimeoutMs?: number;
}

export interface AudioInfo {
  container: AudioContainer;
  mime: string;
  /** ffprobe's codec name, or the WAV sample encoding ('s16', 'f32'…). */
  codec: string;
  channels: number;
  sampleRate: number;
  /** Seconds; undefined when the container does not say (some streamed WebM/raw AAC). */
  duration: number | undefined;
  /** Decoded without ffmpeg. */
  native: boolean;
  /**
   * The file holds less audio than its header claims (a cut-off upload); only what is there is
   * decoded. Known from the header for WAV; for other formats it is set when decoding ends.
   */
  truncated: boolean;
}

export interface DecodeOptions {
  signal?: AbortSignal;
  /** Samples (at 16 kHz) per yielded chunk; default 30 s. */
  chunkSamples?: number;
  /** Return per-channel PCM for multichannel input (default true). */
  perChannel?: boolean;
}

export interface AudioStream extends AsyncIterable<PcmChunk> {
  readonly info: AudioInfo;
}

export interface DecodedAudio {
  info: AudioInfo;
  sampleRate: typeof DECODE_RATE;
  mono: Int16Array;
  channels: Int16Array[] | undefined;
  /** Seconds actually decoded. */
  duration: number;
}

export interface AudioDecoder {
  /** Identifies and checks a file without decoding it (415/422/413 errors come from here). */
  probe(file: string, options?: { signal?: AbortSignal }): Promise<AudioInfo>;
  /** Probes, then decodes lazily as the stream is iterated (iterate it once, to the end or a break). */
  open(file: string, options?: DecodeOptions): Promise<AudioStream>;
  decodeAll(file: string, options?: DecodeOptions): Promise<DecodedAudio>;
}

const DEFAULTS = {
  maxAudioSeconds: 8 * 3600,
  maxDecodeMs: 30 * 60_000,
  probeTimeoutMs: 30_000,
};
const SUPPORTED = 'WAV, FLAC, Ogg (Opus/Vorbis), MP3, M4A/AAC or WebM';
/** Bytes read per native WAV step (about 3 s of 48 kHz stereo 24-bit). */
const NATIVE_READ_BYTES = 1 << 20;
/** decodeAll never pre-allocates more than this on the word of a header (it grows if needed). */
const PREALLOC_LIMIT_SAMPLES = 30 * 60 * DECODE_RATE;

const undecodable = (message: string, reason: string): AppError =>
  new AppError('undecodable_audio', message, { reason });

interface Probed {
  info: AudioInfo;
  sniff: SniffResult;
  wav: WavHeader | undefined;
}

export function createAudioDecoder(config: AudioDecoderConfig = {}): AudioDecoder {
  const tools: FfmpegTools = { ...defaultFfmpegTools, ...stripUndefined(config) };
  const limits = { ...DEFAULTS, ...stripUndefined(config) };
  const maxSamples = Math.ceil(limits.maxAudioSeconds * DECODE_RATE);
  const tooLong = (): AppError =>
    new AppError(
      'payload_too_large',
      `Recordings longer than ${formatHours(limits.maxAudioSeconds)} are not accepted`,
      {
        maxSeconds: limits.maxAudioSeconds,
      },
    );

  async function readHead(
    file: string,
    size: number,
  ): Promise<{ head: Buffer; wav: WavHeader | undefined; sniffed: SniffResult | undefined }> {
    const fh = await open(file, 'r');
    try {
      let head = Buffer.alloc(Math.min(size, Math.max(SNIFF_BYTES, 64 * 1024)));
      const first = await fh.read(head, 0, head.length, 0);
      head = head.subarray(0, first.bytesRead);
      const sniffed = sniffAudio(head);
      if (sniffed?.container !== 'wav')
        return { head, wav: undefined, sniffed: await pastTag(fh, head, sniffed) };
      // WAV: read further only as far as the chunks before `data` require (capped).
      for (;;) {
        const parsed = parseWavHeader(head, { fileSize: size });
        if (parsed.kind === 'header') return { head, wav: parsed.header, sniffed };
        if (parsed.kind === 'invalid') throw undecodable(parsed.message, 'invalid_wav_header');
        const want = Math.min(parsed.bytes, size, MAX_WAV_HEADER_BYTES);
        if (want <= head.length) throw undecodable('WAV header is incomplete', 'invalid_wav_header');
        const more = Buffer.alloc(want);
        const { bytesRead } = await fh.read(more, 0, want, 0);
        head = more.subarray(0, bytesRead);
      }
    } finally {
      await fh.close();
    }
  }

  async function probeFile(file: string, signal: AbortSignal | undefined): Promise<Probed> {
    signal?.throwIfAborted();
    const size = (await stat(file)).size;
    if (size === 0) throw undecodable('The file is empty', 'empty');
    const { wav, sniffed: sniff } = await readHead(file, size);
    if (!sniff)
      throw new AppError('unsupported_media_type', `Not a supported audio file (send ${SUPPORTED})`);
    let info: AudioInfo;
    if (wav?.format.encoding) {
      info = {
        container: 'wav',
        mime: sniff.mime,
        codec: wav.format.encoding,
        channels: wav.format.channels,
        sampleRate: wav.format.sampleRate,
        duration: wav.duration,
        native: true,
        truncated: wav.truncated,
      };
    } else {
      const probed = await ffprobeAudio(tools, file, sniff.container, {
        signal,
        budgetMs: limits.probeTimeoutMs,
      });
      info = {
        container: sniff.container,
        mime: sniff.mime,
        ...probed,
        native: false,
        truncated: wav?.truncated ?? false,
      };
    }
    if (info.duration !== undefined && info.duration > limits.maxAudioSeconds) throw tooLong();
    return { info, sniff, wav: info.native ? wav : undefined };
  }

  async function* nativeChunks(file: string, header: WavHeader, options: Required<DecodeOptions>) {
    const format = header.format;
    const resamplers =
      format.sampleRate === DECODE_RATE
        ? undefined
        : Array.from({ length: format.channels }, () => new Resampler(format.sampleRate, DECODE_RATE));
    const chunker = new PcmChunker(options.chunkSamples, format.channels, options.perChannel);
    // Like ffmpeg's budget, only our own time counts, not the consumer's between chunks.
    let spent = 0;
    const fh = await open(file, 'r');
    try {
      const buf = Buffer.alloc(
        Math.max(1, Math.floor(NATIVE_READ_BYTES / format.blockAlign)) * format.blockAlign,
      );
      const end = header.dataBytes === undefined ? Infinity : header.dataOffset + header.dataBytes;
      let pos = header.dataOffset;
      let carry = 0;
      while (pos < end) {
        options.signal.throwIfAborted();
        const began = performance.now();
        const { bytesRead } = await fh.read(buf, carry, Math.min(buf.length - carry, end - pos), pos);
        if (bytesRead === 0) break; // the file shrank under us: decode what there was
        pos += bytesRead;
        const filled = carry + bytesRead;
        const whole = filled - (filled % format.blockAlign);
        let channels = readFloatChannels(buf.subarray(0, whole), format);
        carry = filled - whole;
        buf.copyWithin(0, whole, filled);
        if (resamplers) channels = channels.map((c, i) => resamplers[i]!.process(c));
        const chunks = chunker.push(channels);
        if (chunker.samples > maxSamples) throw tooLong();
        spent += performance.now() - began;
        if (spent > limits.maxDecodeMs) throw undecodable('Decoding took too long', 'timeout');
        yield* each(options.signal, chunks);
      }
      if (resamplers) yield* each(options.signal, chunker.push(resamplers.map((r) => r.flush())));
      const last = chunker.end();
      if (last) yield last;
      if (chunker.samples === 0) throw undecodable('The WAV file holds no audio', 'empty');
    } finally {
      await fh.close();
    }
  }

  async function* ffmpegChunks(file: string, probed: Probed, options: Required<DecodeOptions>) {
    const { info, sniff } = probed;
    const args = ffmpegPcmArgs(tools, file, sniff.container, info.channels, DECODE_RATE);
    const format: WavFormat = {
      formatTag: 3,
      extensible: false,
      channels: info.channels,
      sampleRate: DECODE_RATE,
      bitsPerSample: 32,
      blockAlign: 4 * info.channels,
      channelMask: undefined,
      encoding: 'f32',
    };
    const chunker = new PcmChunker(options.chunkSamples, info.channels, options.perChannel);
    const proc: MediaProcess = await startMediaProcess(tools.ffmpegPath, args, {
      signal: options.signal,
      budgetMs: limits.maxDecodeMs,
    });
    let carry: Buffer = Buffer.alloc(0);
    try {
      for (let data = await proc.read(); data; data = await proc.read()) {
        const bytes = carry.length ? Buffer.concat([carry, data]) : data;
        const whole = bytes.length - (bytes.length % format.blockAlign);
        carry = Buffer.from(bytes.subarray(whole));
        const chunks = chunker.push(readFloatChannels(bytes.subarray(0, whole), format));
        if (chunker.samples > maxSamples) throw tooLong();
        yield* each(options.signal, chunks);
      }
      const outcome = await proc.done;
      options.signal.throwIfAborted();
      if (outcome.killedFor === 'timeout') throw undecodable('Decoding took too long', 'timeout');
      if (outcome.code !== 0)
        throw undecodable(`The ${info.mime} file could not be decoded`, 'decode_failed');
      const decoded = chunker.samples / DECODE_RATE;
      if (decoded === 0)
        throw undecodable(`No audio could be decoded from the ${info.mime} file`, 'decode_failed');
      // ffmpeg skips damaged frames and carries on; a file that is mostly damage is refused.
      if (outcome.stderrLines > 0 && info.duration !== undefined && decoded < info.duration / 2)
        throw undecodable(`The ${info.mime} file is damaged`, 'damaged');
      // Cleanly cut short (an interrupted upload): keep what there is, as with a truncated WAV.
      if (info.duration !== undefined && decoded < info.duration * 0.98 - 1) info.truncated = true;
      const last = chunker.end();
      if (last) yield last;
    } finally {
      proc.kill();
      await proc.done;
    }
  }

  function resolveOptions(options: DecodeOptions): Required<DecodeOptions> {
    return {
      signal: options.signal ?? new AbortController().signal,
      chunkSamples: options.chunkSamples ?? 30 * DECODE_RATE,
      perChannel: options.perChannel ?? true,
    };
  }

  const decoder: AudioDecoder = {
    async probe(file, options = {}) {
      return (await probeFile(file, options.signal)).info;
    },

    async open(file, options = {}) {
      const resolved = resolveOptions(options);
      const probed = await probeFile(file, options.signal);
      let used = false;
      return {
        info: probed.info,
        [Symbol.asyncIterator]() {
          if (used) throw new Error('an AudioStream can be iterated once');
          used = true;
          return probed.wav ? nativeChunks(file, probed.wav, resolved) : ffmpegChunks(file, probed, resolved);
        },
      };
    },

    async decodeAll(file, options = {}) {
      const stream = await decoder.open(file, options);
      const wantChannels = (options.perChannel ?? true) && stream.info.channels > 1;
      const expected = stream.info.duration === undefined ? 0 : Math.ceil(stream.info.duration * DECODE_RATE);
      let capacity = Math.min(expected, PREALLOC_LIMIT_SAMPLES) + DECODE_RATE;
      let mono: Int16Array = new Int16Array(capacity);
      let channels: Int16Array[] | undefined = wantChannels
        ? Array.from({ length: stream.info.channels }, () => new Int16Array(capacity))
        : undefined;
      let length = 0;
      for await (const chunk of stream) {
        const needed = chunk.offset + chunk.mono.length;
        if (needed > capacity) {
          capacity = Math.max(needed, Math.ceil(capacity * 1.5));
          mono = grow(mono, capacity);
          channels = channels?.map((c) => grow(c, capacity));
        }
        mono.set(chunk.mono, chunk.offset);
        chunk.channels?.forEach((c, i) => channels![i]!.set(c, chunk.offset));
        length = needed;
      }
      return {
        info: stream.info,
        sampleRate: DECODE_RATE,
        mono: fit(mono, length),
        channels: channels?.map((c) => fit(c, length)),
        duration: length / DECODE_RATE,
      };
    },
  };
  return decoder;
}

/**
 * An ID3 tag (cover art) can be longer than the head, which then only says "MP3". Look at what
 * follows the tag: it may be FLAC or AAC with a tag in front.
 */
async function pastTag(fh: FileHandle, head: Buffer, sniffed: SniffResult | undefined) {
  const tag = id3TagLength(head);
  if (tag === undefined || tag + 64 <= head.length) return sniffed;
  const after = Buffer.alloc(SNIFF_BYTES);
  const { bytesRead } = await fh.read(after, 0, after.length, tag);
  return sniffAfterTag(after.subarray(0, bytesRead)) ?? sniffed;
}

/** Yields chunks one by one, stopping at once when the decode is aborted. */
function* each(signal: AbortSignal, chunks: PcmChunk[]): Generator<PcmChunk> {
  for (const chunk of chunks) {
    signal.throwIfAborted();
    yield chunk;
  }
}

function grow(a: Int16Array, capacity: number): Int16Array {
  const next = new Int16Array(capacity);
  next.set(a);
  return next;
}

/** A view when the slack is small, a copy when it would pin a lot of unused memory. */
function fit(a: Int16Array, length: number): Int16Array {
  return a.length - length > DECODE_RATE * 10 ? a.slice(0, length) : a.subarray(0, length);
}

function formatHours(seconds: number): string {
  return seconds % 3600 === 0 ? `${seconds / 3600} hours` : `${Math.round(seconds)} seconds`;
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}
