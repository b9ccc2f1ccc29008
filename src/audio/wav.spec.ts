import { describe, expect, it } from 'vitest';
import {
  MAX_WAV_HEADER_BYTES,
  encodeWav,
  floatToPcm16,
  parseWavHeader,
  pcm16ToFloat,
  readPcm16Channels,
  readWav,
  wavHeader,
  type WavHeader,
} from './wav.js';

function chunk(id: string, body: Uint8Array | number[]): Buffer {
  const data = Buffer.from(body);
  const head = Buffer.alloc(8);
  head.write(id, 0, 'latin1');
  head.writeUInt32LE(data.length, 4);
  return Buffer.concat([head, data, data.length & 1 ? Buffer.alloc(1) : Buffer.alloc(0)]);
}

function fmt(
  tag: number,
  channels: number,
  rate: number,
  bits: number,
  blockAlign = (channels * bits) / 8,
): Buffer {
  const b = Buffer.alloc(16);
  b.writeUInt16LE(tag, 0);
  b.writeUInt16LE(channels, 2);
  b.writeUInt32LE(rate, 4);
  b.writeUInt32LE((rate * blockAlign) % 2 ** 32, 8);
  b.writeUInt16LE(blockAlign, 12);
  b.writeUInt16LE(bits, 14);
  return chunk('fmt ', b);
}

function extensibleFmt(channels: number, rate: number, bits: number, subFormat: number, mask = 0): Buffer {
  const b = Buffer.alloc(40);
  const blockAlign = (channels * bits) / 8;
  b.writeUInt16LE(0xfffe, 0);
  b.writeUInt16LE(channels, 2);
  b.writeUInt32LE(rate, 4);
  b.writeUInt32LE(rate * blockAlign, 8);
  b.writeUInt16LE(blockAlign, 12);
  b.writeUInt16LE(bits, 14);
  b.writeUInt16LE(22, 16);
  b.writeUInt16LE(bits, 18);
  b.writeUInt32LE(mask, 20);
  b.writeUInt16LE(subFormat, 24);
  Buffer.from([0, 0, 0, 0, 0x10, 0, 0x80, 0, 0, 0xaa, 0, 0x38, 0x9b, 0x71]).copy(b, 26);
  return chunk('fmt ', b);
}

function riff(...chunks: Buffer[]): Buffer {
  const body = Buffer.concat([Buffer.from('WAVE', 'latin1'), ...chunks]);
  const head = Buffer.alloc(8);
  head.write('RIFF', 0, 'latin1');
  head.writeUInt32LE(body.length, 4);
  return Buffer.concat([head, body]);
}

/** A data chunk header that declares `declared` bytes followed by `actual` bytes. */
function dataChunk(declared: number, actual: Uint8Array): Buffer {
  const head = Buffer.alloc(8);
  head.write('data', 0, 'latin1');
  head.writeUInt32LE(declared, 4);
  return Buffer.concat([head, actual]);
}

/** Parses `file`, telling the parser its size unless `streaming`. */
function header(file: Uint8Array, streaming = false): WavHeader {
  const parsed = parseWavHeader(file, streaming ? {} : { fileSize: file.length });
  if (parsed.kind !== 'header') throw new Error(`expected a header, got ${JSON.stringify(parsed)}`);
  return parsed.header;
}

function invalid(file: Uint8Array): string {
  const parsed = parseWavHeader(file, { fileSize: file.length });
  if (parsed.kind !== 'invalid') throw new Error(`expected invalid, got ${parsed.kind}`);
  return parsed.message;
}

