import { systemClock, type Clock } from '../../adapters/system/clock.adapter.js';
import type { Logger } from 'pino';
import type { ChunkOptions } from '../../audio/chunker.js';
import { diarize, diarizeChannels, isDualMono, type Diarizer } from '../../audio/diarize.js';
import { ClusteringDiarizer } from '../../audio/diarize-cluster.js';
import { channelWordTime, joinSpeech } from '../../audio/speech-join.js';
import { VadStream } from '../../audio/vad.js';
import { assignSpeakers, buildSegments, sortSpeakers, type SpeakerWord } from '../../domain/segments.js';
import type { Segment, SpeakerTurn, SpeechRegion } from '../../domain/transcript.js';
import { throwIfAborted, type AsrEngine } from '../../adapters/asr/engine.js';
import { DECODE_RATE, type AudioDecoder } from '../../adapters/media/audio-decoder.adapter.js';
import { recognise, type RecogniseJob } from './pipeline-recognise.js';

/**
 * The transcription pipeline for one recording: decode → recognition in parts on every decoder at
 * once (pipeline-recognise.ts: pieces at the engine's own utterance ends, or VAD chunks for
 * engines that cannot scan) → diarization → words to speakers → segments.
 *
 * Memory: the decoder streams 30 s chunks, but the 16 kHz
 * mono PCM of the whole file is kept (2 bytes/sample: 115 MB per hour), plus one array per
 * channel for multichannel files, because the diarizers look at the whole recording, and for a
 * call the joined speech of its parties (about one more mono array for a typical call). The decoder
 * caps recordings at its `maxAudioSeconds` (8 h by default ≈ 0.9 GB mono), which bounds this.
 * Engines see one part (≤ 30 s, or a scanned piece) per decoder at a time.
 *
 * Progress is reported as real work done: decoding 0–10 % (decoded seconds / probed duration),
 * recognition 10–90 % (seconds of parts done, refined within a chunk by engines that report it),
 * diarization and segmentation 90–100 %. It never goes backwards and ends at exactly 1.
 *
 * Speakers: a multichannel file whose channels differ gets one speaker per channel (S1 = first
 * channel; the `speakers` hint does not apply); mono or dual-mono goes to the clustering
 * diarizer with the hint. Words take the speaker whose turns overlap them most.
 */
export interface PipelineInput {
  file: string;
  /** Fairness key in the engine's decoder pool (the recording id; default: the file). */
  group?: string;
  speakers?: number;
  language?: string;
  signal?: AbortSignal;
  onProgress?: (fraction: number) => void;
  /** What the run is doing now (shown with the progress: docs/panel.md, "Progress"). */
  onStage?: (stage: PipelineStage) => void;
}

export type PipelineStage = 'decoding' | 'transcribing' | 'speakers';

export interface PipelineResult {
  durationSeconds: number;
  channels: number;
  engine: string;
  speakers: string[];
  segments: Segment[];
  /** Seconds of audio the engine recognised (lead-ins included): the cost of overlap. */
  recognisedSeconds: number;
}

export type PipelineDecoder = Pick<AudioDecoder, 'open'>;

