import { ApiError } from '../api';
import { getRecording, openLiveSocket } from '../api-live';

/**
 * What ingest and viewer sockets share: opening one (with a fresh ticket each time), telling a
 * passing network fault (retry) from an end (the recording stopped or is gone), and backoff.
 */
export class LiveEnded extends Error {
  override name = 'LiveEnded';
  constructor(
    message: string,
    /** True when the recording simply is not live any more (stopped): not an error to show. */
    readonly stopped: boolean,
  ) {
    super(message);
  }
}

export const BACKOFF_MS = [250, 500, 1000, 2000, 4000, 5000];

/** Close codes after which reconnecting cannot help (docs/live.md, close codes). */
export const FATAL_CLOSE: Record<number, string> = {
  4400: 'the server refused a malformed message',
  4401: 'your session ended (signed out or device revoked)',
  4404: 'the recording is no longer visible to you',
  4413: 'the recording reached its maximum duration',
  4422: 'the server is missing audio this page no longer holds',
  4429: 'too many participant streams, or this page reads too slowly',
};

/**
 * Opens the socket; resolves once open. Rejects with LiveEnded when it must not be retried, or
 * another error for a network fault. A refused handshake is invisible to browser code (just a
 * close 1006), so the recording's status is read to tell "stopped" and "gone" from a fault.
 */
export async function connectLive(id: string, kind: 'live' | 'watch'): Promise<WebSocket> {
  let ws: WebSocket;
  try {
    ws = await openLiveSocket(id, kind);
  } catch (err) {
    throw endedOr(err);
  }
  const opened = await new Promise<boolean>((resolve) => {
    ws.addEventListener('open', () => resolve(true), { once: true });
    ws.addEventListener('close', () => resolve(false), { once: true });
  });
  if (opened) return ws;
  let status: string;
  try {
    status = (await getRecording(id)).status;
  } catch (err) {
    throw endedOr(err);
  }
  if (status !== 'live') throw new LiveEnded('the recording is no longer live', true);
  throw new Error('the connection was refused');
}

function endedOr(err: unknown): Error {
  if (err instanceof ApiError && err.status === 404)
    return new LiveEnded('the recording no longer exists or is not visible to you', false);
  if (err instanceof ApiError && (err.status === 401 || err.status === 403))
    return new LiveEnded('you are signed out: log in again', false);
  return err instanceof Error ? err : new Error('network error');
}

export const sleep = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));
