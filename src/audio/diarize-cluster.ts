/**
 * Mono speaker diarization by clustering, with no model files:
 *
 * 1. One pass of frame analysis (10 ms hops): VAD energies and 20 MFCCs.
 * 2. Speech regions from the VAD, cut into windows (1.5 s, 0.75 s hop; a shorter region is one
 *    window). Each window's embedding is the mean and standard deviation of MFCC c1…c19 over its
 *    voiced frames (c0 is loudness, not voice), z-scored per dimension across the recording and
 *    scaled to unit length, so cosine distance compares voices, not levels.
 * 3. Average-linkage agglomerative clustering on cosine distance over-clusters the windows
 *    (up to `maxSpeakers`). The clusters are then merged pairwise by ΔBIC between full-covariance
 *    Gaussians of their frames: the pair whose split gains least per frame merges first, until
 *    every remaining split gains more than `bicThreshold` nats per frame (two voices) — or, with a
 *    `speakers` hint, until that many remain. Clusters with less than `minSpeakerSec` of speech
 *    are merged away when estimating (a cough is not a participant).
 * 4. Resegmentation: per-cluster Gaussians score every frame and a Viterbi pass per region, with
 *    a fixed cost per speaker change, moves boundaries to where the voice changes (windows alone
 *    only resolve ±0.4 s), twice, re-estimating the Gaussians in between.
 * 5. Frames to turns; a speaker's turns closer than `mergeGap` join; labels S1, S2… by first
 *    appearance.
 *
 * Cost is linear in duration except the clustering, which is quadratic in windows: above
 * `maxClusterUnits` windows a strided subset is clustered and the rest join their nearest
 * centroid, so an hour (≈4,800 windows) clusters 1,000.
 */
import type { SpeakerTurn, SpeechRegion } from '../domain/transcript.js';
import {
  averageLinkage,
  centroids,
  cosineDistances,
  cutTree,
  l2NormalizeRows,
  nearestCentroid,
} from './cluster.js';
import { finalizeTurns, type DiarizeOptions, type Diarizer } from './diarize.js';
import { FrameAnalyzer, type Pcm } from './features.js';
import { deltaBicPerFrame, GaussModel, GaussStats } from './gaussian.js';
import { VadDetector, type VadOptions } from './vad.js';

export interface ClusteringDiarizerOptions {
  windowSec?: number;
  hopSec?: number;
  maxSpeakers?: number;
  bicThreshold?: number;
  minSpeakerSec?: number;
  switchPenalty?: number;
  resegmentIterations?: number;
  mergeGap?: number;
  maxClusterUnits?: number;
  vad?: VadOptions;
}

export interface ClusteringDiagnostics {
  turns: SpeakerTurn[];
  regions: SpeechRegion[];
  windows: number;
  speakers: number;
}

const CEPS = 20;
const DIM = CEPS - 1;

interface Window {
  region: number;
  f0: number;
  f1: number;
}

export class ClusteringDiarizer implements Diarizer {
  private readonly o: Required<Omit<ClusteringDiarizerOptions, 'vad'>> & { vad: VadOptions };

  constructor(opts: ClusteringDiarizerOptions = {}) {
    this.o = {
      windowSec: opts.windowSec ?? 1.5,
      hopSec: opts.hopSec ?? 0.75,
      maxSpeakers: opts.maxSpeakers ?? 8,
      bicThreshold: opts.bicThreshold ?? 0.5,
      minSpeakerSec: opts.minSpeakerSec ?? 1.5,
      switchPenalty: opts.switchPenalty ?? 40,
      resegmentIterations: opts.resegmentIterations ?? 2,
      mergeGap: opts.mergeGap ?? 1,
      maxClusterUnits: opts.maxClusterUnits ?? 1000,
      vad: opts.vad ?? {},
    };
  }

  diarize(pcm: Pcm, sampleRate: number, opts: DiarizeOptions = {}): SpeakerTurn[] {
    return this.run(pcm, sampleRate, opts).turns;
  }

