import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  BEAT_SCRIPT,
  BURY_SCRIPT,
  CLAIM_SCRIPT,
  liveAliveTtlMs,
  PUBLISH_SCRIPT,
} from './live-bus.scripts.js';

/**
 * Fan-out of live-recording events (segments, stop) from the node that ingests the audio to every
 * node with a viewer. Payloads are opaque bytes: the service encrypts them before they leave the
 * process (docs/live.md), so Redis never sees transcript text.
 *
 * Without Redis (one node) an in-process implementation does the same job. With Redis, publishes
 * go over the shared connection and subscriptions over a dedicated one (a subscribed ioredis
 * connection cannot send other commands); channels are `<SOTTO_REDIS_PREFIX>live:<recordingId>`.
 * Delivery is at most once, like Redis pub/sub itself; what a viewer connecting late needs is kept
 * beside the channel (`retain`): every final segment in order and the latest partial of each
 * participant, read back with `history` (a Redis list and hash next to the channel, written by
 * the same script as the publish; in memory without Redis). Still opaque sealed bytes, with an
 * expiry, dropped by `forget`.
 *
 * Every event of a recording gets the next number of one sequence (a Redis counter beside the
 * channel, so it survives the ingest moving to another node), delivered with it and kept with it;
 * `history` says the last number given out when it was read. A viewer that subscribed first and
 * then read the history has the exact hand-over: a kept event numbered up to that mark is in the
 * history (or was replaced there by a newer one), anything later comes live, nothing twice.
 */
export type LiveBusHandler = (payload: Buffer, seq: number) => void;

/** What to keep of a published event for late viewers; `ttlMs` also bounds the sequence. */
export type LiveRetain =
  | { kind: 'final'; ttlMs: number }
  /** `slot`: one partial kept per slot (a participant); a later one replaces it. */
  | { kind: 'partial'; slot: string; ttlMs: number }
  /** Numbered, delivered, not kept (progress of a stop, errors). */
  | { kind: 'none'; ttlMs: number };

export interface LiveEntry {
  seq: number;
  payload: Buffer;
}

export interface LiveHistory {
  /** Sealed final segments, in publication order. */
  finals: LiveEntry[];
  /** The latest sealed partial of each slot (its final may be among `finals`). */
  partials: LiveEntry[];
  /** The last sequence number given out when this was read (0: none). */
  seq: number;
}

export interface LiveBus {
  /**
   * Claims (or renews) the right of node `nodeId` to hold the recording's ingest session for
   * `ttlMs`; false when another node holds it. All streams of one recording must meet on one
   * node (its audio is in that node's memory): a second node would seal a second, partial copy.
   */
  claim(recordingId: string, nodeId: string, ttlMs: number): Promise<boolean>;
  /**
   * Node `nodeId` is alive (its event loop runs, so it renews its claims) for liveAliveTtlMs. A
   * claim whose node stopped beating that long ago is taken over by another node's `claim` before
   * it lapses (CLAIM_SCRIPT says exactly when).
   */
  beat(nodeId: string): Promise<void>;
  release(recordingId: string, nodeId: string): Promise<void>;
  /** Numbers, keeps (as `retain` says) and delivers one event; resolves its sequence number. */
  publish(recordingId: string, payload: Buffer, retain: LiveRetain): Promise<number>;
  /** What was retained for the recording (empty when nothing was, or it expired). */
  history(recordingId: string): Promise<LiveHistory>;
  /** Drops what was retained and the sequence (the recording stopped or failed). */
  forget(recordingId: string): Promise<void>;
  /**
   * The recording was deleted: drops what was retained and the sequence, and for as long as a
   * backlog could live (BURIED_MIN_MS at least) refuses to number, keep or deliver anything more
   * of it — an ingest node that has not noticed the deletion yet must not rebuild the backlog of a
   * recording that no longer exists (`publish` resolves 0 then). Never rejects: the deletion has
   * committed; a failure is logged, and what was kept expires by itself (sealed meanwhile).
   */
  bury(recordingId: string): Promise<void>;
  /** Resolves once the subscription is active; the returned function ends it. */
  subscribe(recordingId: string, handler: LiveBusHandler): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

/**
 * How long a deleted recording's tombstone lasts at least (longer when its backlog would have):
 * an ingest session notices the deletion within seconds; a day covers any realistic session limit.
 */
export const BURIED_MIN_MS = 24 * 3600 * 1000;

/** Handlers by channel, shared by both implementations. */
class Handlers {
  private readonly byChannel = new Map<string, Set<LiveBusHandler>>();

  /** Returns true when this is the channel's first handler. */
  add(channel: string, handler: LiveBusHandler): boolean {
    let set = this.byChannel.get(channel);
    const first = !set;
    if (!set) this.byChannel.set(channel, (set = new Set()));
    set.add(handler);
    return first;
  }

  /** Returns true when the channel has no handler left. */
  remove(channel: string, handler: LiveBusHandler): boolean {
    const set = this.byChannel.get(channel);
    if (!set) return false;
    set.delete(handler);
    if (set.size > 0) return false;
    this.byChannel.delete(channel);
    return true;
  }

