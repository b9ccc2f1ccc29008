/**
 * Speaker diarization: who spoke when.
 *
 * - `Diarizer` is the seam for mono diarizers: the MFCC clustering one in diarize-cluster.ts
 *   today, a neural one (sherpa-onnx segmentation + embeddings) later.
 * - `diarizeChannels` handles multichannel recordings (calls): one speaker per channel, found by
 *   a VAD per channel, with crosstalk (a voice bleeding into the other channel much quieter)
 *   suppressed by comparing channel energies frame by frame. Real overlaps, where both channels
 *   carry speech at comparable level, are kept on both.
 * - `diarize` chooses: distinct channels → channel diarization; mono or dual-mono (the same
 *   signal on every channel, common in uploads) → the mono diarizer on the downmix.
 */
import type { SpeakerTurn, SpeechRegion } from '../domain/transcript.js';
import { FrameAnalyzer, toFloat32, type FrameOptions, type Pcm } from './features.js';
import { VadDetector, type VadOptions } from './vad.js';

export interface DiarizeOptions {
  /** Known number of speakers; estimated when absent. */
  speakers?: number;
}

export interface Diarizer {
  /** Speaker turns of mono PCM, labelled S1, S2, … in order of first appearance. */
  diarize(pcm: Pcm, sampleRate: number, opts?: DiarizeOptions): SpeakerTurn[];
}

/**
 * Sorts turns, merges a speaker's turns separated by at most `mergeGap` seconds (a breath
 * between two sentences is not a new turn) and relabels S1, S2, … by first appearance.
 */
export function finalizeTurns(
  turns: readonly SpeakerTurn[],
  mergeGap: number,
  relabel = true,
): SpeakerTurn[] {
  const sorted = [...turns].filter((t) => t.end > t.start).sort((a, b) => a.start - b.start || a.end - b.end);
  const open = new Map<string, SpeakerTurn>();
  const out: SpeakerTurn[] = [];
  for (const t of sorted) {
    const prev = open.get(t.speaker);
    // Merge only when no other speaker took the floor in the gap (a backchannel *during* the
    // turn does not split it; an answer between the two parts does).
    if (
      prev &&
      t.start - prev.end <= mergeGap &&
      !out.some((o) => o.speaker !== t.speaker && o.start >= prev.end)
    ) {
      prev.end = Math.max(prev.end, t.end);
      continue;
    }
    const copy = { ...t };
    out.push(copy);
    open.set(t.speaker, copy);
  }
  if (!relabel) return out;
  const names = new Map<string, string>();
  for (const t of out) if (!names.has(t.speaker)) names.set(t.speaker, `S${names.size + 1}`);
  return out.map((t) => ({ speaker: names.get(t.speaker)!, start: round(t.start), end: round(t.end) }));
}

export interface ChannelDiarizeOptions {
  /** A channel's frame counts as crosstalk when another channel is louder by more than this. */
  bleedDb?: number;
  mergeGap?: number;
  vad?: VadOptions;
  frame?: FrameOptions;
}

export interface ChannelDiarization {
  turns: SpeakerTurn[];
  /** Speech regions per channel after crosstalk suppression. */
  regions: SpeechRegion[][];
}

/**
 * One speaker per channel: S1 is channel 1 (left), S2 channel 2, … — the channel, not the order
 * of speaking, fixes the label, because a call recorder puts the same party on the same side.
 * Frames are analysed in lockstep so memory stays flat in the length of the recording.
 */
