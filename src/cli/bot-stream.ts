import { setTimeout as sleep } from 'node:timers/promises';
import type WebSocket from 'ws';
import { backoffMs } from '../domain/backoff.js';
import { LiveClientError, type LiveClient } from '../adapters/network/live-client.adapter.js';

/**
 * The two sockets of `sotto bot`, each kept alive across network drops (docs/live.md):
 *
 * - IngestStream numbers every frame it is given and keeps it until the server acknowledges it
 *   (a bounded window: `write` waits when it is full). After a drop it reconnects with backoff and
 *   sends `start {participant, seq: first unacknowledged}` followed by every frame still held;
 *   the server skips frames it already had, so nothing is lost or duplicated.
 * - WatchStream (bot-watch.ts) prints final segments as they come.
 */
export interface Auth {
  token(): string;
  /** Gets a fresh access token after a 401 (login sessions only); false when it cannot. */
  renew(): Promise<boolean>;
}

export type StreamEvent =
  | { type: 'connected'; resumedAt: number | undefined }
  | { type: 'reconnecting'; attempt: number; delayMs: number; reason: string }
  | { type: 'missed'; count: number };

export interface Segment {
  /** Stable per utterance: a partial result carries the id of the final that replaces it. */
  id: string;
  seq: number;
  speaker: string;
  start: number;
  end: number;
  text: string;
}

/** Reconnect delays: jittered (domain/backoff.ts) so bots cut off together do not return together. */
const RECONNECT_BACKOFF = { baseMs: 250, capMs: 5000, minMs: 100 };
const PING_MS = 5000;
/** Close codes after which resuming cannot help (docs/live.md, close codes). */
const FATAL_CLOSE: Record<number, string> = {
  4400: 'the server refused a malformed message',
  4401: 'the session behind the token ended (device revoked or logged out)',
  4404: 'the recording is no longer visible to this account',
  4413: 'the recording reached its maximum duration',
  4422: 'the server is missing audio this client no longer holds',
  4429: 'too many participant streams',
};

/**
 * Whether a close ends the run: only the codes above (and 4409 repeated too often). Every other
 * code — 1011, 1012 (restart), 1013 (an outage on the server: database, Redis, disk), codes this
 * client does not know — is resumed, so an infrastructure failure never ends a capture.
 */
export const isFinalClose = (code: number) => code in FATAL_CLOSE;

export function closeError(code: number, reason: string): LiveClientError {
  return new LiveClientError('refused', `${FATAL_CLOSE[code] ?? 'closed by the server'} (${code} ${reason})`);
}

/** Reconnects `open` with backoff until it succeeds, a fatal error, or `maxOutageMs`. */
export async function connectWithRetry(
  open: () => Promise<WebSocket>,
  auth: Auth,
  maxOutageMs: number,
  onEvent: (e: StreamEvent) => void,
  cancelled: () => boolean,
): Promise<WebSocket | undefined> {
  const since = Date.now();
  let renewed = false;
  for (let attempt = 1; ; attempt++) {
    try {
      return await open();
    } catch (err) {
      const e = err instanceof LiveClientError ? err : new LiveClientError('network', (err as Error).message);
      if (e.kind === 'auth' && !renewed && (await auth.renew())) {
        renewed = true;
        continue;
      }
      if (e.kind !== 'network') throw e;
      if (Date.now() - since > maxOutageMs)
        throw new LiveClientError(
          'network',
          `${e.message}; gave up after ${Math.round(maxOutageMs / 1000)} s`,
        );
      const delayMs = backoffMs(RECONNECT_BACKOFF, attempt);
      onEvent({ type: 'reconnecting', attempt, delayMs, reason: e.message });
      await sleep(delayMs);
      if (cancelled()) return undefined;
    }
  }
}

/** Terminates a socket whose peer stopped answering pings (a silent drop sends no FIN). */
export function keepAlive(ws: WebSocket): () => void {
  let alive = true;
  ws.on('pong', () => (alive = true));
  const timer = setInterval(() => {
    if (!alive) return ws.terminate();
    alive = false;
    ws.ping();
  }, PING_MS);
  return () => clearInterval(timer);
}

export class IngestStream {
  private readonly held: { seq: number; data: Buffer }[] = [];
  private nextSeq = 0;
  private acked = -1;
  private ws: WebSocket | undefined;
  private started = false;
  private failure: Error | undefined;
  private ended: { status: string | undefined; reason: string } | undefined;
  private readonly changed = new Set<() => void>();
  private readonly loop: Promise<void>;

  constructor(
    private readonly client: LiveClient,
    private readonly recordingId: string,
    private readonly participant: string | undefined,
    private readonly auth: Auth,
    private readonly opts: { windowFrames: number; maxOutageMs: number; onEvent: (e: StreamEvent) => void },
  ) {
    this.loop = this.run().catch((err: unknown) => {
      this.failure = err as Error;
      this.wake();
    });
  }

  /** Frames sent and frames the server holds. */
  get progress(): { sent: number; acked: number; held: number } {
    return { sent: this.nextSeq, acked: this.acked + 1, held: this.held.length };
  }

  /** Queues a frame (PCM16 LE, 16 kHz mono); waits while the window of unacknowledged frames is full. */
  async write(frame: Buffer): Promise<void> {
    await this.until(() => this.held.length < this.opts.windowFrames);
    const item = { seq: this.nextSeq++, data: frame };
    this.held.push(item);
    if (this.connected) this.ws!.send(frame);
  }

