/**
 * Pieces of a recording cut at the engine's own utterance ends (`AsrEngine.scan`), for
 * recognising on several decoders at once. Each piece starts where one pass over the whole
 * recording would start a new utterance, so the pieces can be recognised independently, in any
 * order, with no overlap.
 */
export interface Piece<S> {
  /** Sample range [start, end) of the recording. */
  start: number;
  end: number;
  /** The adaptation at `start` (undefined for the piece at the recording's start). */
  resume: S | undefined;
}

export interface PieceOptions {
  /** Decoders that will work on the pieces at once. */
  parallel: number;
  sampleRate: number;
  /**
   * Bounds of the length pieces aim at, in seconds (defaults 2 and 30). Within them a piece is a
   * quarter of a decoder's share: the cost of a piece follows its speech, not its length, so a
   * queue of several pieces per decoder evens out what halves would not (call-02 on 2 decoders:
   * 3.5 s with halves of halves, against 2.5 s for the ideal split), and other uploads' pieces
   * take turns on the decoders in between. A piece costs nothing in accuracy and ~1 ms of set-up.
   */
  minSeconds?: number;
  maxSeconds?: number;
}

interface Boundary<S> {
  sample: number;
  state: S;
}

function targetSamples(samples: number, opts: PieceOptions): number {
  const min = (opts.minSeconds ?? 2) * opts.sampleRate;
  const max = (opts.maxSeconds ?? 30) * opts.sampleRate;
  return Math.min(max, Math.max(min, samples / (4 * Math.max(1, opts.parallel))));
}

/**
 * Where the piece that starts at `start` ends: the last boundary before `start + target`, or the
 * first after it when that one is nearer. `cuts` are ascending and all after `start`. Undefined
 * when no boundary reaches the goal and `final` is false (a later boundary may still be nearer).
 */
function chooseCut<S>(
  cuts: readonly Boundary<S>[],
  start: number,
  target: number,
  final: boolean,
): Boundary<S> | undefined {
  if (cuts.length === 0) return undefined;
  const goal = start + target;
  let j = 0;
  while (j + 1 < cuts.length && cuts[j + 1]!.sample <= goal) j++;
  const next = cuts[j + 1];
  if (cuts[j]!.sample >= goal) return cuts[j];
  if (!next) return final ? cuts[j] : undefined;
  return next.sample - goal < goal - cuts[j]!.sample ? next : cuts[j];
}

/**
 * Cuts [from, samples) — from the recording's start unless `from` says otherwise — at
 * boundaries (sample positions, ascending) into pieces of about `samples / (4 × parallel)`
 * each, within the bounds, longest first (the order that ends a queue of independent jobs
 * soonest). A stretch with no boundary stays whole, however long.
 */
export function planPieces<S>(
  boundaries: readonly Boundary<S>[],
  samples: number,
  opts: PieceOptions,
  from?: Boundary<S>,
): Piece<S>[] {
  const target = targetSamples(samples, opts);
  let start = from?.sample ?? 0;
  let resume: S | undefined = from?.state;
  let cuts = boundaries.filter((b) => b.sample > start && b.sample < samples);
  const pieces: Piece<S>[] = [];
  // What is left after a cut must be worth a piece of its own: stop when it would be a sliver.
  while (samples - start > target * 1.25) {
    const cut = chooseCut(cuts, start, target, true);
    if (!cut) break;
    pieces.push({ start, end: cut.sample, resume });
    start = cut.sample;
    resume = cut.state;
    cuts = cuts.filter((b) => b.sample > start);
  }
  pieces.push({ start, end: samples, resume });
  return pieces.sort((a, b) => b.end - b.start - (a.end - a.start) || a.start - b.start);
}

/**
 * Pieces cut while a scan is still going on: a decoder that would otherwise wait for the scan
 * to end takes the next stretch from the start as soon as the boundaries that end it are known
 * (`take`), and once the scan has ended what is left is planned whole, longest first, as
 * `planPieces` would (`rest`). With a scan that is already over, `rest` alone gives exactly
 * `planPieces`.
 */
export class PieceCutter<S> {
  private known: Boundary<S>[] = [];
  /** Where the next piece starts: the boundary the last piece taken ended at (none: the start). */
  private from: Boundary<S> | undefined;
  private readonly target: number;

  constructor(
    private readonly samples: number,
    private readonly opts: PieceOptions,
  ) {
    this.target = targetSamples(samples, opts);
  }

  private get start(): number {
    return this.from?.sample ?? 0;
  }

  /** Boundaries, ascending; those at or before one already added are ignored (a repeat is harmless). */
  add(found: readonly Boundary<S>[]): void {
    for (const b of found) {
      const last = this.known.at(-1)?.sample ?? this.start;
      if (b.sample > last && b.sample < this.samples) this.known.push(b);
    }
  }

  /** The next piece from the start, when the boundaries known so far settle where it ends. */
  take(): Piece<S> | undefined {
    const start = this.start;
    if (this.samples - start <= this.target * 1.25) return undefined;
    const cut = chooseCut(this.known, start, this.target, false);
    if (!cut) return undefined;
    const piece: Piece<S> = { start, end: cut.sample, resume: this.from?.state };
    this.from = cut;
    this.known = this.known.filter((b) => b.sample > cut.sample);
    return piece;
  }

  /** Everything not yet taken, once every boundary is known. */
  rest(): Piece<S>[] {
    return planPieces(this.known, this.samples, this.opts, this.from);
  }
}
