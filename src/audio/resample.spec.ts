import { describe, expect, it } from 'vitest';
import { PcmChunker } from './pcm-chunker.js';
import { Resampler, downmix, resample } from './resample.js';

function sine(freq: number, rate: number, seconds: number, amplitude = 0.5): Float32Array {
  const out = new Float32Array(Math.round(rate * seconds));
  for (let i = 0; i < out.length; i++) out[i] = amplitude * Math.sin((2 * Math.PI * freq * i) / rate);
  return out;
}

/** RMS away from the edges (where the filter sees the zero padding). */
function rms(x: Float32Array, edge: number): number {
  let sum = 0;
  for (let i = edge; i < x.length - edge; i++) sum += x[i]! ** 2;
  return Math.sqrt(sum / (x.length - 2 * edge));
}

const gainDb = (input: Float32Array, output: Float32Array): number =>
  20 * Math.log10(rms(output, 1000) / rms(input, 1000));

function concat(parts: Float32Array[]): Float32Array {
  const out = new Float32Array(parts.reduce((n, p) => n + p.length, 0));
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

describe('Resampler', () => {
  const rates = [8000, 11025, 22050, 32000, 44100, 48000, 96000, 44056];

  it('produces exactly ceil(n × 16000 / rate) samples and keeps speech-band tones at unity gain', () => {
    for (const rate of rates) {
      // The passband is flat to 80% of the lower Nyquist frequency (6.4 kHz at 16 kHz).
      for (const freq of [300, 1000, 3000, 5000, 6000].filter((f) => f <= 0.4 * Math.min(rate, 16000))) {
        const input = sine(freq, rate, 2);
        const output = resample(input, rate, 16000);
        expect(output.length).toBe(Math.ceil((input.length * 16000) / rate));
        expect(Math.abs(gainDb(input, output)), `${rate} Hz, ${freq} Hz tone`).toBeLessThan(0.1);
      }
    }
  });

  it('removes content above the new Nyquist frequency instead of aliasing it', () => {
    // Linear interpolation would fold these into the speech band at a few dB below the input.
    for (const [rate, freq] of [
      [48000, 9000],
      [48000, 12000],
      [44100, 10000],
      [44100, 20000],
      [96000, 30000],
    ] as const) {
      const output = resample(sine(freq, rate, 2), rate, 16000);
      expect(gainDb(sine(freq, rate, 2), output), `${rate} Hz, ${freq} Hz tone`).toBeLessThan(-60);
    }
  });

  it('upsamples without imaging and keeps the waveform in phase', () => {
    const input = sine(1000, 8000, 1);
    const output = resample(input, 8000, 16000);
    const expected = sine(1000, 16000, 1);
    let maxError = 0;
    for (let i = 200; i < output.length - 200; i++)
      maxError = Math.max(maxError, Math.abs(output[i]! - expected[i]!));
    expect(maxError).toBeLessThan(0.005);
  });

  it('gives the same output in chunks of any size as in one go', () => {
    const input = sine(440, 44100, 1);
    for (let i = 0; i < input.length; i += 97) input[i] = 0.9; // clicks make differences visible
    const whole = resample(input, 44100, 16000);
    for (const size of [1, 13, 1000, 44100]) {
      const r = new Resampler(44100, 16000);
      const parts: Float32Array[] = [];
      for (let i = 0; i < input.length; i += size) parts.push(r.process(input.subarray(i, i + size)));
      parts.push(r.flush());
      expect(concat(parts)).toEqual(whole);
    }
  });

  it('passes 16 kHz through unchanged and validates its rates', () => {
    const input = Float32Array.from([0.1, -0.2, 0.3]);
    const r = new Resampler(16000, 16000);
    expect(r.process(input)).toEqual(input);
    expect(r.flush().length).toBe(0);
    expect(() => new Resampler(0, 16000)).toThrow(RangeError);
    expect(() => new Resampler(44100.5, 16000)).toThrow(RangeError);
    expect(resample(new Float32Array(0), 48000, 16000).length).toBe(0);
  });
});

describe('downmix and PcmChunker', () => {
  it('averages channels', () => {
    expect(downmix([Float32Array.from([1, 0.5]), Float32Array.from([0, -0.5])])).toEqual(
      Float32Array.from([0.5, 0]),
    );
    const mono = Float32Array.from([0.25]);
    expect(downmix([mono])).toBe(mono);
  });

  it('cuts any input sizes into fixed-size chunks with offsets, mono mix and per-channel PCM', () => {
    const chunker = new PcmChunker(4, 2, true);
    const left = Float32Array.from({ length: 10 }, (_, i) => i / 32768);
    const right = Float32Array.from({ length: 10 }, (_, i) => -i / 32768);
    const chunks = [
      ...chunker.push([left.subarray(0, 3), right.subarray(0, 3)]),
      ...chunker.push([left.subarray(3, 9), right.subarray(3, 9)]),
      ...chunker.push([left.subarray(9), right.subarray(9)]),
    ];
    const last = chunker.end();
    expect(chunks.map((c) => [c.offset, c.mono.length])).toEqual([
      [0, 4],
      [4, 4],
    ]);
    expect(last?.offset).toBe(8);
    expect(Array.from(last!.channels![0]!)).toEqual([8, 9]);
    expect(Array.from(chunks[1]!.channels![1]!)).toEqual([-4, -5, -6, -7]);
    expect(Array.from(chunks[0]!.mono)).toEqual([0, 0, 0, 0]);
    expect(chunker.end()).toBeUndefined();
    // Mono input or perChannel off: no per-channel arrays.
    const mono = new PcmChunker(4, 2, false);
    expect(mono.push([left, right])[0]!.channels).toBeUndefined();
  });
});
