import type { Logger } from 'pino';
import type { Actor } from '../../domain/auth-context.js';
import { outageOf } from '../../domain/outage.js';
import type { Clock } from '../../adapters/system/clock.adapter.js';
import { LIVE_CLOSE } from './live-session.js';
import type { LiveSocket } from './live-viewers.js';

/** A socket to re-check: who holds it, on which recording, for what. */
export interface RecheckItem {
  actor: Actor;
  recordingId: string;
  purpose: 'ingest' | 'watch';
}

/**
 * Re-checks every open socket at once (batched: a node may hold thousands of viewers): per item
 * the close code, or undefined while it is allowed or when it could not be asked (`failure`:
 * the first error, the database or Redis down — never a reason to close).
 */
type Recheck = (
  items: readonly RecheckItem[],
) => Promise<{ codes: (number | undefined)[]; failure: unknown }>;

/**
 * How often every live socket gets a WebSocket ping. A viewer's socket carries nothing while
 * nobody speaks, and proxies and load balancers close a connection that stays quiet for their
 * idle timeout (nginx's proxy_read_timeout and AWS ALB's are 60 s by default): a viewer behind
 * one would lose its socket at every long pause. A ping (2 bytes each way, answered by the
 * browser itself) every 20 s keeps it open; sent in one pass over the node's sockets, not by a
 * timer per socket.
 */
export const KEEPALIVE_MS = 20_000;

interface Tracked extends RecheckItem {
  socket: LiveSocket;
}

/**
 * The re-check of every open live socket, ingest and watch. An access token is checked once, at
 * the handshake; a socket may stay open for hours. Every few seconds (SOTTO_LIVE_RECHECK_SECONDS)
 * each socket's session, role, support grant and the recording's visibility are checked again,
 * and a socket that lost its right is closed (4401 when the session ended — revoked device,
 * logout —, 4404 when the recording is no longer visible — role changed, grant revoked, recording
 * deleted). A re-check that cannot be made (the database or Redis down) closes nothing. Polling
 * rather than events keeps it correct across nodes without a second channel. All of a node's
 * sockets are checked in one batch per period (sessions a thousand per query, each recording
 * once), not one query per socket: ten thousand viewers must not mean ten thousand transactions
 * every few seconds.
 */
export class LiveRechecks {
  private readonly tracked = new Set<Tracked>();
  /** Clock time (ms) of the last re-check; a test advancing the app's clock makes one due. */
  private lastRecheck: number;
  private rechecking = false;
  private recheckFailingSince: number | undefined;
  /** Clock time (ms) of the last keepalive ping. */
  private lastKeepalive: number;

  constructor(
    private readonly recheck: Recheck,
    private readonly logger: Pick<Logger, 'warn'>,
    private readonly clock: Clock,
  ) {
    this.lastRecheck = this.lastKeepalive = this.now();
  }

  private now(): number {
    return this.clock.now().getTime();
  }

  /** Registers a socket for the periodic re-check; returns its removal. */
  track(actor: Actor, recordingId: string, purpose: 'ingest' | 'watch', socket: LiveSocket): () => void {
    const entry = { actor, recordingId, purpose, socket };
    this.tracked.add(entry);
    return () => this.tracked.delete(entry);
  }

  /**
   * Pings every socket when the keepalive is due, then runs the re-check when `periodMs` has
   * passed since the last one (never two at once). LiveService calls it every second.
   */
  async recheckDue(periodMs: number): Promise<void> {
    if (this.now() - this.lastKeepalive >= KEEPALIVE_MS) {
      this.lastKeepalive = this.now();
      for (const t of this.tracked) t.socket.ping();
    }
    if (this.rechecking || this.now() - this.lastRecheck < periodMs) return;
    this.rechecking = true;
    try {
      const all = [...this.tracked];
      // A re-check that could not be made (database or Redis down) keeps the socket: an outage
      // is not a revocation, and ingested audio goes to the node's local spool regardless.
      const { codes, failure } = await this.recheck(all).catch((err: unknown) => ({
        codes: [] as (number | undefined)[],
        failure: err,
      }));
      all.forEach((t, i) => {
        const code = codes[i];
        // A socket closed while the batch ran is no longer tracked: nothing to do.
        if (code === undefined || !this.tracked.has(t)) return;
        this.tracked.delete(t);
        t.socket.close(code, code === LIVE_CLOSE.unauthenticated ? 'session ended' : 'access revoked');
      });
      this.noteRecheckFailure(failure);
    } finally {
      this.lastRecheck = this.now();
      this.rechecking = false;
    }
  }

  /** Logged when re-checks start failing and when they work again, not every period. */
  private noteRecheckFailure(failure: unknown): void {
    if (failure !== undefined && this.recheckFailingSince === undefined) {
      this.recheckFailingSince = this.now();
      this.logger.warn(
        { err: (failure as Error).name, outage: outageOf(failure) ?? 'unknown' },
        'live sockets cannot be re-checked (database or Redis unavailable): keeping them open',
      );
    } else if (failure === undefined && this.recheckFailingSince !== undefined) {
      this.logger.warn(
        { seconds: Math.round((this.now() - this.recheckFailingSince) / 1000) },
        'live socket re-checks work again',
      );
      this.recheckFailingSince = undefined;
    }
  }

  close(): void {
    this.tracked.clear();
  }
}