export interface PipelineDeps {
  decoder: PipelineDecoder;
  engine: AsrEngine;
  logger: Pick<Logger, 'info' | 'debug'>;
  /** Times the stages for the log line and the bench (default: the system clock). */
  clock?: Clock;
  /** Mono diarizer (default: MFCC clustering); the seam for a neural one. */
  diarizer?: Diarizer;
  chunking?: ChunkOptions;
  /** Chunks recognised at once (default: what the engine says it can run in parallel). */
  concurrency?: number;
  /**
   * Seconds of lead-in before each chunk also sent to the engine, whose words are then dropped
   * (the chunk's keep range decides). Engines adapt to the voice as they go (pocketsphinx's live
   * cepstral mean normalisation): starting every chunk cold lost ~3 WER points on the corpus.
   * Mono: the audio just before the chunk, which gives exactly the whole-file accuracy back. One
   * channel of a call: the last *speech* of that channel before the chunk, because the seconds
   * before a turn are usually the other party's silence there; that lead-in left 2.3 points on
   * the table on intake-01's stereo file, the speech lead-in gives the whole-channel accuracy
   * back (on mono it did not help: call-02 lost 3 points). Costs ~15 % more engine time.
   */
  contextSeconds?: number;
  /**
   * Cut mono recordings (and a call's joined speech) where the engine's own scan says (default
   * true when the engine can): no lead-ins, and the words of one pass. False keeps the VAD chunks and lead-ins that
   * engines without a scan get (the tests of that path).
   */
  scan?: boolean;
}

/** Audio of the channel's own kept on each side of a speech region when its speech is joined. */
const JOIN_PAD_SAMPLES = Math.round(0.5 * DECODE_RATE);
/** Silence between two channels' joined speech: pocketsphinx ends an utterance within it. */
const JOIN_GAP_SAMPLES = Math.round(1 * DECODE_RATE);

const DECODE_SHARE = 0.1;
const ASR_SHARE = 0.8;

/**
 * The stage a progress fraction falls in (the shares above): for a worker that reports only the
 * fraction (a remote `sotto worker` of an older version).
 */
export function stageAt(fraction: number): PipelineStage {
  return fraction < DECODE_SHARE
    ? 'decoding'
    : fraction < DECODE_SHARE + ASR_SHARE
      ? 'transcribing'
      : 'speakers';
}

export class PipelineService {
  private readonly diarizer: Diarizer;

  private readonly clock: Clock;

  constructor(private readonly deps: PipelineDeps) {
    this.diarizer = deps.diarizer ?? new ClusteringDiarizer();
    this.clock = deps.clock ?? systemClock;
  }

  /** The engine, shared with live recognition (LiveService) so a model is loaded once. */
  get engine(): AsrEngine {
    return this.deps.engine;
  }

  async run(input: PipelineInput): Promise<PipelineResult> {
    const { signal } = input;
    if (input.speakers !== undefined && !(Number.isInteger(input.speakers) && input.speakers >= 1))
      throw new RangeError('speakers must be a positive integer');
    const progress = monotonic(input.onProgress);
    const began = this.clock.monotonicMs();

    input.onStage?.('decoding');
    const audio = await this.decode(input.file, signal, (f) => progress(f * DECODE_SHARE));
    const decoded = this.clock.monotonicMs();
    progress(DECODE_SHARE);
    input.onStage?.('transcribing');
    const duration = audio.samples / DECODE_RATE;

    const stats = { recognisedSamples: 0, diarizeMs: 0 };
    const segments = buildSegments(
      await this.speakerWords(audio, duration, input, (f) => progress(DECODE_SHARE + f * ASR_SHARE), stats),
    );
    const recognisedSeconds = round3(stats.recognisedSamples / DECODE_RATE);
    const speakers = sortSpeakers(segments.map((s) => s.speaker));
    progress(1);
    this.deps.logger.info(
      {
        durationSeconds: round3(duration),
        channels: audio.channelCount,
        engine: this.deps.engine.id,
        speakers: speakers.length,
        segments: segments.length,
        recognisedPerAudioSecond: duration > 0 ? round3(recognisedSeconds / duration) : 0,
        realTimeFactor: duration > 0 ? round3((this.clock.monotonicMs() - began) / 1000 / duration) : 0,
        // Where the time went, for operators comparing machines or engines.
        decodeMs: Math.round(decoded - began),
        recogniseMs: Math.round(this.clock.monotonicMs() - decoded),
        diarizeMs: Math.round(stats.diarizeMs),
      },
      'transcription pipeline finished',
    );
    return {
      durationSeconds: round3(duration),
      channels: audio.channelCount,
      engine: this.deps.engine.id,
      speakers,
      segments,
      recognisedSeconds,
    };
  }

