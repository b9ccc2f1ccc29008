import { VadStream } from '../audio/vad.js';
import type { SpeechRegion, Word } from '../domain/transcript.js';

/**
 * The in-memory state of one live recording on the node that ingests it: one stream per
 * participant (PCM16 LE, 16 kHz, mono), each with its own sequence numbers, audio buffer and
 * streaming VAD. Closed VAD regions (utterances) go through the engine one at a time and come
 * out as final segments. Pure state and logic: sockets, the database and the bus belong to
 * LiveService, the engine is passed in.
 *
 * Phase 1 keeps the audio here, in memory (32 kB per second per stream, bounded by the maximum
 * duration): a server restart loses an unfinished session (docs/live.md, phase 2).
 */
export const LIVE_SAMPLE_RATE = 16_000;

/** Bus payloads are sealed with the org's data key, bound to the recording (AAD). */
export const liveSegmentLocation = (orgId: string, recordingId: string) =>
  ({ orgId, table: 'live', rowId: recordingId, field: 'segment' }) as const;

/** WebSocket close codes of the live protocol (docs/live.md lists them for client authors). */
export const LIVE_CLOSE = {
  normal: 1000,
  shuttingDown: 1001,
  malformed: 4400,
  unauthenticated: 4401,
  notFound: 4404,
  idle: 4408,
  conflict: 4409,
  tooLarge: 4413,
  sequenceGap: 4422,
  overloaded: 4429,
} as const;

/** A protocol violation or refusal: the socket is closed with `code` and `reason`. */
export class LiveProtocolError extends Error {
  constructor(
    readonly code: number,
    readonly reason: string,
  ) {
    super(reason);
    this.name = 'LiveProtocolError';
  }
}

export interface LiveLimits {
  maxFrameBytes: number;
  /** Longest audio one stream may send (the session stops itself there). */
  maxSeconds: number;
  maxStreams: number;
  /** Utterance audio waiting for live recognition beyond this is skipped (the final job covers it). */
  maxBacklogSeconds: number;
}

export interface LiveSegment {
  id: string;
  /** Order of emission within the recording, from 1. */
  seq: number;
  speaker: string;
  start: number;
  end: number;
  text: string;
  words: Word[];
}

/** Words of one stretch of PCM, times shifted by `offsetSeconds`. */
export type Recognise = (pcm: Int16Array, offsetSeconds: number) => Promise<Word[]>;

export interface LiveSessionEvents {
  segment(segment: LiveSegment): Promise<void>;
  /** Live recognition fell behind and skipped an utterance (the stored transcript still has it). */
  lagging(): void;
  /** Recognition failed for one utterance (engine error); the session goes on. */
  failed(err: unknown): void;
}

/** Lead-in audio before an utterance, sent to the engine and dropped from its words (see pipeline). */
const CONTEXT_SECONDS = 2;
/** Longer utterances are cut into pieces of at most this (engines work on ≤ 30 s windows). */
const MAX_UTTERANCE_SECONDS = 25;
// eslint-disable-next-line no-control-regex -- refusing control characters is the point
const LABEL = /^[^\u0000-\u001f\u007f-\u009f]{1,60}$/u;

class PcmBuffer {
  private buf = new Int16Array(LIVE_SAMPLE_RATE * 10);
  length = 0;

  append(pcm: Int16Array): void {
    if (this.length + pcm.length > this.buf.length) {
      const next = new Int16Array(Math.max(this.length + pcm.length, this.buf.length * 2));
      next.set(this.buf.subarray(0, this.length));
      this.buf = next;
    }
    this.buf.set(pcm, this.length);
    this.length += pcm.length;
  }

  view(from = 0, to = this.length): Int16Array {
    return this.buf.subarray(Math.max(0, from), Math.min(this.length, to));
  }
}

export class LiveStream {
  readonly pcm = new PcmBuffer();
  readonly vad = new VadStream(LIVE_SAMPLE_RATE);
  /** Sequence number the next new frame must carry (so `nextSeq - 1` is acknowledged). */
  nextSeq = 0;
  /** Sequence number of the next binary frame on the attached socket. */
  incomingSeq = 0;
  attached = false;
  /** Audio handed to recognition so far (samples), so a region is never recognised twice. */
  recognisedTo = 0;

  constructor(
    readonly label: string,
    /** Where this stream's first sample sits on the recording's timeline. */
    readonly offsetSamples: number,
  ) {}

  get acked(): number {
    return this.nextSeq - 1;
  }

  get seconds(): number {
    return this.pcm.length / LIVE_SAMPLE_RATE;
  }
}

interface Utterance {
  stream: LiveStream;
  from: number;
  to: number;
}

export class LiveSession {
  readonly streams = new Map<string, LiveStream>();
  private readonly queue: Utterance[] = [];
  private running: Promise<void> | undefined;
  private segmentSeq = 0;
  private readonly startedAt = Date.now();
  stopping = false;
  lastFrameAt = Date.now();

  constructor(
    readonly recordingId: string,
    readonly orgId: string,
    private readonly limits: LiveLimits,
    private readonly recognise: Recognise,
    private readonly events: LiveSessionEvents,
  ) {}

