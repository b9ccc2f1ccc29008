import workletUrl from './capture-worklet.ts?worker&url';
import type { WorkletBatch } from './capture-worklet';
import { IngestSocket, type LinkState } from './ingest-socket';
import { Framer, Resampler, TARGET_RATE } from './resample';

/**
 * A live capture in this tab: one or two sources (the microphone, optionally a shared tab's
 * audio), each captured through an AudioWorklet, downmixed, resampled to 16 kHz, cut into
 * 100 ms PCM16 frames and streamed on its own ingest socket, labelled as its own participant
 * (docs/live.md: one socket per participant). Sessions outlive the screen that shows them, so
 * moving around the panel does not stop a recording; a page reload does (the server then
 * finalises it after its idle timeout).
 */
export interface SourceSpec {
  label: string;
  stream: MediaStream;
}

export interface SourceView {
  label: string;
  /** Recent peak level, 0…1. */
  level: number;
  state: LinkState;
  error: string | null;
  /** The track ended (tab sharing stopped, microphone unplugged). */
  ended: boolean;
  dropped: number;
}

export type SessionState = 'live' | 'reconnecting' | 'stopping' | 'stopped' | 'failed';

interface Source {
  spec: SourceSpec;
  ingest: IngestSocket;
  node: AudioWorkletNode;
  input: MediaStreamAudioSourceNode;
  level: number;
  frames: number;
  ended: boolean;
}

const sessions = new Map<string, LiveSession>();

export function sessionFor(id: string): LiveSession | undefined {
  return sessions.get(id);
}

/** A capture of this tab still running (the start screen points back to it). */
export function runningSession(): LiveSession | undefined {
  return [...sessions.values()].find((s) => s.state !== 'stopped' && s.state !== 'failed');
}

/** An AudioContext at 16 kHz when the browser can feed it a stream at that rate, else its own. */
async function audioContext(stream: MediaStream): Promise<AudioContext> {
  try {
    const ctx = new AudioContext({ sampleRate: TARGET_RATE });
    try {
      ctx.createMediaStreamSource(stream).disconnect();
      return ctx;
    } catch {
      // Some browsers refuse a stream whose rate differs from the context's: resample here.
      await ctx.close();
    }
  } catch {
    // The rate itself was refused.
  }
  return new AudioContext();
}

export class LiveSession {
  private readonly sources: Source[] = [];
  private readonly listeners = new Set<() => void>();
  private stopping = false;
  private notifyTimer: ReturnType<typeof setTimeout> | undefined;
  stopStatus: string | null = null;
  /** The title typed at the start, shown before the recording is read back. */
  title: string | null = null;

  private constructor(
    readonly id: string,
    private readonly ctx: AudioContext,
    private readonly silent: GainNode,
  ) {}

  /** Starts capturing every source into recording `id` (created live by the caller). */
  static async start(id: string, specs: SourceSpec[]): Promise<LiveSession> {
    const ctx = await audioContext(specs[0]!.stream);
    await ctx.audioWorklet.addModule(workletUrl);
    // The worklets must be pulled by the graph to run: they feed a muted gain into the speakers.
    const silent = ctx.createGain();
    silent.gain.value = 0;
    silent.connect(ctx.destination);
    const session = new LiveSession(id, ctx, silent);
    for (const spec of specs) session.addSource(spec);
    if (ctx.state === 'suspended') await ctx.resume();
    sessions.set(id, session);
    addEventListener('beforeunload', session.warnOnLeave);
    return session;
  }

  private readonly warnOnLeave = (e: BeforeUnloadEvent) => {
    if (!this.stopping) e.preventDefault();
  };

  private addSource(spec: SourceSpec): void {
    const input = this.ctx.createMediaStreamSource(spec.stream);
    const node = new AudioWorkletNode(this.ctx, 'sotto-capture', { numberOfInputs: 1, numberOfOutputs: 1 });
    const ingest = new IngestSocket(this.id, spec.label, () => this.onLinkChange());
    const source: Source = { spec, ingest, node, input, level: 0, frames: 0, ended: false };
    const resampler = new Resampler(this.ctx.sampleRate, TARGET_RATE);
    const framer = new Framer((frame) => {
      source.frames++;
      ingest.write(frame);
    });
    node.port.onmessage = (e: MessageEvent<WorkletBatch>) => {
      if (this.stopping) return;
      framer.push(resampler.push(e.data.samples));
      // A meter that rises at once and falls gently, like a VU meter.
      source.level = Math.max(e.data.peak, source.level * 0.8);
      this.notify();
    };
    input.connect(node);
    node.connect(this.silent);
    for (const track of spec.stream.getAudioTracks())
      track.addEventListener('ended', () => {
        source.ended = true;
        this.notify();
      });
    this.sources.push(source);
  }

  /** The server stopped the recording on its own (idle, maximum duration), or it is gone. */
  private onLinkChange(): void {
    const over = this.sources.every((s) => s.ingest.state === 'stopped' || s.ingest.state === 'failed');
    if (over && !this.stopping && this.sources.length > 0) {
      this.stopping = true;
      void this.release();
    }
    this.notify();
  }

  /** Stops the microphone and tab capture and the audio graph. */
  private async release(): Promise<void> {
    for (const s of this.sources) {
      s.input.disconnect();
      s.node.port.onmessage = null;
      for (const t of s.spec.stream.getTracks()) t.stop();
    }
    removeEventListener('beforeunload', this.warnOnLeave);
    await this.ctx.close().catch(() => undefined);
  }

  subscribe(fn: () => void): () => void {
    this.listeners.add(fn);
    return () => this.listeners.delete(fn);
  }

  /** At most ten updates a second reach the screen (levels change 25 times a second). */
  private notify(): void {
    if (this.notifyTimer) return;
    this.notifyTimer = setTimeout(() => {
      this.notifyTimer = undefined;
      for (const l of this.listeners) l();
    }, 100);
  }

  /** Seconds of audio captured (the first source's frames). */
  get elapsed(): number {
    return (this.sources[0]?.frames ?? 0) / 10;
  }

  get view(): SourceView[] {
    return this.sources.map((s) => ({
      label: s.spec.label,
      level: s.level,
      state: s.ingest.state,
      error: s.ingest.error,
      ended: s.ended,
      dropped: s.ingest.dropped,
    }));
  }

  get state(): SessionState {
    const states = this.sources.map((s) => s.ingest.state);
    if (states.every((s) => s === 'stopped' || s === 'failed'))
      return states.some((s) => s === 'stopped') ? 'stopped' : 'failed';
    if (this.stopping) return 'stopping';
    return states.some((s) => s === 'reconnecting' || s === 'connecting') ? 'reconnecting' : 'live';
  }

  /**
   * Stops capturing, waits until the server holds every stream's frames (bounded), then stops
   * the recording through one socket (which stops every stream) and closes the others.
   */
  async stop(): Promise<void> {
    if (this.stopping) return;
    this.stopping = true;
    this.notify();
    const released = this.release();
    await Promise.all(this.sources.map((s) => s.ingest.flush(30_000)));
    const via = this.sources.find((s) => s.ingest.state !== 'failed' && s.ingest.state !== 'stopped');
    if (via) this.stopStatus = (await via.ingest.stop(60_000)) ?? null;
    for (const s of this.sources) s.ingest.close();
    await released;
    this.notify();
  }
}