  /** The same as diarize(), with the intermediate facts benches and tests look at. */
  run(pcm: Pcm, sampleRate: number, opts: DiarizeOptions = {}): ClusteringDiagnostics {
    const hint = opts.speakers;
    if (hint !== undefined && !(Number.isInteger(hint) && hint >= 1))
      throw new RangeError('speakers must be a positive integer');

    // 1. Frames: MFCCs kept (80 bytes per 10 ms: 29 MB per hour), VAD fed as we go.
    const analyzer = new FrameAnalyzer(sampleRate, { mfcc: true, numCeps: CEPS });
    const hop = analyzer.hopSeconds;
    const vad = new VadDetector(hop, this.o.vad, true);
    const total = Math.ceil(pcm.length / analyzer.hop);
    const mfcc = new Float32Array(total * DIM);
    const regions: SpeechRegion[] = [];
    const sink = (f: {
      index: number;
      energyDb: number;
      flatness: number;
      mfcc: Float64Array | null;
    }): void => {
      if (f.index >= total) return;
      for (let d = 0; d < DIM; d++) mfcc[f.index * DIM + d] = f.mfcc![d + 1]!;
      regions.push(...vad.pushFrame(f.energyDb, f.flatness));
    };
    analyzer.push(pcm, sink);
    analyzer.flush(sink);
    regions.push(...vad.end(pcm.length / sampleRate));
    const active = vad.activity!;
    if (regions.length === 0) return { turns: [], regions, windows: 0, speakers: 0 };

    // 2. Windows and the frame → window ownership (nearest window centre within the region).
    const windows: Window[] = [];
    const owner = new Int32Array(total).fill(-1);
    const winFrames = Math.round(this.o.windowSec / hop);
    const hopFrames = Math.max(1, Math.round(this.o.hopSec / hop));
    regions.forEach((r, ri) => {
      const r0 = Math.floor(r.start / hop);
      const r1 = Math.min(total, Math.ceil(r.end / hop));
      const first = windows.length;
      if (r1 - r0 <= winFrames) windows.push({ region: ri, f0: r0, f1: r1 });
      else {
        for (let s = r0; ; s += hopFrames) {
          const e = Math.min(s + winFrames, r1);
          windows.push({ region: ri, f0: e - winFrames, f1: e });
          if (e >= r1) break;
        }
      }
      // Window centres increase, so the nearest one only ever moves forward.
      const centre = (w: number): number => (windows[w]!.f0 + windows[w]!.f1) / 2;
      let w = first;
      for (let f = r0; f < r1; f++) {
        while (w + 1 < windows.length && Math.abs(centre(w + 1) - f - 0.5) <= Math.abs(centre(w) - f - 0.5))
          w++;
        owner[f] = w;
      }
    });
    const voiced = (f: number): boolean => active[f] === 1;

    // 3. Speaker count and initial labels per window.
    const k0 = hint ?? this.o.maxSpeakers;
    let winLabels: Int32Array =
      hint === 1 || windows.length === 1
        ? new Int32Array(windows.length)
        : this.cluster(windows, mfcc, voiced, k0);
    const clusters = (): number => winLabels.reduce((m, l) => Math.max(m, l), -1) + 1;
    const statsOf = (frameLabel: (f: number) => number, k: number): GaussStats[] => {
      const s = Array.from({ length: k }, () => new GaussStats(DIM));
      for (let f = 0; f < total; f++) {
        if (owner[f]! < 0 || !voiced(f)) continue;
        const l = frameLabel(f);
        if (l >= 0) s[l]!.add(mfcc, f * DIM);
      }
      return s;
    };
    const global = new GaussStats(DIM);
    for (let f = 0; f < total; f++) if (owner[f]! >= 0 && voiced(f)) global.add(mfcc, f * DIM);
    // Ridge: 2% of the recording's per-dimension variance keeps small clusters' covariances
    // well-conditioned without blurring voices apart.
    const ridge = global.variances().map((v) => 0.02 * v);
    if (clusters() > 1) {
      const stats = statsOf((f) => winLabels[owner[f]!]!, clusters());
      winLabels = this.mergeByBic(winLabels, stats, ridge, hint, hop);
    }

    // 4. Frame labels, then Viterbi resegmentation.
    let k = clusters();
    let frameLabels: Int32Array = new Int32Array(total).fill(-1);
    for (let f = 0; f < total; f++) if (owner[f]! >= 0) frameLabels[f] = winLabels[owner[f]!]!;
    for (let it = 0; it < this.o.resegmentIterations && k > 1; it++) {
      const stats = statsOf((f) => frameLabels[f]!, k);
      if (stats.some((s) => s.n < 2 * DIM)) break;
      const models = stats.map((s) => new GaussModel(s, ridge));
      const next = this.viterbi(regions, frameLabels, models, mfcc, voiced, hop, total);
      const { labels, count } = compact(next);
      if (hint !== undefined && count < Math.min(hint, k)) break;
      frameLabels = labels;
      k = count;
    }

    // 5. Turns.
    const turns: SpeakerTurn[] = [];
    regions.forEach((r) => {
      const r0 = Math.floor(r.start / hop);
      const r1 = Math.min(total, Math.ceil(r.end / hop));
      let s = r0;
      for (let f = r0 + 1; f <= r1; f++) {
        if (f === r1 || frameLabels[f] !== frameLabels[s]) {
          const start = s === r0 ? r.start : s * hop;
          const end = f === r1 ? r.end : f * hop;
          turns.push({ speaker: `c${frameLabels[s]}`, start, end });
          s = f;
        }
      }
    });
    const final = finalizeTurns(turns, this.o.mergeGap);
    return {
      turns: final,
      regions,
      windows: windows.length,
      speakers: new Set(final.map((t) => t.speaker)).size,
    };
  }

