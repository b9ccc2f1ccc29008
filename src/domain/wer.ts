/**
 * Word error rate: (substitutions + deletions + insertions) / reference words, from the minimum
 * edit (Levenshtein) alignment over words. Used by the benches and tests to measure engines.
 *
 * Normalisation, applied to both sides: Unicode NFKC, lowercase, apostrophes removed ("don't" and
 * "dont" match, as engines differ in how they spell contractions), every other character that is
 * not a letter or a digit becomes a word boundary (so punctuation and hyphens never count as
 * errors). Out of scope: numbers written as digits versus spoken words ("10" vs "ten") and other
 * spelling variants are NOT reconciled; they count as errors.
 */
export interface WerResult {
  /** (S + D + I) / N; may exceed 1 when the hypothesis has many insertions. */
  wer: number;
  substitutions: number;
  deletions: number;
  insertions: number;
  hits: number;
  /** N: words in the normalised reference. */
  referenceWords: number;
  hypothesisWords: number;
}

export function normaliseWords(text: string): string[] {
  return text
    .normalize('NFKC')
    .toLowerCase()
    .replace(/['’‘ʼ`]/g, '')
    .split(/[^\p{L}\p{N}]+/u)
    .filter(Boolean);
}

/**
 * Accepts raw text (normalised here) or word arrays (normalised word by word). Throws when the
 * reference has no words: the rate is undefined then.
 */
export function wordErrorRate(reference: string | string[], hypothesis: string | string[]): WerResult {
  const ref = typeof reference === 'string' ? normaliseWords(reference) : reference.flatMap(normaliseWords);
  const hyp =
    typeof hypothesis === 'string' ? normaliseWords(hypothesis) : hypothesis.flatMap(normaliseWords);
  if (ref.length === 0) throw new RangeError('word error rate: the reference has no words');

  // Two rolling rows over the hypothesis keep memory linear in its length; each cell carries the
  // operation counts of its cheapest path (cost, S, D, I) so no backtrace matrix is needed.
  const width = hyp.length + 1;
  let prev = new Int32Array(width * 4);
  let row = new Int32Array(width * 4);
  for (let h = 0; h < width; h++) {
    prev[h * 4] = h;
    prev[h * 4 + 3] = h;
  }
  for (let r = 1; r <= ref.length; r++) {
    row.fill(0);
    row[0] = r;
    row[2] = r;
    for (let h = 1; h < width; h++) {
      const o = h * 4;
      const diag = (h - 1) * 4;
      const miss = ref[r - 1] === hyp[h - 1] ? 0 : 1;
      // Substitution (or hit) from the diagonal.
      let cost = prev[diag]! + miss;
      let s = prev[diag + 1]! + miss;
      let d = prev[diag + 2]!;
      let i = prev[diag + 3]!;
      if (prev[o]! + 1 < cost) {
        // A reference word without a counterpart: deletion.
        cost = prev[o]! + 1;
        s = prev[o + 1]!;
        d = prev[o + 2]! + 1;
        i = prev[o + 3]!;
      }
      if (row[diag]! + 1 < cost) {
        // An extra hypothesis word: insertion.
        cost = row[diag]! + 1;
        s = row[diag + 1]!;
        d = row[diag + 2]!;
        i = row[diag + 3]! + 1;
      }
      row[o] = cost;
      row[o + 1] = s;
      row[o + 2] = d;
      row[o + 3] = i;
    }
    [prev, row] = [row, prev];
  }
  const o = hyp.length * 4;
  const [cost, substitutions, deletions, insertions] = [prev[o]!, prev[o + 1]!, prev[o + 2]!, prev[o + 3]!];
  return {
    wer: cost / ref.length,
    substitutions,
    deletions,
    insertions,
    hits: ref.length - substitutions - deletions,
    referenceWords: ref.length,
    hypothesisWords: hyp.length,
  };
}
