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
