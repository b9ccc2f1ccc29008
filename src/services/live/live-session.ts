import type { SpeechRegion, Word } from '../../domain/transcript.js';
import { systemClock, type Clock } from '../../adapters/system/clock.adapter.js';
import {
  LIVE_CLOSE,
  LiveProtocolError,
  segmentId,
  type LiveLimits,
  type LiveSessionEvents,
  type OpenRecognizer,
  type Recognise,
} from './live-protocol.js';
import { LivePartials, MAX_UTTERANCE_SECONDS, round3 } from './live-partials.js';
import { LIVE_SAMPLE_RATE, LiveStream, type LiveUtterance } from './live-stream.js';

export * from './live-protocol.js';
export { LIVE_SAMPLE_RATE, LiveStream } from './live-stream.js';

/**
 * The in-memory state of one live recording on the node that ingests it: one stream per
 * participant (PCM16 LE, 16 kHz, mono), each with its own sequence numbers, audio buffer and
 * streaming VAD. With a streaming engine each utterance is fed to the recognizer while it is
 * spoken (partials on the way, the final as soon as the VAD closes it); otherwise closed VAD
 * regions go through the engine one at a time. Either way they come out as final segments, in
 * order. Pure state and logic: sockets, the database and the bus belong to
 * LiveService, the engine is passed in.
 *
 * Only a rolling window of each stream's audio stays here (what live recognition may still need):
 * LiveService spools every frame to disk, encrypted, and reads the spool back for the final WAV
 * and to rebuild a session after a restart (docs/live.md).
 */

/** Lead-in audio before an utterance, sent to the engine and dropped from its words (see pipeline). */
const CONTEXT_SECONDS = 2;
/** Room before a streamed utterance's onset (see openLive); its adaptation comes with the session. */
const LIVE_LEAD_IN_SECONDS = 0.5;
// eslint-disable-next-line no-control-regex -- refusing control characters is the point
const LABEL = /^[^\u0000-\u001f\u007f-\u009f]{1,60}$/u;

/** Audio of one stream waiting for its final: streamed already (`live`) or to recognise whole. */
interface Utterance {
  stream: LiveStream;
  from: number;
  to: number;
  /** Already recognised as it arrived: only its final is waited for. */
  live?: LiveUtterance;
}

export interface LiveSessionDeps {
  recordingId: string;
  orgId: string;
  limits: LiveLimits;
  /** Whole-utterance recognition (replayed spool audio; engines that cannot stream). */
  recognise: Recognise;
  events: LiveSessionEvents;
  /** Streaming recognition (partials as people speak, finals at once); absent: whole utterances. */
  openRecognizer?: OpenRecognizer;
  /** LiveSessions passes the app's clock; specs of this class alone may leave the system one. */
  clock?: Clock;
}

export class LiveSession {
  readonly streams = new Map<string, LiveStream>();
  private readonly queue: Utterance[] = [];
  private running: Promise<void> | undefined;
  /** When and how partial results go out (live-partials.ts). */
  private readonly partials: LivePartials;
  segmentSeq = 0;
  /** Clock time (ms) of the timeline's start: where a participant joining later is placed. */
  private startedAt: number;
  stopping = false;
  /** Clock time (ms) of the last frame: LiveService's idle and resume timeouts read it. */
  lastFrameAt: number;

  readonly recordingId: string;
  readonly orgId: string;
  private readonly clock: Clock;

  constructor(private readonly d: LiveSessionDeps) {
    this.recordingId = d.recordingId;
    this.orgId = d.orgId;
    this.clock = d.clock ?? systemClock;
    this.startedAt = this.lastFrameAt = this.now();
    this.partials = new LivePartials(
      {
        recordingId: d.recordingId,
        stopping: () => this.stopping,
        recognisingFinals: () => this.running !== undefined || this.queue.length > 0,
        recogniseRange: (stream, from, to) => this.recogniseRange(stream, from, to),
      },
      d.limits,
      d.events,
    );
  }

  private now(): number {
    return this.clock.now().getTime();
  }

  /** While restoring from a spool, replayed audio goes through whole-utterance recognition. */
  private replaying = false;

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
      if (this.streams.size >= this.d.limits.maxStreams)
        throw new LiveProtocolError(LIVE_CLOSE.overloaded, 'too many streams for this recording');
      const offset =
        this.streams.size === 0 ? 0 : Math.round(((this.now() - this.startedAt) / 1000) * LIVE_SAMPLE_RATE);
      stream = new LiveStream(label, offset, this.keepSamples());
      this.streams.set(label, stream);
      this.created?.(stream);
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

  /** Called when `attach` creates a stream (LiveService opens its spool). */
  created?: (stream: LiveStream) => void;

  private keepSamples(): number {
    return (this.d.limits.keepSeconds ?? Infinity) * LIVE_SAMPLE_RATE;
  }

