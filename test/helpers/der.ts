/**
 * Diarization error rate, as NIST's md-eval scores it:
 *
 *   DER = (missed speech + false alarm + speaker confusion) / total reference speech
 *
 * time-weighted and overlap-aware: where the reference has Nr speakers and the hypothesis Nh,
 * missed = max(0, Nr − Nh), false alarm = max(0, Nh − Nr), confusion = min(Nr, Nh) − Ncorrect,
 * and the reference speech counts Nr times. Hypothesis speakers are mapped one-to-one onto
 * reference speakers by the assignment that maximises their overlap (Hungarian algorithm), so
 * labels are free. The collar is md-eval's: a no-score zone of ±collar seconds around every
 * reference turn boundary (default 0.25 s, the NIST RT convention; pyannote's `collar=0.5`
 * means the same zone). Computation is exact on segment boundaries, not on frames.
 */
import type { SpeakerTurn } from '../../src/domain/transcript.js';

export interface DerOptions {
  /** Half-width of the no-score zone around reference boundaries, seconds. Default 0.25. */
  collar?: number;
  /** Leave regions where the reference has two or more speakers out of the score. */
  skipOverlap?: boolean;
}

export interface DerResult {
  der: number;
  /** Seconds (speaker-weighted) of reference speech scored. */
  total: number;
  missed: number;
  falseAlarm: number;
  confusion: number;
  /** Hypothesis label → reference label (absent: unmapped). */
  mapping: Record<string, string>;
}

interface Event {
  t: number;
  kind: 'ref' | 'hyp' | 'nos';
  speaker: number;
  delta: 1 | -1;
}

export function diarizationErrorRate(
  reference: readonly SpeakerTurn[],
  hypothesis: readonly SpeakerTurn[],
  opts: DerOptions = {},
): DerResult {
  const collar = opts.collar ?? 0.25;
  if (!(collar >= 0)) throw new RangeError('collar must be ≥ 0');
  const refLabels = labelsOf(reference);
  const hypLabels = labelsOf(hypothesis);
  const events: Event[] = [];
  const add = (turns: readonly SpeakerTurn[], labels: string[], kind: 'ref' | 'hyp'): void => {
    for (const t of turns) {
      if (!(t.end > t.start)) continue;
      const speaker = labels.indexOf(t.speaker);
      events.push({ t: t.start, kind, speaker, delta: 1 }, { t: t.end, kind, speaker, delta: -1 });
      if (kind === 'ref' && collar > 0) {
        for (const b of [t.start, t.end]) {
          events.push(
            { t: b - collar, kind: 'nos', speaker: -1, delta: 1 },
            { t: b + collar, kind: 'nos', speaker: -1, delta: -1 },
          );
        }
      }
    }
  };
  add(reference, refLabels, 'ref');
  add(hypothesis, hypLabels, 'hyp');
  events.sort((a, b) => a.t - b.t);

  // Sweep once, collecting scored pieces with their active speaker sets (counts, since a
  // speaker's own turns may overlap in sloppy input: a speaker is active while its count > 0).
  const refCount = new Int32Array(refLabels.length);
  const hypCount = new Int32Array(hypLabels.length);
  let noScore = 0;
  const pieces: { dur: number; ref: number[]; hyp: number[] }[] = [];
  const overlap = refLabels.map(() => new Float64Array(hypLabels.length));
  for (let i = 0; i < events.length; i++) {
    const ev = events[i]!;
    if (ev.kind === 'ref') refCount[ev.speaker]! += ev.delta;
    else if (ev.kind === 'hyp') hypCount[ev.speaker]! += ev.delta;
    else noScore += ev.delta;
    const next = events[i + 1];
    if (!next) break;
    const dur = next.t - ev.t;
    if (dur <= 0 || noScore > 0) continue;
    const ref = activeOf(refCount);
    const hyp = activeOf(hypCount);
    if (ref.length === 0 && hyp.length === 0) continue;
    if (opts.skipOverlap && ref.length > 1) continue;
    pieces.push({ dur, ref, hyp });
    for (const r of ref) for (const h of hyp) overlap[r]![h]! += dur;
  }

  const assign = maxWeightAssignment(overlap.map((row) => Array.from(row)));
  const mapping: Record<string, string> = {};
  const hypToRef = new Int32Array(hypLabels.length).fill(-1);
  assign.forEach((h, r) => {
    if (h >= 0 && overlap[r]![h]! > 0) {
      hypToRef[h] = r;
      mapping[hypLabels[h]!] = refLabels[r]!;
    }
  });

  let total = 0;
  let missed = 0;
  let falseAlarm = 0;
  let confusion = 0;
  for (const p of pieces) {
    const nr = p.ref.length;
    const nh = p.hyp.length;
    let correct = 0;
    for (const h of p.hyp) if (hypToRef[h]! >= 0 && p.ref.includes(hypToRef[h]!)) correct++;
    total += p.dur * nr;
    missed += p.dur * Math.max(0, nr - nh);
    falseAlarm += p.dur * Math.max(0, nh - nr);
    confusion += p.dur * (Math.min(nr, nh) - correct);
  }
  const errors = missed + falseAlarm + confusion;
  const der = total > 0 ? errors / total : errors > 0 ? Infinity : 0;
  return { der, total, missed, falseAlarm, confusion, mapping };
}

