import type { Redis } from 'ioredis';
import type { Logger } from 'pino';

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
 * participant, read back with `history` (a Redis list and hash next to the channel, written in
 * the same MULTI as the publish, so a subscriber that reads the history after subscribing misses
 * nothing; in memory without Redis). Still opaque sealed bytes, with an expiry, dropped by `forget`.
 */
export type LiveBusHandler = (payload: Buffer) => void;

/** What to keep of a published event for late viewers. */
export type LiveRetain =
  | { kind: 'final'; ttlMs: number }
  /** `slot`: one partial kept per slot (a participant); a later one replaces it. */
  | { kind: 'partial'; slot: string; ttlMs: number };

export interface LiveHistory {
  /** Sealed final segments, in publication order. */
  finals: Buffer[];
  /** The latest sealed partial of each slot (its final may be among `finals`). */
  partials: Buffer[];
}

export interface LiveBus {
  /**
   * Claims (or renews) the right of node `nodeId` to hold the recording's ingest session for
   * `ttlMs`; false when another node holds it. All streams of one recording must meet on one
   * node (its audio is in that node's memory): a second node would seal a second, partial copy.
   */
  claim(recordingId: string, nodeId: string, ttlMs: number): Promise<boolean>;
  release(recordingId: string, nodeId: string): Promise<void>;
  publish(recordingId: string, payload: Buffer, retain?: LiveRetain): Promise<void>;
  /** What was retained for the recording (empty when nothing was, or it expired). */
  history(recordingId: string): Promise<LiveHistory>;
  /** Drops what was retained (the recording stopped or failed). */
  forget(recordingId: string): Promise<void>;
  /** Resolves once the subscription is active; the returned function ends it. */
  subscribe(recordingId: string, handler: LiveBusHandler): Promise<() => Promise<void>>;
  close(): Promise<void>;
}

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

  deliver(channel: string, payload: Buffer, logger?: Pick<Logger, 'warn'>): void {
    for (const handler of [...(this.byChannel.get(channel) ?? [])]) {
      try {
        handler(payload);
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

export class MemoryLiveBus implements LiveBus {
  private readonly handlers = new Handlers();
  private readonly kept = new Map<
    string,
    { finals: Buffer[]; partials: Map<string, Buffer>; timer?: NodeJS.Timeout }
  >();

  /** One node: the service's own session map already keeps one session per recording. */
  async claim(): Promise<boolean> {
    return true;
  }

  async release(): Promise<void> {}

  async publish(recordingId: string, payload: Buffer, retain?: LiveRetain): Promise<void> {
    if (retain) {
      let kept = this.kept.get(recordingId);
      if (!kept) this.kept.set(recordingId, (kept = { finals: [], partials: new Map() }));
      if (retain.kind === 'final') kept.finals.push(payload);
      else kept.partials.set(retain.slot, payload);
      // The same expiry as in Redis: a session that vanished without a stop does not stay forever.
      clearTimeout(kept.timer);
      kept.timer = setTimeout(() => this.kept.delete(recordingId), retain.ttlMs);
      kept.timer.unref();
    }
    // Asynchronous like the network path, so callers never depend on re-entrant delivery.
    queueMicrotask(() => this.handlers.deliver(recordingId, payload));
  }

  async history(recordingId: string): Promise<LiveHistory> {
    const kept = this.kept.get(recordingId);
    return { finals: [...(kept?.finals ?? [])], partials: [...(kept?.partials.values() ?? [])] };
  }

  async forget(recordingId: string): Promise<void> {
    clearTimeout(this.kept.get(recordingId)?.timer);
    this.kept.delete(recordingId);
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
  }
}

export class RedisLiveBus implements LiveBus {
  private readonly handlers = new Handlers();
  private subscriber: Redis | undefined;

  constructor(
    private readonly redis: Redis,
    private readonly prefix: string,
    private readonly logger: Pick<Logger, 'warn'>,
  ) {}

  private channel(recordingId: string): string {
    return `${this.prefix}live:${recordingId}`;
  }

  private sub(): Redis {
    if (!this.subscriber) {
      const s = this.redis.duplicate();
      s.on('messageBuffer', (channel: Buffer, message: Buffer) =>
        this.handlers.deliver(channel.toString(), message, this.logger),
      );
      // ioredis reconnects and resubscribes by itself; an error event must not crash the process.
      s.on('error', (err: Error) => this.logger.warn({ err: err.name }, 'live bus subscriber error'));
      this.subscriber = s;
    }
    return this.subscriber;
  }

  private ownerKey(recordingId: string): string {
    return `${this.prefix}live-owner:${recordingId}`;
  }

  async claim(recordingId: string, nodeId: string, ttlMs: number): Promise<boolean> {
    const key = this.ownerKey(recordingId);
    if ((await this.redis.set(key, nodeId, 'PX', ttlMs, 'NX')) === 'OK') return true;
    if ((await this.redis.get(key)) !== nodeId) return false;
    await this.redis.pexpire(key, ttlMs);
    return true;
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

  async publish(recordingId: string, payload: Buffer, retain?: LiveRetain): Promise<void> {
    if (!retain) {
      await this.redis.publish(this.channel(recordingId), payload);
      return;
    }
    // One MULTI: the event is in the history by the time any subscriber receives it.
    const m = this.redis.multi();
    if (retain.kind === 'final') {
      m.rpush(this.finalsKey(recordingId), payload);
      m.pexpire(this.finalsKey(recordingId), retain.ttlMs);
    } else {
      m.hset(this.partialsKey(recordingId), retain.slot, payload);
      m.pexpire(this.partialsKey(recordingId), retain.ttlMs);
    }
    m.publish(this.channel(recordingId), payload);
    const results = await m.exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw failed?.[0] ?? new Error('live bus transaction aborted');
  }

  async history(recordingId: string): Promise<LiveHistory> {
    const results = await this.redis
      .multi()
      .lrangeBuffer(this.finalsKey(recordingId), 0, -1)
      .hvalsBuffer(this.partialsKey(recordingId))
      .exec();
    const failed = results?.find(([err]) => err);
    if (!results || failed) throw failed?.[0] ?? new Error('live bus transaction aborted');
    return { finals: results[0]![1] as Buffer[], partials: results[1]![1] as Buffer[] };
  }

  async forget(recordingId: string): Promise<void> {
    await this.redis.del(this.finalsKey(recordingId), this.partialsKey(recordingId));
  }

  async subscribe(recordingId: string, handler: LiveBusHandler): Promise<() => Promise<void>> {
    const channel = this.channel(recordingId);
    if (this.handlers.add(channel, handler)) await this.sub().subscribe(channel);
    return async () => {
      if (this.handlers.remove(channel, handler)) await this.subscriber?.unsubscribe(channel);
    };
  }

  async close(): Promise<void> {
    this.handlers.clear();
    this.subscriber?.disconnect();
    this.subscriber = undefined;
  }
}

export function createLiveBus(opts: {
  redis: Redis | undefined;
  prefix: string;
  logger: Pick<Logger, 'warn'>;
}): LiveBus {
  return opts.redis ? new RedisLiveBus(opts.redis, opts.prefix, opts.logger) : new MemoryLiveBus();
}
