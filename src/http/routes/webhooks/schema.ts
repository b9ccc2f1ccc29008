import { z } from 'zod';
import { webhookEvents } from '../../../domain/webhook-events.js';

/** Request and response shapes of /api/v1/org/webhooks (docs/webhooks.md). */
export const webhookParams = z.strictObject({ id: z.guid() });
export const deliveryParams = z.strictObject({ id: z.guid(), deliveryId: z.guid() });

const events = z.array(z.enum(webhookEvents)).min(1).max(webhookEvents.length);
const url = z.string().min(8).max(2048);

export const webhookCreate = z.strictObject({ url, events });
export const webhookPatch = z
  .strictObject({ url: url.optional(), events: events.optional(), enabled: z.boolean().optional() })
  .refine((p) => Object.keys(p).length > 0, 'nothing to change');

const timestamp = z.iso.datetime();

export const webhookResponse = z.object({
  id: z.string(),
  url: z.string(),
  events: z.array(z.enum(webhookEvents)),
  enabled: z.boolean(),
  createdAt: timestamp,
  rotatedAt: timestamp.nullable(),
});

export const webhookCreated = webhookResponse.extend({
  /** Shown once: the signing secret (`whsec_…`). */
  secret: z.string(),
});

export const webhookRotated = z.object({
  secret: z.string(),
  /** Until then, deliveries also carry a signature made with the previous secret. */
  previousValidUntil: timestamp,
});

export const deliveryResponse = z.object({
  id: z.string(),
  event: z.enum(webhookEvents),
  status: z.enum(['pending', 'delivered', 'failed']),
  attempts: z.number().int(),
  nextAttemptAt: timestamp.nullable(),
  lastStatusCode: z.number().int().nullable(),
  lastError: z.string().nullable(),
  createdAt: timestamp,
  deliveredAt: timestamp.nullable(),
  payload: z.record(z.string(), z.unknown()),
});