function labelsOf(turns: readonly SpeakerTurn[]): string[] {
  const labels: string[] = [];
  for (const t of turns) if (!labels.includes(t.speaker)) labels.push(t.speaker);
  return labels;
}

function activeOf(counts: Int32Array): number[] {
  const out: number[] = [];
  for (let i = 0; i < counts.length; i++) if (counts[i]! > 0) out.push(i);
  return out;
}

/**
 * Rows → column (or -1) maximising the summed weight: Hungarian algorithm (Kuhn–Munkres with
 * potentials, O(n³)) on the cost max − w, padded to a square.
 */
export function maxWeightAssignment(weights: number[][]): number[] {
  const rows = weights.length;
  const cols = rows ? Math.max(...weights.map((r) => r.length)) : 0;
  const n = Math.max(rows, cols);
  if (n === 0) return [];
  let max = 0;
  for (const r of weights) for (const w of r) max = Math.max(max, w);
  const cost = (i: number, j: number): number => max - (weights[i - 1]?.[j - 1] ?? 0);
  // 1-based arrays as in the classic formulation; p[j] = row matched to column j.
  const u = new Float64Array(n + 1);
  const v = new Float64Array(n + 1);
  const p = new Int32Array(n + 1);
  const way = new Int32Array(n + 1);
  for (let i = 1; i <= n; i++) {
    p[0] = i;
    let j0 = 0;
    const minv = new Float64Array(n + 1).fill(Infinity);
    const used = new Uint8Array(n + 1);
    do {
      used[j0] = 1;
      const i0 = p[j0]!;
      let delta = Infinity;
      let j1 = 0;
      for (let j = 1; j <= n; j++) {
        if (used[j]) continue;
        const cur = cost(i0, j) - u[i0]! - v[j]!;
        if (cur < minv[j]!) {
          minv[j] = cur;
          way[j] = j0;
        }
        if (minv[j]! < delta) {
          delta = minv[j]!;
          j1 = j;
        }
      }
      for (let j = 0; j <= n; j++) {
        if (used[j]) {
          u[p[j]!]! += delta;
          v[j]! -= delta;
        } else minv[j]! -= delta;
      }
      j0 = j1;
    } while (p[j0] !== 0);
    do {
      const j1 = way[j0]!;
      p[j0] = p[j1]!;
      j0 = j1;
    } while (j0 !== 0);
  }
  const result = new Array<number>(rows).fill(-1);
  for (let j = 1; j <= n; j++) {
    const i = p[j]!;
    if (i >= 1 && i <= rows && j <= cols) result[i - 1] = j - 1;
  }
  return result;
}
