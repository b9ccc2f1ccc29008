import { sine16k } from './audio-files.js';

/**
 * A 16 kHz mono 16-bit WAV of a quiet tone: a real, playable file of any length, for playback
 * tests that need no speech (its bytes span many audio-at-rest chunks).
 */
export function wavFile(seconds: number): Buffer {
  const pcm = sine16k(440, seconds, 3000);
  const data = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  const h = Buffer.alloc(44);
  h.write('RIFF', 0);
  h.writeUInt32LE(36 + data.length, 4);
  h.write('WAVE', 8);
  h.write('fmt ', 12);
  h.writeUInt32LE(16, 16);
  h.writeUInt16LE(1, 20); // PCM
  h.writeUInt16LE(1, 22); // mono
  h.writeUInt32LE(16_000, 24);
  h.writeUInt32LE(32_000, 28);
  h.writeUInt16LE(2, 32);
  h.writeUInt16LE(16, 34);
  h.write('data', 36);
  h.writeUInt32LE(data.length, 40);
  return Buffer.concat([h, data]);
}
