/**
 * Plans VAD-bounded chunks for engines that must not see a whole long recording at once.
 *
 * Speech regions (padded a little so word edges survive) are packed greedily into chunks of at
 * most `maxSeconds`; chunks begin and end in silence, and long silences between chunks are never
 * sent to the engine. A single region longer than the limit is hard-cut: at the quietest point of
 * the last third of the allowed span when the caller can say where that is (a breath between
 * words), otherwise at the limit, with `overlapSeconds` of audio shared by both sides so no word
 * is lost at the seam. `keepStart`/`keepEnd` say which part of a chunk owns the words found there:
 * they tile the speech without overlap, so a word in the shared audio is kept exactly once (by
 * its midpoint).
 *
 * Memory stays flat: the VAD runs as a stream over the file (its regions are a few numbers per
 * utterance), then each chunk's samples are read, transcribed and dropped in turn, and progress
 * is the share of chunk audio done. `ChunkPlanner` also works incrementally, fed regions as the
 * streaming VAD closes them, for live audio.
 */
import type { SpeechRegion } from '../domain/transcript.js';

export interface Chunk {
  index: number;
  /** Audio to hand to the engine, seconds from the start of the recording. */
  start: number;
  end: number;
  startSample: number;
  endSample: number;
  /** The part of [start, end) whose words belong to this chunk. */
  keepStart: number;
  keepEnd: number;
  /** True when a side of this chunk is a hard cut through speech. */
  hardCut: boolean;
}

export interface ChunkOptions {
  maxSeconds?: number;
  /** Audio shared by the two sides of a hard cut. */
  overlapSeconds?: number;
  /** Padding added around each speech region (kept within the recording and clear of others). */
  padSeconds?: number;
  /**
   * Time of the quietest point in [from, to], when the caller has frame energies (see
   * `quietestPoint`); without it hard cuts land exactly at the limit.
   */
  quietest?: (from: number, to: number) => number;
}

export class ChunkPlanner {
  private readonly max: number;
  private readonly overlap: number;
  private readonly pad: number;
  private readonly quietest: ((from: number, to: number) => number) | undefined;
  private readonly sampleRate: number;
  private pending: { start: number; end: number; keepStart: number; hardStart: boolean } | null = null;
  private lastEnd = 0;
  private index = 0;

  constructor(sampleRate: number, opts: ChunkOptions = {}) {
    this.sampleRate = sampleRate;
    this.max = opts.maxSeconds ?? 30;
    this.overlap = opts.overlapSeconds ?? 1;
    this.pad = opts.padSeconds ?? 0.2;
    this.quietest = opts.quietest;
    if (!(this.max > 0)) throw new RangeError('maxSeconds must be > 0');
    if (!(this.overlap >= 0 && this.overlap < this.max / 2))
      throw new RangeError('overlapSeconds must be in [0, maxSeconds / 2)');
    if (!(this.pad >= 0)) throw new RangeError('padSeconds must be ≥ 0');
  }

  /**
   * Feed regions in time order; `duration` (when known) keeps padding inside the recording.
   * Returns chunks that can no longer grow.
   */
  push(region: SpeechRegion, duration = Infinity): Chunk[] {
    const out: Chunk[] = [];
    const start = Math.max(0, this.lastEnd, region.start - this.pad);
    const end = Math.min(duration, region.end + this.pad);
    if (end <= start) return out;
    this.lastEnd = end;
    if (this.pending && end - this.pending.start > this.max) {
      out.push(this.emit(this.pending.end, this.pending.end, false));
    }
    if (!this.pending) this.pending = { start, end, keepStart: start, hardStart: false };
    else this.pending.end = end;
    // Too long even alone: hard-cut until what remains fits.
    let open = this.pending;
    while (open.end - open.start > this.max) {
      const limit = open.start + this.max - this.overlap / 2;
      const earliest = open.start + (2 / 3) * (this.max - this.overlap);
      let cut = this.quietest ? this.quietest(earliest, limit) : limit;
      if (!(cut >= earliest && cut <= limit)) cut = limit;
      const regionEnd = open.end;
      out.push(this.emit(cut + this.overlap / 2, cut, true));
      open = { start: cut - this.overlap / 2, end: regionEnd, keepStart: cut, hardStart: true };
      this.pending = open;
    }
    return out;
  }

  /** No more regions: emits the last chunk. */
  end(): Chunk[] {
    return this.pending ? [this.emit(this.pending.end, this.pending.end, false)] : [];
  }

  private emit(end: number, keepEnd: number, hardEnd: boolean): Chunk {
    const p = this.pending!;
    this.pending = null;
    const chunk: Chunk = {
      index: this.index++,
      start: round(p.start),
      end: round(end),
      startSample: Math.round(p.start * this.sampleRate),
      endSample: Math.round(end * this.sampleRate),
      keepStart: round(p.keepStart),
      keepEnd: round(keepEnd),
      hardCut: hardEnd || p.hardStart,
    };
    return chunk;
  }
}

/** All chunks of a recording from its speech regions. */
export function planChunks(
  regions: readonly SpeechRegion[],
  duration: number,
  sampleRate: number,
  opts: ChunkOptions = {},
): Chunk[] {
  const planner = new ChunkPlanner(sampleRate, opts);
  const out: Chunk[] = [];
  for (const r of regions) out.push(...planner.push(r, duration));
  out.push(...planner.end());
  return out;
}

/**
 * A `quietest` finder over frame energies (dB per hop, e.g. from analyzeFrames): the centre of
 * the quietest 50 ms stretch in [from, to].
 */
export function quietestPoint(
  energyDb: ArrayLike<number>,
  hopSeconds: number,
): (from: number, to: number) => number {
  return (from, to) => {
    const span = 5;
    const f0 = Math.max(0, Math.ceil(from / hopSeconds));
    const f1 = Math.min(energyDb.length - span, Math.floor(to / hopSeconds) - span);
    let best = -1;
    let bestSum = Infinity;
    for (let f = f0; f <= f1; f++) {
      let s = 0;
      for (let j = 0; j < span; j++) s += energyDb[f + j]!;
      if (s < bestSum) [best, bestSum] = [f, s];
    }
    return best < 0 ? to : (best + span / 2) * hopSeconds;
  };
}

/** Whether a word (by its midpoint, seconds from the recording start) belongs to a chunk. */
export function chunkOwns(chunk: Chunk, start: number, end: number): boolean {
  const mid = (start + end) / 2;
  return mid >= chunk.keepStart && mid < chunk.keepEnd;
}

function round(t: number): number {
  return Math.round(t * 1000) / 1000;
}
