import type { Clock } from '../../adapters/system/clock.adapter.js';
import type { Logger } from 'pino';
import type { Config } from '../../config/config.js';
import type { Database } from '../../db/database.js';
import { withTenant } from '../../db/tenant.js';
import type { LiveBus, LiveRetain } from '../../adapters/redis/live-bus.types.js';
import { partialSlot } from '../../crypto/spool-cipher.js';
import type { KeyService } from '../keys/key.service.js';
import { LivePublishQueue } from './live-publish-queue.js';
import { liveSegmentLocation } from './live-session.js';
import type { LiveEvent } from './live-viewers.js';

export interface PublisherDeps {
  db: Database;
  keys: Pick<KeyService, 'encryptJson'>;
  bus: Pick<LiveBus, 'publish' | 'forget'>;
  logger: Pick<Logger, 'info' | 'warn'>;
  limits: Config['live'];
  clock: Clock;
}

/**
 * How a recording's live events leave this node: sealed with the org's data key (bound to the
 * recording), put on the bus with their backlog retention, held in order through a database or
 * Redis outage, and the backlog dropped once the recording has stopped.
 */
export class LivePublisher {
  /** Live events waiting out a database or Redis outage, per recording, in order. */
  private readonly held: LivePublishQueue;

  constructor(private readonly d: PublisherDeps) {
    this.held = new LivePublishQueue(d.logger, d.clock);
  }

  async publish(orgId: string, recordingId: string, event: LiveEvent, slotKey?: Buffer): Promise<void> {
    const send = async () => {
      const payload = await withTenant(this.d.db, { orgId, userId: null }, (tx) =>
        this.d.keys.encryptJson(tx, liveSegmentLocation(orgId, recordingId), event),
      );
      await this.d.bus.publish(recordingId, payload, backlogRetention(event, this.d.limits, slotKey));
    };
    try {
      // Through a database or Redis outage the event waits, in order (live-publish-queue.ts).
      await this.held.publish(recordingId, send, event.type === 'partial');
    } catch (err) {
      // Live text is a convenience: the stored transcript does not depend on it.
      this.d.logger.warn({ recordingId, err: (err as Error).name }, 'live event not published');
    }
  }

  /** After `stopped` is out: nobody can start watching any more, the backlog goes. */
  async forget(recordingId: string): Promise<void> {
    // After the events still held by an outage, else they would bring the backlog back.
    await this.held.after(recordingId, () => this.dropBacklog(recordingId));
  }

  /** Shutdown: events still held by an outage are dropped, as a crash would. */
  close(): void {
    this.held.close();
  }

  private async dropBacklog(recordingId: string): Promise<void> {
    await this.d.bus.forget(recordingId).catch((err: Error) => {
      // It expires by itself; sealed with the org's key meanwhile.
      this.d.logger.warn({ recordingId, err: err.name }, 'live backlog not dropped');
    });
  }
}

/**
 * What late viewers get (docs/live.md, "Late viewers"): every final and the latest partial of each
 * participant, kept beside the bus until the stop, at most for the longest session; other events
 * are numbered and sent, not kept. The partial's slot is an HMAC of the participant under the
 * recording's spool key (`slotKey`: random, per recording, never outside the database and the
 * ingest node's memory, destroyed with the recording), so a Redis key reveals no name and cannot
 * be computed in advance from a list of names. Without the key (no spool yet) a partial is sent
 * but not kept.
 */
export function backlogRetention(
  event: LiveEvent,
  limits: Pick<Config['live'], 'maxMinutes' | 'resumeSeconds' | 'idleSeconds'>,
  slotKey: Buffer | undefined,
): LiveRetain {
  const ttlMs = (limits.maxMinutes * 60 + 2 * limits.resumeSeconds + limits.idleSeconds) * 1000;
  if (event.type === 'segment') return { kind: 'final', ttlMs };
  if (event.type === 'partial' && slotKey)
    return { kind: 'partial', slot: partialSlot(slotKey, event.speaker), ttlMs };
  return { kind: 'none', ttlMs };
}
