import { describe, expect, it } from 'vitest';
import type { SpeakerTurn } from '../src/domain/transcript.js';
import { diarizationErrorRate, maxWeightAssignment } from './helpers/der.js';

const t = (speaker: string, start: number, end: number): SpeakerTurn => ({ speaker, start, end });
const ref = [t('alice', 0, 10), t('bob', 10, 20)];

describe('diarizationErrorRate', () => {
  it('is 0 for a perfect hypothesis, whatever its labels', () => {
    expect(diarizationErrorRate(ref, [t('S1', 0, 10), t('S2', 10, 20)], { collar: 0 }).der).toBe(0);
    const swapped = diarizationErrorRate(ref, [t('S2', 0, 10), t('S1', 10, 20)], { collar: 0 });
    expect(swapped.der).toBe(0);
    expect(swapped.mapping).toEqual({ S2: 'alice', S1: 'bob' });
  });

  it('counts missed speech, false alarm and confusion separately', () => {
    const r = diarizationErrorRate(ref, [t('A', 0, 8), t('B', 8, 18), t('B', 25, 27)], { collar: 0 });
    // 0–8 correct; 8–10 confused (B is mapped to bob); 10–18 correct; 18–20 missed; 25–27 FA.
    expect(r.total).toBeCloseTo(20);
    expect(r.confusion).toBeCloseTo(2);
    expect(r.missed).toBeCloseTo(2);
    expect(r.falseAlarm).toBeCloseTo(2);
    expect(r.der).toBeCloseTo(6 / 20);
  });

  it('is 1 when everything is missed, and counts all false alarm over the reference', () => {
    expect(diarizationErrorRate(ref, [], { collar: 0 }).der).toBe(1);
    const fa = diarizationErrorRate([t('a', 0, 10)], [t('x', 0, 10), t('y', 20, 25)], { collar: 0 });
    expect(fa.der).toBeCloseTo(0.5);
  });

  it('maps one hypothesis speaker to at most one reference speaker', () => {
    // One label for everybody: half the speech is necessarily confused.
    const r = diarizationErrorRate(ref, [t('X', 0, 20)], { collar: 0 });
    expect(r.confusion).toBeCloseTo(10);
    expect(r.der).toBeCloseTo(0.5);
  });

  it('excludes ±collar around reference boundaries from scoring', () => {
    const hyp = [t('A', 0.2, 10.2), t('B', 10.2, 19.8)];
    expect(diarizationErrorRate(ref, hyp, { collar: 0 }).der).toBeCloseTo(0.6 / 20);
    const withCollar = diarizationErrorRate(ref, hyp, { collar: 0.25 });
    expect(withCollar.der).toBe(0);
    // Scored time shrinks by the collars: 4 boundaries (0, 10, 10, 20), overlapping at 10.
    expect(withCollar.total).toBeCloseTo(20 - 0.25 - 0.5 - 0.25);
    expect(diarizationErrorRate(ref, hyp).der).toBe(0); // default collar is 0.25 s
  });

  it('scores overlapped speech per speaker', () => {
    const overlapRef = [t('a', 0, 10), t('b', 5, 15)];
    // Hypothesis hears only one speaker at a time: the 5 s of overlap lose one speaker.
    const r = diarizationErrorRate(overlapRef, [t('A', 0, 10), t('B', 10, 15)], { collar: 0 });
    expect(r.total).toBeCloseTo(20);
    expect(r.missed).toBeCloseTo(5);
    expect(r.der).toBeCloseTo(0.25);
    expect(diarizationErrorRate(overlapRef, [t('A', 0, 10), t('B', 5, 15)], { collar: 0 }).der).toBe(0);
    expect(
      diarizationErrorRate(overlapRef, [t('A', 0, 10), t('B', 10, 15)], { collar: 0, skipOverlap: true }).der,
    ).toBe(0);
  });

  it('agrees with a brute-force frame count on random inputs', () => {
    let seed = 42;
    const rand = (): number => {
      seed = (Math.imul(seed, 1103515245) + 12345) >>> 0;
      return seed / 2 ** 32;
    };
    const randomTurns = (labels: string[]): SpeakerTurn[] => {
      const out: SpeakerTurn[] = [];
      let time = 0;
      for (let i = 0; i < 12; i++) {
        const start = time + Math.round(rand() * 20) / 10;
        const end = start + 0.1 + Math.round(rand() * 40) / 10;
        out.push(t(labels[Math.floor(rand() * labels.length)]!, start, end));
        // Sometimes overlap the next turn with this one.
        time = rand() < 0.3 ? start + 0.5 : end;
      }
      return out;
    };
    for (let round = 0; round < 25; round++) {
      const r = randomTurns(['a', 'b', 'c']);
      const h = randomTurns(['X', 'Y', 'Z', 'W'].slice(0, 1 + Math.floor(rand() * 4)));
      const got = diarizationErrorRate(r, h, { collar: 0 });
      expect(got.der).toBeCloseTo(bruteForceDer(r, h), 6);
    }
  });
});

describe('maxWeightAssignment', () => {
  it('finds the maximum-weight matching, also for rectangular matrices', () => {
    expect(
      maxWeightAssignment([
        [1, 9],
        [9, 1],
      ]),
    ).toEqual([1, 0]);
    expect(
      maxWeightAssignment([
        [5, 4, 1],
        [4, 1, 0],
      ]),
    ).toEqual([1, 0]);
    expect(maxWeightAssignment([[1], [7], [3]])).toEqual([-1, 0, -1]);
    expect(maxWeightAssignment([])).toEqual([]);
  });
});

/** 0.1 s grid (all test times are multiples of it), every mapping tried. */
function bruteForceDer(refTurns: SpeakerTurn[], hypTurns: SpeakerTurn[]): number {
  const refLabels = [...new Set(refTurns.map((x) => x.speaker))];
  const hypLabels = [...new Set(hypTurns.map((x) => x.speaker))];
  const end = Math.max(...refTurns.map((x) => x.end), ...hypTurns.map((x) => x.end));
  const steps = Math.round(end * 10);
  const active = (turns: SpeakerTurn[], label: string, i: number): boolean =>
    turns.some((x) => x.speaker === label && x.start * 10 <= i + 1e-6 && x.end * 10 >= i + 1 - 1e-6);
  const frames = Array.from({ length: steps }, (_, i) => ({
    ref: refLabels.filter((l) => active(refTurns, l, i)),
    hyp: hypLabels.filter((l) => active(hypTurns, l, i)),
  }));
  // Every injective mapping of hypothesis labels onto reference labels (or none).
  let best = Infinity;
  const search = (i: number, map: Map<string, string>): void => {
    if (i === hypLabels.length) {
      let err = 0;
      let total = 0;
      for (const f of frames) {
        const correct = f.hyp.filter((h) => map.has(h) && f.ref.includes(map.get(h)!)).length;
        err += Math.max(f.ref.length, f.hyp.length) - correct;
        total += f.ref.length;
      }
      best = Math.min(best, err / total);
      return;
    }
    search(i + 1, map);
    for (const r of refLabels) {
      if ([...map.values()].includes(r)) continue;
      map.set(hypLabels[i]!, r);
      search(i + 1, map);
      map.delete(hypLabels[i]!);
    }
  };
  search(0, new Map());
  return best;
}
