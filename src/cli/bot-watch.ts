import { setTimeout as sleep } from 'node:timers/promises';
import type WebSocket from 'ws';
import type { LiveClient } from '../adapters/network/live-client.adapter.js';
import {
  closeError,
  connectWithRetry,
  isFinalClose,
  keepAlive,
  type Auth,
  type Segment,
  type StreamEvent,
} from './bot-stream.js';

/**
 * The viewer socket of `sotto bot` (docs/live.md): prints final segments as they come, once each
 * (by segment seq). After a drop it reconnects like the ingest socket (bot-stream.ts), and the
 * server sends the finals kept for late viewers first; a gap in the numbers all the same (the
 * backlog expired or was dropped) is reported as missed segments.
 */
export class WatchStream {
  private lastSeq = 0;
  private stoppedFlag = false;
  private cancelled = false;
  private ws: WebSocket | undefined;
  readonly finished: Promise<void>;
  /** Resolves at the current socket's `ready` (events reach us from then on); renewed at each close. */
  private subscribed!: Promise<void>;
  private markSubscribed!: () => void;
  /** Resolves once the first viewer socket is subscribed (segments from then on reach us). */
  readonly ready = this.renewSubscribed();

  constructor(
    private readonly client: LiveClient,
    private readonly recordingId: string,
    private readonly auth: Auth,
    private readonly opts: {
      maxOutageMs: number;
      onSegment: (s: Segment) => void;
      /** The words so far of an utterance still being spoken (revisable; replaced by its final). */
      onPartial?: (p: Pick<Segment, 'id' | 'speaker' | 'text'>) => void;
      onEvent: (e: StreamEvent) => void;
    },
  ) {
    this.finished = this.run();
    // The caller awaits `ready` or `finished`; a failure surfaces through `finished`.
    this.finished.catch(() => undefined);
  }

  get stopped(): boolean {
    return this.stoppedFlag;
  }

  close(): void {
    this.cancelled = true;
    this.ws?.close();
  }

  /**
   * Resolves true once a viewer socket is subscribed (at once when one is), false after
   * `timeoutMs` or when watching has ended. The stop waits for it: a viewer reconnecting after a
   * network drop gets the finals it missed from the backlog, which the stop drops; stopping first
   * would lose them from the output and answer the reconnect with 409.
   */
  async watching(timeoutMs: number): Promise<boolean> {
    const timer = new AbortController();
    try {
      return await Promise.race([
        this.subscribed.then(() => true),
        sleep(timeoutMs, false, { signal: timer.signal }),
        this.finished.then(
          () => false,
          () => false,
        ),
      ]);
    } finally {
      timer.abort(); // a pending timer would keep the process alive
    }
  }

  private renewSubscribed(): Promise<void> {
    return (this.subscribed = new Promise<void>((resolve) => (this.markSubscribed = resolve)));
  }

  private async run(): Promise<void> {
    while (!this.stoppedFlag && !this.cancelled) {
      const ws = await connectWithRetry(
        () =>
          this.client.openSocket('watch', this.auth.token(), this.recordingId, (data) =>
            this.onMessage(String(data)),
          ),
        this.auth,
        this.opts.maxOutageMs,
        this.opts.onEvent,
        () => this.cancelled,
      );
      if (!ws) return;
      this.ws = ws;
      const { code, reason } = await new Promise<{ code: number; reason: string }>((resolve) => {
        const stopPing = keepAlive(ws);
        ws.on('error', () => undefined);
        ws.on('close', (c, r) => {
          stopPing();
          resolve({ code: c, reason: r.toString() });
        });
      });
      this.ws = undefined;
      void this.renewSubscribed();
      if (code === 1000 || this.cancelled) return;
      if (isFinalClose(code)) throw closeError(code, reason);
      // Any other close (a restart, an outage on the server: 1012, 1013…) is resumed after a pause.
      await sleep(250);
    }
  }

  private onMessage(text: string): void {
    let m: Record<string, unknown>;
    try {
      m = JSON.parse(text) as Record<string, unknown>;
    } catch {
      return;
    }
    if (m.type === 'ready') this.markSubscribed();
    else if (m.type === 'stopped') this.stoppedFlag = true;
    else if (m.type === 'segment' && typeof m.seq === 'number' && m.seq > this.lastSeq) {
      if (m.seq > this.lastSeq + 1 && this.lastSeq > 0)
        this.opts.onEvent({ type: 'missed', count: m.seq - this.lastSeq - 1 });
      this.lastSeq = m.seq;
      this.opts.onSegment(m as unknown as Segment);
    } else if (m.type === 'partial' && typeof m.id === 'string' && typeof m.text === 'string')
      this.opts.onPartial?.(m as unknown as Segment);
  }
}
