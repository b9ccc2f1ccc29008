import type { Logger } from 'pino';
import { planChunks, chunkOwns, type Chunk, type ChunkOptions } from '../../audio/chunker.js';
import { PieceCutter, type Piece } from '../../audio/pieces.js';
import { concatPcm } from '../../audio/pcm-chunker.js';
import type { SpeechRegion, Word } from '../../domain/transcript.js';
import { throwIfAborted, type AdaptationState, type AsrEngine } from '../../adapters/asr/engine.js';
import { DECODE_RATE } from '../../adapters/media/audio-decoder.adapter.js';

/**
 * Recognition of one channel of audio for the pipeline: where to cut it, how much lead-in each
 * part needs, and how many decoders work on it at once. Two ways:
 * - engines that can scan (warm pocketsphinx): pieces cut at the engine's own utterance ends,
 *   each started from the adaptation a single pass would have there (`recogniseScanned`);
 * - the others (whisper, a remote API, cold pocketsphinx): VAD chunks of ≤ 30 s with lead-ins
 *   (`recogniseChunks`), of the audio just before a chunk, or for one channel of a call of that
 *   channel's own earlier speech. (A call on an engine that scans is one joined stream of both
 *   parties' speech, recognised like a mono recording: speech-join.ts.)
 */
export interface RecogniseDeps {
  engine: AsrEngine;
  logger: Pick<Logger, 'debug'>;
  chunking?: ChunkOptions | undefined;
  concurrency?: number | undefined;
  /** See PipelineDeps.contextSeconds. */
  contextSeconds?: number | undefined;
  /** See PipelineDeps.scan. */
  scan?: boolean | undefined;
}

export interface RecogniseJob {
  pcm: Int16Array;
  /**
   * The speech regions (VAD), asked for only where chunks are planned: the scanned path cuts at
   * the engine's own utterance ends and never needs them.
   */
  regions: () => readonly SpeechRegion[];
  duration: number;
  input: { file: string; group?: string; language?: string; signal?: AbortSignal };
  progress: (f: number) => void;
  /**
   * 'contiguous': a whole recording (lead-in = the audio just before a chunk); 'speech': one
   * channel of a call (lead-in = that channel's last speech before it).
   */
  leadIn: 'contiguous' | 'speech';
  stats: { recognisedSamples: number };
  /**
   * Called once when a decoder first has nothing left to take while others still work (scanned
   * pieces only): the caller's chance to use the idle core for work of its own.
   */
  whenIdle?: () => void;
}

const DEFAULT_CONTEXT_SECONDS = 5;
/** Audio just before a chunk that continues a session's span (see recogniseChunks). */
const ROOM_SAMPLES = Math.round(0.5 * DECODE_RATE);

/** A channel's words, by scanned pieces where the engine can, else by VAD chunks. */
export async function recognise(deps: RecogniseDeps, job: RecogniseJob): Promise<Word[]> {
  const { engine } = deps;
  if (job.leadIn === 'contiguous' && deps.scan !== false && engine.scan && engine.session) {
    const words = await recogniseScanned(deps, job);
    if (words) return words;
  }
  return recogniseChunks(deps, job);
}

/**
 * Chunks recognised in parallel: the chunk list is cut into as many contiguous spans as the
 * engine can run at once (one per warm decoder), each span recognised in order through one
 * session. Within a span the voice adaptation travels from chunk to chunk with the session, so
 * only each span's first chunk needs the lead-in; a recording costs (spans − 1) lead-ins
 * instead of one per chunk. Engines without sessions get a lead-in for every chunk, as before.
 */