describe('parseWavHeader', () => {
  it('parses a canonical PCM16 header and finds the data', () => {
    const file = encodeWav(new Int16Array(16000), 16000);
    const h = header(file);
    expect(h).toMatchObject({
      container: 'RIFF',
      dataOffset: 44,
      dataBytes: 32000,
      frames: 16000,
      duration: 1,
    });
    expect(h.truncated).toBe(false);
    expect(h.format).toMatchObject({
      formatTag: 1,
      channels: 1,
      sampleRate: 16000,
      encoding: 's16',
      blockAlign: 2,
    });
  });

  it('skips other chunks (odd sizes are padded) and honours WAVE_FORMAT_EXTENSIBLE', () => {
    const file = riff(
      chunk('JUNK', new Array(27).fill(0)),
      extensibleFmt(6, 48000, 24, 1, 0x3f),
      chunk('LIST', Buffer.from('INFOISFT\x05\0\0\0test\0', 'latin1')),
      dataChunk(18 * 10, new Uint8Array(18 * 10)),
    );
    const h = header(file);
    expect(h.format).toMatchObject({
      extensible: true,
      formatTag: 1,
      channels: 6,
      encoding: 's24',
      channelMask: 0x3f,
    });
    expect(h.frames).toBe(10);
    expect(file.subarray(h.dataOffset - 8, h.dataOffset - 4).toString('latin1')).toBe('data');
  });

  it('recognises float, 8/32-bit and non-PCM formats', () => {
    const pcm = new Uint8Array(64);
    expect(header(riff(fmt(3, 2, 44100, 32), dataChunk(64, pcm))).format.encoding).toBe('f32');
    expect(header(riff(fmt(3, 1, 44100, 64), dataChunk(64, pcm))).format.encoding).toBe('f64');
    expect(header(riff(fmt(1, 1, 8000, 8), dataChunk(64, pcm))).format.encoding).toBe('u8');
    expect(header(riff(fmt(1, 2, 96000, 32), dataChunk(64, pcm))).format.encoding).toBe('s32');
    expect(header(riff(extensibleFmt(2, 48000, 32, 3), dataChunk(64, pcm))).format.encoding).toBe('f32');
    // µ-law and ADPCM are left to ffmpeg: the header is fine but not natively readable.
    expect(header(riff(fmt(7, 1, 8000, 8), dataChunk(64, pcm))).format.encoding).toBeUndefined();
    expect(header(riff(fmt(0x11, 1, 8000, 4, 256), dataChunk(64, pcm))).format.encoding).toBeUndefined();
  });

  it('clamps a header that claims more data than the file holds and marks it truncated', () => {
    const full = encodeWav(new Int16Array(16000), 16000);
    const cut = full.subarray(0, 44 + 10001); // an odd byte count: half a sample at the end
    const h = header(cut);
    expect(h).toMatchObject({ declaredDataBytes: 32000, dataBytes: 10000, frames: 5000, truncated: true });
  });

  it('refuses to believe ten hours of audio in a 1 KB file', () => {
    const tenHours = 10 * 3600 * 16000 * 2;
    const file = riff(fmt(1, 1, 16000, 16), dataChunk(tenHours, new Uint8Array(1000)));
    const h = header(file);
    expect(h.declaredDataBytes).toBe(tenHours);
    expect(h).toMatchObject({ dataBytes: 1000, frames: 500, duration: 500 / 16000, truncated: true });
  });

  it('without a file size (streaming), trusts the declared size and marks unknown sizes', () => {
    const file = riff(fmt(1, 1, 16000, 16), dataChunk(32000, new Uint8Array(0)));
    expect(header(file, true)).toMatchObject({ dataBytes: 32000, duration: 1, truncated: false });
    const streamed = riff(fmt(1, 2, 16000, 16), dataChunk(0xffffffff, new Uint8Array(400)));
    expect(header(streamed, true)).toMatchObject({ declaredDataBytes: undefined, dataBytes: undefined });
    expect(header(streamed)).toMatchObject({ dataBytes: 400, frames: 100, truncated: false });
  });

  it('reads RF64 sizes from the ds64 chunk', () => {
    const ds64 = Buffer.alloc(28);
    ds64.writeBigUInt64LE(5_000_000_000n, 0);
    ds64.writeBigUInt64LE(4_999_999_000n, 8);
    const file = riff(chunk('ds64', ds64), fmt(1, 2, 48000, 16), dataChunk(0xffffffff, new Uint8Array(4000)));
    file.write('RF64', 0, 'latin1');
    file.writeUInt32LE(0xffffffff, 4);
    const h = header(file, true);
    expect(h).toMatchObject({
      container: 'RF64',
      declaredDataBytes: 4_999_999_000,
      dataBytes: 4_999_999_000,
    });
    expect(header(file)).toMatchObject({ dataBytes: 4000, frames: 1000, truncated: true });
  });

  it('asks for more bytes when the head ends before the data chunk', () => {
    const file = riff(
      chunk('LIST', new Uint8Array(5000)),
      fmt(1, 1, 16000, 16),
      dataChunk(2, new Uint8Array(2)),
    );
    const first = parseWavHeader(file.subarray(0, 100));
    expect(first).toEqual({ kind: 'need_more', bytes: 12 + 8 + 5000 + 8 });
    const second = parseWavHeader(file.subarray(0, 12 + 8 + 5000 + 8));
    expect(second.kind).toBe('need_more');
    expect(parseWavHeader(file).kind).toBe('header');
    expect(parseWavHeader(file.subarray(0, 6)).kind).toBe('need_more');
  });

  it('rejects insane headers with a clear message', () => {
    const data = dataChunk(4, new Uint8Array(4));
    expect(invalid(Buffer.from('RIFF\0\0\0\0AVI LIST'))).toMatch(/Not a WAV/);
    expect(invalid(Buffer.from('RIFF'))).toMatch(/too short/);
    expect(invalid(riff(fmt(1, 0, 16000, 16, 2), data))).toMatch(/0 channels/);
    expect(invalid(riff(fmt(1, 65, 16000, 16), data))).toMatch(/65 channels/);
    expect(invalid(riff(fmt(1, 1, 0, 16), data))).toMatch(/sample rate/);
    expect(invalid(riff(fmt(1, 1, 4_000_000_000, 16), data))).toMatch(/sample rate/);
    expect(invalid(riff(fmt(1, 2, 16000, 16, 3), data))).toMatch(/block size/);
    expect(invalid(riff(fmt(1, 2, 16000, 16, 0), data))).toMatch(/zero block/);
    expect(invalid(riff(data, fmt(1, 1, 16000, 16)))).toMatch(/before its format/);
    expect(invalid(riff(fmt(1, 1, 16000, 16)))).toMatch(/no data chunk/);
    expect(invalid(riff(chunk('fmt ', new Uint8Array(8)), data))).toMatch(/too short/);
    const liar = riff(fmt(1, 1, 16000, 16), chunk('LIST', new Uint8Array(16)), data);
    liar.writeUInt32LE(0x7fffffff, 12 + 24 + 4); // LIST claims 2 GB
    expect(invalid(liar)).toMatch(/'LIST' chunk extends beyond the file/);
    const huge = riff(fmt(1, 1, 16000, 16), chunk('JUNK', new Uint8Array(MAX_WAV_HEADER_BYTES)), data);
    expect(invalid(huge)).toMatch(/too large/);
  });
});