  /** Window embeddings → AHC over-clustering into at most `k` clusters. */
  private cluster(
    windows: Window[],
    mfcc: Float32Array,
    voiced: (f: number) => boolean,
    k: number,
  ): Int32Array {
    const n = windows.length;
    const dim = 2 * DIM;
    const emb = new Float64Array(n * dim);
    windows.forEach((w, i) => {
      let count = 0;
      const sum = new Float64Array(DIM);
      const sq = new Float64Array(DIM);
      for (let pass = 0; pass < 2 && count === 0; pass++) {
        for (let f = w.f0; f < w.f1; f++) {
          if (pass === 0 && !voiced(f)) continue;
          count++;
          for (let d = 0; d < DIM; d++) {
            const v = mfcc[f * DIM + d]!;
            sum[d]! += v;
            sq[d]! += v * v;
          }
        }
      }
      for (let d = 0; d < DIM; d++) {
        const m = sum[d]! / Math.max(1, count);
        emb[i * dim + d] = m;
        emb[i * dim + DIM + d] = Math.sqrt(Math.max(0, sq[d]! / Math.max(1, count) - m * m));
      }
    });
    for (let d = 0; d < dim; d++) {
      let s = 0;
      let s2 = 0;
      for (let i = 0; i < n; i++) {
        s += emb[i * dim + d]!;
        s2 += emb[i * dim + d]! ** 2;
      }
      const m = s / n;
      const sd = Math.sqrt(Math.max(1e-12, s2 / n - m * m));
      for (let i = 0; i < n; i++) emb[i * dim + d] = (emb[i * dim + d]! - m) / sd;
    }
    const unit = l2NormalizeRows(emb, dim);
    const stride = Math.max(1, Math.ceil(n / this.o.maxClusterUnits));
    const picked: number[] = [];
    for (let i = 0; i < n; i += stride) picked.push(i);
    const sub = new Float64Array(picked.length * dim);
    picked.forEach((p, j) => sub.set(unit.subarray(p * dim, (p + 1) * dim), j * dim));
    const merges = averageLinkage(cosineDistances(sub, dim), picked.length);
    const kk = Math.min(k, picked.length);
    const subLabels = cutTree(merges, picked.length, kk);
    if (stride === 1) return subLabels;
    return nearestCentroid(unit, dim, centroids(sub, dim, subLabels, kk), kk);
  }