async function recogniseChunks(deps: RecogniseDeps, job: RecogniseJob): Promise<Word[]> {
  const { engine } = deps;
  const { pcm, duration, input, progress, leadIn, stats } = job;
  const regions = job.regions();
  const chunks = planChunks(regions, duration, DECODE_RATE, deps.chunking);
  const total = chunks.reduce((s, c) => s + (c.end - c.start), 0);
  const parallel = Math.max(1, Math.min(deps.concurrency ?? engine.concurrency ?? 1, chunks.length));
  const context = Math.round((deps.contextSeconds ?? DEFAULT_CONTEXT_SECONDS) * DECODE_RATE);
  const options = batchOptions(input);
  let done = 0;

  const recogniseSpan = async (span: Chunk[]): Promise<Word[]> => {
    // A session only where it carries the voice's adaptation between chunks; otherwise whole
    // calls, which also report progress within a chunk (whisper).
    const opened = engine.session?.(options);
    const session = opened?.adapts ? opened : undefined;
    const words: Word[] = [];
    for (const [k, chunk] of span.entries()) {
      throwIfAborted(input.signal);
      const seconds = chunk.end - chunk.start;
      const own = pcm.subarray(chunk.startSample, chunk.endSample);
      // Within a span the voice's adaptation comes with the session, but pocketsphinx still
      // needs a moment of the room before the first word, or it mishears it (as live does).
      // One channel of a call keeps its speech lead-in on every chunk: the gaps between its
      // chunks are the other party's turns, silenced, with nothing of the room in them.
      const lead =
        session && k > 0 && leadIn === 'contiguous'
          ? [pcm.subarray(Math.max(0, chunk.startSample - ROOM_SAMPLES), chunk.startSample)]
          : leadIn === 'speech'
            ? speechBefore(pcm, regions, chunk.startSample, context)
            : [pcm.subarray(Math.max(0, chunk.startSample - context), chunk.startSample)];
      const audio = lead.some((p) => p.length > 0) ? concatPcm([...lead, own]) : own;
      stats.recognisedSamples += audio.length;
      // The lead-in's words land before the chunk's keep range and are dropped below; the
      // chunk's own audio is contiguous at the end, so its words get their true times.
      const offsetSeconds = (chunk.startSample - (audio.length - own.length)) / DECODE_RATE;
      let found: Word[];
      if (session) {
        const utterance = session.utterance(offsetSeconds);
        utterance.feed(audio);
        found = await utterance.final();
      } else {
        found = await engine.transcribe(audio, {
          ...options,
          offsetSeconds,
          onProgress: (f) => progress((done + Math.min(1, Math.max(0, f)) * seconds) / total),
        });
      }
      // Hard-cut chunks share a second of audio with their neighbour: each word is kept once.
      for (const w of found) if (chunkOwns(chunk, w.start, w.end)) words.push(w);
      done += seconds;
      progress(total > 0 ? done / total : 1);
      deps.logger.debug({ chunk: chunk.index, of: chunks.length, words: found.length }, 'chunk transcribed');
    }
    return words;
  };

  const results = await Promise.all(splitSpans(chunks, parallel).map(recogniseSpan));
  return results.flat().sort((a, b) => a.start - b.start || a.end - b.end);
}

/**
 * One recording recognised in pieces cut where the engine itself would end utterances
 * (`AsrEngine.scan`), each started from the adaptation one pass would have there: as many
 * decoders at work as the engine has, and the words of a single pass over the whole file,
 * with nothing recognised twice. Undefined when the engine cannot scan.
 *
 * The scan holds one decoder; the others do not wait for it to end. Each takes the next piece
 * from the start as soon as the scan has found where that piece ends (`PieceCutter.take`), and
 * once the scan is over the rest is planned whole, longest first. On a long recording the scan
 * (~3 % of recognition, on one core) thus overlaps recognition instead of preceding it.
 */
