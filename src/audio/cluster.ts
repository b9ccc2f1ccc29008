/**
 * Clustering primitives for the diarizer: average-linkage agglomerative clustering on cosine
 * distance (nearest-neighbour chain, O(n²) time and memory), dendrogram cuts, and
 * nearest-centroid assignment for points left out of the dendrogram.
 */

/** Rows of an n × dim row-major matrix scaled to unit length (zero rows stay zero). */
export function l2NormalizeRows(x: Float64Array, dim: number): Float64Array {
  const out = new Float64Array(x.length);
  for (let i = 0; i < x.length / dim; i++) {
    let s = 0;
    for (let d = 0; d < dim; d++) s += x[i * dim + d]! ** 2;
    const norm = Math.sqrt(s) || 1;
    for (let d = 0; d < dim; d++) out[i * dim + d] = x[i * dim + d]! / norm;
  }
  return out;
}

/** Cosine distance matrix (1 − cos) of unit-length rows, n × n. */
export function cosineDistances(unit: Float64Array, dim: number): Float64Array {
  const n = unit.length / dim;
  const dist = new Float64Array(n * n);
  for (let i = 0; i < n; i++) {
    for (let j = i + 1; j < n; j++) {
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += unit[i * dim + d]! * unit[j * dim + d]!;
      const v = Math.max(0, 1 - dot);
      dist[i * n + j] = v;
      dist[j * n + i] = v;
    }
  }
  return dist;
}

export interface Merge {
  /** Representative point indices of the two clusters merged. */
  a: number;
  b: number;
  distance: number;
}

/**
 * Average-linkage (UPGMA) agglomerative clustering by the nearest-neighbour chain algorithm.
 * Returns the n − 1 merges sorted by distance (valid because average linkage is reducible).
 * `dist` (n × n) is used as scratch and overwritten.
 */
export function averageLinkage(dist: Float64Array, n: number): Merge[] {
  const size = new Float64Array(n).fill(1);
  const alive = new Uint8Array(n).fill(1);
  const merges: Merge[] = [];
  const chain: number[] = [];
  let remaining = n;
  while (remaining > 1) {
    if (chain.length === 0) {
      let first = 0;
      while (!alive[first]) first++;
      chain.push(first);
    }
    const a = chain[chain.length - 1]!;
    const prev = chain.length > 1 ? chain[chain.length - 2]! : -1;
    // Nearest alive neighbour of a; ties prefer the previous chain element so the chain ends.
    let best = prev;
    let bestD = prev >= 0 ? dist[a * n + prev]! : Infinity;
    for (let j = 0; j < n; j++) {
      if (!alive[j] || j === a) continue;
      const d = dist[a * n + j]!;
      if (d < bestD) {
        bestD = d;
        best = j;
      }
    }
    if (best !== prev) {
      chain.push(best);
      continue;
    }
    // a and prev are reciprocal nearest neighbours: merge prev into a (Lance–Williams update).
    chain.pop();
    chain.pop();
    merges.push({ a, b: prev, distance: bestD });
    const sa = size[a]!;
    const sb = size[prev]!;
    for (let k = 0; k < n; k++) {
      if (!alive[k] || k === a || k === prev) continue;
      const d = (sa * dist[a * n + k]! + sb * dist[prev * n + k]!) / (sa + sb);
      dist[a * n + k] = d;
      dist[k * n + a] = d;
    }
    size[a] = sa + sb;
    alive[prev] = 0;
    remaining--;
  }
  return merges.sort((x, y) => x.distance - y.distance);
}

/** Labels 0..k-1 (in order of first point) after applying all but the last k − 1 merges. */
export function cutTree(merges: readonly Merge[], n: number, k: number): Int32Array {
  const parent = Int32Array.from({ length: n }, (_, i) => i);
  const find = (x: number): number => {
    while (parent[x] !== x) {
      parent[x] = parent[parent[x]!]!;
      x = parent[x]!;
    }
    return x;
  };
  const applied = Math.max(0, n - Math.max(1, k));
  for (let i = 0; i < applied && i < merges.length; i++) {
    const m = merges[i]!;
    parent[find(m.b)] = find(m.a);
  }
  const labels = new Int32Array(n);
  const ids = new Map<number, number>();
  for (let i = 0; i < n; i++) {
    const r = find(i);
    if (!ids.has(r)) ids.set(r, ids.size);
    labels[i] = ids.get(r)!;
  }
  return labels;
}

/** Unit-length centroid per label of unit rows. */
export function centroids(unit: Float64Array, dim: number, labels: Int32Array, k: number): Float64Array {
  const c = new Float64Array(k * dim);
  for (let i = 0; i < labels.length; i++)
    for (let d = 0; d < dim; d++) c[labels[i]! * dim + d]! += unit[i * dim + d]!;
  return l2NormalizeRows(c, dim);
}

/** Label of the most similar (cosine) centroid for each unit row. */
export function nearestCentroid(unit: Float64Array, dim: number, cents: Float64Array, k: number): Int32Array {
  const n = unit.length / dim;
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    let bestDot = -Infinity;
    for (let c = 0; c < k; c++) {
      let dot = 0;
      for (let d = 0; d < dim; d++) dot += unit[i * dim + d]! * cents[c * dim + d]!;
      if (dot > bestDot) {
        bestDot = dot;
        best = c;
      }
    }
    labels[i] = best;
  }
  return labels;
}
