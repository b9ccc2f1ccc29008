/**
 * Short-time analysis shared by the VAD and the diarizer: framing, Hamming window, one FFT per
 * frame, band energy and spectral flatness (for the VAD), and MFCCs (for speaker features).
 *
 * Everything is streaming: `FrameAnalyzer.push()` takes any number of samples and emits frames as
 * they complete, keeping less than one frame of audio, so a one-hour file costs the same memory
 * as a one-second one (callers decide what to keep per frame).
 */
import { RealFft } from './fft.js';

export type Pcm = Float32Array | Int16Array;

/** Int16 PCM to [-1, 1) floats; Float32 input is returned as is. */
export function toFloat32(pcm: Pcm): Float32Array {
  if (pcm instanceof Float32Array) return pcm;
  const out = new Float32Array(pcm.length);
  for (let i = 0; i < pcm.length; i++) out[i] = pcm[i]! / 32768;
  return out;
}

export interface FrameOptions {
  /** Analysis window length; 25 ms is the usual speech compromise (≥ 2 pitch periods). */
  frameMs?: number;
  /** Hop between frames; frame i owns [i·hop, (i+1)·hop) seconds. */
  hopMs?: number;
  /** Band measured for the VAD energy: below ~100 Hz is hum and DC, above ~4 kHz is mostly hiss. */
  bandLowHz?: number;
  bandHighHz?: number;
  /** Compute MFCCs too (the VAD alone does not need them). */
  mfcc?: boolean;
  numMel?: number;
  numCeps?: number;
  preEmphasis?: number;
  melLowHz?: number;
  melHighHz?: number;
}

export interface FrameStats {
  index: number;
  /** Power in the VAD band, dB relative to a full-scale signal's mean square (RMS dBFS). */
  energyDb: number;
  /** Spectral flatness in the VAD band, 0 (tonal, voiced) … ~0.56 (white noise periodogram). */
  flatness: number;
  /** MFCC c0…c(numCeps-1) when requested; the array is reused between frames — copy it. */
  mfcc: Float64Array | null;
}

const ENERGY_FLOOR_DB = -120;

export function hzToMel(hz: number): number {
  return 2595 * Math.log10(1 + hz / 700);
}
export function melToHz(mel: number): number {
  return 700 * (10 ** (mel / 2595) - 1);
}

/** Triangular mel filters as (first bin, weights) pairs over a one-sided power spectrum. */
export function melFilterbank(
  numFilters: number,
  fftSize: number,
  sampleRate: number,
  lowHz: number,
  highHz: number,
): { start: number; weights: Float64Array }[] {
  const lowMel = hzToMel(lowHz);
  const highMel = hzToMel(Math.min(highHz, sampleRate / 2));
  const edges: number[] = [];
  for (let i = 0; i < numFilters + 2; i++)
    edges.push(melToHz(lowMel + ((highMel - lowMel) * i) / (numFilters + 1)));
  const binHz = sampleRate / fftSize;
  const filters: { start: number; weights: Float64Array }[] = [];
  for (let m = 1; m <= numFilters; m++) {
    const [left, centre, right] = [edges[m - 1]!, edges[m]!, edges[m + 1]!];
    const start = Math.max(0, Math.ceil(left / binHz));
    const end = Math.min(fftSize / 2, Math.floor(right / binHz));
    const weights = new Float64Array(Math.max(0, end - start + 1));
    for (let k = start; k <= end; k++) {
      const f = k * binHz;
      weights[k - start] = f <= centre ? (f - left) / (centre - left) : (right - f) / (right - centre);
    }
    filters.push({ start, weights });
  }
  return filters;
}

/** Orthonormal DCT-II matrix, numCeps rows × numFilters columns. */
export function dctMatrix(numCeps: number, numFilters: number): Float64Array {
  const m = new Float64Array(numCeps * numFilters);
  for (let c = 0; c < numCeps; c++) {
    const scale = Math.sqrt((c === 0 ? 1 : 2) / numFilters);
    for (let j = 0; j < numFilters; j++)
      m[c * numFilters + j] = scale * Math.cos((Math.PI * c * (j + 0.5)) / numFilters);
  }
  return m;
}