async function recogniseScanned(deps: RecogniseDeps, job: RecogniseJob): Promise<Word[] | undefined> {
  const { engine } = deps;
  const { pcm, input, progress, stats } = job;
  const options = batchOptions(input);
  const parallel = Math.max(1, deps.concurrency ?? engine.concurrency ?? 1);
  const cutter = new PieceCutter<AdaptationState>(pcm.length, { parallel, sampleRate: DECODE_RATE });
  // Wakes the decoders that wait for the scan to find more (or to end).
  let wake: () => void = () => undefined;
  let found = new Promise<void>((r) => (wake = r));
  const announce = () => {
    const woke = wake;
    found = new Promise<void>((r) => (wake = r));
    woke();
  };
  let planned: Piece<AdaptationState>[] | undefined;
  let scanEnded = false;
  const scanning = engine.scan!(pcm, {
    ...options,
    onBoundaries: (b) => {
      cutter.add(b);
      announce();
    },
  })
    .then((all) => {
      // Every boundary, for engines that report none on the way (the repeats are ignored).
      if (all) cutter.add(all);
      return all;
    })
    .finally(() => {
      scanEnded = true;
      announce();
    });
  // A failed scan fails the job below; until then no decoder may wait on it for ever.
  scanning.catch(() => undefined);

  const words: Word[] = [];
  let taken = 0;
  let recognised = 0;
  let done = 0;
  let idle = false;
  const nextPiece = async (): Promise<Piece<AdaptationState> | undefined> => {
    for (;;) {
      throwIfAborted(input.signal);
      if (planned) return planned[taken++];
      // Once the scan is over, what is left is planned whole (longest first), not cut greedily.
      if (scanEnded) {
        const boundaries = await scanning;
        if (!boundaries) return undefined;
        planned ??= cutter.rest();
        continue;
      }
      const early = cutter.take();
      if (early) return early;
      await found;
    }
  };
  const worker = async () => {
    for (let piece = await nextPiece(); piece; piece = await nextPiece()) {
      const session = engine.session!({
        ...options,
        ...(piece.resume ? { resume: piece.resume } : {}),
      });
      const utterance = session.utterance(piece.start / DECODE_RATE);
      utterance.feed(pcm.subarray(piece.start, piece.end));
      stats.recognisedSamples += piece.end - piece.start;
      const heard = await utterance.final();
      words.push(...heard);
      done += piece.end - piece.start;
      progress(pcm.length > 0 ? done / pcm.length : 1);
      deps.logger.debug(
        { piece: recognised++, from: piece.start, to: piece.end, words: heard.length },
        'piece transcribed',
      );
    }
    if (!idle && done > 0 && done < pcm.length) {
      idle = true;
      job.whenIdle?.();
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  // The engine could not scan after all (checked only once it has a decoder): chunks instead.
  if (!(await scanning)) return undefined;
  return words.sort((a, b) => a.start - b.start || a.end - b.end);
}

/** What every engine call for one recording's upload carries: its pool group (fairness), language and abort. */
function batchOptions(input: RecogniseJob['input']) {
  return {
    priority: 'batch' as const,
    group: input.group ?? input.file,
    ...(input.language ? { language: input.language } : {}),
    ...(input.signal ? { signal: input.signal } : {}),
  };
}

/**
 * Up to `maxSamples` of the speech (per the VAD regions) that ends before `beforeSample`, most
 * recent last, as views into `pcm`.
 */
export function speechBefore(
  pcm: Int16Array,
  regions: readonly SpeechRegion[],
  beforeSample: number,
  maxSamples: number,
): Int16Array[] {
  const parts: Int16Array[] = [];
  let need = maxSamples;
  for (let i = regions.length - 1; i >= 0 && need > 0; i--) {
    const start = Math.round(regions[i]!.start * DECODE_RATE);
    const end = Math.min(Math.round(regions[i]!.end * DECODE_RATE), beforeSample, pcm.length);
    if (end <= start) continue;
    const take = Math.min(need, end - start);
    parts.unshift(pcm.subarray(end - take, end));
    need -= take;
  }
  return parts;
}

/** Chunks cut into `count` contiguous runs of about equal audio length. */
export function splitSpans(chunks: readonly Chunk[], count: number): Chunk[][] {
  const total = chunks.reduce((s, c) => s + (c.end - c.start), 0);
  const spans: Chunk[][] = [];
  let current: Chunk[] = [];
  let acc = 0;
  for (const [i, chunk] of chunks.entries()) {
    current.push(chunk);
    acc += chunk.end - chunk.start;
    const left = chunks.length - i - 1;
    const spansLeft = count - spans.length - 1;
    // Close this span at its share of the audio, but leave at least one chunk per later span.
    if (spansLeft > 0 && (acc >= (total * (spans.length + 1)) / count || left <= spansLeft)) {
      spans.push(current);
      current = [];
    }
  }
  if (current.length > 0) spans.push(current);
  return spans;
}