  /**
   * Rebuilds a stream from its spool (a restart): the frames go through the VAD again, and only
   * audio after `publishedTo` is recognised again, so no final segment is lost. A segment that was
   * being published when the server died may be sent twice, with the same id.
   */
  restore(meta: { label: string; offsetSamples: number }, publishedTo: number, frames: Buffer[]): LiveStream {
    const stream = new LiveStream(meta.label, meta.offsetSamples, this.keepSamples());
    this.streams.set(meta.label, stream);
    stream.recognisedTo = stream.publishedTo = publishedTo;
    // Replayed audio is not being spoken now: no partials for it.
    stream.partialTo = Infinity;
    this.replaying = true;
    try {
      for (const f of frames) {
        stream.incomingSeq = stream.nextSeq;
        this.frame(stream, f);
      }
    } finally {
      this.replaying = false;
    }
    stream.partialTo = stream.pcm.length;
    const end = Math.max(...[...this.streams.values()].map((s) => s.offsetSamples + s.pcm.length));
    // New participants join the timeline where the restored audio ends.
    this.startedAt = this.now() - (end / LIVE_SAMPLE_RATE) * 1000;
    return stream;
  }

  detach(stream: LiveStream): void {
    stream.attached = false;
    // Do not hold a decoder through a reconnect: the utterance is fed again from its start when
    // audio resumes (the buffer still holds it), or recognised whole when it closes.
    this.abortLive(stream);
  }

  /** The session is dropped without a stop (suspend at shutdown): decoders go back at once. */
  dispose(): void {
    this.stopping = true;
    for (const stream of this.streams.values()) this.abortLive(stream);
  }

  private abortLive(stream: LiveStream): void {
    if (!stream.live || stream.live.closed) return;
    stream.live.closed = true;
    stream.live.speech.abort();
    stream.live = undefined;
  }

  /** One binary frame. Returns the acknowledged seq; a resent (duplicate) frame changes nothing. */
  frame(stream: LiveStream, bytes: Buffer): number {
    if (bytes.length > this.d.limits.maxFrameBytes)
      throw new LiveProtocolError(
        LIVE_CLOSE.tooLarge,
        `frame larger than ${this.d.limits.maxFrameBytes} bytes`,
      );
    if (bytes.length % 2 !== 0)
      throw new LiveProtocolError(LIVE_CLOSE.malformed, 'PCM16 frames have an even byte length');
    if (this.stopping) throw new LiveProtocolError(LIVE_CLOSE.conflict, 'the recording is stopping');
    const seq = stream.incomingSeq++;
    if (seq < stream.nextSeq) return stream.acked;
    if (stream.seconds + bytes.length / 2 / LIVE_SAMPLE_RATE > this.d.limits.maxSeconds)
      throw new LiveProtocolError(LIVE_CLOSE.tooLarge, 'maximum recording duration reached');
    const pcm = new Int16Array(bytes.length / 2);
    for (let i = 0; i < pcm.length; i++) pcm[i] = bytes.readInt16LE(i * 2);
    stream.pcm.append(pcm);
    stream.nextSeq = seq + 1;
    this.lastFrameAt = this.now();
    const closed = stream.vad.push(pcm);
    if (this.streaming(stream)) this.stream(stream, closed);
    else {
      for (const region of closed) this.enqueue(stream, region);
      this.partials.whole(stream);
    }
    return stream.acked;
  }