export function diarizeChannels(
  channels: readonly Pcm[],
  sampleRate: number,
  opts: ChannelDiarizeOptions = {},
): ChannelDiarization {
  const bleedDb = opts.bleedDb ?? 15;
  const count = channels.length;
  const length = Math.min(...channels.map((c) => c.length));
  const analyzers = channels.map(() => new FrameAnalyzer(sampleRate, opts.frame));
  const hop = analyzers[0]!.hopSeconds;
  const detectors = channels.map(() => new VadDetector(hop, opts.vad));
  const regions: SpeechRegion[][] = channels.map(() => []);
  const energy = new Float64Array(count);
  const flatness = new Float64Array(count);
  const block = analyzers[0]!.hop * 100;
  const step = (): void => {
    for (let c = 0; c < count; c++) {
      let loudestOther = -Infinity;
      for (let o = 0; o < count; o++) if (o !== c) loudestOther = Math.max(loudestOther, energy[o]!);
      regions[c]!.push(
        ...detectors[c]!.pushFrame(energy[c]!, flatness[c]!, loudestOther - energy[c]! > bleedDb),
      );
    }
  };
  // Every analyzer emits the same frame indices for the same sample ranges; collect one block of
  // frames per channel, then step the detectors frame by frame across channels.
  for (let pos = 0; pos <= length; pos += block) {
    const last = pos + block >= length;
    const frames: { e: number; f: number }[][] = channels.map(() => []);
    channels.forEach((pcm, c) => {
      const sink = (f: { energyDb: number; flatness: number }): void =>
        void frames[c]!.push({ e: f.energyDb, f: f.flatness });
      analyzers[c]!.push(pcm.subarray(pos, Math.min(length, pos + block)), sink);
      if (last) analyzers[c]!.flush(sink);
    });
    const n = Math.min(...frames.map((f) => f.length));
    for (let i = 0; i < n; i++) {
      for (let c = 0; c < count; c++) {
        energy[c] = frames[c]![i]!.e;
        flatness[c] = frames[c]![i]!.f;
      }
      step();
    }
    if (last) break;
  }
  const duration = length / sampleRate;
  detectors.forEach((d, c) => regions[c]!.push(...d.end(duration)));
  const turns: SpeakerTurn[] = [];
  regions.forEach((rs, c) =>
    rs.forEach((r) => turns.push({ speaker: `S${c + 1}`, start: r.start, end: r.end })),
  );
  return { turns: finalizeTurns(turns, opts.mergeGap ?? 1, false), regions };
}

/**
 * True when every channel carries essentially the same signal (dual mono): correlation of each
 * channel with the first above 0.98 over the loud parts, measured on a strided sample so it costs
 * little on long files.
 */
export function isDualMono(channels: readonly Pcm[]): boolean {
  if (channels.length < 2) return true;
  const ref = toFloat32(channels[0]!);
  const n = Math.min(...channels.map((c) => c.length));
  const stride = Math.max(1, Math.floor(n / 2_000_000));
  for (const other of channels.slice(1)) {
    const x = toFloat32(other);
    let sxy = 0;
    let sxx = 0;
    let syy = 0;
    for (let i = 0; i < n; i += stride) {
      sxy += ref[i]! * x[i]!;
      sxx += ref[i]! ** 2;
      syy += x[i]! ** 2;
    }
    if (sxx === 0 && syy === 0) continue;
    if (sxx === 0 || syy === 0 || sxy / Math.sqrt(sxx * syy) < 0.98) return false;
  }
  return true;
}

/** Sample-wise average of the channels (the mono diarizer's input for dual-mono files). */
function mixDown(channels: readonly Pcm[]): Float32Array {
  const n = Math.min(...channels.map((c) => c.length));
  const out = new Float32Array(n);
  for (const ch of channels) {
    const scale = (ch instanceof Int16Array ? 1 / 32768 : 1) / channels.length;
    for (let i = 0; i < n; i++) out[i]! += ch[i]! * scale;
  }
  return out;
}

/**
 * Diarize any recording: per-channel speakers when the channels differ, otherwise the mono
 * diarizer on the downmix. A channel that stays silent contributes no turns.
 */
export function diarize(
  channels: readonly Pcm[],
  sampleRate: number,
  mono: Diarizer,
  opts: DiarizeOptions & ChannelDiarizeOptions = {},
): { turns: SpeakerTurn[]; method: 'channels' | 'clustering' } {
  if (channels.length === 0) return { turns: [], method: 'clustering' };
  if (channels.length > 1 && !isDualMono(channels)) {
    return { turns: diarizeChannels(channels, sampleRate, opts).turns, method: 'channels' };
  }
  const pcm = channels.length === 1 ? channels[0]! : mixDown(channels);
  return { turns: mono.diarize(pcm, sampleRate, { speakers: opts.speakers }), method: 'clustering' };
}

function round(t: number): number {
  return Math.round(t * 1000) / 1000;
}
