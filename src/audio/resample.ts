/**
 * Sample-rate conversion and downmixing for the native (ffmpeg-free) WAV path.
 *
 * Linear interpolation is not good enough here: taking a 44.1/48 kHz recording down to 16 kHz
 * without a low-pass filter folds everything above 8 kHz (sibilants, hiss) back into the speech
 * band, which costs ASR accuracy. This is a streaming windowed-sinc (Kaiser) polyphase resampler:
 * cutoff just below the lower Nyquist frequency, ~80 dB stopband, exact rational stepping (no
 * drift over hours), so chunked and one-shot conversion give identical output.
 */

const ZERO_CROSSINGS = 24;
/** Passband edge as a fraction of the lower Nyquist frequency. */
const ROLLOFF = 0.92;
const KAISER_BETA = 8.6;
/** Rational ratios with more phases than this use the nearest of this many (error < 1/2048 sample). */
const MAX_PHASES = 1024;

function gcd(a: number, b: number): number {
  while (b) [a, b] = [b, a % b];
  return a;
}

/** Modified Bessel function of the first kind, order 0 (series; converges fast for β ≤ 20). */
function besselI0(x: number): number {
  let sum = 1;
  let term = 1;
  for (let k = 1; k < 50; k++) {
    term *= (x / (2 * k)) ** 2;
    sum += term;
    if (term < sum * 1e-12) break;
  }
  return sum;
}

export class Resampler {
  /** Output samples per `down` input samples. */
  private readonly up: number;
  private readonly down: number;
  private readonly identity: boolean;
  private readonly phases: number;
  private readonly taps: number;
  private readonly half: number;
  private readonly table: Float32Array;
  /** Buffered input; buf[0] is absolute input index `bufStart`. */
  private buf = new Float32Array(0);
  private bufLen = 0;
  private bufStart = 0;
  /** Next output's input position: idx + acc/up. */
  private idx = 0;
  private acc = 0;
  private inputCount = 0;
  private outputCount = 0;
  private flushed = false;

  constructor(
    readonly fromRate: number,
    readonly toRate: number,
  ) {
    if (!Number.isInteger(fromRate) || !Number.isInteger(toRate) || fromRate <= 0 || toRate <= 0)
      throw new RangeError('sample rates must be positive integers');
    const g = gcd(fromRate, toRate);
    this.up = toRate / g;
    this.down = fromRate / g;
    this.identity = this.up === this.down;
    // Cutoff in cycles per input sample; the kernel spans ZERO_CROSSINGS lobes on each side.
    const cutoff = 0.5 * Math.min(1, this.up / this.down) * ROLLOFF;
    const halfWidth = ZERO_CROSSINGS / (2 * cutoff);
    this.half = Math.ceil(halfWidth);
    this.taps = 2 * this.half;
    this.phases = this.identity ? 0 : Math.min(this.up, MAX_PHASES);
    // One extra row (fraction 1.0) so rounding to the nearest phase never needs a wrap.
    this.table = new Float32Array(this.identity ? 0 : (this.phases + 1) * this.taps);
    const i0beta = besselI0(KAISER_BETA);
    for (let p = 0; p <= this.phases && !this.identity; p++) {
      const frac = p / this.phases;
      const row = p * this.taps;
      let sum = 0;
      for (let j = 0; j < this.taps; j++) {
        // Tap j weighs input idx - half + 1 + j, at distance t from the output position.
        const t = frac + this.half - 1 - j;
        let h = 0;
        if (Math.abs(t) < halfWidth) {
          const x = 2 * cutoff * t;
          const sinc = x === 0 ? 1 : Math.sin(Math.PI * x) / (Math.PI * x);
          const r = t / halfWidth;
          h = 2 * cutoff * sinc * (besselI0(KAISER_BETA * Math.sqrt(1 - r * r)) / i0beta);
        }
        this.table[row + j] = h;
        sum += h;
      }
      // Unity gain at DC for every phase (no ripple at the output rate).
      for (let j = 0; j < this.taps; j++) this.table[row + j]! /= sum;
    }
    // Zeros before the first sample, so the first outputs have their left context.
    this.bufStart = -(this.half - 1);
    this.bufLen = this.half - 1;
    this.buf = new Float32Array(Math.max(4096, this.bufLen * 2));
  }

