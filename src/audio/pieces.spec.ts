import { describe, expect, it } from 'vitest';
import { PieceCutter, planPieces } from './pieces.js';

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

describe('PieceCutter (pieces cut while the scan goes on)', () => {
  const opts = { parallel: 2, sampleRate: RATE };
  const boundaries = at(3, 5, 9, 13, 16, 21, 27, 30);

  it('with every boundary known at once, rest() is exactly planPieces', () => {
    const cutter = new PieceCutter<string>(32 * RATE, opts);
    cutter.add(boundaries);
    expect(cutter.rest()).toEqual(planPieces(boundaries, 32 * RATE, opts));
  });

  it('takes a piece only once the boundary past its goal is known, then plans the rest', () => {
    const cutter = new PieceCutter<string>(32 * RATE, opts);
    cutter.add(at(3));
    // Goal 4 s: the boundary at 3 s may not be the nearest, a later one might be.
    expect(cutter.take()).toBeUndefined();
    cutter.add(at(5));
    expect(cutter.take()).toEqual({ start: 0, end: 3 * RATE, resume: undefined });
    // The next goal is 7 s: 5 s is behind it, nothing after it is known yet.
    expect(cutter.take()).toBeUndefined();
    cutter.add(at(9, 13));
    expect(cutter.take()).toEqual({ start: 3 * RATE, end: 5 * RATE, resume: 'state@3' });
    expect(cutter.take()).toEqual({ start: 5 * RATE, end: 9 * RATE, resume: 'state@5' });
    cutter.add(at(16, 21, 27, 30));
    const rest = cutter.rest();
    // Taken and planned pieces together are the same tiling one plan over everything gives.
    const all = [
      { start: 0, end: 3 * RATE, resume: undefined },
      { start: 3 * RATE, end: 5 * RATE, resume: 'state@3' },
      { start: 5 * RATE, end: 9 * RATE, resume: 'state@5' },
      ...rest,
    ];
    expect(spans(all)).toEqual(spans(planPieces(boundaries, 32 * RATE, opts)));
    expect(rest.find((p) => p.start === 9 * RATE)!.resume).toBe('state@9');
  });

  it('never takes the last stretch early: a sliver stays with the plan at the end', () => {
    const cutter = new PieceCutter<string>(20 * RATE, { parallel: 1, sampleRate: RATE, minSeconds: 10 });
    cutter.add(at(10, 19.5));
    expect(cutter.take()).toEqual({ start: 0, end: 10 * RATE, resume: undefined });
    expect(cutter.take()).toBeUndefined();
    expect(spans(cutter.rest())).toEqual([[10, 20]]);
  });

  it('ignores boundaries behind the last cut or outside the recording', () => {
    const cutter = new PieceCutter<string>(30 * RATE, opts);
    cutter.add(at(0, 4, 8));
    expect(cutter.take()).toEqual({ start: 0, end: 4 * RATE, resume: undefined });
    cutter.add(at(2, 40));
    expect(spans(cutter.rest())).toEqual(spans(planPieces(at(8), 30 * RATE, opts, at(4)[0])));
  });
});

describe('PieceCutter.add', () => {
  it('ignores a boundary given twice, so the scan’s full list can follow its reports', () => {
    const opts = { parallel: 2, sampleRate: RATE };
    const boundaries = at(3, 5, 9, 13, 16, 21, 27, 30);
    const cutter = new PieceCutter<string>(32 * RATE, opts);
    cutter.add(boundaries.slice(0, 3));
    expect(cutter.take()).toEqual({ start: 0, end: 3 * RATE, resume: undefined });
    cutter.add(boundaries);
    expect(spans([{ start: 0, end: 3 * RATE }, ...cutter.rest()])).toEqual(
      spans(planPieces(boundaries, 32 * RATE, opts)),
    );
  });
});