  /** No more audio: closes every open utterance and waits until all are recognised. */
  async finish(): Promise<void> {
    this.stopping = true;
    for (const stream of this.streams.values()) {
      const closed = stream.vad.end();
      if (stream.live) this.stream(stream, closed);
      else for (const r of closed) this.enqueue(stream, r);
    }
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

  private streaming(stream: LiveStream): boolean {
    if (this.replaying || !this.d.openRecognizer) return false;
    stream.recognizer ??= this.d.openRecognizer(stream.label);
    return stream.recognizer !== undefined;
  }

  /**
   * Streaming recognition: an utterance is fed to the recognizer from the moment the VAD opens
   * it, so when it closes only the last fraction of a second is left to decode and its final
   * follows at once. Closed regions without a streamed utterance (a reconnect, a region shorter
   * than one frame batch) are recognised whole, as without streaming.
   */
  private stream(stream: LiveStream, closed: readonly SpeechRegion[]): void {
    for (const region of closed) {
      const live = stream.live;
      if (!live) {
        this.enqueue(stream, region);
        continue;
      }
      const to = Math.min(stream.pcm.length, Math.round(region.end * LIVE_SAMPLE_RATE));
      this.closeLive(stream, live, Math.max(to, live.from + 1));
    }
    const open = stream.vad.openStart;
    if (open === undefined) {
      // A candidate the VAD dropped (a click, a cough too short to count): nothing to publish.
      this.abortLive(stream);
      return;
    }
    const start = Math.max(stream.recognisedTo, Math.round(open * LIVE_SAMPLE_RATE));
    if (stream.live && stream.live.from !== start) this.abortLive(stream);
    if (this.stopping || start >= stream.pcm.length) return;
    const max = MAX_UTTERANCE_SECONDS * LIVE_SAMPLE_RATE;
    for (;;) {
      stream.live ??= this.openLive(stream, Math.max(start, stream.recognisedTo));
      const live = stream.live;
      // Pieces of at most MAX_UTTERANCE_SECONDS, cut exactly where enqueue would cut them.
      if (stream.pcm.length - live.from <= max) break;
      this.closeLive(stream, live, live.from + max);
    }
    const live = stream.live;
    this.feedLive(stream, live, stream.pcm.length);
    this.partials.streamed(stream, live);
  }

  /**
   * A streamed utterance starts LIVE_LEAD_IN_SECONDS before the VAD's onset (audio already
   * recognised included): pocketsphinx needs a moment of the room before speech, or it mishears
   * the first word. The lead-in's words, if any, belong to the previous utterance and are dropped.
   */
  private openLive(stream: LiveStream, from: number): LiveUtterance {
    const lead = Math.max(stream.pcm.start, from - LIVE_LEAD_IN_SECONDS * LIVE_SAMPLE_RATE);
    const offset = (lead + stream.offsetSamples) / LIVE_SAMPLE_RATE;
    const speech = stream.recognizer!.utterance(offset);
    return { from, fed: lead, speech, closed: false, partialRunning: false };
  }

  private feedLive(stream: LiveStream, live: LiveUtterance, to: number): void {
    if (to <= live.fed) return;
    live.speech.feed(stream.pcm.view(live.fed, to));
    live.fed = to;
  }

  /** Queues the utterance's final (in order with whole-utterance work) and frees the stream. */
  private closeLive(stream: LiveStream, live: LiveUtterance, to: number): void {
    this.feedLive(stream, live, to);
    live.closed = true;
    stream.live = undefined;
    stream.recognisedTo = Math.max(stream.recognisedTo, to);
    this.queue.push({ stream, from: live.from, to, live });
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  private backlogSeconds(): number {
    // Streamed utterances are recognised already; only whole ones still cost engine time.
    return this.queue.reduce((s, u) => s + (u.live ? 0 : u.to - u.from), 0) / LIVE_SAMPLE_RATE;
  }

  private enqueue(stream: LiveStream, region: SpeechRegion): void {
    let from = Math.max(stream.recognisedTo, Math.round(region.start * LIVE_SAMPLE_RATE));
    const to = Math.min(stream.pcm.length, Math.round(region.end * LIVE_SAMPLE_RATE));
    if (to <= from) return;
    stream.recognisedTo = to;
    const max = MAX_UTTERANCE_SECONDS * LIVE_SAMPLE_RATE;
    for (; from < to; from += max) this.queue.push({ stream, from, to: Math.min(to, from + max) });
    // Bounded: live text that arrives minutes late is worth less than keeping up.
    while (this.queue.length > 1 && this.backlogSeconds() > this.d.limits.maxBacklogSeconds) {
      const i = this.queue.findIndex((u) => !u.live);
      if (i < 0) break;
      this.queue.splice(i, 1);
      this.d.events.lagging();
    }
    this.running ??= this.drain().finally(() => (this.running = undefined));
  }

  private async drain(): Promise<void> {
    for (let u = this.queue.shift(); u; u = this.queue.shift()) {
      try {
        await this.recogniseOne(u);
      } catch (err) {
        this.d.events.failed(err);
      }
    }
  }

  /** Words of stream samples [from, to), recognised with the lead-in and without its words. */
  private async recogniseRange(stream: LiveStream, from: number, to: number): Promise<Word[]> {
    const lead = Math.max(0, from - CONTEXT_SECONDS * LIVE_SAMPLE_RATE);
    const shift = stream.offsetSamples / LIVE_SAMPLE_RATE;
    const held = stream.pcm.view(lead, to);
    const heldFrom = Math.max(lead, stream.pcm.start);
    const found = held.length > 0 ? await this.d.recognise(held, heldFrom / LIVE_SAMPLE_RATE + shift) : [];
    const start = from / LIVE_SAMPLE_RATE + shift;
    // Words of the lead-in belong to the previous utterance (already published).
    return found.filter((w) => (w.start + w.end) / 2 >= start);
  }

  private async recogniseOne({ stream, from, to, live }: Utterance): Promise<void> {
    const shift = stream.offsetSamples / LIVE_SAMPLE_RATE;
    const start = from / LIVE_SAMPLE_RATE + shift;
    const words = live
      ? (await live.speech.final()).filter((w) => (w.start + w.end) / 2 >= start)
      : await this.recogniseRange(stream, from, to);
    const end = to / LIVE_SAMPLE_RATE + shift;
    if (words.length === 0) {
      stream.publishedTo = Math.max(stream.publishedTo, to);
      return;
    }
    // A partial of this utterance being published finishes first: no partial after its final.
    await this.partials.publishing(live)?.catch(() => undefined);
    await this.d.events.segment({
      id: segmentId(this.recordingId, stream.label, from),
      seq: ++this.segmentSeq,
      speaker: stream.label,
      start: round3(Math.max(start, words[0]!.start)),
      end: round3(Math.min(end, words[words.length - 1]!.end)),
      text: words.map((w) => w.w).join(' '),
      words,
    });
    // Only once it is out: a restart before this point recognises the utterance again.
    stream.publishedTo = Math.max(stream.publishedTo, to);
  }
}
