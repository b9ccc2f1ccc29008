import { describe, expect, it } from 'vitest';
import type { SpeechRegion } from '../domain/transcript.js';
import { chunkOwns, ChunkPlanner, planChunks, quietestPoint, type Chunk } from './chunker.js';

const SR = 16000;
const r = (start: number, end: number): SpeechRegion => ({ start, end });

/** Every speech instant must be owned by exactly one chunk, inside that chunk's audio. */
function expectTiled(chunks: Chunk[], regions: SpeechRegion[]): void {
  for (const reg of regions) {
    for (let t = reg.start; t < reg.end; t += 0.05) {
      const owners = chunks.filter((c) => chunkOwns(c, t, t));
      expect(owners, `t=${t}`).toHaveLength(1);
      expect(t).toBeGreaterThanOrEqual(owners[0]!.start);
      expect(t).toBeLessThanOrEqual(owners[0]!.end);
    }
  }
}

describe('planChunks', () => {
  it('packs regions into chunks of at most maxSeconds that start and end in silence', () => {
    const regions = [r(1, 5), r(6, 12), r(14, 20), r(21, 28), r(40, 44), r(45, 70), r(71, 72)];
    const chunks = planChunks(regions, 80, SR, { maxSeconds: 20, padSeconds: 0.2 });
    for (const c of chunks) {
      expect(c.end - c.start).toBeLessThanOrEqual(20 + 1e-9);
      expect(c.startSample).toBe(Math.round(c.start * SR));
      expect(c.endSample).toBe(Math.round(c.end * SR));
    }
    // The first chunk takes 1–20 (19.4 s padded), the 21–28 region starts a new one.
    expect(chunks[0]).toMatchObject({ start: 0.8, end: 20.2, hardCut: false });
    expect(chunks[1]).toMatchObject({ start: 20.8, end: 28.2 });
    // Long silences (28–40) are never sent to the engine.
    expect(chunks.some((c) => c.start < 39 && c.end > 29)).toBe(false);
    expectTiled(chunks, regions);
  });

  it('hard-cuts a region longer than the limit, with an overlap owned once', () => {
    const regions = [r(2, 75)];
    const chunks = planChunks(regions, 80, SR, { maxSeconds: 30, overlapSeconds: 1, padSeconds: 0 });
    expect(chunks.length).toBe(3);
    for (const c of chunks) expect(c.end - c.start).toBeLessThanOrEqual(30 + 1e-9);
    for (let i = 1; i < chunks.length; i++) {
      const prev = chunks[i - 1]!;
      const cur = chunks[i]!;
      expect(prev.hardCut && cur.hardCut).toBe(true);
      expect(prev.end - cur.start).toBeCloseTo(1); // shared audio
      expect(prev.keepEnd).toBe(cur.keepStart); // owned once
    }
    expect(chunks[0]!.start).toBe(2);
    expect(chunks.at(-1)!.end).toBe(75);
    expectTiled(chunks, regions);
  });

  it('cuts at the quietest point of the allowed span when energies are given', () => {
    const hop = 0.01;
    const energy = new Float32Array(8000).fill(-20);
    for (let f = 2500; f < 2510; f++) energy[f] = -70; // a breath at 25.0–25.1 s
    const chunks = planChunks([r(0, 70)], 80, SR, {
      maxSeconds: 30,
      quietest: quietestPoint(energy, hop),
      padSeconds: 0,
    });
    expect(chunks[0]!.keepEnd).toBeGreaterThanOrEqual(25);
    expect(chunks[0]!.keepEnd).toBeLessThanOrEqual(25.1);
    // A finder that answers nonsense falls back to the limit.
    const bad = planChunks([r(0, 70)], 80, SR, { maxSeconds: 30, quietest: () => -5, padSeconds: 0 });
    expect(bad[0]!.keepEnd).toBeCloseTo(29.5);
  });

  it('keeps padding inside the recording and clear of the previous region', () => {
    const chunks = planChunks([r(0.05, 2), r(2.1, 3), r(9.95, 10)], 10, SR, {
      maxSeconds: 5,
      padSeconds: 0.3,
    });
    expect(chunks[0]!.start).toBe(0);
    expect(chunks.at(-1)!.end).toBe(10);
  });

  it('has no chunks without speech and rejects impossible options', () => {
    expect(planChunks([], 100, SR)).toEqual([]);
    expect(() => planChunks([], 1, SR, { maxSeconds: 0 })).toThrow(RangeError);
    expect(() => planChunks([], 1, SR, { maxSeconds: 2, overlapSeconds: 1.5 })).toThrow(RangeError);
  });

  it('plans the same chunks incrementally as in one go', () => {
    const regions = [r(1, 5), r(6, 50), r(52, 53), r(60, 61)];
    const whole = planChunks(regions, 70, SR, { maxSeconds: 20 });
    const planner = new ChunkPlanner(SR, { maxSeconds: 20 });
    const got: Chunk[] = [];
    for (const reg of regions) got.push(...planner.push(reg, 70));
    got.push(...planner.end());
    expect(got).toEqual(whole);
    expect(got.map((c) => c.index)).toEqual(whole.map((_, i) => i));
  });
});
