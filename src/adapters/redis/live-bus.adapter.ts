import type { Redis } from 'ioredis';
import type { Logger } from 'pino';
import {
  BEAT_SCRIPT,
  BURY_SCRIPT,
  CLAIM_SCRIPT,
  liveAliveTtlMs,
  PUBLISH_SCRIPT,
} from './live-bus.scripts.js';
import { LiveHandlers, MemoryLiveBus } from './live-bus-memory.adapter.js';
import {
  BURIED_MIN_MS,
  type LiveBus,
  type LiveBusHandler,
  type LiveEntry,
  type LiveHistory,
  type LiveRetain,
} from './live-bus.types.js';

/** `<seq>:<payload>` → its parts; undefined when not of that shape (not written by this bus). */
function unframe(framed: Buffer): LiveEntry | undefined {
  const colon = framed.subarray(0, 17).indexOf(0x3a);
  const seq = colon > 0 ? Number(framed.subarray(0, colon).toString('latin1')) : NaN;
  return Number.isSafeInteger(seq) && seq > 0 ? { seq, payload: framed.subarray(colon + 1) } : undefined;
}

/**
 * The live bus over Redis (the types and the contract: live-bus.types.ts; one node without Redis:
 * live-bus-memory.adapter.ts).
 */
export class RedisLiveBus implements LiveBus {
  private readonly handlers = new LiveHandlers();
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
