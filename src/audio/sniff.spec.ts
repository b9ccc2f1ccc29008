import { describe, expect, it } from 'vitest';
import { sniffAudio } from './sniff.js';
import { encodeWav } from './wav.js';

const bytes = (...parts: (string | number[] | Uint8Array)[]): Uint8Array =>
  Buffer.concat(parts.map((p) => (typeof p === 'string' ? Buffer.from(p, 'latin1') : Buffer.from(p))));

/** A deterministic pseudo-random generator (xorshift32) so failures reproduce. */
function random(seed: number): (n: number) => Uint8Array {
  let s = seed >>> 0 || 1;
  return (n) => {
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) {
      s ^= s << 13;
      s >>>= 0;
      s ^= s >>> 17;
      s ^= s << 5;
      s >>>= 0;
      out[i] = s & 0xff;
    }
    return out;
  };
}

function oggPage(payload: string | number[]): Uint8Array {
  const body = bytes(payload);
  return bytes(
    'OggS',
    [0, 2],
    new Array(8).fill(0),
    [1, 0, 0, 0],
    [0, 0, 0, 0],
    [0, 0, 0, 0],
    [1, body.length],
    body,
  );
}

/** MPEG-1 layer III, 128 kb/s, 44.1 kHz: 417-byte frames. */
function mp3Frames(count: number): Uint8Array {
  const frame = new Uint8Array(417);
  frame.set([0xff, 0xfb, 0x90, 0x64]);
  return bytes(...Array.from({ length: count }, () => frame));
}

/** ADTS AAC-LC, 44.1 kHz stereo, 200-byte frames. */
function adtsFrames(count: number): Uint8Array {
  const len = 200;
  const frame = new Uint8Array(len);
  frame.set([0xff, 0xf1, 0x50, 0x80 | ((len >> 11) & 3), (len >> 3) & 0xff, ((len & 7) << 5) | 0x1f, 0xfc]);
  return bytes(...Array.from({ length: count }, () => frame));
}

function ebml(docType: string): Uint8Array {
  const doc = bytes([0x42, 0x82, 0x80 | docType.length], docType);
  const version = bytes([0x42, 0x86, 0x81, 0x01]);
  const body = bytes(version, doc);
  return bytes([0x1a, 0x45, 0xdf, 0xa3, 0x80 | body.length], body, [0x18, 0x53, 0x80, 0x67]);
}

function ftyp(major: string, ...compatible: string[]): Uint8Array {
  const size = 16 + 4 * compatible.length;
  return bytes([0, 0, 0, size], 'ftyp', major, [0, 0, 0, 0], ...compatible, [0, 0, 0, 8], 'free');
}

