import type { Clock } from '../../adapters/system/clock.adapter.js';
import type { Logger } from 'pino';
import { outageOf } from '../../domain/outage.js';

/**
 * Live events held back through an outage (issue 17, item 5). Publishing an event seals it in a
 * database transaction (the org's data key) and puts it on the bus (memory or Redis): with
 * PostgreSQL or Redis down both fail, and viewers used to get nothing, silently. Now the first
 * event that meets an outage starts a per-recording lane; it and every later event of that
 * recording wait there in order and are published, oldest first, once the store answers again
 * (tried every `retryMs`). So viewers see every segment, late but in order, and the backlog a late
 * viewer reads holds them too.
 *
 * The lane is bounded (`max` events per recording): past it the oldest partial goes first (a newer
 * one or the final replaces it anyway), else the oldest event; what was dropped is logged with its
 * count. A publish resolves once its event is out or queued, never after the outage: the caller
 * is the recognition loop, which must not stall. Errors that are not outages are the caller's.
 */
export interface PublishQueueOptions {
  max: number;
  retryMs: number;
}

interface Held {
  run: () => Promise<void>;
  /** Partials may be dropped before anything else when the lane is full. */
  droppable: boolean;
}

interface Lane {
  items: Held[];
  dropped: number;
  timer: NodeJS.Timeout | undefined;
  since: number;
}

export class LivePublishQueue {
  private readonly lanes = new Map<string, Lane>();

  constructor(
    private readonly logger: Pick<Logger, 'info' | 'warn'>,
    private readonly clock: Clock,
    private readonly opts: PublishQueueOptions = { max: 2000, retryMs: 1000 },
  ) {}

  /** Events of `recordingId` waiting for the store (0: none). */
  waiting(recordingId: string): number {
    return this.lanes.get(recordingId)?.items.length ?? 0;
  }

  /** Runs `run` now, or after the events already waiting; holds it through an outage. */
  async publish(recordingId: string, run: () => Promise<void>, droppable = false): Promise<void> {
    const lane = this.lanes.get(recordingId);
    if (lane) {
      this.hold(recordingId, lane, { run, droppable });
      return;
    }
    try {
      await run();
    } catch (err) {
      const outage = outageOf(err);
      if (!outage) throw err;
      // Another event may have opened the lane meanwhile: this one goes behind it.
      const open = this.lanes.get(recordingId);
      if (open) return this.hold(recordingId, open, { run, droppable });
      const fresh: Lane = {
        items: [{ run, droppable }],
        dropped: 0,
        timer: undefined,
        since: this.clock.monotonicMs(),
      };
      this.lanes.set(recordingId, fresh);
      this.logger.warn({ recordingId, outage }, 'live events held until the store is back');
      this.schedule(recordingId, fresh);
    }
  }

  /** Runs `fn` once every event waiting for `recordingId` is out (at once when none waits). */
  async after(recordingId: string, fn: () => Promise<void>): Promise<void> {
    const lane = this.lanes.get(recordingId);
    if (!lane) return fn();
    lane.items.push({ run: fn, droppable: false });
  }

  /** Stops retrying (shutdown): what still waits is dropped, as a crash would. */
  close(): void {
    for (const lane of this.lanes.values()) clearTimeout(lane.timer);
    this.lanes.clear();
  }

  private hold(recordingId: string, lane: Lane, item: Held): void {
    if (lane.items.length >= this.opts.max) {
      const partial = lane.items.findIndex((i) => i.droppable);
      lane.items.splice(partial >= 0 ? partial : 0, 1);
      lane.dropped++;
      if (lane.dropped === 1)
        this.logger.warn({ recordingId, max: this.opts.max }, 'live event queue full: oldest events dropped');
    }
    lane.items.push(item);
  }

  private schedule(recordingId: string, lane: Lane): void {
    lane.timer = setTimeout(() => void this.drain(recordingId, lane), this.opts.retryMs);
    lane.timer.unref();
  }

  private async drain(recordingId: string, lane: Lane): Promise<void> {
    if (this.lanes.get(recordingId) !== lane) return; // closed
    while (lane.items.length > 0) {
      try {
        await lane.items[0]!.run();
      } catch (err) {
        if (outageOf(err)) return this.schedule(recordingId, lane);
        // Not an outage (an event that cannot be sealed): dropped, the rest goes on.
        this.logger.warn({ recordingId, err: (err as Error).name }, 'live event not published');
      }
      lane.items.shift();
    }
    this.lanes.delete(recordingId);
    this.logger.info(
      { recordingId, heldMs: this.clock.monotonicMs() - lane.since, dropped: lane.dropped },
      'live events held through the outage are out',
    );
  }
}