export class FrameAnalyzer {
  readonly sampleRate: number;
  readonly frameLength: number;
  readonly hop: number;
  /** Seconds per frame hop. */
  readonly hopSeconds: number;
  readonly numCeps: number;
  private readonly fft: RealFft;
  private readonly window: Float64Array;
  private readonly windowPower: number;
  private readonly bandLo: number;
  private readonly bandHi: number;
  private readonly mel: { start: number; weights: Float64Array }[] | null;
  private readonly dct: Float64Array | null;
  private readonly preEmphasis: number = 0;
  private readonly spectrum: Float64Array;
  private readonly melSpectrum: Float64Array;
  private readonly frame: Float64Array;
  private readonly logMel: Float64Array;
  private readonly stats: FrameStats;
  /** Pending samples not yet consumed by a hop, plus the overlap the next frame needs. */
  private buffer: Float32Array;
  private buffered = 0;
  /**
   * The sample before the buffer's start (for the next frame's pre-emphasis) once there is one.
   * A number and a flag rather than `number | undefined`, read once before the loop: with the
   * `undefined` case inside the pre-emphasis loop, optimized code boxed every sample it touched
   * (measured: 6 KB of garbage a frame, 20 MB per 32 s of audio; MFCC frames took 1.5× as long).
   */
  private before = 0;
  private hasBefore = false;
  private index = 0;

  constructor(sampleRate: number, opts: FrameOptions = {}) {
    if (!(sampleRate >= 4000)) throw new RangeError(`unsupported sample rate ${sampleRate}`);
    this.sampleRate = sampleRate;
    this.frameLength = Math.round(((opts.frameMs ?? 25) * sampleRate) / 1000);
    this.hop = Math.round(((opts.hopMs ?? 10) * sampleRate) / 1000);
    this.hopSeconds = this.hop / sampleRate;
    let size = 2;
    while (size < this.frameLength) size <<= 1;
    this.fft = new RealFft(size);
    this.window = new Float64Array(this.frameLength);
    let wp = 0;
    for (let i = 0; i < this.frameLength; i++) {
      const w = 0.54 - 0.46 * Math.cos((2 * Math.PI * i) / (this.frameLength - 1));
      this.window[i] = w;
      wp += w * w;
    }
    this.windowPower = wp;
    const binHz = sampleRate / size;
    this.bandLo = Math.max(1, Math.round((opts.bandLowHz ?? 100) / binHz));
    this.bandHi = Math.min(size / 2, Math.round(Math.min(opts.bandHighHz ?? 4000, sampleRate / 2) / binHz));
    this.spectrum = new Float64Array(size / 2 + 1);
    this.melSpectrum = new Float64Array(size / 2 + 1);
    this.frame = new Float64Array(this.frameLength);
    this.numCeps = opts.numCeps ?? 20;
    const numMel = opts.numMel ?? 40;
    this.logMel = new Float64Array(numMel);
    if (opts.mfcc) {
      this.mel = melFilterbank(
        numMel,
        size,
        sampleRate,
        opts.melLowHz ?? 20,
        opts.melHighHz ?? sampleRate / 2 - 400,
      );
      this.dct = dctMatrix(this.numCeps, numMel);
      this.preEmphasis = opts.preEmphasis ?? 0.97;
    } else {
      this.mel = null;
      this.dct = null;
    }
    this.stats = {
      index: 0,
      energyDb: 0,
      flatness: 0,
      mfcc: opts.mfcc ? new Float64Array(this.numCeps) : null,
    };
    this.buffer = new Float32Array(Math.max(this.frameLength * 2, 4096));
  }

  /** Feed samples; `sink` is called once per completed frame, in order. */
  push(samples: Pcm, sink: (frame: FrameStats) => void): void {
    const scale = samples instanceof Int16Array ? 1 / 32768 : 1;
    let offset = 0;
    while (offset < samples.length) {
      const room = this.buffer.length - this.buffered;
      const n = Math.min(room, samples.length - offset);
      for (let i = 0; i < n; i++) this.buffer[this.buffered + i] = samples[offset + i]! * scale;
      this.buffered += n;
      offset += n;
      let pos = 0;
      while (this.buffered - pos >= this.frameLength) {
        this.analyse(this.buffer, pos, this.frameLength, sink);
        pos += this.hop;
      }
      // The sample before the new buffer start, for the next frame's pre-emphasis.
      if (pos > 0) {
        this.before = this.buffer[pos - 1]!;
        this.hasBefore = true;
      }
      this.buffer.copyWithin(0, pos, this.buffered);
      this.buffered -= pos;
    }
  }

  /** Emit the remaining partial frames (zero-padded) so frames cover every sample. */
  flush(sink: (frame: FrameStats) => void): void {
    let pos = 0;
    while (pos < this.buffered) {
      this.analyse(this.buffer, pos, Math.min(this.frameLength, this.buffered - pos), sink);
      pos += this.hop;
    }
    this.buffered = 0;
  }

  /** Frames emitted so far. */
  get frames(): number {
    return this.index;
  }

