import { readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { encodeWav, readWav } from '../../src/audio/wav.js';

/**
 * Real human speech from Debian's pocketsphinx-testdata, kept in test/fixtures/speech (see its
 * README for sources and licences), and the long track several specs build from it.
 */
export const FIXTURES = path.resolve(
  path.dirname(fileURLToPath(import.meta.url)),
  '..',
  'fixtures',
  'speech',
);
const RATE = 16_000;
/** Pause between utterances in the long track: longer than the VAD's hangover, so chunks form there. */
const GAP_SECONDS = 2;

export interface Reference {
  file: string;
  text: string;
  source: string;
  licence: string;
  kind: 'read' | 'command';
}

export function readReferences(): Reference[] {
  return JSON.parse(readFileSync(path.join(FIXTURES, 'references.json'), 'utf8')) as Reference[];
}

export function pcmOf(file: string): Int16Array {
  const { sampleRate, channels } = readWav(readFileSync(file));
  if (sampleRate !== RATE || channels.length !== 1) throw new Error(`${file}: not 16 kHz mono`);
  return channels[0]!;
}

/**
 * The five LibriVox utterances end to end with GAP_SECONDS of room tone between them: > 30 s, so
 * the pipeline needs more than one chunk. The "silence" is faint fixed-seed noise rather than
 * digital zeros, which no microphone produces and which would put both recognisers in a
 * situation real audio never does. Returns where each utterance sits.
 */
export function buildLongTrack(refs: Reference[], out: string): { text: string; spans: [number, number][] } {
  const parts: Int16Array[] = [];
  const spans: [number, number][] = [];
  let seed = 0x5eed;
  const roomTone = (n: number): Int16Array =>
    Int16Array.from({ length: n }, () => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return ((seed >>> 16) % 13) - 6;
    });
  let at = 0;
  for (const [i, ref] of refs.entries()) {
    if (i > 0) {
      parts.push(roomTone(GAP_SECONDS * RATE));
      at += GAP_SECONDS * RATE;
    }
    const pcm = pcmOf(path.join(FIXTURES, ref.file));
    parts.push(pcm);
    spans.push([at / RATE, (at + pcm.length) / RATE]);
    at += pcm.length;
  }
  const all = new Int16Array(at);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.length;
  }
  writeFileSync(out, encodeWav(all, RATE));
  return { text: refs.map((r) => r.text).join(' '), spans };
}
