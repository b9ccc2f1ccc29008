import type { Conn } from './live.js';

/**
 * The capture client's side of streaming and resuming, as the restart and failover specs drive
 * it (no vitest here: plain functions over a Conn).
 */

/** Resumes: `start` without a seq, reads the server's ack, resends from there to the end. */
export async function resumeStream(c: Conn, all: Buffer[], participant: string): Promise<number> {
  c.ws.send(JSON.stringify({ type: 'start', participant }));
  const first = await c.waitFor((m) => m.type === 'ack');
  const from = (first.seq as number) + 1;
  for (const f of all.slice(from)) c.ws.send(f);
  await c.waitFor((m) => m.type === 'ack' && m.seq === all.length - 1);
  return from;
}

/** Streams frames [from, to), waiting for the ack of the last one (so it is on the spool). */
export async function sendAcked(c: Conn, all: Buffer[], from: number, to: number): Promise<void> {
  for (const f of all.slice(from, to)) c.ws.send(f);
  await c
    .waitFor((m) => m.type === 'ack' && m.seq === to - 1)
    .catch(async (err: Error) => {
      throw new Error(`${err.message}; closed ${JSON.stringify(await c.closed)}`);
    });
}
