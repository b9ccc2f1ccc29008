import { api } from './api';
import { unwrap } from './api-client';

export { getRecording } from './api-recordings';

/** The live-recording calls of the public API (docs/live.md), same origin like the rest. */

export const LIVE_PROTOCOL = 'sotto.live.v1';

export async function createLiveRecording(title: string): Promise<string> {
  const t = title.trim();
  const live = { mode: 'live' as const, ...(t ? { title: t } : {}) };
  const { id } = await unwrap(
    api.POST('/api/v1/recordings', {
      // The route also takes multipart uploads, so its schema declares no JSON body: the handler
      // checks this one ({mode: "live", title?}, liveCreate in live.schema.ts) itself.
      body: live as never,
    }),
  );
  return id;
}

/** A single-use, 30-second ticket for one WebSocket handshake (browsers cannot send headers). */
export async function liveTicket(id: string): Promise<string> {
  const { ticket } = await unwrap(
    api.POST('/api/v1/recordings/{id}/live-ticket', { params: { path: { id } } }),
  );
  return ticket;
}

/**
 * Opens `/live` or `/watch` with a fresh ticket offered as a subprotocol (never in the URL, so no
 * log or history ever holds it); the server echoes only `sotto.live.v1`.
 */
export async function openLiveSocket(id: string, kind: 'live' | 'watch'): Promise<WebSocket> {
  const ticket = await liveTicket(id);
  const scheme = location.protocol === 'https:' ? 'wss:' : 'ws:';
  const ws = new WebSocket(
    `${scheme}//${location.host}/api/v1/recordings/${encodeURIComponent(id)}/${kind}`,
    [LIVE_PROTOCOL, `sotto.ticket.${ticket}`],
  );
  ws.binaryType = 'arraybuffer';
  return ws;
}
