import { readFileSync, readdirSync } from 'node:fs';

/**
 * Reads a 16 kHz mono PCM16 WAV (the corpus format) into samples, walking the RIFF chunks. The
 * engine specs use it so they do not depend on the audio decoder, which is tested on its own.
 */
export function readPcm16Wav(file: string): Int16Array {
  const buf = readFileSync(file);
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE') {
    throw new Error(`${file}: not a RIFF/WAVE file`);
  }
  let offset = 12;
  let format: { channels: number; rate: number; bits: number } | undefined;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('ascii', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      format = {
        channels: buf.readUInt16LE(body + 2),
        rate: buf.readUInt32LE(body + 4),
        bits: buf.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      if (!format || format.channels !== 1 || format.rate !== 16_000 || format.bits !== 16) {
        throw new Error(`${file}: expected 16 kHz mono PCM16, got ${JSON.stringify(format)}`);
      }
      const bytes = buf.subarray(body, body + Math.min(size, buf.length - body));
      const pcm = new Int16Array(bytes.length >> 1);
      for (let i = 0; i < pcm.length; i++) pcm[i] = bytes.readInt16LE(i * 2);
      return pcm;
    }
    offset = body + size + (size & 1);
  }
  throw new Error(`${file}: no data chunk`);
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
