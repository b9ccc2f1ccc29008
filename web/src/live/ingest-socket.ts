import { BACKOFF_MS, FATAL_CLOSE, LiveEnded, connectLive, sleep } from './live-connect';

/**
 * One participant's ingest socket (docs/live.md, ingest protocol), as `sotto bot` speaks it
 * (src/cli/bot-stream.ts): every frame is numbered and kept until the server acknowledges it
 * (acks are cumulative and may cover several frames). After a drop it reconnects with a new
 * ticket and backoff, sends `start {participant, seq: first unacknowledged}` and resends what it
 * still holds; the server skips frames it already has, so nothing is lost or duplicated.
 * Capture never waits: while disconnected, frames pile up (up to MAX_HELD, 5 minutes).
 */
export type LinkState = 'connecting' | 'live' | 'reconnecting' | 'stopped' | 'failed';

const MAX_HELD = 3000; // 100 ms frames: 5 minutes, 9.6 MB
/** No ack for this long while frames wait: a silent drop (browsers cannot ping). */
const ACK_TIMEOUT_MS = 10_000;
/** How long resuming is tried before giving up (the server finalises after its idle timeout). */
const MAX_OUTAGE_MS = 120_000;

export class IngestSocket {
  private held: { seq: number; data: ArrayBuffer; sentAt: number }[] = [];
  private nextSeq = 0;
  private acked = -1;
  private ws: WebSocket | undefined;
  private started = false;
  private stopStatus: string | undefined;
  private readonly waiters = new Set<() => void>();
  /** Frames captured while the hold was full (a very long outage): lost, counted. */
  dropped = 0;
  state: LinkState = 'connecting';
  error: string | null = null;

  constructor(
    private readonly recordingId: string,
    readonly participant: string,
    private readonly onChange: () => void,
  ) {
    void this.run();
  }

  get progress(): { sent: number; acked: number; held: number } {
    return { sent: this.nextSeq, acked: this.acked + 1, held: this.held.length };
  }

  /** Queues a 100 ms PCM16 frame; sent at once when connected, else on reconnection. */
  write(frame: ArrayBuffer): void {
    if (this.state === 'stopped' || this.state === 'failed') return;
    if (this.held.length >= MAX_HELD) {
      this.dropped++;
      return;
    }
    const item = { seq: this.nextSeq++, data: frame, sentAt: Date.now() };
    this.held.push(item);
    if (this.connected) this.ws!.send(frame);
  }

  /** Read through a getter: the state changes across awaits (narrowing would assume it cannot). */
  private get over(): boolean {
    return this.state === 'stopped' || this.state === 'failed';
  }

  private get connected(): boolean {
    return this.started && this.ws?.readyState === WebSocket.OPEN;
  }

  /** Waits (bounded) until the server holds every frame written; false on timeout or failure. */
  flush(timeoutMs: number): Promise<boolean> {
    return this.until(() => this.held.length === 0 || this.state === 'failed', timeoutMs).then(
      (ok) => ok && this.held.length === 0,
    );
  }