  /**
   * Streams the file in. The speech regions (VAD) are found only when asked for: the scanned path
   * (every mono file and call on warm pocketsphinx) never needs them, and on the main thread they
   * cost ~2 % of a run (60–100 ms for 46 s) before any decoder could start.
   */
  private async decode(file: string, signal: AbortSignal | undefined, progress: (f: number) => void) {
    const stream = await this.deps.decoder.open(file, { perChannel: true, ...(signal ? { signal } : {}) });
    const channelCount = stream.info.channels;
    const expected = stream.info.duration;
    const mono = new GrowableInt16(expected);
    const channels =
      channelCount > 1 ? Array.from({ length: channelCount }, () => new GrowableInt16(expected)) : [];
    for await (const chunk of stream) {
      throwIfAborted(signal);
      mono.write(chunk.offset, chunk.mono);
      chunk.channels?.forEach((c, i) => channels[i]?.write(chunk.offset, c));
      if (expected) progress(Math.min(1, mono.length / DECODE_RATE / expected));
    }
    const pcm = mono.done();
    let regions: SpeechRegion[] | undefined;
    return {
      mono: pcm,
      channels: channels.map((c) => c.done()),
      channelCount,
      samples: mono.length,
      regions: () => (regions ??= speechRegions(pcm)),
    };
  }

  private recognise(job: RecogniseJob) {
    const { engine, logger, chunking, concurrency, contextSeconds, scan } = this.deps;
    return recognise({ engine, logger, chunking, concurrency, contextSeconds, scan }, job);
  }

  /**
   * Words with their speakers. A multichannel file whose channels differ (a call recorder's one
   * party per side) is recognised channel by channel, each over its own speech regions after
   * crosstalk suppression, and every word takes its channel's speaker: the engine hears each
   * voice at full level and alone, and overlapping speech stays separate. Measured on the
   * corpus's stereo files this kept WER within a word of pocketsphinx run on each channel, where
   * recognising the downmix lost up to 4 points. Engines that scan get both channels' speech
   * joined into one stream (speech-join.ts, docs/engines.md: once, not with lead-ins twice).
   * Otherwise: the mono mix, then the diarizer.
   */
  private async speakerWords(
    audio: { mono: Int16Array; channels: Int16Array[]; regions: () => readonly SpeechRegion[] },
    duration: number,
    input: PipelineInput,
    progress: (f: number) => void,
    stats: { recognisedSamples: number; diarizeMs: number },
  ): Promise<SpeakerWord[]> {
    const { signal } = input;
    if (audio.channels.length > 1 && !isDualMono(audio.channels)) {
      const from = this.clock.monotonicMs();
      const { regions } = diarizeChannels(audio.channels, DECODE_RATE);
      stats.diarizeMs = this.clock.monotonicMs() - from;
      const speech = regions.map((rs) => rs.reduce((s, r) => s + (r.end - r.start), 0));
      const total = speech.reduce((a, b) => a + b, 0);
      const { engine, scan } = this.deps;
      let out: SpeakerWord[];
      if (scan !== false && engine.scan && engine.session) {
        // Every channel's own speech, joined into one stream, through the mono path.
        const joined = joinSpeech(audio.channels, regions, {
          sampleRate: DECODE_RATE,
          padSamples: JOIN_PAD_SAMPLES,
          gapSamples: JOIN_GAP_SAMPLES,
        });
        const words = await this.recognise({
          pcm: joined.pcm,
          regions: () => joined.regions,
          duration: joined.pcm.length / DECODE_RATE,
          input,
          progress,
          leadIn: 'contiguous',
          stats,
        });
        out = words.map((w) => {
          const { channel, start, end } = channelWordTime(joined, w.start, w.end, DECODE_RATE);
          return { ...w, start, end, speaker: `S${channel + 1}` };
        });
      } else {
        // The channels at once: their chunks queue for the same decoders, which stay busy where
        // one channel's few chunks alone would leave one idle.
        const done = speech.map(() => 0);
        const perChannel = await Promise.all(
          audio.channels.map((pcm, c) =>
            this.recognise({
              pcm,
              regions: () => regions[c]!,
              duration,
              input,
              progress: (f) => {
                done[c] = f * speech[c]!;
                progress(total > 0 ? done.reduce((a, b) => a + b, 0) / total : f);
              },
              leadIn: 'speech',
              stats,
            }),
          ),
        );
        out = perChannel.flatMap((words, c) => words.map((w) => ({ ...w, speaker: `S${c + 1}` })));
      }
      progress(1);
      throwIfAborted(signal);
      input.onStage?.('speakers');
      return out.sort((a, b) => a.start - b.start || a.end - b.end);
    }
    // Diarization needs only the audio. It runs on this thread while the last pieces are still
    // being recognised in the decoders' processes (a core would otherwise idle), else after.
    let turns: SpeakerTurn[] | undefined;
    const diarizeNow = () => {
      if (turns || signal?.aborted) return;
      const from = this.clock.monotonicMs();
      const source = audio.channels.length > 1 ? audio.channels : [audio.mono];
      turns = diarize(
        source,
        DECODE_RATE,
        this.diarizer,
        input.speakers ? { speakers: input.speakers } : {},
      ).turns;
      stats.diarizeMs = this.clock.monotonicMs() - from;
    };
    const words = await this.recognise({
      pcm: audio.mono,
      regions: audio.regions,
      duration,
      input,
      progress,
      leadIn: 'contiguous',
      stats,
      whenIdle: diarizeNow,
    });
    progress(1);
    throwIfAborted(signal);
    input.onStage?.('speakers');
    diarizeNow();
    throwIfAborted(signal);
    return assignSpeakers(words, turns!);
  }
}

