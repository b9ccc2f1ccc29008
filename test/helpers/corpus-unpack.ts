import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import path from 'node:path';
import { wavHeader } from '../../src/audio/wav.js';

/**
 * How the committed corpus fixtures (test/fixtures/corpus) turn back into the files the specs
 * read. Shared by test/helpers/corpus.ts, which materialises them, and scripts/corpus-fixtures.ts,
 * which proves on the original corpus that the result is byte-identical before it commits anything.
 */
export interface CorpusManifest {
  sampleRate: number;
  ids: string[];
  /** What unpacking must produce, per file name (ID.wav, ID.stereo.wav): size and SHA-256. */
  derived: Record<string, { bytes: number; sha256: string }>;
}

export const sha256 = (b: Uint8Array | string): string => createHash('sha256').update(b).digest('hex');

const MAX_BUFFER = 64 * 1024 * 1024;

/** ffmpeg's 16-bit little-endian samples of a file, or of `stdin` (interleaved when stereo). */
export function ffmpegPcm(input: string | Uint8Array): Buffer {
  const fromStdin = typeof input !== 'string';
  return execFileSync(
    'ffmpeg',
    [
      '-v',
      'error',
      '-nostdin',
      '-i',
      fromStdin ? 'pipe:0' : input,
      '-f',
      's16le',
      '-acodec',
      'pcm_s16le',
      '-',
    ],
    {
      input: fromStdin ? input : undefined,
      maxBuffer: MAX_BUFFER,
      stdio: [fromStdin ? 'pipe' : 'ignore', 'pipe', 'pipe'],
    },
  );
}

/** A FLAC of a WAV, without metadata (so the bytes depend on the samples and the encoder only). */
export function encodeFlac(wav: Uint8Array, compressionLevel = 8): Buffer {
  return execFileSync(
    'ffmpeg',
    [
      ...['-v', 'error', '-nostdin', '-f', 'wav', '-i', 'pipe:0', '-map_metadata', '-1'],
      ...['-fflags', '+bitexact', '-flags:a', '+bitexact', '-c:a', 'flac'],
      ...['-compression_level', String(compressionLevel), '-f', 'flac', '-'],
    ],
    { input: wav, maxBuffer: MAX_BUFFER, stdio: ['pipe', 'pipe', 'pipe'] },
  );
}

/**
 * The mono recording is the sum of the stereo channels: each speaker has a channel of their own
 * and never talks over the other, so at every sample at most one side is non-zero (the fixture
 * script checks this on the original corpus before it leaves the mono files out).
 */
export function stereoToMono(stereo: Buffer): Buffer {
  const frames = stereo.length / 4;
  const mono = Buffer.alloc(frames * 2);
  for (let i = 0; i < frames; i++) {
    const sum = stereo.readInt16LE(4 * i) + stereo.readInt16LE(4 * i + 2);
    mono.writeInt16LE(Math.max(-32768, Math.min(32767, sum)), 2 * i);
  }
  return mono;
}

function checked(manifest: CorpusManifest, name: string, data: Buffer): Buffer {
  const want = manifest.derived[name];
  if (!want) throw new Error(`test/fixtures/corpus/manifest.json lists no ${name}`);
  if (data.length !== want.bytes || sha256(data) !== want.sha256) {
    throw new Error(
      `${name} unpacked to other bytes than manifest.json records (see scripts/corpus-fixtures.ts)`,
    );
  }
  return data;
}

/**
 * One conversation's files from `<dir>/ID.stereo.flac`: the stereo and mono WAVs (checked against
 * the manifest) and a mono FLAC for the specs that upload one, decoded again to prove it holds the
 * very samples of the mono WAV.
 */
export function unpackConversation(
  dir: string,
  manifest: CorpusManifest,
  id: string,
): { stereoWav: Buffer; monoWav: Buffer; flac: Buffer } {
  const rate = manifest.sampleRate;
  const stereo = ffmpegPcm(path.join(dir, `${id}.stereo.flac`));
  const stereoWav = checked(
    manifest,
    `${id}.stereo.wav`,
    Buffer.concat([wavHeader(rate, 2, stereo.length / 4), stereo]),
  );
  const mono = stereoToMono(stereo);
  const monoWav = checked(manifest, `${id}.wav`, Buffer.concat([wavHeader(rate, 1, mono.length / 2), mono]));
  const flac = encodeFlac(monoWav);
  if (!ffmpegPcm(flac).equals(mono))
    throw new Error(`${id}.flac does not decode to the samples of ${id}.wav`);
  return { stereoWav, monoWav, flac };
}
