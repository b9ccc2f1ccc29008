import type { Logger } from 'pino';
import type { Database } from '../../db/database.js';
import { withTenant } from '../../db/tenant.js';
import type { Actor } from '../../domain/auth-context.js';
import type { LiveBus } from '../../adapters/redis/live-bus.types.js';
import { backoffMs } from '../../domain/backoff.js';
import { outageOf } from '../../domain/outage.js';
import type { KeyService } from '../keys/key.service.js';
import type { LiveRechecks } from './live-recheck.js';
import { LIVE_CLOSE, liveSegmentLocation, type LivePartial, type LiveSegment } from './live-session.js';

/**
 * The viewer side of live recordings on one node: one bus subscription per recording per node
 * (not per viewer), each event decrypted once and sent to every local viewer of that recording,
 * in publication order. A viewer that does not read (its socket buffer grows past a bound) is
 * closed rather than buffered forever. Each viewer's right to watch is re-checked by
 * LiveRechecks (live-recheck.ts).
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
  /** A WebSocket ping (LiveRechecks' keepalive); the peer's WebSocket answers it by itself. */
  ping(): void;
}

/** An event as the bus numbered it (LiveBus: one sequence per recording). */
interface Numbered {
  event: LiveEvent;
  seq: number;
}

/** An event as a channel saw it: `at` is its number within the channel's numbering (Channel). */
interface Seen extends Numbered {
  at: number;
}

/** `at` of a number: numberings a channel saw are apart by this much (2^32 numbers each). */
const NUMBERING = 2 ** 32;

/**
 * A viewer's hand-over from the backlog to live events, by sequence number: until its backlog is
 * out, live events wait in `pending`; a kept event (segment, partial) numbered up to `covered`
 * (the last number given out when its backlog was read) is in that backlog or was replaced there
 * by a newer one, so it is dropped, and anything later is sent. `partials` holds the number of the
 * last partial sent per speaker, so an older partial never follows a newer one. Which finals were
 * sent is not kept per viewer (it would grow by one entry per final, per viewer, for hours): the
 * channel's `finals` says it for all of them (Channel).
 */
interface Viewer {
  pending: Seen[] | undefined;
  covered: number;
  /**
   * The number of the last live event offered. Numbers only grow; a smaller one means the
   * sequence started again (Redis restarted without persistence, or evicted the counter): the
   * marks of the old numbering (`covered`, the partials') then mean nothing and are reset, or the
   * viewer would drop every event until the new numbers passed the old ones. Finals stay
   * de-duplicated by their id (Channel.finals).
   */
  lastLive: number;
  /** Made at the first partial: an idle viewer holds none (thousands per node). Per speaker. */
  partials: Map<string, number> | undefined;
  /**
   * Bytes the socket may hold beyond the bound: its backlog, which is not a sign of a slow reader.
   * It only shrinks, down to what the socket still holds, so once the backlog is read the usual
   * bound applies again (a burst does not buy a slow reader a larger buffer for good).
   */
  slack: number;
}

/**
 * One recording's viewers on this node. `finals`: per final segment id, the copy every viewer of
 * the channel is sent (the earliest known: a final may be published twice, e.g. when a restarted
 * ingest recognises its last utterance again), by its `at`. Filled before any viewer is offered
 * the final: from each viewer's backlog (lowered to an earlier copy found there) and from each
 * live event (kept when known). Every viewer gets that copy exactly once: one numbered up to its
 * `covered` is in its backlog (every final is kept, in order), a later one reaches it live; any
 * other copy is dropped. And a viewer sees events in order of their numbers, so a partial
 * numbered after its final's copy comes after the final it replaced, and is dropped. One entry
 * per final per recording on this node, not per viewer; gone with the channel's last viewer.
 *
 * `at` is the number in the channel's own numbering: `numbering` × NUMBERING + the bus's number.
 * When the bus's sequence starts again (Viewer.lastLive) the channel starts a new numbering, so
 * a copy numbered anew is never taken for the old copy of the same number, and a partial of the
 * new numbering still comes after every final of the old one. (Not covered: a viewer whose backlog
 * is read in the milliseconds between the new numbering's first event and its arrival here: its
 * finals are placed in the old numbering, and the others may miss or repeat one of them. Redis
 * losing its keys already costs late viewers the finals before it.)
 */
