import { VadStream } from '../../audio/vad.js';
import type { RecognizerSession, SpeechStream } from '../../adapters/asr/engine.js';

/*
 * One participant's stream of a live recording: its audio window, VAD, sequence numbers and the
 * utterance being recognised as it is spoken. State only; LiveSession drives it.
 */

/** Samples per second of every live stream (PCM16 LE, mono). */
export const LIVE_SAMPLE_RATE = 16_000;

/** A stream's audio in sample positions from its start; only the last `keep` samples are held. */
export class PcmBuffer {
  private buf = new Int16Array(LIVE_SAMPLE_RATE * 10);
  /** Position of buf[0] in the stream (samples dropped before it). */
  private base = 0;
  /** Samples received so far (the position after the last one). */
  length = 0;

  constructor(private readonly keep = Infinity) {}

  append(pcm: Int16Array): void {
    const held = this.length - this.base;
    if (held + pcm.length > this.buf.length && held + pcm.length > this.keep * 1.5) {
      // Drop the oldest audio, keeping `keep` samples, before growing (amortised: every 0.5 × keep).
      const drop = held + pcm.length - this.keep;
      this.buf.copyWithin(0, drop, held);
      this.base += drop;
    }
    const used = this.length - this.base;
    if (used + pcm.length > this.buf.length) {
      const next = new Int16Array(Math.max(used + pcm.length, this.buf.length * 2));
      next.set(this.buf.subarray(0, used));
      this.buf = next;
    }
    this.buf.set(pcm, used);
    this.length += pcm.length;
  }

  /** Samples [from, to) that are still held (clamped to the window). */
  view(from = 0, to = this.length): Int16Array {
    const a = Math.max(this.base, from) - this.base;
    const b = Math.min(this.length, to) - this.base;
    return this.buf.subarray(a, Math.max(a, b));
  }

  get start(): number {
    return this.base;
  }
}

/** An utterance fed to a streaming recognizer while it is spoken. */
export interface LiveUtterance {
  /** Stream samples [from, fed) have been fed. */
  from: number;
  fed: number;
  speech: SpeechStream;
  /** Queued for its final: no partial may be published after this. */
  closed: boolean;
  partialRunning: boolean;
  partialOut?: Promise<void>;
}

export class LiveStream {
  readonly pcm: PcmBuffer;
  readonly vad = new VadStream(LIVE_SAMPLE_RATE);
  /** Sequence number the next new frame must carry (so `nextSeq - 1` is acknowledged). */
  nextSeq = 0;
  /** Sequence number of the next binary frame on the attached socket. */
  incomingSeq = 0;
  attached = false;
  /** Audio handed to recognition so far (samples), so a region is never recognised twice. */
  recognisedTo = 0;
  /** Audio whose live segments are out (samples): after a restart, recognition resumes here. */
  publishedTo = 0;
  /** End (samples) of the audio the last partial result covered. */
  partialTo = 0;
  /** The utterance being recognised as it is spoken (streaming engines). */
  live: LiveUtterance | undefined;
  /** This participant's recognizer session (voice adaptation carried between utterances). */
  recognizer: RecognizerSession | undefined;

  constructor(
    readonly label: string,
    /** Where this stream's first sample sits on the recording's timeline. */
    readonly offsetSamples: number,
    keepSamples = Infinity,
  ) {
    this.pcm = new PcmBuffer(keepSamples);
  }

  get acked(): number {
    return this.nextSeq - 1;
  }

  get seconds(): number {
    return this.pcm.length / LIVE_SAMPLE_RATE;
  }
}