  deliver(channel: string, payload: Buffer, seq: number, logger?: Pick<Logger, 'warn'>): void {
    for (const handler of [...(this.byChannel.get(channel) ?? [])]) {
      try {
        handler(payload, seq);
      } catch (err) {
        // One broken viewer must not stop delivery to the others.
        logger?.warn({ err: (err as Error).name }, 'live bus handler failed');
      }
    }
  }

  clear(): void {
    this.byChannel.clear();
  }
}

interface Kept {
  seq: number;
  finals: LiveEntry[];
  partials: Map<string, LiveEntry>;
  timer?: NodeJS.Timeout;
}

export class MemoryLiveBus implements LiveBus {
  private readonly handlers = new Handlers();
  private readonly kept = new Map<string, Kept>();
  private readonly buried = new Map<string, NodeJS.Timeout>();

  /** One node: the service's own session map already keeps one session per recording. */
  async claim(): Promise<boolean> {
    return true;
  }

  async beat(): Promise<void> {}

  async release(): Promise<void> {}

  async publish(recordingId: string, payload: Buffer, retain: LiveRetain): Promise<number> {
    if (this.buried.has(recordingId)) return 0;
    let kept = this.kept.get(recordingId);
    if (!kept) this.kept.set(recordingId, (kept = { seq: 0, finals: [], partials: new Map() }));
    const seq = ++kept.seq;
    if (retain.kind === 'final') kept.finals.push({ seq, payload });
    else if (retain.kind === 'partial') kept.partials.set(retain.slot, { seq, payload });
    // The same expiry as in Redis: a session that vanished without a stop does not stay forever.
    clearTimeout(kept.timer);
    kept.timer = setTimeout(() => this.kept.delete(recordingId), retain.ttlMs);
    kept.timer.unref();
    // Asynchronous like the network path, so callers never depend on re-entrant delivery.
    queueMicrotask(() => this.handlers.deliver(recordingId, payload, seq));
    return seq;
  }

  async history(recordingId: string): Promise<LiveHistory> {
    const kept = this.kept.get(recordingId);
    return {
      finals: [...(kept?.finals ?? [])],
      partials: [...(kept?.partials.values() ?? [])],
      seq: kept?.seq ?? 0,
    };
  }

  async forget(recordingId: string): Promise<void> {
    clearTimeout(this.kept.get(recordingId)?.timer);
    this.kept.delete(recordingId);
  }

  async bury(recordingId: string): Promise<void> {
    await this.forget(recordingId);
    clearTimeout(this.buried.get(recordingId));
    const timer = setTimeout(() => this.buried.delete(recordingId), BURIED_MIN_MS);
    timer.unref();
    this.buried.set(recordingId, timer);
  }

  async subscribe(recordingId: string, handler: LiveBusHandler): Promise<() => Promise<void>> {
    this.handlers.add(recordingId, handler);
    return async () => {
      this.handlers.remove(recordingId, handler);
    };
  }

  async close(): Promise<void> {
    this.handlers.clear();
    for (const kept of this.kept.values()) clearTimeout(kept.timer);
    this.kept.clear();
    for (const timer of this.buried.values()) clearTimeout(timer);
    this.buried.clear();
  }
}

/** `<seq>:<payload>` → its parts; undefined when not of that shape (not written by this bus). */
function unframe(framed: Buffer): LiveEntry | undefined {
  const colon = framed.subarray(0, 17).indexOf(0x3a);
  const seq = colon > 0 ? Number(framed.subarray(0, colon).toString('latin1')) : NaN;
  return Number.isSafeInteger(seq) && seq > 0 ? { seq, payload: framed.subarray(colon + 1) } : undefined;
}

export class RedisLiveBus implements LiveBus {
  private readonly handlers = new Handlers();
  private subscriber: Redis | undefined;
  /** Per channel, the SUBSCRIBE every handler of the channel waits for (the first one sent it). */
  private readonly subscribing = new Map<string, Promise<unknown>>();

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly logger: Pick<Logger, 'warn'>,
    /** How long a node counts as alive after its last `beat` (liveAliveTtlMs). */
    private readonly aliveTtlMs = liveAliveTtlMs(5),
  ) {}

  private channel(recordingId: string): string {
    return `${this.prefix}live:${recordingId}`;
  }

  private sub(): Redis {
    if (!this.subscriber) {
      const s = this.redis.duplicate();
      s.on('messageBuffer', (channel: Buffer, message: Buffer) => {
        const entry = unframe(message);
        if (entry) this.handlers.deliver(channel.toString(), entry.payload, entry.seq, this.logger);
        else this.logger.warn({}, 'live bus message not of this bus: dropped');
      });
      // ioredis reconnects and resubscribes by itself; an error event must not crash the process.
      s.on('error', (err: Error) => this.logger.warn({ err: err.name }, 'live bus subscriber error'));
      this.subscriber = s;
    }
    return this.subscriber;
  }

  private ownerKey(recordingId: string): string {
    return `${this.prefix}live-owner:${recordingId}`;
  }

