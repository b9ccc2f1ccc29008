/** The webhook outbox (docs/webhooks.md): events written with the transaction that records them. */
import type { Queryable } from '../../db/database.js';
import type { WebhookEvent } from '../../domain/webhook-events.js';
import { webhookRepository } from '../../repositories/webhooks/webhook.repository.js';

/** The outbox write: call inside the transaction that records the event. No content, ever. */
export function enqueueWebhooks(
  tx: Queryable,
  e: {
    orgId: string;
    event: WebhookEvent;
    recordingId: string;
    status: string;
    now: Date;
    at?: Record<string, Date | null | undefined>;
  },
): Promise<number> {
  const times: Record<string, string> = {};
  for (const [k, v] of Object.entries(e.at ?? {})) if (v) times[k] = v.toISOString();
  return webhookRepository.enqueue(tx, {
    orgId: e.orgId,
    event: e.event,
    payload: { recordingId: e.recordingId, status: e.status, occurredAt: e.now.toISOString(), ...times },
    now: e.now,
  });
}

const statusOf = { 'recording.done': 'done', 'recording.failed': 'failed', 'recording.deleted': 'deleted' };

/** The event of a recording reaching a final state (ids, status and time only). */
export const recordingEvent = (orgId: string, recordingId: string, event: WebhookEvent, now: Date) => ({
  orgId,
  event,
  recordingId,
  status: statusOf[event],
  now,
});
