import { spawn } from 'node:child_process';
import path from 'node:path';
import type { Readable } from 'node:stream';
import { createAudioDecoder } from './audio-decoder.adapter.js';
import { findExecutable } from './executable.adapter.js';

/**
 * Where `sotto bot` gets its audio: a file in any supported format (decoded to 16 kHz mono), raw
 * PCM on a stream (stdin), or the microphone through the distribution's `arecord` or `sox`.
 * Each yields 100 ms frames of PCM16 little-endian, 16 kHz mono (3200 bytes; the last may be
 * shorter), which is what the live protocol takes.
 */
export const FRAME_SAMPLES = 1600;
export const FRAME_BYTES = FRAME_SAMPLES * 2;

export const MIC_MISSING =
  '--mic needs `arecord` (alsa-utils) or `sox` on PATH; neither was found. Install one, or pipe ' +
  'raw PCM into --stdin';

export class CaptureError extends Error {
  override name = 'CaptureError';
}

/** PCM16 in the platform's byte order as little-endian bytes (a no-op on every platform Node runs on but s390x). */
function toLeBytes(pcm: Int16Array): Buffer {
  const buf = Buffer.from(pcm.buffer, pcm.byteOffset, pcm.byteLength);
  if (new Uint8Array(new Uint16Array([1]).buffer)[0] === 1) return Buffer.from(buf);
  const out = Buffer.alloc(buf.length);
  for (let i = 0; i < pcm.length; i++) out.writeInt16LE(pcm[i]!, i * 2);
  return out;
}

export async function* fileFrames(file: string, signal: AbortSignal): AsyncGenerator<Buffer> {
  const stream = await createAudioDecoder().open(file, {
    signal,
    chunkSamples: FRAME_SAMPLES,
    perChannel: false,
  });
  for await (const chunk of stream) {
    if (signal.aborted) return;
    if (chunk.mono.length > 0) yield toLeBytes(chunk.mono);
  }
}

/** Cuts a byte stream of raw PCM16 LE into 100 ms frames (an odd trailing byte is dropped). */
export async function* rawFrames(input: Readable, signal: AbortSignal): AsyncGenerator<Buffer> {
  let pending: Buffer = Buffer.alloc(0);
  const onAbort = () => input.destroy();
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    for await (const chunk of input) {
      pending = pending.length ? Buffer.concat([pending, chunk as Buffer]) : (chunk as Buffer);
      while (pending.length >= FRAME_BYTES) {
        yield Buffer.from(pending.subarray(0, FRAME_BYTES));
        pending = pending.subarray(FRAME_BYTES);
      }
      if (signal.aborted) return;
    }
  } catch (err) {
    if (!signal.aborted) throw err;
  } finally {
    signal.removeEventListener('abort', onAbort);
  }
  const even = pending.length - (pending.length % 2);
  if (even > 0 && !signal.aborted) yield Buffer.from(pending.subarray(0, even));
}

/** The recorder `--mic` would use (looked up along PATH), or undefined when neither is installed. */
export function micRecorder(searchPath: string): { command: string; args: string[] } | undefined {
  const arecord = findExecutable('arecord', searchPath);
  if (arecord)
    return { command: arecord, args: ['-q', '-f', 'S16_LE', '-r', '16000', '-c', '1', '-t', 'raw'] };
  const sox = findExecutable('sox', searchPath);
  if (sox)
    return {
      command: sox,
      args: ['-q', '-d', '-t', 'raw', '-r', '16000', '-e', 'signed', '-b', '16', '-c', '1', '-L', '-'],
    };
  return undefined;
}

export async function* micFrames(signal: AbortSignal, searchPath: string): AsyncGenerator<Buffer> {
  const recorder = micRecorder(searchPath);
  if (!recorder) throw new CaptureError(MIC_MISSING);
  const child = spawn(recorder.command, recorder.args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stderr = '';
  child.stderr.on('data', (c: Buffer) => (stderr = (stderr + c.toString()).slice(-500)));
  const exited = new Promise<number | null>((resolve) => child.on('close', resolve));
  const onAbort = () => child.kill('SIGTERM');
  signal.addEventListener('abort', onAbort, { once: true });
  try {
    yield* rawFrames(child.stdout, signal);
  } finally {
    signal.removeEventListener('abort', onAbort);
    if (child.exitCode === null) child.kill('SIGTERM');
  }
  const code = await exited;
  if (code !== 0 && !signal.aborted)
    throw new CaptureError(
      `${path.basename(recorder.command)} stopped (exit ${code}): ${stderr.trim() || 'no message'}`,
    );
}
