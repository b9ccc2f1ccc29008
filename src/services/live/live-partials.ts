import type { Word } from '../../domain/transcript.js';
import { segmentId, type LiveLimits, type LiveSessionEvents } from './live-protocol.js';
import { LIVE_SAMPLE_RATE, type LiveStream, type LiveUtterance } from './live-stream.js';

/** Longer utterances are cut into pieces of at most this (engines work on ≤ 30 s windows). */
export const MAX_UTTERANCE_SECONDS = 25;

/** What the partials need of their LiveSession. */
export interface PartialsHost {
  readonly recordingId: string;
  /** The session is ending: a partial now would be stale. */
  stopping(): boolean;
  /** Finals are being recognised or wait in the queue. */
  recognisingFinals(): boolean;
  /** Words of stream samples [from, to), recognised with the lead-in and without its words. */
  recogniseRange(stream: LiveStream, from: number, to: number): Promise<Word[]>;
}

/**
 * The partial results of one live recording: when an utterance still being spoken has grown
 * enough to be worth a partial, and the partial itself, with the id its final will get. Streamed
 * utterances ask their recognizer; whole-utterance recognition recognises the open region so far.
 */
export class LivePartials {
  /** One whole-utterance partial at a time per recording, and the publication of its result. */
  private running = false;
  private out: Promise<void> | undefined;

  constructor(
    private readonly host: PartialsHost,
    private readonly limits: Pick<LiveLimits, 'partialSeconds'>,
    private readonly events: Pick<LiveSessionEvents, 'partial'>,
  ) {}

  /** The partial of `live` (or the whole-utterance one) being published: its final waits for it. */
  publishing(live: LiveUtterance | undefined): Promise<void> | undefined {
    return live ? live.partialOut : this.out;
  }

  /** A partial every `partialSeconds` of new speech, one at a time per utterance. */
  streamed(stream: LiveStream, live: LiveUtterance): void {
    const every = (this.limits.partialSeconds ?? 0) * LIVE_SAMPLE_RATE;
    if (!every || !this.events.partial || live.partialRunning || live.closed || this.host.stopping()) return;
    if (live.fed - Math.max(live.from, stream.partialTo) < every) return;
    stream.partialTo = live.fed;
    live.partialRunning = true;
    const to = live.fed;
    const shift = stream.offsetSamples / LIVE_SAMPLE_RATE;
    void (async () => {
      const text = await live.speech.partial();
      // Its final is queued already, or the session is ending: a partial now would be stale.
      if (!text || live.closed || this.host.stopping()) return;
      live.partialOut = this.events.partial!({
        id: segmentId(this.host.recordingId, stream.label, live.from),
        speaker: stream.label,
        start: round3(live.from / LIVE_SAMPLE_RATE + shift),
        end: round3(to / LIVE_SAMPLE_RATE + shift),
        text,
      });
      await live.partialOut;
    })()
      .catch(() => undefined) // a failed partial is just skipped: the final will come
      .finally(() => (live.partialRunning = false));
  }

  /**
   * Partial results: while an utterance is open and has grown by `partialSeconds` since its last
   * partial, recognise it so far. Only when recognition is idle (finals first: a partial never
   * waits in, nor grows, the queue) and at most one at a time per recording; the engine call runs
   * beside the final drain, not in it. The id is the one the final will get: the same `from`
   * (the VAD reports the open region's start as it will close it; pieces of utterances over 25 s
   * step exactly as LiveSession's `enqueue` cuts them).
   */
  whole(stream: LiveStream): void {
    const every = (this.limits.partialSeconds ?? 0) * LIVE_SAMPLE_RATE;
    if (!every || !this.events.partial || this.running || this.host.stopping()) return;
    if (this.host.recognisingFinals()) return;
    const open = stream.vad.openStart;
    if (open === undefined) return;
    const first = Math.max(stream.recognisedTo, Math.round(open * LIVE_SAMPLE_RATE));
    const to = stream.pcm.length;
    const max = MAX_UTTERANCE_SECONDS * LIVE_SAMPLE_RATE;
    const from = first + Math.floor(Math.max(0, to - first - 1) / max) * max;
    if (to - Math.max(from, stream.partialTo) < every) return;
    stream.partialTo = to;
    this.running = true;
    void this.recognise(stream, from, to)
      .catch(() => undefined) // a failed partial is just skipped: the final will come
      .finally(() => (this.running = false));
  }

  private async recognise(stream: LiveStream, from: number, to: number): Promise<void> {
    const words = await this.host.recogniseRange(stream, from, to);
    // Its final is queued (or out) already, or the session is ending: a partial now would be stale.
    if (words.length === 0 || stream.recognisedTo > from || this.host.stopping()) return;
    const shift = stream.offsetSamples / LIVE_SAMPLE_RATE;
    this.out = this.events.partial!({
      id: segmentId(this.host.recordingId, stream.label, from),
      speaker: stream.label,
      start: round3(Math.max(from / LIVE_SAMPLE_RATE + shift, words[0]!.start)),
      end: round3(Math.min(to / LIVE_SAMPLE_RATE + shift, words[words.length - 1]!.end)),
      text: words.map((w) => w.w).join(' '),
    });
    await this.out;
  }
}

/** Segment and partial times are given to the millisecond. */
export function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