  /**
   * A socket starts (or resumes) the stream of `participant`. `seq` is the number its next
   * binary frame carries: at most the next expected one (lower numbers are resent frames and are
   * skipped), never beyond it (a gap: audio would be missing). Returns the acknowledged seq.
   */
  attach(participant: string | undefined, seq: number | undefined): LiveStream {
    if (this.stopping) throw new LiveProtocolError(LIVE_CLOSE.conflict, 'the recording is stopping');
    const label = participant ?? 'Speaker 1';
    if (!LABEL.test(label)) throw new LiveProtocolError(LIVE_CLOSE.malformed, 'invalid participant label');
    let stream = this.streams.get(label);
    if (!stream) {
      if (this.streams.size >= this.limits.maxStreams)
        throw new LiveProtocolError(LIVE_CLOSE.overloaded, 'too many streams for this recording');
      const offset =
        this.streams.size === 0 ? 0 : Math.round(((Date.now() - this.startedAt) / 1000) * LIVE_SAMPLE_RATE);
      stream = new LiveStream(label, offset);
      this.streams.set(label, stream);
    }
    if (stream.attached)
      throw new LiveProtocolError(LIVE_CLOSE.conflict, 'this participant is already streaming');
    const from = seq ?? stream.nextSeq;
    if (from > stream.nextSeq)
      throw new LiveProtocolError(LIVE_CLOSE.sequenceGap, `sequence gap: expected ${stream.nextSeq}`);
    stream.incomingSeq = from;
    stream.attached = true;
    return stream;
  }

  detach(stream: LiveStream): void {
    stream.attached = false;
  }

  /** One binary frame. Returns the acknowledged seq; a resent (duplicate) frame changes nothing. */
  frame(stream: LiveStream, bytes: Buffer): number {
    if (bytes.length > this.limits.maxFrameBytes)
      throw new LiveProtocolError(
        LIVE_CLOSE.tooLarge,
        `frame larger than ${this.limits.maxFrameBytes} bytes`,
      );
    if (bytes.length % 2 !== 0)
      throw new LiveProtocolError(LIVE_CLOSE.malformed, 'PCM16 frames have an even byte length');
    if (this.stopping) throw new LiveProtocolError(LIVE_CLOSE.conflict, 'the recording is stopping');
    const seq = stream.incomingSeq++;
    if (seq < stream.nextSeq) return stream.acked;
    if (stream.seconds + bytes.length / 2 / LIVE_SAMPLE_RATE > this.limits.maxSeconds)
      throw new LiveProtocolError(LIVE_CLOSE.tooLarge, 'maximum recording duration reached');
    const pcm = new Int16Array(bytes.length / 2);
    for (let i = 0; i < pcm.length; i++) pcm[i] = bytes.readInt16LE(i * 2);
    stream.pcm.append(pcm);
    stream.nextSeq = seq + 1;
    this.lastFrameAt = Date.now();
    for (const region of stream.vad.push(pcm)) this.enqueue(stream, region);
    return stream.acked;
  }

  /** No more audio: closes every open utterance and waits until all are recognised. */
  async finish(): Promise<void> {
    this.stopping = true;
    for (const stream of this.streams.values()) for (const r of stream.vad.end()) this.enqueue(stream, r);
    while (this.running) await this.running;
  }

  /** The received audio: one channel per participant stream (aligned on the timeline), or mono. */
  audio(): Int16Array[] {
    const streams = [...this.streams.values()].filter((s) => s.pcm.length > 0);
    if (streams.length <= 1) return streams.map((s) => s.pcm.view().slice());
    const length = Math.max(...streams.map((s) => s.offsetSamples + s.pcm.length));
    return streams.map((s) => {
      const channel = new Int16Array(length);
      channel.set(s.pcm.view(), s.offsetSamples);
      return channel;
    });
  }

  get receivedSeconds(): number {
    return Math.max(0, ...[...this.streams.values()].map((s) => s.seconds));
  }

  private backlogSeconds(): number {
    return this.queue.reduce((s, u) => s + (u.to - u.from), 0) / LIVE_SAMPLE_RATE;
  }

  private enqueue(stream: LiveStream, region: SpeechRegion): void {
    let from = Math.max(stream.recognisedTo, Math.round(region.start * LIVE_SAMPLE_RATE));
    const to = Math.min(stream.pcm.length, Math.round(region.end * LIVE_SAMPLE_RATE));
    if (to <= from) return;
    stream.recognisedTo = to;
    const max = MAX_UTTERANCE_SECONDS * LIVE_SAMPLE_RATE;
    for (; from < to; from += max) this.queue.push({ stream, from, to: Math.min(to, from + max) });
    // Bounded: live text that arrives minutes late is worth less than keeping up.
    while (this.queue.length > 1 && this.backlogSeconds() > this.limits.maxBacklogSeconds) {
      this.queue.shift();
      this.events.lagging();
    }
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  private async drain(): Promise<void> {
    for (let u = this.queue.shift(); u; u = this.queue.shift()) {
      try {
        await this.recogniseOne(u);
      } catch (err) {
        this.events.failed(err);
      }
    }
  }

  private async recogniseOne({ stream, from, to }: Utterance): Promise<void> {
    const lead = Math.max(0, from - CONTEXT_SECONDS * LIVE_SAMPLE_RATE);
    const shift = stream.offsetSamples / LIVE_SAMPLE_RATE;
    const found = await this.recognise(stream.pcm.view(lead, to), lead / LIVE_SAMPLE_RATE + shift);
    const start = from / LIVE_SAMPLE_RATE + shift;
    const end = to / LIVE_SAMPLE_RATE + shift;
    // Words of the lead-in belong to the previous utterance (already published).
    const words = found.filter((w) => (w.start + w.end) / 2 >= start);
    if (words.length === 0) return;
    await this.events.segment({
      id: crypto.randomUUID(),
      seq: ++this.segmentSeq,
      speaker: stream.label,
      start: round3(Math.max(start, words[0]!.start)),
      end: round3(Math.min(end, words[words.length - 1]!.end)),
      text: words.map((w) => w.w).join(' '),
      words,
    });
  }
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
