import { z } from 'zod';
import { NO_CONTROL } from '../text.schema.js';

/**
 * Shapes of the live-recording routes (docs/live.md): the JSON body that creates a live
 * recording, the browser ticket, the handshake query, and the control messages a capture client
 * sends as WebSocket text frames (binary frames are PCM and carry no JSON).
 */

export const liveCreate = z.strictObject({
  mode: z.literal('live'),
  title: z
    .string()
    .trim()
    .min(1)
    .max(300)
    .regex(NO_CONTROL, 'must not contain control characters')
    .optional(),
});

export const liveCreated = z.object({ id: z.string(), status: z.literal('live') });

export const liveTicketResponse = z.object({
  /** Single use, for one WebSocket handshake to this recording, within `expiresIn` seconds. */
  ticket: z.string(),
  expiresIn: z.number().int(),
});

/** The ticket may come as a query parameter (never logged: request logs keep the path only). */
export const liveQuery = z.strictObject({ ticket: z.string().min(1).max(200).optional() });

export const liveControl = z.discriminatedUnion('type', [
  z.strictObject({
    type: z.literal('start'),
    /** The speaker label of this stream (one stream per participant). */
    participant: z.string().trim().min(1).max(60).regex(NO_CONTROL).optional(),
    /** The sequence number of the next binary frame (a resume); default: the next expected. */
    seq: z
      .number()
      .int()
      .min(0)
      .max(2 ** 31)
      .optional(),
  }),
  z.strictObject({ type: z.literal('stop') }),
]);

/** Largest control message accepted (they are tiny). */
export const MAX_CONTROL_BYTES = 4096;
/** The subprotocol the server speaks; a browser offers it first, its ticket as a second one. */
export const LIVE_PROTOCOL = 'sotto.live.v1';
export const TICKET_PROTOCOL_PREFIX = 'sotto.ticket.';