describe('sniffAudio', () => {
  it('identifies WAV (RIFF, RF64) and names its sample encoding', () => {
    const wav = encodeWav(new Int16Array(100), 16000);
    expect(sniffAudio(wav)).toEqual({ container: 'wav', codec: 'pcm', mime: 'audio/wav' });
    const rf64 = Buffer.from(wav);
    rf64.write('RF64', 0, 'latin1');
    expect(sniffAudio(rf64)?.container).toBe('wav');
    const float = Buffer.from(wav);
    float.writeUInt16LE(3, 20);
    expect(sniffAudio(float)?.codec).toBe('pcm_float');
    const mulaw = Buffer.from(wav);
    mulaw.writeUInt16LE(7, 20);
    expect(sniffAudio(mulaw)?.codec).toBe('wav_other');
  });

  it('refuses RIFF files that are not WAVE (AVI, WebP)', () => {
    expect(sniffAudio(bytes('RIFF', [0, 0, 0, 0], 'AVI LIST'))).toBeUndefined();
    expect(sniffAudio(bytes('RIFF', [0, 0, 0, 0], 'WEBPVP8 '))).toBeUndefined();
  });

  it('identifies FLAC, also behind an ID3 tag', () => {
    expect(sniffAudio(bytes('fLaC', [0, 0, 0, 34]))).toMatchObject({ container: 'flac', codec: 'flac' });
    const id3 = bytes('ID3', [4, 0, 0, 0, 0, 0, 10], new Array(10).fill(0), 'fLaC', [0, 0, 0, 34]);
    expect(sniffAudio(id3)).toMatchObject({ container: 'flac' });
  });

  it('reads the codec of an Ogg stream from its first page', () => {
    expect(sniffAudio(oggPage('OpusHead\x01\x02'))).toEqual({
      container: 'ogg',
      codec: 'opus',
      mime: 'audio/ogg',
    });
    expect(sniffAudio(oggPage('\x01vorbis\0\0\0\0'))).toMatchObject({ container: 'ogg', codec: 'vorbis' });
    expect(sniffAudio(oggPage('\x7fFLAC\x01\x00'))).toMatchObject({ container: 'ogg', codec: 'flac' });
    // Theora video or an unknown codec is not audio we accept.
    expect(sniffAudio(oggPage('\x80theora\x03\x02'))).toBeUndefined();
    expect(sniffAudio(oggPage('Speex   1.2'))).toBeUndefined();
  });

  it('identifies MP3 by ID3 tag or by two consecutive frame headers', () => {
    expect(sniffAudio(mp3Frames(3))).toEqual({ container: 'mp3', codec: 'mp3', mime: 'audio/mpeg' });
    expect(
      sniffAudio(bytes('ID3', [3, 0, 0, 0, 0, 0, 20], new Array(20).fill(0), mp3Frames(2))),
    ).toMatchObject({
      container: 'mp3',
    });
    // A large tag (cover art) reaching past the sniffed bytes still marks an MP3.
    expect(sniffAudio(bytes('ID3', [4, 0, 0, 0, 1, 0, 0], new Array(100).fill(0)))).toMatchObject({
      container: 'mp3',
    });
    // A valid-looking first header followed by garbage where the next frame should be is noise.
    const broken = mp3Frames(3);
    broken[417] = 0x00;
    expect(sniffAudio(broken)).toBeUndefined();
    // Reserved version / bad bitrate / bad sample rate.
    expect(sniffAudio(bytes([0xff, 0xeb, 0x90, 0x64], new Array(900).fill(0)))).toBeUndefined();
    expect(sniffAudio(bytes([0xff, 0xfb, 0xf0, 0x64], new Array(900).fill(0)))).toBeUndefined();
    expect(sniffAudio(bytes([0xff, 0xfb, 0x9c, 0x64], new Array(900).fill(0)))).toBeUndefined();
    expect(sniffAudio(bytes('ID3', [9, 0, 0, 0, 0, 0, 0]))).toBeUndefined();
  });

  it('identifies ADTS AAC', () => {
    expect(sniffAudio(adtsFrames(3))).toEqual({ container: 'aac', codec: 'aac', mime: 'audio/aac' });
  });

  it('identifies MP4/M4A by an audio-capable ftyp brand', () => {
    expect(sniffAudio(ftyp('M4A ', 'M4A ', 'mp42', 'isom'))).toEqual({
      container: 'mp4',
      codec: undefined,
      mime: 'audio/mp4',
    });
    expect(sniffAudio(ftyp('isom', 'isom', 'iso2', 'mp41'))?.container).toBe('mp4');
    expect(sniffAudio(ftyp('XXXX', 'mp42'))?.container).toBe('mp4');
    // HEIF images and QuickTime-only files are not accepted.
    expect(sniffAudio(ftyp('heic', 'mif1', 'heic'))).toBeUndefined();
    expect(sniffAudio(ftyp('qt  ', 'qt  '))).toBeUndefined();
  });

  it('identifies WebM and Matroska from the EBML DocType', () => {
    expect(sniffAudio(ebml('webm'))).toEqual({ container: 'webm', codec: undefined, mime: 'audio/webm' });
    expect(sniffAudio(ebml('matroska'))?.container).toBe('matroska');
    expect(sniffAudio(ebml('other'))).toBeUndefined();
    expect(sniffAudio(bytes([0x1a, 0x45, 0xdf, 0xa3, 0x00]))).toBeUndefined();
  });

  it('returns undefined for empty, short, text and random input', () => {
    expect(sniffAudio(new Uint8Array(0))).toBeUndefined();
    expect(sniffAudio(bytes('RIF'))).toBeUndefined();
    expect(sniffAudio(bytes('Hello, this is a transcript, not audio.\n'.repeat(50)))).toBeUndefined();
    expect(sniffAudio(bytes('<?xml version="1.0"?><svg/>'))).toBeUndefined();
    expect(sniffAudio(bytes('%PDF-1.7\n'))).toBeUndefined();
    expect(sniffAudio(bytes([0x89], 'PNG\r\n\x1a\n'))).toBeUndefined();
    for (let seed = 1; seed <= 2000; seed++) expect(sniffAudio(random(seed)(4096))).toBeUndefined();
  });
});
