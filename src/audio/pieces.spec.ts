import { describe, expect, it } from 'vitest';
import { planPieces } from './pieces.js';

const RATE = 100; // samples per second, to keep the numbers readable
const at = (...seconds: number[]) => seconds.map((s) => ({ sample: s * RATE, state: `state@${s}` }));
const spans = (pieces: { start: number; end: number }[]) =>
  [...pieces].sort((a, b) => a.start - b.start).map((p) => [p.start / RATE, p.end / RATE]);

describe('planPieces', () => {
  it('tiles the recording exactly, each piece resuming from the state at its start', () => {
    const pieces = planPieces(at(3, 6, 9, 12, 15, 18, 21, 24, 27), 32 * RATE, {
      parallel: 2,
      sampleRate: RATE,
    });
    const sorted = [...pieces].sort((a, b) => a.start - b.start);
    expect(sorted[0]!.start).toBe(0);
    expect(sorted[0]!.resume).toBeUndefined();
    expect(sorted.at(-1)!.end).toBe(32 * RATE);
    for (let i = 1; i < sorted.length; i++) {
      expect(sorted[i]!.start).toBe(sorted[i - 1]!.end);
      expect(sorted[i]!.resume).toBe(`state@${sorted[i]!.start / RATE}`);
    }
  });

  it('aims at a quarter of a decoder’s share, cutting at the boundary nearest the goal', () => {
    // 32 s on 2 decoders: goal 4 s per piece; a tie goes to the earlier boundary; 27–32 s is
    // not cut at 30 (a 2 s sliver would be left).
    const pieces = planPieces(at(3, 5, 9, 13, 16, 21, 27, 30), 32 * RATE, { parallel: 2, sampleRate: RATE });
    expect(spans(pieces)).toEqual([
      [0, 3],
      [3, 5],
      [5, 9],
      [9, 13],
      [13, 16],
      [16, 21],
      [21, 27],
      [27, 32],
    ]);
  });

  it('hands out the longest pieces first', () => {
    const pieces = planPieces(at(2, 10, 12), 20 * RATE, { parallel: 1, sampleRate: RATE, minSeconds: 1 });
    const lengths = pieces.map((p) => p.end - p.start);
    expect(lengths).toEqual([...lengths].sort((a, b) => b - a));
  });

  it('keeps a stretch without boundaries whole, and leaves no sliver at the end', () => {
    expect(spans(planPieces([], 90 * RATE, { parallel: 2, sampleRate: RATE }))).toEqual([[0, 90]]);
    // A boundary 0.5 s before the end would make a sliver: the last piece runs to the end.
    expect(
      spans(planPieces(at(10, 19.5), 20 * RATE, { parallel: 1, sampleRate: RATE, minSeconds: 10 })),
    ).toEqual([
      [0, 10],
      [10, 20],
    ]);
  });

  it('ignores boundaries outside the recording', () => {
    expect(spans(planPieces(at(0, 40), 30 * RATE, { parallel: 2, sampleRate: RATE }))).toEqual([[0, 30]]);
  });

  it('stays within the bounds on a long recording', () => {
    const boundaries = at(...Array.from({ length: 599 }, (_, i) => (i + 1) * 6));
    const pieces = planPieces(boundaries, 3600 * RATE, { parallel: 2, sampleRate: RATE });
    for (const p of pieces.slice(0, -1)) expect(p.end - p.start).toBeLessThanOrEqual(30 * RATE);
    expect(pieces.length).toBeGreaterThanOrEqual(120);
  });
});
