import { writeFileSync } from 'node:fs';
import path from 'node:path';
import { encodeWav } from '../../src/audio/wav.js';
import { corpusEntry, type CorpusTurn } from './corpus.js';
import { readCorpusMono } from './corpus-audio.js';

/**
 * The opening turns of a corpus conversation as shorter audio: the same real speech, sample for
 * sample, cut in the pause after the last turn kept (half way to the next turn, so no word is
 * clipped). End-to-end specs that are not about recognition accuracy stream this instead of the
 * whole file: every recognizer pass (live, the job, an upload to compare with) gets shorter.
 */
export interface CorpusClip {
  sampleRate: number;
  /** Mono PCM16 (ID.wav cut). */
  pcm: Int16Array;
  /** The same as a WAV file's bytes. */
  wav: Buffer;
  /** The turns kept and their reference text. */
  turns: CorpusTurn[];
  text: string;
  seconds: number;
}

export function corpusClip(id: string, turns: number): CorpusClip {
  const entry = corpusEntry(id);
  const kept = entry.turns.slice(0, turns);
  if (kept.length !== turns) throw new Error(`${id} has only ${entry.turns.length} turns`);
  const next = entry.turns[turns];
  const endSeconds = next ? (kept.at(-1)!.end + next.start) / 2 : entry.duration;
  const { sampleRate, pcm: whole } = readCorpusMono(id);
  const pcm = whole.slice(0, Math.round(endSeconds * sampleRate));
  return {
    sampleRate,
    pcm,
    wav: encodeWav(pcm, sampleRate),
    turns: kept,
    text: kept.map((t) => t.text).join(' '),
    seconds: pcm.length / sampleRate,
  };
}

/** The clip written as `dir/ID-first-N.wav`, for what reads a file (the CLI's --file). */
export function writeCorpusClip(id: string, turns: number, dir: string): CorpusClip & { file: string } {
  const clip = corpusClip(id, turns);
  const file = path.join(dir, `${id}-first-${turns}.wav`);
  writeFileSync(file, clip.wav);
  return { ...clip, file };
}
