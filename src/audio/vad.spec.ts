import { describe, expect, it } from 'vitest';
import { detectSpeech, VadStream } from './vad.js';

const SR = 16000;

/** Deterministic pseudo-random numbers, so noise is the same on every run. */
function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}

/** A voiced, speech-like signal: harmonics of a wobbling f0 under a 4 Hz syllable envelope. */
function voiced(seconds: number, f0 = 140, amp = 0.2): Float32Array {
  const out = new Float32Array(Math.round(seconds * SR));
  let phase = 0;
  for (let i = 0; i < out.length; i++) {
    const t = i / SR;
    phase += (2 * Math.PI * f0 * (1 + 0.05 * Math.sin(2 * Math.PI * 1.3 * t))) / SR;
    let v = 0;
    for (let h = 1; h <= 20; h++) v += Math.sin(h * phase) / h;
    out[i] = amp * v * (0.55 + 0.45 * Math.sin(2 * Math.PI * 4 * t));
  }
  return out;
}

function noise(seconds: number, amp: number, seed = 1): Float32Array {
  const r = rng(seed);
  return Float32Array.from({ length: Math.round(seconds * SR) }, () => amp * (2 * r() - 1));
}

function concat(...parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const silence = (s: number): Float32Array => new Float32Array(Math.round(s * SR));

describe('detectSpeech', () => {
  it('finds each utterance between silences, within ~0.2 s of its edges', () => {
    const pcm = concat(silence(1), voiced(2), silence(1.5), voiced(1.2, 210), silence(1));
    const regions = detectSpeech(pcm, SR);
    expect(regions).toHaveLength(2);
    expect(regions[0]!.start).toBeCloseTo(1, 0);
    expect(Math.abs(regions[0]!.start - 1)).toBeLessThan(0.2);
    expect(Math.abs(regions[0]!.end - 3)).toBeLessThan(0.25);
    expect(Math.abs(regions[1]!.start - 4.5)).toBeLessThan(0.2);
    expect(Math.abs(regions[1]!.end - 5.7)).toBeLessThan(0.25);
  });

  it('returns nothing for digital silence, low noise, or an empty / very short input', () => {
    expect(detectSpeech(silence(5), SR)).toEqual([]);
    expect(detectSpeech(noise(5, 0.001), SR)).toEqual([]);
    expect(detectSpeech(new Float32Array(0), SR)).toEqual([]);
    expect(detectSpeech(new Int16Array(100), SR)).toEqual([]);
    // 0.1 s of voice is below the minimum speech duration.
    expect(detectSpeech(concat(silence(0.5), voiced(0.1), silence(0.5)), SR)).toEqual([]);
  });

  it('keeps a short input that is all speech', () => {
    const regions = detectSpeech(voiced(0.6), SR);
    expect(regions).toHaveLength(1);
    expect(regions[0]!.start).toBeLessThan(0.1);
    expect(regions[0]!.end).toBeLessThanOrEqual(0.6);
  });

  it('bridges pauses shorter than minSilence and splits at longer ones', () => {
    const pcm = concat(
      silence(0.5),
      voiced(1),
      silence(0.15),
      voiced(1),
      silence(0.8),
      voiced(1),
      silence(0.5),
    );
    const regions = detectSpeech(pcm, SR);
    expect(regions).toHaveLength(2);
    expect(detectSpeech(pcm, SR, { minSilenceMs: 100 })).toHaveLength(3);
  });

  it('rejects loud unvoiced bursts (white noise) that an energy gate alone would take', () => {
    const pcm = concat(silence(1), noise(0.5, 0.5, 7), silence(1), voiced(1), silence(1));
    const regions = detectSpeech(pcm, SR);
    expect(regions).toHaveLength(1);
    expect(regions[0]!.start).toBeGreaterThan(2.3);
    expect(detectSpeech(pcm, SR, { minVoicedMs: 0 })).toHaveLength(2);
  });

  it('adapts to a steady background: speech over noise is found, the noise alone is not', () => {
    const bg = noise(8, 0.01, 3);
    const speech = concat(silence(2), voiced(2, 150, 0.2), silence(2), voiced(1.5, 190, 0.2), silence(0.5));
    const pcm = bg.map((v, i) => v + speech[i]!);
    const regions = detectSpeech(pcm, SR);
    expect(regions).toHaveLength(2);
    expect(Math.abs(regions[0]!.start - 2)).toBeLessThan(0.2);
    expect(Math.abs(regions[1]!.start - 6)).toBeLessThan(0.2);
  });

  it('finds speech at the very start, before any silence was seen', () => {
    const regions = detectSpeech(concat(voiced(1.5), silence(1), voiced(1), silence(0.5)), SR);
    expect(regions).toHaveLength(2);
    expect(regions[0]!.start).toBe(0);
  });

  it('is unaffected by a DC offset and by clipping', () => {
    const clean = concat(silence(1), voiced(1.5), silence(1), voiced(1), silence(1));
    const base = detectSpeech(clean, SR);
    const dc = clean.map((v) => v + 0.3);
    const clipped = clean.map((v) => Math.max(-0.25, Math.min(0.25, 6 * v + 0.1)));
    for (const pcm of [dc, clipped]) {
      const r = detectSpeech(pcm, SR);
      expect(r).toHaveLength(base.length);
      r.forEach((x, i) => {
        expect(Math.abs(x.start - base[i]!.start)).toBeLessThan(0.1);
        expect(Math.abs(x.end - base[i]!.end)).toBeLessThan(0.15);
      });
    }
  });

  it('accepts Int16 PCM with the same result as Float32', () => {
    const f = concat(silence(0.7), voiced(1.2), silence(0.7));
    const i16 = Int16Array.from(f, (v) => Math.round(v * 32767));
    expect(detectSpeech(i16, SR)).toEqual(detectSpeech(f, SR));
  });

  it('rejects nonsense options', () => {
    expect(() => detectSpeech(silence(1), SR, { thresholdDb: Number.NaN })).toThrow(RangeError);
  });
});

describe('VadStream', () => {
  const pcm = concat(
    silence(1.2),
    voiced(2),
    silence(1),
    voiced(0.8, 200),
    silence(0.4),
    voiced(1),
    silence(2),
  );

  it('gives the same regions whatever the block size', () => {
    const whole = detectSpeech(pcm, SR);
    for (const block of [160, 1000, 4096, 16000]) {
      const vad = new VadStream(SR);
      const got = [];
      for (let i = 0; i < pcm.length; i += block) got.push(...vad.push(pcm.subarray(i, i + block)));
      got.push(...vad.end());
      expect(got).toEqual(whole);
    }
  });

  it('emits a region once the silence after it is long enough, not at the end of input', () => {
    const vad = new VadStream(SR);
    const closedAt: number[] = [];
    for (let i = 0; i < pcm.length; i += 1600) {
      const regions = vad.push(pcm.subarray(i, i + 1600));
      for (const r of regions) closedAt.push(vad.position - r.end);
    }
    vad.end();
    expect(closedAt.length).toBeGreaterThanOrEqual(2);
    // Latency after a region's end is about minSilence (0.3 s) − hangover (0.15 s) + one block.
    for (const lag of closedAt) expect(lag).toBeLessThan(0.6);
  });
});
