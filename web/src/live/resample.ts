/**
 * Sample-rate conversion and framing for live capture: whatever rate the browser's audio graph
 * runs at (usually 48 kHz) → 16 kHz mono, signed 16-bit little-endian, in 100 ms frames of
 * 3200 bytes (docs/live.md, ingest protocol).
 */
export const TARGET_RATE = 16_000;
export const FRAME_SAMPLES = 1600; // 100 ms at 16 kHz

/** Half-width of the interpolation kernel, in input samples (33 taps: plenty for speech). */
const HALF = 16;

/**
 * A streaming windowed-sinc resampler: the kernel's cut-off sits below the output's Nyquist
 * frequency, so downsampling does not fold high frequencies back into the speech band (plain
 * linear interpolation would).
 */
export class Resampler {
  private readonly step: number;
  private readonly cutoff: number;
  private hist: Float32Array;
  /** Position of the next output sample, in input samples from the start of `hist`. */
  private t = HALF;

  constructor(
    readonly inRate: number,
    readonly outRate = TARGET_RATE,
  ) {
    this.step = inRate / outRate;
    this.cutoff = Math.min(1, outRate / inRate) * 0.92;
    this.hist = new Float32Array(HALF); // leading silence: the kernel's left half at the start
  }

  push(input: Float32Array): Float32Array {
    if (this.inRate === this.outRate) return input;
    const buf = new Float32Array(this.hist.length + input.length);
    buf.set(this.hist);
    buf.set(input, this.hist.length);
    const out: number[] = [];
    while (this.t + HALF < buf.length) {
      const centre = Math.floor(this.t);
      const frac = this.t - centre;
      let acc = 0;
      let norm = 0;
      for (let k = -HALF + 1; k <= HALF; k++) {
        const x = k - frac;
        const w = kernel(x, this.cutoff);
        acc += (buf[centre + k] ?? 0) * w;
        norm += w;
      }
      out.push(norm > 0 ? acc / norm : 0);
      this.t += this.step;
    }
    const keepFrom = Math.max(0, Math.floor(this.t) - HALF);
    this.hist = buf.slice(keepFrom);
    this.t -= keepFrom;
    return Float32Array.from(out);
  }
}

function kernel(x: number, cutoff: number): number {
  const sinc = x === 0 ? 1 : Math.sin(Math.PI * cutoff * x) / (Math.PI * cutoff * x);
  // Blackman window over (-HALF, HALF).
  const n = (x + HALF) / (2 * HALF);
  const win = 0.42 - 0.5 * Math.cos(2 * Math.PI * n) + 0.08 * Math.cos(4 * Math.PI * n);
  return sinc * win;
}

/** Collects 16 kHz float samples into PCM16 LE frames of FRAME_SAMPLES. */
export class Framer {
  private frame = new Int16Array(FRAME_SAMPLES);
  private used = 0;

  constructor(private readonly onFrame: (frame: ArrayBuffer) => void) {}

  push(samples: Float32Array): void {
    for (const s of samples) {
      const c = Math.max(-1, Math.min(1, s));
      this.frame[this.used++] = Math.round(c < 0 ? c * 0x8000 : c * 0x7fff);
      if (this.used === FRAME_SAMPLES) {
        // Int16Array is little-endian on every platform browsers run on (x86, ARM).
        this.onFrame(this.frame.buffer);
        this.frame = new Int16Array(FRAME_SAMPLES);
        this.used = 0;
      }
    }
  }
}