  /** Converts the next piece of input; output may lag the input by the filter's half-width. */
  process(input: Float32Array): Float32Array {
    if (this.flushed) throw new Error('Resampler already flushed');
    this.inputCount += input.length;
    if (this.identity) return input.slice();
    this.append(input);
    return this.drain(this.bufStart + this.bufLen, Number.POSITIVE_INFINITY);
  }

  /** Emits the remaining output: exactly ceil(inputs × to / from) samples in total. */
  flush(): Float32Array {
    if (this.flushed) return new Float32Array(0);
    this.flushed = true;
    if (this.identity) return new Float32Array(0);
    const total = Math.ceil((this.inputCount * this.up) / this.down);
    this.append(new Float32Array(this.half + 1));
    return this.drain(this.bufStart + this.bufLen, total - this.outputCount);
  }

  private append(input: Float32Array): void {
    if (this.bufLen + input.length > this.buf.length) {
      const next = new Float32Array(Math.max(this.buf.length * 2, this.bufLen + input.length));
      next.set(this.buf.subarray(0, this.bufLen));
      this.buf = next;
    }
    this.buf.set(input, this.bufLen);
    this.bufLen += input.length;
  }

  /** Produces outputs whose whole kernel lies before `end` (absolute), at most `max` of them. */
  private drain(end: number, max: number): Float32Array {
    const { up, down, taps, half, table, phases, buf } = this;
    const available = Math.max(0, Math.ceil(((end - half - this.idx) * up - this.acc) / down));
    const count = Math.min(available, max);
    const out = new Float32Array(count);
    let idx = this.idx;
    let acc = this.acc;
    const exact = phases === up;
    const start = this.bufStart;
    for (let n = 0; n < count; n++) {
      const row = (exact ? acc : Math.round((acc * phases) / up)) * taps;
      const base = idx - half + 1 - start;
      // `taps` is even; two accumulators let the CPU overlap the multiply-adds.
      let s0 = 0;
      let s1 = 0;
      for (let j = 0; j < taps; j += 2) {
        s0 += buf[base + j]! * table[row + j]!;
        s1 += buf[base + j + 1]! * table[row + j + 1]!;
      }
      out[n] = s0 + s1;
      acc += down;
      if (acc >= up) {
        idx += Math.floor(acc / up);
        acc %= up;
      }
    }
    this.idx = idx;
    this.acc = acc;
    this.outputCount += count;
    // Keep only the input the next output still needs.
    const keepFrom = Math.min(idx - half + 1, this.bufStart + this.bufLen) - this.bufStart;
    if (keepFrom > 0) {
      buf.copyWithin(0, keepFrom, this.bufLen);
      this.bufLen -= keepFrom;
      this.bufStart += keepFrom;
    }
    return out;
  }
}

/** One-shot conversion of a whole signal. */
export function resample(input: Float32Array, fromRate: number, toRate: number): Float32Array {
  const r = new Resampler(fromRate, toRate);
  const head = r.process(input);
  const tail = r.flush();
  const out = new Float32Array(head.length + tail.length);
  out.set(head);
  out.set(tail, head.length);
  return out;
}

/** The mean of the channels (equal weight: a call's two sides are equally important). */
export function downmix(channels: Float32Array[]): Float32Array {
  const first = channels[0];
  if (!first) return new Float32Array(0);
  if (channels.length === 1) return first;
  const out = new Float32Array(first.length);
  for (const channel of channels) {
    if (channel.length !== first.length) throw new RangeError('channels differ in length');
    for (let i = 0; i < out.length; i++) out[i]! += channel[i]!;
  }
  const scale = 1 / channels.length;
  for (let i = 0; i < out.length; i++) out[i]! *= scale;
  return out;
}