  /**
   * Stops the recording: waits (bounded) until the server holds every frame, sends `stop`, waits
   * for `stopped`. Resolves with its status (`queued`, or `failed` without audio) or undefined.
   */
  async stop(timeoutMs = 30_000): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    await this.until(() => this.held.length === 0 || this.state === 'failed', timeoutMs);
    while (this.state !== 'stopped' && this.state !== 'failed' && Date.now() < deadline) {
      if (this.connected) {
        this.ws!.send(JSON.stringify({ type: 'stop' }));
        await this.until(() => !this.connected || this.state === 'stopped', deadline - Date.now());
      } else await this.until(() => this.connected || this.state === 'stopped', deadline - Date.now());
    }
    this.close();
    return this.stopStatus;
  }

  /** Leaves without stopping (another stream stopped the recording, or the page goes away). */
  close(): void {
    if (this.state !== 'failed') this.setState('stopped');
    this.ws?.close(1000);
  }

  private setState(s: LinkState, error: string | null = null): void {
    this.state = s;
    this.error = error;
    this.wake();
    this.onChange();
  }

  private async run(): Promise<void> {
    let since = Date.now();
    let attempt = 0;
    let conflicts = 0;
    // Closes in a row without a new ack (an outage on the server: 1013): back off, like connects.
    let closes = 0;
    while (!this.over) {
      let ws: WebSocket;
      try {
        ws = await connectLive(this.recordingId, 'live');
      } catch (err) {
        if (err instanceof LiveEnded) {
          this.setState(err.stopped ? 'stopped' : 'failed', err.stopped ? null : err.message);
          return;
        }
        if (Date.now() - since > MAX_OUTAGE_MS)
          return this.setState('failed', 'the server could not be reached for two minutes');
        this.setState('reconnecting');
        await sleep(BACKOFF_MS[Math.min(attempt++, BACKOFF_MS.length - 1)]!);
        continue;
      }
      if (this.over) {
        ws.close(1000);
        return;
      }
      const ackedBefore = this.acked;
      const close = await this.serve(ws);
      if (this.over) return;
      if (close.code === 1000) return this.setState('stopped');
      // Only the codes of FATAL_CLOSE end the capture: any other close (1011, 1012, 1013 when the
      // server's database, Redis or disk fails) is resumed.
      const fatal = FATAL_CLOSE[close.code];
      // 4409: the server has not yet noticed our previous socket went away; retry shortly.
      if (fatal || (close.code === 4409 && ++conflicts > 20))
        return this.setState('failed', fatal ?? 'another page is streaming as this participant');
      if (this.acked > ackedBefore) closes = 0;
      if (close.code !== 4409) {
        conflicts = 0;
        if (closes++ === 0) since = Date.now();
        else if (Date.now() - since > MAX_OUTAGE_MS)
          return this.setState('failed', 'the server kept closing the stream for two minutes');
      }
      attempt = 0;
      this.setState('reconnecting');
      await sleep(closes > 1 ? BACKOFF_MS[Math.min(closes - 2, BACKOFF_MS.length - 1)]! : 250);
    }
  }

  private serve(ws: WebSocket): Promise<{ code: number }> {
    return new Promise((resolve) => {
      this.ws = ws;
      const watchdog = setInterval(() => {
        const oldest = this.held[0];
        if (this.connected && oldest && Date.now() - oldest.sentAt > ACK_TIMEOUT_MS) finish(4000);
      }, 2000);
      const finish = (code: number) => {
        clearInterval(watchdog);
        ws.onclose = null;
        ws.onmessage = null;
        if (ws.readyState === WebSocket.OPEN || ws.readyState === WebSocket.CONNECTING) ws.close(1000);
        this.started = false;
        this.ws = undefined;
        resolve({ code });
      };
      ws.onclose = (e) => finish(e.code);
      ws.onmessage = (e) => this.onMessage(e.data);
      // Resume from the first frame the server has not acknowledged; it skips any it already has.
      ws.send(JSON.stringify({ type: 'start', participant: this.participant, seq: this.acked + 1 }));
      const now = Date.now();
      for (const f of this.held) {
        f.sentAt = now;
        ws.send(f.data);
      }
      this.started = true;
      this.setState('live');
    });
  }

  private onMessage(data: unknown): void {
    if (typeof data !== 'string') return;
    let m: { type?: unknown; seq?: unknown; status?: unknown };
    try {
      m = JSON.parse(data) as typeof m;
    } catch {
      return;
    }
    if (m.type === 'ack' && typeof m.seq === 'number') {
      this.acked = Math.max(this.acked, m.seq);
      let drop = 0;
      while (drop < this.held.length && this.held[drop]!.seq <= this.acked) drop++;
      if (drop > 0) this.held = this.held.slice(drop);
      this.wake();
    } else if (m.type === 'stopped') {
      this.stopStatus = typeof m.status === 'string' ? m.status : undefined;
      this.setState('stopped');
    }
  }

  private wake(): void {
    for (const w of [...this.waiters]) w();
  }

  private until(cond: () => boolean, timeoutMs: number): Promise<boolean> {
    return new Promise((resolve) => {
      const done = (v: boolean) => {
        this.waiters.delete(check);
        clearTimeout(timer);
        resolve(v);
      };
      const check = () => {
        if (cond()) done(true);
      };
      const timer = setTimeout(() => done(false), Math.max(0, timeoutMs));
      this.waiters.add(check);
      check();
    });
  }
}
