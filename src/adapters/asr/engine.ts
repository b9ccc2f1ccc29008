import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { AppError } from '../../domain/errors.js';
import type { Word } from '../../domain/transcript.js';
import { OWNER_TAG } from '../storage/scratch-owner.adapter.js';

/**
 * The speech-recognition engine port. Every engine takes the same input — 16 kHz mono signed
 * 16-bit PCM, already decoded — and returns words with times in seconds (shifted by
 * `offsetSeconds`, so a caller that feeds VAD-bounded chunks gets recording times back).
 */
export type EngineId = 'sphinx' | 'whisper' | 'openai';

export const SAMPLE_RATE = 16_000;

export interface TranscribeOptions {
  /** Who is waiting (default 'batch'): engines with a decoder pool serve live work first. */
  priority?: Priority;
  /** Fairness key for batch work (the recording id): the pool takes turns between groups. */
  group?: string;
  /** ISO 639-1 code ('en'); engines with a single language refuse others. */
  language?: string;
  /** Added to every word time: where this chunk starts in the recording. */
  offsetSeconds?: number;
  /** Aborting stops the work (subprocess killed, request cancelled) and rejects with an AbortError. */
  signal?: AbortSignal;
  /** 0..1 within this call, for engines that can tell (whisper). */
  onProgress?: (fraction: number) => void;
}

export interface AsrEngine {
  readonly id: EngineId;
  /** One line for logs and `/readyz`-style reports: engine, model, backend actually used. */
  describe(): string;
  transcribe(pcm: Int16Array, opts?: TranscribeOptions): Promise<Word[]>;
  /**
   * How many `transcribe` calls are worth running at once (the pipeline recognises that many
   * chunks in parallel). 1 when the engine serialises calls anyway.
   */
  readonly concurrency?: number;
  /**
   * A streaming session: audio fed as it arrives, partial text while someone speaks, words at
   * each utterance end. Only engines that decode incrementally have one (pocketsphinx); the
   * others are called with whole utterances and chunks.
   */
  session?(opts: SessionOptions): RecognizerSession;
  /**
   * A cheap pass over a recording (listening, not recognising) that says where the engine's own
   * voice detector would end each utterance if it went through the whole recording in one go,
   * and the voice's adaptation at each of those points. Cut there and started from that state
   * (`SessionOptions.resume`), pieces recognised on several decoders at once give the words a
   * single pass would, with no overlapping lead-in recognised twice. Undefined from engines
   * that cannot (the caller then cuts at its own silences and pays lead-ins).
   */
  scan?(pcm: Int16Array, opts: ScanOptions): Promise<UtteranceBoundary[] | undefined>;
  /** Loads models ahead of the first request (a no-op where there is nothing to load). */
  warm?(): Promise<void>;
  /** Releases a loaded model or helper process; the engine may be used again afterwards. */
  close?(): Promise<void>;
}

export type Priority = 'live' | 'batch';

export interface ScanOptions {
  group?: string;
  signal?: AbortSignal;
  /**
   * Called with the boundaries found so far, in order, as the scan goes on (each boundary once;
   * the resolved list still holds them all): a caller can start on the first pieces meanwhile.
   */
  onBoundaries?: (found: UtteranceBoundary[]) => void;
}

/** The voice's adaptation at some point of a recording; only the engine that made it reads it. */
export interface AdaptationState {
  readonly engine: EngineId;
  readonly data: Float32Array;
}

export interface UtteranceBoundary {
  /** Samples from the start of the scanned audio. */
  sample: number;
  state: AdaptationState;
}

export interface SessionOptions {
  priority: Priority;
  group?: string;
  language?: string;
  /** Start from this adaptation (from `scan`) instead of the model's initial state. */
  resume?: AdaptationState;
  /** Aborting ends whatever utterance is open (its decoder is thrown away, not reused). */
  signal?: AbortSignal;
}

/**
 * One voice over time (a live participant, or a run of chunks of one upload). Adaptation to the
 * voice (pocketsphinx's cepstral mean) is carried from one utterance to the next, so no
 * lead-in audio has to be recognised twice to warm a decoder up.
 */
export interface RecognizerSession {
  /**
   * Whether the voice's adaptation travels from one utterance to the next (pocketsphinx's
   * cepstral mean), so a later utterance of the voice needs no lead-in audio.
   */
  readonly adapts: boolean;
  /** Starts an utterance whose first fed sample sits at `offsetSeconds` on the recording. */
  utterance(offsetSeconds: number): SpeechStream;
}

