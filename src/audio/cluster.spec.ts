import { describe, expect, it } from 'vitest';
import {
  averageLinkage,
  cosineDistances,
  cutTree,
  l2NormalizeRows,
  nearestCentroid,
  centroids,
} from './cluster.js';
import { deltaBicPerFrame, GaussModel, GaussStats } from './gaussian.js';

function rng(seed: number): () => number {
  let s = seed >>> 0;
  return () => {
    s = (Math.imul(s, 1664525) + 1013904223) >>> 0;
    return s / 2 ** 32;
  };
}
function gaussian(r: () => number): number {
  return Math.sqrt(-2 * Math.log(r() + 1e-12)) * Math.cos(2 * Math.PI * r());
}

/** Textbook O(n³) UPGMA: merge the closest pair by mean pairwise distance, record distances. */
function naiveUpgma(d: (i: number, j: number) => number, n: number): number[] {
  let clusters = Array.from({ length: n }, (_, i) => [i]);
  const heights: number[] = [];
  while (clusters.length > 1) {
    let best = [0, 1];
    let bestD = Infinity;
    for (let a = 0; a < clusters.length; a++) {
      for (let b = a + 1; b < clusters.length; b++) {
        let s = 0;
        for (const i of clusters[a]!) for (const j of clusters[b]!) s += d(i, j);
        const avg = s / (clusters[a]!.length * clusters[b]!.length);
        if (avg < bestD) [best, bestD] = [[a, b], avg];
      }
    }
    heights.push(bestD);
    const merged = [...clusters[best[0]!]!, ...clusters[best[1]!]!];
    clusters = clusters.filter((_, i) => i !== best[0] && i !== best[1]);
    clusters.push(merged);
  }
  return heights;
}

describe('average-linkage clustering', () => {
  it('gives the same merge heights as naive UPGMA', () => {
    const r = rng(5);
    const n = 30;
    const dim = 4;
    const unit = l2NormalizeRows(
      Float64Array.from({ length: n * dim }, () => gaussian(r)),
      dim,
    );
    const dist = cosineDistances(unit, dim);
    const expected = naiveUpgma((i, j) => dist[i * n + j]!, n);
    const merges = averageLinkage(dist.slice(), n);
    expect(merges).toHaveLength(n - 1);
    merges.forEach((m, i) => expect(m.distance).toBeCloseTo(expected[i]!, 9));
  });

  it('cuts the dendrogram into the obvious groups and assigns new points to the nearest centroid', () => {
    const r = rng(11);
    const dim = 3;
    const centres = [
      [1, 0, 0],
      [0, 1, 0],
      [0, 0, 1],
    ];
    const rows: number[] = [];
    const truth: number[] = [];
    for (let i = 0; i < 45; i++) {
      const c = i % 3;
      truth.push(c);
      for (let d = 0; d < dim; d++) rows.push(centres[c]![d]! + 0.1 * gaussian(r));
    }
    const unit = l2NormalizeRows(Float64Array.from(rows), dim);
    const merges = averageLinkage(cosineDistances(unit, dim), 45);
    const labels = cutTree(merges, 45, 3);
    // Same partition as the truth (labels are numbered by first appearance: 0, 1, 2).
    expect(Array.from(labels)).toEqual(truth);
    expect(new Set(cutTree(merges, 45, 1))).toEqual(new Set([0]));
    const cents = centroids(unit, dim, labels, 3);
    expect(
      Array.from(nearestCentroid(l2NormalizeRows(Float64Array.from([0.1, 0.05, 0.9]), dim), dim, cents, 3)),
    ).toEqual([2]);
  });
});

describe('Gaussian statistics', () => {
  const draw = (r: () => number, n: number, mean: number[], scale: number): Float64Array => {
    const x = new Float64Array(n * mean.length);
    for (let i = 0; i < n; i++)
      for (let d = 0; d < mean.length; d++) x[i * mean.length + d] = mean[d]! + scale * gaussian(r);
    return x;
  };
  const statsOf = (x: Float64Array, dim: number): GaussStats => {
    const s = new GaussStats(dim);
    for (let i = 0; i < x.length / dim; i++) s.add(x, i * dim);
    return s;
  };

  it('recovers mean and covariance', () => {
    const x = draw(rng(3), 5000, [1, -2, 3], 2);
    const s = statsOf(x, 3);
    const mean = s.mean();
    expect(mean[0]).toBeCloseTo(1, 0);
    expect(mean[1]).toBeCloseTo(-2, 0);
    const cov = s.covariance(new Float64Array(3));
    expect(cov[0]! / 4).toBeCloseTo(1, 0);
    expect(Math.abs(cov[1]!)).toBeLessThan(0.3);
    expect(Array.from(s.variances()).every((v) => Math.abs(v / 4 - 1) < 0.1)).toBe(true);
  });

  it('ΔBIC says "two" for different distributions and "one" for the same', () => {
    const r = rng(8);
    const dim = 5;
    const ridge = new Float64Array(dim).fill(1e-3);
    const a = statsOf(draw(r, 800, [0, 0, 0, 0, 0], 1), dim);
    const same = statsOf(draw(r, 800, [0, 0, 0, 0, 0], 1), dim);
    const other = statsOf(draw(r, 800, [1.5, -1, 0.5, 1, 0], 1), dim);
    expect(deltaBicPerFrame(a, other, ridge)).toBeGreaterThan(0.3);
    expect(deltaBicPerFrame(a, same, ridge)).toBeLessThan(0);
  });

  it('scores frames by log-density, higher near the mean', () => {
    const s = statsOf(draw(rng(4), 2000, [0, 0], 1), 2);
    const model = new GaussModel(s, new Float64Array(2).fill(1e-6));
    // Standard normal in 2-D: log p(0) = −log(2π).
    expect(model.logPdf([0, 0])).toBeCloseTo(-Math.log(2 * Math.PI), 1);
    expect(model.logPdf([3, 3])).toBeLessThan(model.logPdf([0.5, 0]));
  });
});
