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

/**
 * Process ids whose command line mentions `needle` (Linux /proc), to prove a subprocess is gone.
 * `childrenOf` keeps only the children of that process: other spec files run their own helpers
 * in parallel, and a machine-wide count would see them.
 */
export function processesMentioning(needle: string, opts: { childrenOf?: number } = {}): number[] {
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
      if (!cmdline.includes(needle)) continue;
      if (opts.childrenOf !== undefined) {
        const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
        if (Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]) !== opts.childrenOf) continue;
      }
      found.push(Number(entry));
    } catch {
      /* exited meanwhile */
    }
  }
  return found;
}