/** The VAD over a whole recording, fed in the decoder's 30 s chunks as it was while decoding. */
function speechRegions(pcm: Int16Array): SpeechRegion[] {
  const vad = new VadStream(DECODE_RATE);
  const regions: SpeechRegion[] = [];
  const step = 30 * DECODE_RATE;
  for (let at = 0; at < pcm.length; at += step) regions.push(...vad.push(pcm.subarray(at, at + step)));
  regions.push(...vad.end());
  return regions;
}

/** Wraps a progress callback so it only ever sees non-decreasing values in [0, 1]. */
function monotonic(cb: ((fraction: number) => void) | undefined): (fraction: number) => void {
  let last = -1;
  return (fraction) => {
    if (!cb || !Number.isFinite(fraction)) return;
    const f = Math.min(1, Math.max(last, fraction, 0));
    if (f === last) return;
    last = f;
    cb(f);
  };
}

/** An Int16Array that grows as chunks arrive, pre-sized from the probed duration (capped). */
class GrowableInt16 {
  private buf: Int16Array;
  length = 0;

  constructor(expectedSeconds: number | undefined) {
    const guess = expectedSeconds ? Math.ceil(expectedSeconds * DECODE_RATE) + DECODE_RATE : 0;
    this.buf = new Int16Array(Math.min(guess, 30 * 60 * DECODE_RATE) || 60 * DECODE_RATE);
  }

  write(offset: number, data: Int16Array): void {
    const needed = offset + data.length;
    if (needed > this.buf.length) {
      const next = new Int16Array(Math.max(needed, Math.ceil(this.buf.length * 1.5)));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
    }
    this.buf.set(data, offset);
    this.length = Math.max(this.length, needed);
  }

  done(): Int16Array {
    return this.buf.length - this.length > DECODE_RATE * 10
      ? this.buf.slice(0, this.length)
      : this.buf.subarray(0, this.length);
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
