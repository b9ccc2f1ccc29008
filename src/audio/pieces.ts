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

/**
 * Cuts [0, samples) at boundaries (sample positions, ascending) into pieces of about
 * `samples / (4 × parallel)` each, within the bounds, longest first (the order that ends a
 * queue of independent jobs soonest). A stretch with no boundary stays whole, however long.
 */
export function planPieces<S>(
  boundaries: readonly { sample: number; state: S }[],
  samples: number,
  opts: PieceOptions,
): Piece<S>[] {
  const min = (opts.minSeconds ?? 2) * opts.sampleRate;
  const max = (opts.maxSeconds ?? 30) * opts.sampleRate;
  const target = Math.min(max, Math.max(min, samples / (4 * Math.max(1, opts.parallel))));
  const cuts = boundaries.filter((b) => b.sample > 0 && b.sample < samples);
  const pieces: Piece<S>[] = [];
  let start = 0;
  let resume: S | undefined;
  let i = 0;
  // What is left after a cut must be worth a piece of its own: stop when it would be a sliver.
  while (samples - start > target * 1.25) {
    while (i < cuts.length && cuts[i]!.sample <= start) i++;
    if (i >= cuts.length) break;
    const goal = start + target;
    let j = i;
    while (j + 1 < cuts.length && cuts[j + 1]!.sample <= goal) j++;
    // The last boundary before the goal, or the first after it when that one is nearer.
    let cut = cuts[j]!;
    const next = cuts[j + 1];
    if (cut.sample < goal && next && next.sample - goal < goal - cut.sample) cut = next;
    pieces.push({ start, end: cut.sample, resume });
    start = cut.sample;
    resume = cut.state;
  }
  pieces.push({ start, end: samples, resume });
  return pieces.sort((a, b) => b.end - b.start - (a.end - a.start) || a.start - b.start);
}