/** One utterance being recognised as it arrives. */
export interface SpeechStream {
  /** Audio (16 kHz mono PCM16), in order. Never blocks: buffered until a decoder is free. */
  feed(pcm: Int16Array): void;
  /** The text heard so far ('' before a decoder has it). */
  partial(): Promise<string>;
  /** Ends the utterance: its words with recording times. The decoder goes back to the pool. */
  final(): Promise<Word[]>;
  /** Drops the utterance (no words); its decoder is discarded. */
  abort(): void;
}

/** Installation or configuration problem: nothing will work until the operator acts. */
export class EngineUnavailableError extends AppError {
  constructor(message: string, options?: ErrorOptions) {
    super('engine_unavailable', message, undefined, options);
    this.name = 'EngineUnavailableError';
  }
}

/** One run failed; the next may succeed (a job is retried). */
export class EngineFailedError extends AppError {
  constructor(message: string, options?: ErrorOptions) {
    super('engine_failed', message, undefined, options);
    this.name = 'EngineFailedError';
  }
}

/** The error an aborted transcription rejects with: the signal's reason when it is an Error. */
export function abortError(signal: AbortSignal): Error {
  const reason: unknown = signal.reason;
  if (reason instanceof Error) return reason;
  return new DOMException('The transcription was aborted', 'AbortError');
}

export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted) throw abortError(signal);
}

/** Canonical 44-byte RIFF/WAVE header followed by the samples (little-endian PCM16, mono, 16 kHz). */
export function pcmToWav(pcm: Int16Array, sampleRate = SAMPLE_RATE): Buffer {
  const dataBytes = pcm.length * 2;
  const out = Buffer.alloc(44 + dataBytes);
  out.write('RIFF', 0, 'ascii');
  out.writeUInt32LE(36 + dataBytes, 4);
  out.write('WAVE', 8, 'ascii');
  out.write('fmt ', 12, 'ascii');
  out.writeUInt32LE(16, 16); // fmt chunk size
  out.writeUInt16LE(1, 20); // PCM
  out.writeUInt16LE(1, 22); // mono
  out.writeUInt32LE(sampleRate, 24);
  out.writeUInt32LE(sampleRate * 2, 28); // byte rate
  out.writeUInt16LE(2, 32); // block align
  out.writeUInt16LE(16, 34); // bits per sample
  out.write('data', 36, 'ascii');
  out.writeUInt32LE(dataBytes, 40);
  if (os.endianness() === 'LE') {
    Buffer.from(pcm.buffer, pcm.byteOffset, dataBytes).copy(out, 44);
  } else {
    for (let i = 0; i < pcm.length; i++) out.writeInt16LE(pcm[i]!, 44 + i * 2);
  }
  return out;
}

/**
 * Temporary audio for engines that read files (pocketsphinx's cold mode). The folder goes under
 * `tmpDir` — the data dir's `tmp/asr` on a server, the worker's own folder on a remote worker —
 * and its name starts with the owning process's tag, so a sweep removes what a killed process
 * left behind within minutes (scratch-owner.adapter.ts); it is private to this user (0700)
 * because it holds confidential speech. The OS temp dir only when no folder is given (tests).
 */
export const ASR_TEMP_PREFIX = `${OWNER_TAG}asr-`;

export async function withTempWav<T>(
  pcm: Int16Array,
  tmpDir: string | undefined,
  fn: (wavPath: string) => Promise<T>,
): Promise<T> {
  if (tmpDir) await mkdir(tmpDir, { recursive: true, mode: 0o700 });
  const dir = await mkdtemp(path.join(tmpDir ?? os.tmpdir(), ASR_TEMP_PREFIX));
  try {
    const file = path.join(dir, 'audio.wav');
    await writeFile(file, pcmToWav(pcm), { mode: 0o600 });
    return await fn(file);
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/**
 * Shared clean-up of engine output: times shifted by the chunk offset, clamped to the audio,
 * end ≥ start, empty words dropped, time-ordered.
 */
export function finishWords(words: Word[], durationSeconds: number, offsetSeconds = 0): Word[] {
  const out: Word[] = [];
  for (const word of words) {
    const w = word.w.trim();
    if (!w || !Number.isFinite(word.start) || !Number.isFinite(word.end)) continue;
    const start = Math.min(Math.max(0, word.start), durationSeconds);
    const end = Math.min(Math.max(start, word.end), durationSeconds);
    const conf = Number.isFinite(word.conf) ? Math.min(1, Math.max(0, word.conf)) : 1;
    out.push({
      w,
      start: round3(start + offsetSeconds),
      end: round3(end + offsetSeconds),
      conf: round3(conf),
    });
  }
  return out.sort((a, b) => a.start - b.start || a.end - b.end);
}

function round3(x: number): number {
  return Math.round(x * 1000) / 1000;
}