describe('PCM reading and writing', () => {
  it('reads every sample encoding to PCM16 per channel', () => {
    const values = [0, 0.5, -0.5, -1, 0.999];
    const expected = Int16Array.from([0, 16384, -16384, -32768, 32735]);
    const encoders: [number, number, (b: Buffer, v: number, at: number) => void][] = [
      [1, 16, (b, v, at) => b.writeInt16LE(Math.max(-32768, Math.round(v * 32768)), at)],
      [1, 24, (b, v, at) => b.writeIntLE(Math.max(-8388608, Math.round(v * 8388608)), at, 3)],
      [1, 32, (b, v, at) => b.writeInt32LE(Math.max(-2147483648, Math.round(v * 2147483648)), at)],
      [3, 32, (b, v, at) => b.writeFloatLE(v, at)],
      [3, 64, (b, v, at) => b.writeDoubleLE(v, at)],
    ];
    for (const [tag, bits, write] of encoders) {
      const bytesPer = bits / 8;
      const body = Buffer.alloc(values.length * 2 * bytesPer);
      // Left: the values; right: their negation (clipped at full scale).
      values.forEach((v, i) => {
        write(body, v, i * 2 * bytesPer);
        write(body, Math.min(-v, 0.999969), (i * 2 + 1) * bytesPer);
      });
      const { channels } = readWav(riff(fmt(tag, 2, 16000, bits), dataChunk(body.length, body)));
      expect([tag, bits, Array.from(channels[0]!)]).toEqual([tag, bits, Array.from(expected)]);
      expect(channels[1]![1]).toBe(-16384);
    }
    // Unsigned 8-bit: 128 is silence.
    const u8 = readWav(riff(fmt(1, 1, 8000, 8), dataChunk(4, Uint8Array.from([128, 255, 0, 64]))));
    expect(Array.from(u8.channels[0]!)).toEqual([0, 32512, -32768, -16384]);
  });

  it('round-trips multichannel PCM16 through encodeWav/readWav exactly', () => {
    const left = Int16Array.from({ length: 1001 }, (_, i) => ((i * 7919) % 65536) - 32768);
    const right = Int16Array.from({ length: 1001 }, (_, i) => 32767 - i);
    const file = encodeWav([left, right], 22050);
    expect(file.length).toBe(44 + 1001 * 4);
    const back = readWav(file);
    expect(back.sampleRate).toBe(22050);
    expect(back.channels).toEqual([left, right]);
    expect(() => encodeWav([left, right.subarray(1)], 16000)).toThrow(/length/);
  });

  it('wavHeader matches the header encodeWav writes, for streaming writers', () => {
    const file = encodeWav(new Int16Array(30), 16000);
    expect(wavHeader(16000, 1, 30)).toEqual(file.subarray(0, 44));
    expect(() => wavHeader(16000, 2, 2 ** 31)).toThrow(RangeError);
  });

  it('ignores a trailing partial frame and converts float ↔ PCM16 with clipping', () => {
    const format = header(encodeWav([new Int16Array(2), new Int16Array(2)], 16000)).format;
    expect(readPcm16Channels(Uint8Array.from([1, 0, 2, 0, 3]), format)).toEqual([
      Int16Array.from([1]),
      Int16Array.from([2]),
    ]);
    expect(Array.from(floatToPcm16(Float32Array.from([2, -2, NaN, 0.25])))).toEqual([32767, -32768, 0, 8192]);
    const pcm = Int16Array.from([-32768, -1, 0, 1, 32767]);
    expect(floatToPcm16(pcm16ToFloat(pcm))).toEqual(pcm);
  });
});
