import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { format, resolveConfig } from 'prettier';
import {
  encodeFlac,
  ffmpegPcm,
  sha256,
  unpackConversation,
  type CorpusManifest,
} from '../test/helpers/corpus-unpack.js';

/**
 * (Re)creates test/fixtures/corpus/ from the original corpus (default ../shared/corpus beside the
 * project, or the directory given as argument):
 *
 *   npx tsx scripts/corpus-fixtures.ts [/path/to/corpus]
 *
 * The original holds, per conversation, ID.wav (mono), ID.flac (the same, compressed), ID.ogg,
 * ID.stereo.wav (one speaker per channel) and ID.json. Only ID.stereo.flac (a lossless FLAC of
 * ID.stereo.wav), ID.ogg and the JSON files are kept: the mono recording is the sum of the two
 * channels, so test/helpers/corpus.ts rebuilds ID.wav, ID.stereo.wav and a mono ID.flac from the
 * stereo FLAC. manifest.json records the size and SHA-256 of each original WAV; before writing
 * anything this script unpacks its own output and refuses unless both WAVs come back byte-identical
 * (and the original mono FLAC holds the same samples as the mono WAV).
 *
 * The FLAC bytes depend on ffmpeg's encoder version; the samples they decode to never do.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const source = path.resolve(process.argv[2] ?? path.join(ROOT, '..', 'shared', 'corpus'));
const out = path.join(ROOT, 'test', 'fixtures', 'corpus');
const RATE = 16_000;

function fail(message: string): never {
  console.error(`corpus-fixtures: ${message}`);
  process.exit(1);
}

/** The 44-byte canonical header the corpus WAVs have (what src/audio/wav.ts writes). */
function canonicalPcm(file: string, channels: number): Buffer {
  const bytes = readFileSync(file);
  const pcm = bytes.subarray(44);
  const frames = pcm.length / (2 * channels);
  const ok =
    bytes.toString('ascii', 0, 4) === 'RIFF' &&
    bytes.toString('ascii', 36, 40) === 'data' &&
    bytes.readUInt16LE(20) === 1 &&
    bytes.readUInt16LE(22) === channels &&
    bytes.readUInt32LE(24) === RATE &&
    bytes.readUInt16LE(34) === 16 &&
    bytes.readUInt32LE(40) === pcm.length &&
    Number.isInteger(frames);
  if (!ok) fail(`${file} is not a canonical ${RATE} Hz ${channels}-channel 16-bit WAV`);
  return pcm;
}

const ids = (JSON.parse(readFileSync(path.join(source, 'index.json'), 'utf8')) as { id: string }[]).map(
  (e) => e.id,
);
const manifest: CorpusManifest = { sampleRate: RATE, ids, derived: {} };
const flacs = new Map<string, Buffer>();

for (const id of ids) {
  const src = (ext: string) => path.join(source, `${id}.${ext}`);
  const mono = canonicalPcm(src('wav'), 1);
  const stereo = canonicalPcm(src('stereo.wav'), 2);
  // What lets the mono files go: each channel is one speaker, they never overlap, mono = L + R.
  for (let i = 0; i < mono.length / 2; i++) {
    const l = stereo.readInt16LE(4 * i);
    const r = stereo.readInt16LE(4 * i + 2);
    if ((l !== 0 && r !== 0) || mono.readInt16LE(2 * i) !== l + r) {
      fail(`${id}: the mono recording is not the sum of the stereo channels at sample ${i}`);
    }
  }
  if (mono.length * 2 !== stereo.length) fail(`${id}: mono and stereo lengths differ`);
  if (!ffmpegPcm(src('flac')).equals(mono)) fail(`${id}.flac does not hold the samples of ${id}.wav`);
  for (const ext of ['wav', 'stereo.wav']) {
    const bytes = readFileSync(src(ext));
    manifest.derived[`${id}.${ext}`] = { bytes: bytes.length, sha256: sha256(bytes) };
  }
  flacs.set(id, encodeFlac(readFileSync(src('stereo.wav')), 12));
}

// Prove the round trip before touching the repository: unpack from a scratch directory.
const scratch = mkdtempSync(path.join(tmpdir(), 'sotto-corpus-fixtures-'));
try {
  for (const [id, flac] of flacs) writeFileSync(path.join(scratch, `${id}.stereo.flac`), flac);
  for (const id of ids) {
    const { stereoWav, monoWav } = unpackConversation(scratch, manifest, id);
    if (!stereoWav.equals(readFileSync(path.join(source, `${id}.stereo.wav`))))
      fail(`${id}.stereo.wav round trip`);
    if (!monoWav.equals(readFileSync(path.join(source, `${id}.wav`)))) fail(`${id}.wav round trip`);
  }
} finally {
  rmSync(scratch, { recursive: true, force: true });
}

mkdirSync(out, { recursive: true });
for (const id of ids) {
  writeFileSync(path.join(out, `${id}.stereo.flac`), flacs.get(id)!);
  writeFileSync(path.join(out, `${id}.ogg`), readFileSync(path.join(source, `${id}.ogg`)));
}
// The JSON files as the repository's formatter writes them (`npm run check` runs prettier on them).
const writeJson = async (name: string, value: unknown) => {
  const file = path.join(out, name);
  const options = { ...(await resolveConfig(file)), parser: 'json' };
  writeFileSync(file, await format(JSON.stringify(value), options));
};
for (const name of [...ids.map((id) => `${id}.json`), 'index.json']) {
  await writeJson(name, JSON.parse(readFileSync(path.join(source, name), 'utf8')));
}
await writeJson('manifest.json', manifest);
console.log(
  `corpus-fixtures: ${ids.length} conversations from ${source} written to ${path.relative(ROOT, out)}`,
);