  private get connected(): boolean {
    return this.started && this.ws !== undefined && this.ws.readyState === this.ws.OPEN;
  }

  /** Waits until the server holds every frame written (bounded by `timeoutMs`). */
  async flush(timeoutMs: number): Promise<boolean> {
    return this.until(() => this.held.length === 0, timeoutMs);
  }

  /**
   * Stops the recording: `stop`, then the server's `stopped`. Resolves with its status
   * (`queued`, or `failed` when it got no audio), or undefined after `timeoutMs`.
   */
  async stop(timeoutMs: number): Promise<string | undefined> {
    const deadline = Date.now() + timeoutMs;
    while (!this.ended && !this.failure && Date.now() < deadline) {
      const left = deadline - Date.now();
      try {
        if (this.connected) {
          this.ws!.send(JSON.stringify({ type: 'stop' }));
          await this.until(() => this.ended !== undefined || !this.connected, left);
        } else await this.until(() => this.ended !== undefined || this.connected, left);
      } catch {
        break;
      }
    }
    if (this.failure && !this.ended) throw this.failure;
    this.ws?.close();
    return this.ended?.status;
  }

  /** Resolves when the stream ended on its own (idle, maximum duration…) or failed. */
  async done(): Promise<{ status: string | undefined; reason: string }> {
    await this.loop;
    if (this.failure) throw this.failure;
    return this.ended ?? { status: undefined, reason: 'closed' };
  }

  private async run(): Promise<void> {
    let first = true;
    let conflicts = 0;
    // Closes in a row without the server acknowledging anything new: backoff, and a bound.
    let closes = 0;
    let firstCloseAt = Date.now();
    while (!this.ended) {
      const ws = await connectWithRetry(
        () =>
          this.client.openSocket('live', this.auth.token(), this.recordingId, (data, isBinary) =>
            this.onMessage(data, isBinary),
          ),
        this.auth,
        this.opts.maxOutageMs,
        this.opts.onEvent,
        () => this.ended !== undefined,
      );
      if (!ws) return;
      const ackedBefore = this.acked;
      const close = await this.serve(ws, first);
      first = false;
      if (close.code === 1000) {
        this.ended ??= { status: undefined, reason: close.reason };
        this.wake();
        return;
      }
      // 4409: the server has not yet noticed our previous socket went away; retry shortly.
      if (isFinalClose(close.code) || (close.code === 4409 && ++conflicts > 20))
        throw closeError(close.code, close.reason);
      if (this.acked > ackedBefore) closes = 0;
      if (close.code !== 4409) {
        conflicts = 0;
        if (closes++ === 0) firstCloseAt = Date.now();
        else if (Date.now() - firstCloseAt > this.opts.maxOutageMs)
          throw new LiveClientError(
            'network',
            `the server kept closing the stream (${close.code} ${close.reason}); gave up after ${Math.round(this.opts.maxOutageMs / 1000)} s`,
          );
      }
      const delayMs = closes > 1 ? backoffMs(RECONNECT_BACKOFF, closes - 1) : 250;
      this.opts.onEvent({
        type: 'reconnecting',
        attempt: closes,
        delayMs,
        reason: `closed ${close.code}${close.reason ? ` ${close.reason}` : ''}`,
      });
      await sleep(delayMs);
    }
  }

  private serve(ws: WebSocket, first: boolean): Promise<{ code: number; reason: string }> {
    return new Promise((resolve) => {
      const stopPing = keepAlive(ws);
      this.ws = ws;
      ws.on('error', () => undefined);
      ws.on('close', (code, reason) => {
        stopPing();
        this.started = false;
        this.ws = undefined;
        this.wake();
        resolve({ code, reason: reason.toString() });
      });
      // Resume from the first frame the server has not acknowledged; it skips any it already has.
      const seq = this.acked + 1;
      ws.send(
        JSON.stringify({
          type: 'start',
          ...(this.participant ? { participant: this.participant } : {}),
          seq,
        }),
      );
      for (const f of this.held) ws.send(f.data);
      this.started = true;
      this.opts.onEvent({ type: 'connected', resumedAt: first ? undefined : seq });
      this.wake();
    });
  }

  private onMessage(data: WebSocket.RawData, isBinary: boolean): void {
    if (isBinary) return;
    let m: { type?: unknown; seq?: unknown; status?: unknown };
    try {
      m = JSON.parse(String(data)) as typeof m;
    } catch {
      return;
    }
    if (m.type === 'ack' && typeof m.seq === 'number') {
      this.acked = Math.max(this.acked, m.seq);
      while (this.held.length > 0 && this.held[0]!.seq <= this.acked) this.held.shift();
      this.wake();
    } else if (m.type === 'stopped') {
      this.ended = { status: typeof m.status === 'string' ? m.status : undefined, reason: 'stopped' };
      this.wake();
    }
  }

  private wake(): void {
    for (const w of [...this.changed]) w();
  }

  private until(cond: () => boolean, timeoutMs = Infinity): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const check = () => {
        if (this.failure) return finish(() => reject(this.failure));
        if (cond()) return finish(() => resolve(true));
      };
      const timer = Number.isFinite(timeoutMs)
        ? setTimeout(() => finish(() => resolve(false)), Math.max(0, timeoutMs))
        : undefined;
      const finish = (then: () => void) => {
        this.changed.delete(check);
        if (timer) clearTimeout(timer);
        then();
      };
      this.changed.add(check);
      check();
    });
  }
}
