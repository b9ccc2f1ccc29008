/**
 * Full-covariance Gaussian sufficient statistics over feature frames: accumulate, merge, compare
 * two clusters by ΔBIC, and score frames (log-density) for Viterbi resegmentation.
 */

export class GaussStats {
  readonly dim: number;
  n = 0;
  readonly sum: Float64Array;
  /** Lower triangle (row-major, i ≥ j) of Σ x xᵀ. */
  readonly outer: Float64Array;

  constructor(dim: number) {
    this.dim = dim;
    this.sum = new Float64Array(dim);
    this.outer = new Float64Array((dim * (dim + 1)) / 2);
  }

  add(x: ArrayLike<number>, offset = 0): void {
    const { dim, sum, outer } = this;
    this.n++;
    let p = 0;
    for (let i = 0; i < dim; i++) {
      const xi = x[offset + i]!;
      sum[i]! += xi;
      for (let j = 0; j <= i; j++) outer[p++]! += xi * x[offset + j]!;
    }
  }

  addAll(other: GaussStats): void {
    this.n += other.n;
    for (let i = 0; i < this.sum.length; i++) this.sum[i]! += other.sum[i]!;
    for (let i = 0; i < this.outer.length; i++) this.outer[i]! += other.outer[i]!;
  }

  static merged(a: GaussStats, b: GaussStats): GaussStats {
    const m = new GaussStats(a.dim);
    m.addAll(a);
    m.addAll(b);
    return m;
  }

  mean(): Float64Array {
    return this.sum.map((s) => s / Math.max(1, this.n));
  }

  /** Maximum-likelihood covariance plus `ridge[i]` on the diagonal (keeps small clusters sane). */
  covariance(ridge?: Float64Array): Float64Array {
    const { dim, n } = this;
    const mean = this.mean();
    const cov = new Float64Array(dim * dim);
    let p = 0;
    for (let i = 0; i < dim; i++) {
      for (let j = 0; j <= i; j++) {
        const v = this.outer[p++]! / Math.max(1, n) - mean[i]! * mean[j]!;
        cov[i * dim + j] = v;
        cov[j * dim + i] = v;
      }
      cov[i * dim + i]! += ridge?.[i] ?? 1e-6;
    }
    return cov;
  }

  /** Per-dimension variance, for building ridges from a global model. */
  variances(): Float64Array {
    const mean = this.mean();
    const out = new Float64Array(this.dim);
    for (let i = 0; i < this.dim; i++)
      out[i] = Math.max(1e-9, this.outer[(i * (i + 3)) / 2]! / Math.max(1, this.n) - mean[i]! ** 2);
    return out;
  }
}

/** In-place Cholesky factor (lower) of a symmetric positive-definite dim × dim matrix; log det. */
export function cholesky(a: Float64Array, dim: number): number {
  let logDet = 0;
  for (let j = 0; j < dim; j++) {
    let s = a[j * dim + j]!;
    for (let k = 0; k < j; k++) s -= a[j * dim + k]! ** 2;
    const d = Math.sqrt(Math.max(s, 1e-12));
    a[j * dim + j] = d;
    logDet += 2 * Math.log(d);
    for (let i = j + 1; i < dim; i++) {
      let t = a[i * dim + j]!;
      for (let k = 0; k < j; k++) t -= a[i * dim + k]! * a[j * dim + k]!;
      a[i * dim + j] = t / d;
    }
    for (let k = j + 1; k < dim; k++) a[j * dim + k] = 0;
  }
  return logDet;
}

/**
 * ΔBIC per frame of modelling a and b with two Gaussians instead of one:
 *   [N·log|Σ| − Na·log|Σa| − Nb·log|Σb|] / 2N − λ·P·log(N) / 2N,   P = d + d(d+1)/2.
 * Dividing by N makes it a per-frame log-likelihood gain, comparable across recording lengths;
 * positive means the split explains the frames better than its parameter cost (two speakers).
 */
export function deltaBicPerFrame(a: GaussStats, b: GaussStats, ridge: Float64Array, lambda = 1): number {
  const d = a.dim;
  const m = GaussStats.merged(a, b);
  const n = m.n;
  if (a.n === 0 || b.n === 0) return -Infinity;
  const ld = (g: GaussStats): number => cholesky(g.covariance(ridge), d);
  const gain = 0.5 * (n * ld(m) - a.n * ld(a) - b.n * ld(b));
  const penalty = 0.5 * lambda * (d + (d * (d + 1)) / 2) * Math.log(n);
  return (gain - penalty) / n;
}

/** A Gaussian ready to score frames: mean, Cholesky factor, normalising constant. */
export class GaussModel {
  private readonly dim: number;
  private readonly mean: Float64Array;
  private readonly chol: Float64Array;
  private readonly constant: number;
  private readonly tmp: Float64Array;

  constructor(stats: GaussStats, ridge: Float64Array) {
    this.dim = stats.dim;
    this.mean = stats.mean();
    this.chol = stats.covariance(ridge);
    const logDet = cholesky(this.chol, this.dim);
    this.constant = -0.5 * (this.dim * Math.log(2 * Math.PI) + logDet);
    this.tmp = new Float64Array(this.dim);
  }

  logPdf(x: ArrayLike<number>, offset = 0): number {
    const { dim, mean, chol, tmp } = this;
    let q = 0;
    // Solve L z = (x − μ); the Mahalanobis term is |z|².
    for (let i = 0; i < dim; i++) {
      let v = x[offset + i]! - mean[i]!;
      for (let k = 0; k < i; k++) v -= chol[i * dim + k]! * tmp[k]!;
      v /= chol[i * dim + i]!;
      tmp[i] = v;
      q += v * v;
    }
    return this.constant - 0.5 * q;
  }
}