  /** Node `nodeId` is alive while this key exists (BEAT_SCRIPT sets it, CLAIM_SCRIPT reads it). */
  private aliveKey(nodeId: string): string {
    return `${this.prefix}node-alive:${nodeId}`;
  }

  async claim(recordingId: string, nodeId: string, ttlMs: number): Promise<boolean> {
    const key = this.ownerKey(recordingId);
    // A script may only touch keys passed in KEYS (Redis Cluster routes by them), and the owner's
    // liveness key depends on the owner: read it first; the script refuses if it changed since.
    const owner = await this.redis.get(key);
    const taken = await this.redis.eval(
      CLAIM_SCRIPT,
      3,
      key,
      this.aliveKey(owner ?? nodeId),
      `${this.prefix}node-alive-since`,
      nodeId,
      String(ttlMs),
      String(this.aliveTtlMs),
      owner ?? '',
    );
    if (taken === 2)
      this.logger.warn({ recordingId }, 'live recording taken over from a node no longer alive');
    return taken !== 0;
  }

  async beat(nodeId: string): Promise<void> {
    await this.redis.eval(
      BEAT_SCRIPT,
      3,
      this.aliveKey(nodeId),
      `${this.prefix}node-alive-last`,
      `${this.prefix}node-alive-since`,
      String(this.aliveTtlMs),
    );
  }

  async release(recordingId: string, nodeId: string): Promise<void> {
    const key = this.ownerKey(recordingId);
    if ((await this.redis.get(key)) === nodeId) await this.redis.del(key);
  }

  private finalsKey(recordingId: string): string {
    return `${this.prefix}live-finals:${recordingId}`;
  }

  private partialsKey(recordingId: string): string {
    return `${this.prefix}live-partials:${recordingId}`;
  }

  private seqKey(recordingId: string): string {
    return `${this.prefix}live-seq:${recordingId}`;
  }

  private tombstoneKey(recordingId: string): string {
    return `${this.prefix}live-deleted:${recordingId}`;
  }

  async publish(recordingId: string, payload: Buffer, retain: LiveRetain): Promise<number> {
    const seq = await this.redis.eval(
      PUBLISH_SCRIPT,
      4,
      this.seqKey(recordingId),
      this.finalsKey(recordingId),
      this.partialsKey(recordingId),
      this.tombstoneKey(recordingId),
      this.channel(recordingId),
      String(Math.max(1, Math.ceil(retain.ttlMs))),
      retain.kind,
      payload,
      retain.kind === 'partial' ? retain.slot : '',
    );
    return Number(seq);
  }

  async history(recordingId: string): Promise<LiveHistory> {
    const results = await this.redis
      .multi()
      .lrangeBuffer(this.finalsKey(recordingId), 0, -1)
      .hvalsBuffer(this.partialsKey(recordingId))
      .get(this.seqKey(recordingId))
      .exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw failed?.[0] ?? new Error('live bus transaction aborted');
    const entries = (list: Buffer[]) => list.map(unframe).filter((e): e is LiveEntry => e !== undefined);
    return {
      finals: entries(results[0]![1] as Buffer[]),
      partials: entries(results[1]![1] as Buffer[]),
      seq: Number(results[2]![1] ?? 0),
    };
  }

  async forget(recordingId: string): Promise<void> {
    await this.redis.del(
      this.finalsKey(recordingId),
      this.partialsKey(recordingId),
      this.seqKey(recordingId),
    );
  }

  async bury(recordingId: string): Promise<void> {
    try {
      await this.redis.eval(
        BURY_SCRIPT,
        4,
        this.seqKey(recordingId),
        this.finalsKey(recordingId),
        this.partialsKey(recordingId),
        this.tombstoneKey(recordingId),
        String(BURIED_MIN_MS),
      );
    } catch (err) {
      this.logger.warn(
        { recordingId, err: (err as Error).name },
        'live backlog of a deleted recording not dropped',
      );
    }
  }

  /**
   * Active means SUBSCRIBE answered. A second handler of a channel whose SUBSCRIBE is still on its
   * way waits for that same answer: returning at once would let it read the history before the
   * subscription exists, and an event published in between would reach it from neither.
   */
  async subscribe(recordingId: string, handler: LiveBusHandler): Promise<() => Promise<void>> {
    const channel = this.channel(recordingId);
    if (this.handlers.add(channel, handler)) this.subscribing.set(channel, this.sub().subscribe(channel));
    try {
      await this.subscribing.get(channel);
    } catch (err) {
      if (this.handlers.remove(channel, handler)) this.subscribing.delete(channel);
      throw err;
    }
    return async () => {
      if (!this.handlers.remove(channel, handler)) return;
      this.subscribing.delete(channel);
      await this.subscriber?.unsubscribe(channel);
    };
  }

  async close(): Promise<void> {
    this.handlers.clear();
    this.subscribing.clear();
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }
}

export function createLiveBus(opts: {
  redis: Redis | undefined;
  prefix: string;
  logger: Pick<Logger, 'warn'>;
  aliveTtlMs: number;
}): LiveBus {
  return opts.redis
    ? new RedisLiveBus(opts.redis, opts.prefix, opts.logger, opts.aliveTtlMs)
    : new MemoryLiveBus();
}
