import { BACKOFF_MS, FATAL_CLOSE, LiveEnded, connectLive, sleep } from './live-connect';
import type { LinkState } from './ingest-socket';

/**
 * A viewer socket (`/watch`, docs/live.md): final segments and partial results as they come,
 * kept across drops (a new ticket each time). Segments are de-duplicated by their stable id (a
 * server restart may publish the last one twice); a partial is replaced by the final with the
 * same id and never shown after it. On every (re)connection the server first sends what was said
 * so far (docs/live.md, "Late viewers"): a late viewer sees the whole conversation.
 */
export interface LiveSegment {
  id: string;
  seq: number;
  speaker: string;
  start: number;
  end: number;
  text: string;
}

export interface LivePartial {
  id: string;
  speaker: string;
  start: number;
  text: string;
}

export interface WatchView {
  state: LinkState;
  /** Final segments in time order (two participants' streams are recognised independently). */
  segments: LiveSegment[];
  /** The final segment that arrived last (the one to announce). */
  latest: LiveSegment | null;
  /** Utterances still being spoken, by id. */
  partials: LivePartial[];
  /** The server's status after `stopped` (queued, failed). */
  stopStatus: string | null;
  /** What a stop is doing now (`stopping` events): recognising the last words, saving the audio. */
  stopStage: 'recognising' | 'saving' | null;
  notice: string | null;
  error: string | null;
}

const MAX_OUTAGE_MS = 120_000;
const NOTICES: Record<string, string> = {
  live_lagging: 'Live recognition fell behind and skipped a passage; the final transcript will have it.',
  engine_unavailable: 'Live recognition is unavailable; the final transcript will still be made.',
  engine_failed: 'Live recognition failed on a passage; the final transcript will still be made.',
};

export class WatchSocket {
  private ws: WebSocket | undefined;
  private closed = false;
  private readonly finals = new Set<string>();
  view: WatchView = {
    state: 'connecting',
    segments: [],
    latest: null,
    partials: [],
    stopStatus: null,
    stopStage: null,
    notice: null,
    error: null,
  };

  constructor(
    private readonly recordingId: string,
    private readonly onChange: (v: WatchView) => void,
  ) {
    void this.run();
  }

  close(): void {
    this.closed = true;
    this.ws?.close(1000);
  }

  private update(patch: Partial<WatchView>): void {
    this.view = { ...this.view, ...patch };
    if (!this.closed) this.onChange(this.view);
  }

  private async run(): Promise<void> {
    let since = Date.now();
    let attempt = 0;
    while (!this.closed) {
      let ws: WebSocket;
      try {
        ws = await connectLive(this.recordingId, 'watch');
      } catch (err) {
        if (err instanceof LiveEnded)
          return this.update(err.stopped ? { state: 'stopped' } : { state: 'failed', error: err.message });
        if (Date.now() - since > MAX_OUTAGE_MS)
          return this.update({ state: 'failed', error: 'the server could not be reached for two minutes' });
        this.update({ state: 'reconnecting' });
        await sleep(BACKOFF_MS[Math.min(attempt++, BACKOFF_MS.length - 1)]!);
        continue;
      }
      if (this.closed) {
        ws.close(1000);
        return;
      }
      this.ws = ws;
      const code = await new Promise<number>((resolve) => {
        ws.onclose = (e) => resolve(e.code);
        ws.onmessage = (e) => this.onMessage(e.data);
      });
      this.ws = undefined;
      if (this.closed) return;
      if (code === 1000 || this.view.state === 'stopped') return this.update({ state: 'stopped' });
      const fatal = FATAL_CLOSE[code];
      if (fatal) return this.update({ state: 'failed', error: fatal });
      since = Date.now();
      attempt = 0;
      this.update({ state: 'reconnecting' });
      await sleep(250);
    }
  }

  private onMessage(data: unknown): void {
    if (typeof data !== 'string') return;
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(data) as Record<string, unknown>;
    } catch {
      return;
    }
    if (m.type === 'ready') this.update({ state: 'live' });
    else if (m.type === 'segment' && typeof m.id === 'string' && typeof m.text === 'string') {
      if (this.finals.has(m.id)) return;
      this.finals.add(m.id);
      const s = m as unknown as LiveSegment;
      const seg = { id: s.id, seq: s.seq, speaker: s.speaker, start: s.start, end: s.end, text: s.text };
      this.update({
        // Stable sort: same-time segments keep their order of arrival.
        segments: [...this.view.segments, seg].sort((a, b) => a.start - b.start),
        latest: seg,
        partials: this.view.partials.filter((p) => p.id !== s.id),
      });
    } else if (m.type === 'partial' && typeof m.id === 'string' && typeof m.text === 'string') {
      if (this.finals.has(m.id)) return;
      const p = m as unknown as LivePartial;
      const next = { id: p.id, speaker: p.speaker, start: p.start, text: p.text };
      const others = this.view.partials.filter((x) => x.id !== p.id);
      this.update({ partials: [...others, next].sort((a, b) => a.start - b.start) });
    } else if (m.type === 'error' && typeof m.code === 'string')
      this.update({ notice: NOTICES[m.code] ?? `Live recognition reported: ${m.code}` });
    else if (m.type === 'stopping' && (m.stage === 'recognising' || m.stage === 'saving'))
      this.update({ stopStage: m.stage });
    else if (m.type === 'stopped')
      this.update({
        state: 'stopped',
        partials: [],
        stopStatus: typeof m.status === 'string' ? m.status : null,
      });
  }
}
