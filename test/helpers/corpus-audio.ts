import { readFileSync } from 'node:fs';
import { readWav } from '../../src/audio/wav.js';
import { corpusFile } from './corpus.js';

/** Corpus audio read with the product's own WAV reader (src/audio/wav.ts, tested on its own). */
export interface PcmAudio {
  sampleRate: number;
  channels: Int16Array[];
}

export function readPcm16Wav(file: string): PcmAudio {
  const { sampleRate, channels } = readWav(readFileSync(file));
  return { sampleRate, channels };
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