interface Channel {
  sockets: Map<LiveSocket, Viewer>;
  unsubscribe: Promise<() => Promise<void>>;
  chain: Promise<void>;
  finals: Map<string, number>;
  numbering: number;
  /** The bus's number of the last live event. */
  lastSeq: number;
}

/** Opening an event through a database outage: tried again within 0.1–2 s. */
const OPEN_RETRY = { baseMs: 250, capMs: 2000, minMs: 100 };

/** A viewer further behind than this is closed (4429). */
const MAX_VIEWER_BUFFER_BYTES = 1024 * 1024;

export class LiveViewers {
  private readonly channels = new Map<string, Channel>();

  constructor(
    private readonly bus: LiveBus,
    private readonly keys: KeyService,
    private readonly db: Database,
    private readonly logger: Pick<Logger, 'warn'>,
    private readonly rechecks: Pick<LiveRechecks, 'track'>,
  ) {}

  /**
   * Sends `ready`, then what was said so far (every final segment, in order, then the partial of
   * each participant still speaking), then the recording's live events, to `socket` until the
   * returned function is called. Subscribed before the backlog is read: an event published
   * meanwhile is in one or both, and sent once.
   */
  async watch(actor: Actor, recordingId: string, socket: LiveSocket): Promise<() => void> {
    const untrack = this.rechecks.track(actor, recordingId, 'watch', socket);
    let channel = this.channels.get(recordingId);
    if (!channel) {
      const c: Channel = {
        sockets: new Map(),
        chain: Promise.resolve(),
        unsubscribe: Promise.resolve(async () => {}),
        finals: new Map(),
        numbering: 0,
        lastSeq: 0,
      };
      c.unsubscribe = this.bus.subscribe(recordingId, (payload, seq) => {
        c.chain = c.chain.then(() => this.deliver(actor.orgId, recordingId, c, payload, seq));
      });
      this.channels.set(recordingId, (channel = c));
    }
    const viewer: Viewer = {
      pending: [],
      covered: 0,
      lastLive: 0,
      partials: undefined,
      slack: 0,
    };
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
      const { events, seq } = await this.backlog(actor.orgId, recordingId);
      viewer.covered = seq;
      // In the channel's numbering now (the offers below follow without an await). An earlier
      // copy found here is the one for all; so is any copy that replaces one of an older numbering.
      const base = c.numbering * NUMBERING;
      const seen = events.map((e): Seen => ({ ...e, at: base + e.seq }));
      for (const { event, at } of seen) {
        if (event.type !== 'segment') continue;
        const known = c.finals.get(event.id);
        if (known === undefined || at < known || known < base) c.finals.set(event.id, at);
      }
      for (const one of seen) {
        viewer.slack += JSON.stringify(one.event).length;
        this.offer(socket, viewer, c.finals, one, true);
      }
    } catch (err) {
      stop();
      throw err;
    }
    // No await from here to the end: events delivered from now on go straight to the socket.
    const held = viewer.pending ?? [];
    viewer.pending = undefined;
    for (const numbered of held) this.offer(socket, viewer, c.finals, numbered);
    return stop;
  }

  /**
   * What was kept (every final, the latest partial of each speaker) in the order it was
   * published, and the last number given out when it was read.
   */
  private async backlog(orgId: string, recordingId: string): Promise<{ events: Numbered[]; seq: number }> {
    const kept = await this.bus.history(recordingId);
    if (kept.finals.length === 0 && kept.partials.length === 0) return { events: [], seq: kept.seq };
    const open = (tx: Parameters<KeyService['decryptJson']>[0], payload: Buffer) =>
      this.keys
        .decryptJson<LiveEvent>(tx, liveSegmentLocation(orgId, recordingId), payload)
        .catch(() => undefined); // not sealed for this recording: dropped, as on the bus
    const events = await withTenant(this.db, { orgId, userId: null }, async (tx) => {
      const events: Numbered[] = [];
      for (const { seq, payload } of kept.finals) {
        const e = await open(tx, payload);
        if (e?.type === 'segment') events.push({ event: e, seq });
      }
      for (const { seq, payload } of kept.partials) {
        const e = await open(tx, payload);
        if (e?.type === 'partial') events.push({ event: e, seq });
      }
      return events;
    });
    return { events: events.sort((a, b) => a.seq - b.seq), seq: kept.seq };
  }

  /**
   * One event to one viewer: held during its backlog; a kept event the backlog covered, another
   * copy of a final than the channel's (`finals`), a partial after its final and a partial older
   * than one sent are dropped.
   */
  private offer(
    socket: LiveSocket,
    viewer: Viewer,
    finals: ReadonlyMap<string, number>,
    { event, seq, at }: Seen,
    backlog = false,
  ): void {
    if (viewer.pending && !backlog) {
      viewer.pending.push({ event, seq, at });
      return;
    }
    if (!backlog) {
      if (seq <= viewer.lastLive) {
        viewer.covered = 0;
        viewer.partials?.clear();
      }
      viewer.lastLive = seq;
    }
    if (event.type === 'segment' || event.type === 'partial') {
      if (!backlog && seq <= viewer.covered) return;
      const final = finals.get(event.id);
      if (event.type === 'segment') {
        if (final !== undefined && final !== at) return;
      } else {
        if (final !== undefined && final < at) return;
        if (seq <= (viewer.partials?.get(event.speaker) ?? 0)) return;
        (viewer.partials ??= new Map()).set(event.speaker, seq);
      }
    }
    if (!backlog) viewer.slack = Math.min(viewer.slack, socket.bufferedAmount);
    if (socket.bufferedAmount > MAX_VIEWER_BUFFER_BYTES + viewer.slack) {
      socket.close(LIVE_CLOSE.overloaded, 'viewer too slow');
      return;
    }
    socket.send(event);
    if (event.type === 'stopped') socket.close(LIVE_CLOSE.normal, 'stopped');
  }

  async close(): Promise<void> {
    for (const [id, c] of this.channels) {
      for (const s of c.sockets.keys()) s.close(LIVE_CLOSE.shuttingDown, 'server shutting down');
      this.channels.delete(id);
      await (await c.unsubscribe)().catch(() => undefined);
    }
  }

  /**
   * Decrypts an event for a channel. Opening it needs the database (the org's data key, under
   * RLS): an event published just before the database went away arrives while it is down, and
   * used to be dropped as if forged, so viewers connected through the outage missed a final. It
   * is tried again until the database answers (the channel's chain holds the later events behind
   * it, in order) or the channel's last viewer leaves.
   */
  private async open(
    orgId: string,
    recordingId: string,
    c: Channel,
    payload: Buffer,
  ): Promise<LiveEvent | undefined> {
    for (let attempt = 1; ; attempt++) {
      try {
        return await withTenant(this.db, { orgId, userId: null }, (tx) =>
          this.keys.decryptJson<LiveEvent>(tx, liveSegmentLocation(orgId, recordingId), payload),
        );
      } catch (err) {
        if (!outageOf(err)) {
          // Not sealed for this recording (forged, or another deployment on the same prefix).
          this.logger.warn({ recordingId }, 'live event could not be opened');
          return undefined;
        }
        if (this.channels.get(recordingId) !== c) return undefined; // nobody watches here any more
        if (attempt === 1)
          this.logger.warn({ recordingId }, 'live event waits for the database to be opened');
        await new Promise((r) => setTimeout(r, backoffMs(OPEN_RETRY, attempt)));
      }
    }
  }

  private async deliver(
    orgId: string,
    recordingId: string,
    c: Channel,
    payload: Buffer,
    seq: number,
  ): Promise<void> {
    const event = await this.open(orgId, recordingId, c, payload);
    if (!event) return;
    // The sequence started again (Viewer.lastLive): a new numbering.
    if (seq <= c.lastSeq) c.numbering++;
    c.lastSeq = seq;
    const at = c.numbering * NUMBERING + seq;
    // Known before any viewer is offered it (held ones too): a later copy never replaces it.
    if (event.type === 'segment' && !c.finals.has(event.id)) c.finals.set(event.id, at);
    for (const [socket, viewer] of c.sockets) this.offer(socket, viewer, c.finals, { event, seq, at });
  }
}
