import { readFileSync } from 'node:fs';
import { corpusFile } from './corpus.js';

/**
 * Minimal RIFF/WAVE reader for the corpus's PCM16 files (tests and benches only; the product's
 * decoder lives in src/audio/). Walks the chunks, checks the format, de-interleaves channels.
 */
export interface PcmAudio {
  sampleRate: number;
  channels: Int16Array[];
}

export function readPcm16Wav(file: string): PcmAudio {
  const buf = readFileSync(file);
  if (buf.toString('ascii', 0, 4) !== 'RIFF' || buf.toString('ascii', 8, 12) !== 'WAVE')
    throw new Error(`${file}: not a WAVE file`);
  let offset = 12;
  let format: { channels: number; sampleRate: number; bits: number } | null = null;
  while (offset + 8 <= buf.length) {
    const id = buf.toString('ascii', offset, offset + 4);
    const size = buf.readUInt32LE(offset + 4);
    const body = offset + 8;
    if (id === 'fmt ') {
      format = {
        channels: buf.readUInt16LE(body + 2),
        sampleRate: buf.readUInt32LE(body + 4),
        bits: buf.readUInt16LE(body + 14),
      };
    } else if (id === 'data') {
      if (!format || format.bits !== 16) throw new Error(`${file}: expected PCM16`);
      const frames = Math.floor(Math.min(size, buf.length - body) / (2 * format.channels));
      const channels = Array.from({ length: format.channels }, () => new Int16Array(frames));
      for (let i = 0; i < frames; i++) {
        for (let c = 0; c < format.channels; c++)
          channels[c]![i] = buf.readInt16LE(body + 2 * (i * format.channels + c));
      }
      return { sampleRate: format.sampleRate, channels };
    }
    offset = body + size + (size & 1);
  }
  throw new Error(`${file}: no data chunk`);
}

/** Mono corpus audio (ID.wav). */
export function readCorpusMono(id: string): { sampleRate: number; pcm: Int16Array } {
  const a = readPcm16Wav(corpusFile(id, 'wav'));
  return { sampleRate: a.sampleRate, pcm: a.channels[0]! };
}

/** Stereo corpus audio (ID.stereo.wav): first speaker left, second right. */
export function readCorpusStereo(id: string): PcmAudio {
  return readPcm16Wav(corpusFile(id, 'stereo.wav'));
}