  /** Pairwise ΔBIC merging until every split is justified (or `hint` clusters remain). */
  private mergeByBic(
    labels: Int32Array,
    stats: GaussStats[],
    ridge: Float64Array,
    hint: number | undefined,
    hop: number,
  ): Int32Array {
    const map = stats.map((_, i) => i);
    const live = stats.map((s) => s);
    const ids = stats.map((_, i) => i);
    const minFrames = this.o.minSpeakerSec / hop;
    while (live.length > 1) {
      let best: [number, number] = [0, 1];
      let bestScore = Infinity;
      for (let i = 0; i < live.length; i++) {
        for (let j = i + 1; j < live.length; j++) {
          const score = deltaBicPerFrame(live[i]!, live[j]!, ridge);
          if (score < bestScore) [best, bestScore] = [[i, j], score];
        }
      }
      // When estimating, a cluster too small to be a participant merges into its best match.
      let smallest = -1;
      if (hint === undefined) {
        for (let i = 0; i < live.length; i++)
          if (live[i]!.n < minFrames && (smallest < 0 || live[i]!.n < live[smallest]!.n)) smallest = i;
      }
      if (smallest >= 0) {
        let partner = -1;
        let partnerScore = Infinity;
        for (let j = 0; j < live.length; j++) {
          if (j === smallest) continue;
          const score = deltaBicPerFrame(live[smallest]!, live[j]!, ridge);
          if (score < partnerScore) [partner, partnerScore] = [j, score];
        }
        best = [Math.min(smallest, partner), Math.max(smallest, partner)];
      } else if (hint !== undefined ? live.length <= hint : bestScore >= this.o.bicThreshold) break;
      const [i, j] = best;
      live[i] = GaussStats.merged(live[i]!, live[j]!);
      for (let c = 0; c < map.length; c++) if (map[c] === ids[j]) map[c] = ids[i]!;
      live.splice(j, 1);
      ids.splice(j, 1);
    }
    return compact(labels.map((l) => map[l]!)).labels;
  }

  /** Per-region Viterbi over cluster models with a constant speaker-change cost. */
  private viterbi(
    regions: SpeechRegion[],
    current: Int32Array,
    models: GaussModel[],
    mfcc: Float32Array,
    voiced: (f: number) => boolean,
    hop: number,
    total: number,
  ): Int32Array {
    const k = models.length;
    const out = current.slice();
    const penalty = this.o.switchPenalty;
    const score = new Float64Array(k);
    const next = new Float64Array(k);
    for (const r of regions) {
      const r0 = Math.floor(r.start / hop);
      const r1 = Math.min(total, Math.ceil(r.end / hop));
      const len = r1 - r0;
      if (len <= 0) continue;
      const back = new Uint8Array(len * k);
      score.fill(0);
      for (let t = 0; t < len; t++) {
        const f = r0 + t;
        let bestPrev = 0;
        for (let j = 1; j < k; j++) if (score[j]! > score[bestPrev]!) bestPrev = j;
        for (let j = 0; j < k; j++) {
          const stay = score[j]!;
          const move = score[bestPrev]! - penalty;
          const from = t === 0 || stay >= move ? j : bestPrev;
          back[t * k + j] = from;
          const emit = voiced(f) ? models[j]!.logPdf(mfcc, f * DIM) : 0;
          next[j] = (t === 0 ? 0 : Math.max(stay, move)) + emit;
        }
        score.set(next);
      }
      let state = 0;
      for (let j = 1; j < k; j++) if (score[j]! > score[state]!) state = j;
      for (let t = len - 1; t >= 0; t--) {
        out[r0 + t] = state;
        state = back[t * k + state]!;
      }
    }
    return out;
  }
}

/** Renumbers labels 0..k-1 in order of first appearance (ignoring -1). */
function compact(labels: Int32Array): { labels: Int32Array; count: number } {
  const ids = new Map<number, number>();
  const out = labels.map((l) => {
    if (l < 0) return -1;
    if (!ids.has(l)) ids.set(l, ids.size);
    return ids.get(l)!;
  });
  return { labels: out, count: ids.size };
}
