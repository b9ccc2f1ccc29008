import type { Logger } from 'pino';
import type { Database } from '../db/database.js';
import { withTenant } from '../db/tenant.js';
import type { Actor } from '../domain/auth-context.js';
import type { LiveBus, LiveRetain } from '../repositories/live-bus.repository.js';
import type { Config } from '../config/config.js';
import { sha256Hex } from '../crypto/random.js';
import { outageOf } from '../domain/outage.js';
import type { KeyService } from './key.service.js';
import { LIVE_CLOSE, liveSegmentLocation, type LivePartial, type LiveSegment } from './live-session.js';

/**
 * The viewer side of live recordings on one node, and the re-check of every open live socket.
 *
 * Viewers: one bus subscription per recording per node (not per viewer), each event decrypted
 * once and sent to every local viewer of that recording, in publication order. A viewer that
 * does not read (its socket buffer grows past a bound) is closed rather than buffered forever.
 *
 * Re-check: an access token is checked once, at the handshake; a socket may stay open for hours.
 * Every few seconds (SOTTO_LIVE_RECHECK_SECONDS) each socket's session, role, support grant and
 * the recording's visibility are checked again, and a socket that lost its right is closed
 * (4401 when the session ended — revoked device, logout —, 4404 when the recording is no longer
 * visible — role changed, grant revoked, recording deleted). A re-check that cannot be made (the
 * database or Redis down) closes nothing. Polling rather than events keeps it
 * correct across nodes without a second channel; the cost is one or two small queries per
 * socket per period.
 */
export type LiveEvent =
  | ({ type: 'segment' } & LiveSegment)
  | ({ type: 'partial' } & LivePartial)
  | { type: 'error'; code: string }
  /** Progress of a stop: the last words being recognised, then the audio being sealed. */
  | { type: 'stopping'; stage: 'recognising' | 'saving' }
  | { type: 'stopped'; status: 'queued' | 'failed' };

export type LiveServerMessage = LiveEvent | { type: 'ack'; seq: number } | { type: 'ready' };

/** What the services need of a WebSocket (the route adapts `ws` to it). */
export interface LiveSocket {
  send(message: LiveServerMessage): void;
  close(code: number, reason: string): void;
  /** Bytes queued but not yet sent. */
  readonly bufferedAmount: number;
}

type Recheck = (
  actor: Actor,
  recordingId: string,
  purpose: 'ingest' | 'watch',
) => Promise<number | undefined>;

interface Tracked {
  actor: Actor;
  recordingId: string;
  purpose: 'ingest' | 'watch';
  socket: LiveSocket;
}

/**
 * A viewer's hand-over from the backlog to live events: until its backlog is out, live events
 * wait in `pending`; `finals` holds the ids it has been sent, so nothing reaches it twice (an
 * event may be both in the backlog and on its way over the bus) and no partial follows its final.
 */
interface Viewer {
  pending: LiveEvent[] | undefined;
  finals: Set<string>;
  /** Bytes of its backlog: a long recording's backlog is not a sign of a slow reader. */
  slack: number;
}

interface Channel {
  sockets: Map<LiveSocket, Viewer>;
  unsubscribe: Promise<() => Promise<void>>;
  chain: Promise<void>;
}

/** A viewer further behind than this is closed (4429). */
const MAX_VIEWER_BUFFER_BYTES = 1024 * 1024;

export class LiveViewers {
  private readonly tracked = new Set<Tracked>();
  private readonly channels = new Map<string, Channel>();
  private lastRecheck = Date.now();
  private rechecking = false;
  private recheckFailingSince: number | undefined;

  constructor(
    private readonly bus: LiveBus,
    private readonly keys: KeyService,
    private readonly db: Database,
    private readonly logger: Pick<Logger, 'warn'>,
    private readonly recheck: Recheck,
  ) {}

  /** Registers a socket for the periodic re-check; returns its removal. */
  track(actor: Actor, recordingId: string, purpose: 'ingest' | 'watch', socket: LiveSocket): () => void {
    const entry = { actor, recordingId, purpose, socket };
    this.tracked.add(entry);
    return () => this.tracked.delete(entry);
  }

  /**
   * Sends `ready`, then what was said so far (every final segment, in order, then the partial of
   * each participant still speaking), then the recording's live events, to `socket` until the
   * returned function is called. Subscribed before the backlog is read: an event published
   * meanwhile is in one or both, and sent once.
   */
  async watch(actor: Actor, recordingId: string, socket: LiveSocket): Promise<() => void> {
    const untrack = this.track(actor, recordingId, 'watch', socket);
    let channel = this.channels.get(recordingId);
    if (!channel) {
      const c: Channel = {
        sockets: new Map(),
        chain: Promise.resolve(),
        unsubscribe: Promise.resolve(async () => {}),
      };
      c.unsubscribe = this.bus.subscribe(recordingId, (payload) => {
        c.chain = c.chain.then(() => this.deliver(actor.orgId, recordingId, c, payload));
      });
      this.channels.set(recordingId, (channel = c));
    }
    const viewer: Viewer = { pending: [], finals: new Set(), slack: 0 };
    channel.sockets.set(socket, viewer);
    const c = channel;
    const stop = () => {
      untrack();
      c.sockets.delete(socket);
      if (c.sockets.size === 0 && this.channels.get(recordingId) === c) {
        this.channels.delete(recordingId);
        void c.unsubscribe.then((off) => off()).catch(() => undefined);
      }
    };
    try {
      await c.unsubscribe; // subscribed before the backlog is read: no gap between the two
      socket.send({ type: 'ready' });
      for (const event of await this.backlog(actor.orgId, recordingId)) {
        viewer.slack += JSON.stringify(event).length;
        this.offer(socket, viewer, event, true);
      }
    } catch (err) {
      stop();
      throw err;
    }
    // No await from here to the end: events delivered from now on go straight to the socket.
    const held = viewer.pending ?? [];
    viewer.pending = undefined;
    for (const event of held) this.offer(socket, viewer, event);
    return stop;
  }

