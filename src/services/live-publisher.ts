import type { Logger } from 'pino';
import type { Config } from '../config/config.js';
import type { Database } from '../db/database.js';
import { withTenant } from '../db/tenant.js';
import type { LiveBus } from '../repositories/live-bus.repository.js';
import type { KeyService } from './key.service.js';
import { LivePublishQueue } from './live-publish-queue.js';
import { liveSegmentLocation } from './live-session.js';
import { backlogRetention, type LiveEvent } from './live-viewers.js';

export interface PublisherDeps {
  db: Database;
  keys: Pick<KeyService, 'encryptJson'>;
  bus: Pick<LiveBus, 'publish' | 'forget'>;
  logger: Pick<Logger, 'info' | 'warn'>;
  limits: Config['live'];
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
    this.held = new LivePublishQueue(d.logger);
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
