import { readFileSync, readdirSync } from 'node:fs';
import { readWav } from '../../src/audio/wav.js';

/** Reads a 16 kHz mono PCM16 WAV (the corpus format) with the product's WAV reader. */
export function readPcm16Wav(file: string): Int16Array {
  const { sampleRate, channels } = readWav(readFileSync(file));
  if (sampleRate !== 16_000 || channels.length !== 1) {
    throw new Error(`${file}: expected 16 kHz mono, got ${sampleRate} Hz × ${channels.length}`);
  }
  return channels[0]!;
}

/** Process ids whose command line mentions `needle` (Linux /proc), to prove a subprocess is gone. */
export function processesMentioning(needle: string): number[] {
  const found: number[] = [];
  let entries: string[] = [];
  try {
    entries = readdirSync('/proc');
  } catch {
    return found;
  }
  for (const entry of entries) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8');
      if (cmdline.includes(needle)) found.push(Number(entry));
    } catch {
      /* exited meanwhile */
    }
  }
  return found;
}
