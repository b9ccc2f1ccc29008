import type { Logger } from 'pino';
import {
  BURIED_MIN_MS,
  type LiveBus,
  type LiveBusHandler,
  type LiveEntry,
  type LiveHistory,
  type LiveRetain,
} from './live-bus.types.js';

/** Handlers by channel, shared by both implementations. */
export class LiveHandlers {
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
  private readonly handlers = new LiveHandlers();
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
