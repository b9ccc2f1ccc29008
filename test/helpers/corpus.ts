import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

/**
 * The shared test corpus (../shared/corpus beside the project). It is not shipped with Sotto:
 * on a user's machine it is absent and the specs that need it are skipped, saying why.
 */
export const corpusDir = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../../../shared/corpus');
export const hasCorpus = existsSync(path.join(corpusDir, 'index.json'));
export const noCorpusReason = `test corpus not found at ${corpusDir} (it lives in ../shared, beside the project)`;

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
  return (JSON.parse(readFileSync(path.join(corpusDir, 'index.json'), 'utf8')) as { id: string }[]).map(
    (e) => e.id,
  );
}

export function corpusEntry(id: string): CorpusEntry {
  return JSON.parse(readFileSync(path.join(corpusDir, `${id}.json`), 'utf8')) as CorpusEntry;
}

/** Path of a corpus file: kind '' (mono WAV), 'stereo.wav', 'flac', 'ogg'. */
export function corpusFile(id: string, ext: 'wav' | 'stereo.wav' | 'flac' | 'ogg'): string {
  return path.join(corpusDir, `${id}.${ext}`);
}
