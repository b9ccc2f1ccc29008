import { existsSync, mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { sha256, unpackConversation, type CorpusManifest } from './corpus-unpack.js';

/**
 * The test corpus: three synthetic conversations (see test/fixtures/corpus/README.md). The
 * repository keeps the smallest lossless form of it — a FLAC of each stereo recording (one
 * speaker per channel), the Ogg Vorbis files and the JSON references — and the first import
 * materialises what the specs read (ID.wav, ID.stereo.wav, ID.flac) into a cache directory outside
 * the tracked tree. Each derived file is checked against the SHA-256 the fixtures' manifest
 * records, so the specs read exactly the audio of the original corpus, byte for byte.
 *
 * Under CI (`CI` set) a corpus that cannot be materialised is an error, not a skip: a run that
 * silently skipped a hundred tests must not pass.
 */
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..', '..');
export const fixturesDir = path.join(ROOT, 'test', 'fixtures', 'corpus');

const manifestText = readFileSync(path.join(fixturesDir, 'manifest.json'), 'utf8');
const manifest = JSON.parse(manifestText) as CorpusManifest;

/**
 * Where the derived files live: in node_modules/.cache (ignored by git, removed with
 * node_modules), one directory per manifest version so that changed fixtures never meet stale files.
 */
export const corpusDir = path.join(
  ROOT,
  'node_modules',
  '.cache',
  'sotto-corpus',
  sha256(manifestText).slice(0, 12),
);

/**
 * Writes `data` under `file` atomically: vitest's worker processes (and other engineers' runs)
 * may materialise at the same moment; a reader sees either no file or a complete one.
 */
function writeAtomically(file: string, data: Uint8Array): void {
  const tmp = `${file}.${process.pid}.${Math.random().toString(36).slice(2)}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, file);
}

/** Materialises one conversation's derived files (what is already there is kept). */
function materialiseOne(id: string): void {
  const out = (ext: string) => path.join(corpusDir, `${id}.${ext}`);
  if (existsSync(out('stereo.wav')) && existsSync(out('wav')) && existsSync(out('flac'))) return;
  const files = unpackConversation(fixturesDir, manifest, id);
  writeAtomically(out('stereo.wav'), files.stereoWav);
  writeAtomically(out('wav'), files.monoWav);
  writeAtomically(out('flac'), files.flac);
}

/** Materialises the whole corpus; returns why it could not (undefined when it is ready). */
export function materialiseCorpus(): string | undefined {
  try {
    mkdirSync(corpusDir, { recursive: true });
    for (const id of manifest.ids) materialiseOne(id);
    return undefined;
  } catch (err) {
    // Nothing to clean up: a file only ever appears, complete and checked, through a rename.
    const e = err as NodeJS.ErrnoException;
    if (e.code === 'ENOENT' && e.path === 'ffmpeg') {
      return 'ffmpeg is needed to unpack the test corpus (apt-get install ffmpeg)';
    }
    return `the test corpus could not be unpacked into ${corpusDir}: ${e.message}`;
  }
}

const problem = materialiseCorpus();
export const hasCorpus = problem === undefined;
export const noCorpusReason = problem ?? '';
if (problem && process.env.CI) throw new Error(`CI: ${problem}; the specs that need the corpus would skip`);

export interface CorpusTurn {
  speaker: string;
  start: number;
  end: number;
  text: string;
}

export interface CorpusEntry {
  id: string;
  duration: number;
  speakers: string[];
  voices: Record<string, string>;
  turns: CorpusTurn[];
  text: string;
}

export function corpusIds(): string[] {
  if (!hasCorpus) return [];
  return (JSON.parse(readFileSync(path.join(fixturesDir, 'index.json'), 'utf8')) as { id: string }[]).map(
    (e) => e.id,
  );
}

export function corpusEntry(id: string): CorpusEntry {
  return JSON.parse(readFileSync(path.join(fixturesDir, `${id}.json`), 'utf8')) as CorpusEntry;
}

/** Path of a corpus file: 'wav' (mono), 'stereo.wav', 'flac' (mono) or 'ogg' (mono Vorbis). */
export function corpusFile(id: string, ext: 'wav' | 'stereo.wav' | 'flac' | 'ogg'): string {
  return path.join(ext === 'ogg' ? fixturesDir : corpusDir, `${id}.${ext}`);
}