  private analyse(buf: Float32Array, pos: number, len: number, sink: (frame: FrameStats) => void): void {
    // Remove the frame's mean first: a DC offset would otherwise leak through the window into
    // the low bins and read as energy.
    let mean = 0;
    for (let i = 0; i < len; i++) mean += buf[pos + i]!;
    mean /= len;
    const { frame, window } = this;
    for (let i = 0; i < this.frameLength; i++) frame[i] = i < len ? (buf[pos + i]! - mean) * window[i]! : 0;
    const p = this.fft.power(frame, this.spectrum);
    let sum = 0;
    let logSum = 0;
    for (let k = this.bandLo; k <= this.bandHi; k++) {
      const v = p[k]! + 1e-20;
      sum += v;
      logSum += Math.log(v);
    }
    const bins = this.bandHi - this.bandLo + 1;
    const meanSquare = (2 * sum) / (this.fft.size * this.windowPower);
    const s = this.stats;
    s.index = this.index++;
    s.energyDb = Math.max(ENERGY_FLOOR_DB, 10 * Math.log10(meanSquare + 1e-30));
    s.flatness = sum > 0 ? Math.exp(logSum / bins) / (sum / bins) : 1;
    if (this.mel && this.dct && s.mfcc) {
      // MFCCs: pre-emphasis y[n] = x[n] − a·x[n−1] (the first sample uses the real previous one,
      // so frames equal those of a filtered stream), the filtered frame's mean removed, then the
      // window and a second FFT. The VAD keeps the unfiltered band energy: pre-emphasis would
      // turn down the voiced low frequencies it relies on.
      const a = this.preEmphasis;
      let emphMean = 0;
      let prev = pos > 0 ? buf[pos - 1]! : this.hasBefore ? this.before : buf[pos]!;
      for (let i = 0; i < len; i++) {
        const x = buf[pos + i]!;
        frame[i] = x - a * prev;
        emphMean += frame[i]!;
        prev = x;
      }
      emphMean /= len;
      for (let i = 0; i < this.frameLength; i++) frame[i] = i < len ? (frame[i]! - emphMean) * window[i]! : 0;
      const q = this.fft.power(frame, this.melSpectrum);
      const numMel = this.logMel.length;
      for (let m = 0; m < numMel; m++) {
        const { start, weights } = this.mel[m]!;
        let e = 0;
        for (let j = 0; j < weights.length; j++) e += weights[j]! * q[start + j]!;
        this.logMel[m] = Math.log(Math.max(e, 1e-10));
      }
      for (let c = 0; c < this.numCeps; c++) {
        let v = 0;
        for (let m = 0; m < numMel; m++) v += this.dct[c * numMel + m]! * this.logMel[m]!;
        s.mfcc[c] = v;
      }
    }
    sink(s);
  }
}

export interface FrameAnalysis {
  frames: number;
  hopSeconds: number;
  energyDb: Float32Array;
  flatness: Float32Array;
  /** frames × numCeps, row-major; empty when MFCCs were not requested. */
  mfcc: Float32Array;
  numCeps: number;
}

/** Whole-buffer convenience over FrameAnalyzer. */
export function analyzeFrames(pcm: Pcm, sampleRate: number, opts: FrameOptions = {}): FrameAnalysis {
  const fa = new FrameAnalyzer(sampleRate, opts);
  const frames = Math.ceil(pcm.length / fa.hop);
  const energyDb = new Float32Array(frames);
  const flatness = new Float32Array(frames);
  const mfcc = new Float32Array(opts.mfcc ? frames * fa.numCeps : 0);
  const sink = (f: FrameStats): void => {
    if (f.index >= frames) return;
    energyDb[f.index] = f.energyDb;
    flatness[f.index] = f.flatness;
    if (f.mfcc) mfcc.set(f.mfcc, f.index * fa.numCeps);
  };
  fa.push(pcm, sink);
  fa.flush(sink);
  return { frames, hopSeconds: fa.hopSeconds, energyDb, flatness, mfcc, numCeps: fa.numCeps };
}

/** Regression deltas over ±window frames (the HTK formula), for frames × dim row-major input. */
export function deltas(features: Float32Array, dim: number, window = 2): Float32Array {
  const n = features.length / dim;
  const out = new Float32Array(features.length);
  let denom = 0;
  for (let t = 1; t <= window; t++) denom += 2 * t * t;
  for (let i = 0; i < n; i++) {
    for (let d = 0; d < dim; d++) {
      let v = 0;
      for (let t = 1; t <= window; t++) {
        const a = Math.min(n - 1, i + t);
        const b = Math.max(0, i - t);
        v += t * (features[a * dim + d]! - features[b * dim + d]!);
      }
      out[i * dim + d] = v / denom;
    }
  }
  return out;
}