  /** The finals published so far, in order, then the partials whose final is not among them. */
  private async backlog(orgId: string, recordingId: string): Promise<LiveEvent[]> {
    const kept = await this.bus.history(recordingId);
    if (kept.finals.length === 0 && kept.partials.length === 0) return [];
    const open = (tx: Parameters<KeyService['decryptJson']>[0], payload: Buffer) =>
      this.keys
        .decryptJson<LiveEvent>(tx, liveSegmentLocation(orgId, recordingId), payload)
        .catch(() => undefined); // not sealed for this recording: dropped, as on the bus
    return withTenant(this.db, { orgId, userId: null }, async (tx) => {
      const events: LiveEvent[] = [];
      for (const p of kept.finals) {
        const e = await open(tx, p);
        if (e?.type === 'segment') events.push(e);
      }
      const partials: LiveEvent[] = [];
      for (const p of kept.partials) {
        const e = await open(tx, p);
        if (e?.type === 'partial') partials.push(e);
      }
      return [...events, ...partials.sort((a, b) => start(a) - start(b))];
    });
  }

  /** One event to one viewer: held during its backlog, never twice, no partial after its final. */
  private offer(socket: LiveSocket, viewer: Viewer, event: LiveEvent, backlog = false): void {
    if (viewer.pending && !backlog) {
      viewer.pending.push(event);
      return;
    }
    if (event.type === 'segment' || event.type === 'partial') {
      if (viewer.finals.has(event.id)) return;
      if (event.type === 'segment') viewer.finals.add(event.id);
    }
    if (socket.bufferedAmount > MAX_VIEWER_BUFFER_BYTES + viewer.slack) {
      socket.close(LIVE_CLOSE.overloaded, 'viewer too slow');
      return;
    }
    socket.send(event);
    if (event.type === 'stopped') socket.close(LIVE_CLOSE.normal, 'stopped');
  }

  /** Runs the re-check when `periodMs` has passed since the last one (never two at once). */
  async recheckDue(periodMs: number): Promise<void> {
    if (this.rechecking || Date.now() - this.lastRecheck < periodMs) return;
    this.rechecking = true;
    try {
      let failure: unknown;
      for (const t of [...this.tracked]) {
        if (!this.tracked.has(t)) continue;
        // A re-check that could not be made (database or Redis down) keeps the socket: an outage
        // is not a revocation, and ingested audio goes to the node's local spool regardless.
        const code = await this.recheck(t.actor, t.recordingId, t.purpose).catch((err: unknown) => {
          failure ??= err;
          return undefined;
        });
        if (code !== undefined) {
          this.tracked.delete(t);
          t.socket.close(code, code === LIVE_CLOSE.unauthenticated ? 'session ended' : 'access revoked');
        }
      }
      this.noteRecheckFailure(failure);
    } finally {
      this.lastRecheck = Date.now();
      this.rechecking = false;
    }
  }

  /** Logged when re-checks start failing and when they work again, not every period. */
  private noteRecheckFailure(failure: unknown): void {
    if (failure !== undefined && this.recheckFailingSince === undefined) {
      this.recheckFailingSince = Date.now();
      this.logger.warn(
        { err: (failure as Error).name, outage: outageOf(failure) ?? 'unknown' },
        'live sockets cannot be re-checked (database or Redis unavailable): keeping them open',
      );
    } else if (failure === undefined && this.recheckFailingSince !== undefined) {
      this.logger.warn(
        { seconds: Math.round((Date.now() - this.recheckFailingSince) / 1000) },
        'live socket re-checks work again',
      );
      this.recheckFailingSince = undefined;
    }
  }

  async close(): Promise<void> {
    for (const [id, c] of this.channels) {
      for (const s of c.sockets.keys()) s.close(LIVE_CLOSE.shuttingDown, 'server shutting down');
      this.channels.delete(id);
      await (await c.unsubscribe)().catch(() => undefined);
    }
    this.tracked.clear();
  }

  private async deliver(orgId: string, recordingId: string, c: Channel, payload: Buffer): Promise<void> {
    let event: LiveEvent;
    try {
      event = await withTenant(this.db, { orgId, userId: null }, (tx) =>
        this.keys.decryptJson<LiveEvent>(tx, liveSegmentLocation(orgId, recordingId), payload),
      );
    } catch {
      // Not sealed for this recording (forged, or another deployment on the same prefix): dropped.
      this.logger.warn({ recordingId }, 'live event could not be opened');
      return;
    }
    for (const [socket, viewer] of c.sockets) this.offer(socket, viewer, event);
  }
}

function start(event: LiveEvent): number {
  return 'start' in event ? event.start : 0;
}

/**
 * What late viewers get (docs/live.md, "Late viewers"): every final and the latest partial of each
 * participant, kept beside the bus until the stop, at most for the longest session. The partial's
 * slot is a hash of the participant, so no name is in a Redis key.
 */
export function backlogRetention(
  recordingId: string,
  event: LiveEvent,
  limits: Pick<Config['live'], 'maxMinutes' | 'resumeSeconds' | 'idleSeconds'>,
): LiveRetain | undefined {
  const ttlMs = (limits.maxMinutes * 60 + 2 * limits.resumeSeconds + limits.idleSeconds) * 1000;
  if (event.type === 'segment') return { kind: 'final', ttlMs };
  if (event.type === 'partial')
    return { kind: 'partial', slot: sha256Hex(`${recordingId}|${event.speaker}`), ttlMs };
  return undefined;
}
