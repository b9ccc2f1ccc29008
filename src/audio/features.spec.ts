import { describe, expect, it } from 'vitest';
import { RealFft } from './fft.js';
import {
  analyzeFrames,
  dctMatrix,
  deltas,
  FrameAnalyzer,
  melFilterbank,
  toFloat32,
  type FrameStats,
} from './features.js';

const SR = 16000;

function sine(seconds: number, hz: number, amp: number): Float32Array {
  return Float32Array.from(
    { length: Math.round(seconds * SR) },
    (_, i) => amp * Math.sin((2 * Math.PI * hz * i) / SR),
  );
}

describe('RealFft', () => {
  it('matches a naive DFT', () => {
    const n = 64;
    const x = Array.from({ length: n }, (_, i) => Math.sin(i * 0.7) + 0.3 * Math.cos(i * 2.1) + (i % 5) / 7);
    const { re, im } = new RealFft(n).complex(x);
    for (let k = 0; k < n; k++) {
      let sr = 0;
      let si = 0;
      for (let t = 0; t < n; t++) {
        sr += x[t]! * Math.cos((2 * Math.PI * k * t) / n);
        si -= x[t]! * Math.sin((2 * Math.PI * k * t) / n);
      }
      expect(re[k]).toBeCloseTo(sr, 9);
      expect(im[k]).toBeCloseTo(si, 9);
    }
  });

  it('rejects sizes that are not powers of two', () => {
    expect(() => new RealFft(100)).toThrow(RangeError);
  });
});

describe('mel filterbank and DCT', () => {
  it('has triangular filters with increasing centres that peak near 1', () => {
    const bank = melFilterbank(40, 512, SR, 20, 7600);
    expect(bank).toHaveLength(40);
    let lastPeak = -1;
    for (const f of bank) {
      const peakIdx = f.start + f.weights.indexOf(Math.max(...f.weights));
      expect(peakIdx).toBeGreaterThanOrEqual(lastPeak);
      expect(Math.max(...f.weights)).toBeGreaterThan(0.5);
      expect(Math.max(...f.weights)).toBeLessThanOrEqual(1);
      lastPeak = peakIdx;
    }
  });

  it('is orthonormal', () => {
    const n = 40;
    const m = dctMatrix(n, n);
    for (let a = 0; a < n; a += 7) {
      for (let b = 0; b < n; b += 5) {
        let dot = 0;
        for (let j = 0; j < n; j++) dot += m[a * n + j]! * m[b * n + j]!;
        expect(dot).toBeCloseTo(a === b ? 1 : 0, 9);
      }
    }
  });
});

describe('frame analysis', () => {
  it('reports a full-scale sine near −3 dB RMS and silence at the floor', () => {
    const a = analyzeFrames(sine(0.5, 1000, 1), SR);
    expect(a.energyDb[20]).toBeGreaterThan(-4);
    expect(a.energyDb[20]).toBeLessThan(-2);
    expect(a.flatness[20]).toBeLessThan(0.05);
    const s = analyzeFrames(new Float32Array(SR), SR);
    expect(Math.max(...s.energyDb)).toBe(-120);
  });

  it('ignores DC offset and tones outside the 100–4000 Hz band', () => {
    const base = analyzeFrames(sine(0.5, 500, 0.1), SR).energyDb[20]!;
    const withDc = analyzeFrames(
      sine(0.5, 500, 0.1).map((v) => v + 0.4),
      SR,
    ).energyDb[20]!;
    expect(Math.abs(withDc - base)).toBeLessThan(0.5);
    expect(analyzeFrames(sine(0.5, 6000, 0.5), SR).energyDb[20]).toBeLessThan(-40);
  });

  it('white noise is flat, a harmonic tone is not', () => {
    let s = 1;
    const noise = Float32Array.from({ length: SR }, () => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return s / 2 ** 31 - 1;
    });
    const flat = analyzeFrames(noise, SR).flatness;
    const mean = flat.reduce((a, b) => a + b, 0) / flat.length;
    expect(mean).toBeGreaterThan(0.45);
    expect(mean).toBeLessThan(0.65);
  });

  it('covers every sample with ceil(n / hop) frames and streams identically', () => {
    const x = sine(1.2345, 300, 0.3);
    const whole = analyzeFrames(x, SR, { mfcc: true });
    expect(whole.frames).toBe(Math.ceil(x.length / 160));
    const fa = new FrameAnalyzer(SR, { mfcc: true });
    const energies: number[] = [];
    const ceps: number[] = [];
    const sink = (f: FrameStats): void => {
      energies.push(f.energyDb);
      ceps.push(...f.mfcc!);
    };
    for (let i = 0; i < x.length; i += 777) fa.push(x.subarray(i, i + 777), sink);
    fa.flush(sink);
    expect(energies.length).toBe(whole.frames);
    energies.forEach((e, i) => expect(e).toBeCloseTo(whole.energyDb[i]!, 4));
    ceps.forEach((c, i) => expect(c).toBeCloseTo(whole.mfcc[i]!, 3));
  });

  it('applies pre-emphasis before the MFCCs', () => {
    // With pre-emphasis the same frames must equal those of y[n] = x[n] − 0.97·x[n−1] analysed
    // without it, and differ from x analysed without it.
    let s = 9;
    const x = Float32Array.from({ length: SR }, (_, i) => {
      s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
      return 0.3 * Math.sin(i * 0.09) + 0.2 * Math.sin(i * 0.41) + 0.3 * (s / 2 ** 31 - 1);
    });
    const y = x.map((v, i) => v - 0.97 * (i > 0 ? x[i - 1]! : 0));
    const a = analyzeFrames(x, SR, { mfcc: true });
    const b = analyzeFrames(y, SR, { mfcc: true, preEmphasis: 0 });
    const plain = analyzeFrames(x, SR, { mfcc: true, preEmphasis: 0 });
    let same = 0;
    let other = 0;
    for (let f = 10; f < 90; f++) {
      for (let d = 1; d < 20; d++) {
        same = Math.max(same, Math.abs(a.mfcc[f * 20 + d]! - b.mfcc[f * 20 + d]!));
        other = Math.max(other, Math.abs(a.mfcc[f * 20 + d]! - plain.mfcc[f * 20 + d]!));
      }
    }
    expect(same).toBeLessThan(1e-3);
    expect(other).toBeGreaterThan(1);
  });

  it('converts Int16 to floats and computes regression deltas', () => {
    expect(Array.from(toFloat32(Int16Array.from([0, 16384, -32768])))).toEqual([0, 0.5, -1]);
    const ramp = Float32Array.from({ length: 20 }, (_, i) => 3 * i);
    const d = deltas(ramp, 1);
    expect(d[10]).toBeCloseTo(3);
  });
});
