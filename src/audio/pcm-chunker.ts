import { downmix } from './resample.js';
import { floatToPcm16 } from './wav.js';

/** The parts one after the other, in one new array. */
export function concatPcm(parts: readonly Int16Array[]): Int16Array {
  const out = new Int16Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** A piece of decoded audio at the pipeline rate (16 kHz). */
export interface PcmChunk {
  /** Index of the chunk's first sample from the start of the recording. */
  offset: number;
  mono: Int16Array;
  /** One array per source channel when the source has several (and they were asked for). */
  channels: Int16Array[] | undefined;
}

/**
 * Cuts a stream of decoded float channels into fixed-size PCM16 chunks (the last one may be
 * shorter), so consumers see the same chunk sizes whatever the decoder's read sizes were.
 */
export class PcmChunker {
  private mono: Int16Array;
  private channels: Int16Array[] | undefined;
  private fill = 0;
  private emitted = 0;

  constructor(
    private readonly chunkSamples: number,
    private readonly channelCount: number,
    private readonly perChannel: boolean,
  ) {
    if (!Number.isInteger(chunkSamples) || chunkSamples <= 0)
      throw new RangeError('chunkSamples must be > 0');
    this.mono = new Int16Array(chunkSamples);
    this.channels = this.wantsChannels ? this.freshChannels() : undefined;
  }

  /** Samples accepted so far (per channel). */
  get samples(): number {
    return this.emitted + this.fill;
  }

  private get wantsChannels(): boolean {
    return this.perChannel && this.channelCount > 1;
  }

  private freshChannels(): Int16Array[] {
    return Array.from({ length: this.channelCount }, () => new Int16Array(this.chunkSamples));
  }

  /** Adds equally long float channels; returns the chunks completed by them. */
  push(floatChannels: Float32Array[]): PcmChunk[] {
    if (floatChannels.length !== this.channelCount) throw new RangeError('unexpected channel count');
    const mono = floatToPcm16(downmix(floatChannels));
    const perChannel = this.channels ? floatChannels.map(floatToPcm16) : undefined;
    const done: PcmChunk[] = [];
    let at = 0;
    while (at < mono.length) {
      const take = Math.min(this.chunkSamples - this.fill, mono.length - at);
      this.mono.set(mono.subarray(at, at + take), this.fill);
      if (perChannel && this.channels) {
        for (let c = 0; c < perChannel.length; c++)
          this.channels[c]!.set(perChannel[c]!.subarray(at, at + take), this.fill);
      }
      this.fill += take;
      at += take;
      if (this.fill === this.chunkSamples) done.push(this.take(false));
    }
    return done;
  }

  /** The last, partial chunk (undefined when nothing is pending). */
  end(): PcmChunk | undefined {
    return this.fill > 0 ? this.take(true) : undefined;
  }

  private take(last: boolean): PcmChunk {
    const n = this.fill;
    const chunk: PcmChunk = {
      offset: this.emitted,
      mono: last ? this.mono.slice(0, n) : this.mono,
      channels: this.channels?.map((c) => (last ? c.slice(0, n) : c)),
    };
    this.emitted += n;
    this.fill = 0;
    // Emitted arrays belong to the consumer: start fresh ones rather than overwrite them.
    if (!last) {
      this.mono = new Int16Array(this.chunkSamples);
      this.channels = this.channels ? this.freshChannels() : undefined;
    }
    return chunk;
  }
}
