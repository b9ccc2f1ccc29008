/**
 * One viewer process of bench/fanout.ts (forked by it, never run alone): opens its share of
 * authenticated viewers on one live recording exactly as the panel does — `POST
 * /recordings/:id/live-ticket` with the user's bearer token, then the WebSocket with the ticket as
 * a subprotocol — and notes when every live message arrives. Several such processes run side by
 * side so that the bench, not the server, is never the one slow to read a frame.
 *
 * Protocol with the parent (IPC): `open` → `opened` (after every viewer got `ready` or failed);
 * `report` (publish time of each event, by its sequence number) → `result` (delays as a histogram,
 * close codes, errors), then the process exits.
 */
import { Agent as HttpAgent, request as httpRequest } from 'node:http';
import { Agent, request } from 'node:https';
import WebSocket from 'ws';

export interface OpenOrder {
  type: 'open';
  recordingId: string;
  concurrency: number;
  viewers: { token: string; port: number }[];
  /**
   * The node listens in plain HTTP behind a TLS-terminating proxy (SOTTO_TRUST_PROXY): requests
   * go over plain HTTP / WS with the header such a proxy adds (`X-Forwarded-Proto: https`).
   */
  proxied: boolean;
}

export interface ReportOrder {
  type: 'report';
  /** Publish time (epoch ms) of event `seq` at index `seq`; null where none was seen. */
  published: (number | null)[];
}

export interface Opened {
  type: 'opened';
  ready: number;
  failed: Record<string, number>;
  /** Epoch ms of the last `ready`. */
  lastReadyAt: number;
}

export interface Result {
  type: 'result';
  /** Delay histogram: [bucket (0.1 ms), count]. */
  histogram: [number, number][];
  max: number;
  samples: number;
  /** Events published but never received by a viewer that was open (summed over viewers). */
  missing: number;
  /** Events received beyond what was published (should be 0). */
  extra: number;
  closes: Record<string, number>;
}

/** Epoch ms with sub-ms precision, comparable across processes of one machine. */
const now = () => performance.timeOrigin + performance.now();
const BUCKET_MS = 0.1;

interface Viewer {
  ws?: WebSocket;
  /** Arrival time of every message after `ready`, in order. */
  times: number[];
  ready: boolean;
  closed?: Promise<number>;
}

const viewers: Viewer[] = [];
const failed: Record<string, number> = {};
const fail = (why: string) => (failed[why] = (failed[why] ?? 0) + 1);

/** What a TLS-terminating proxy adds to every request it forwards. */
const FORWARDED = { 'x-forwarded-proto': 'https' };

function ticket(
  agent: Agent | HttpAgent,
  port: number,
  recordingId: string,
  token: string,
  proxied: boolean,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const req = (proxied ? httpRequest : request)(
      {
        host: '127.0.0.1',
        port,
        agent,
        method: 'POST',
        path: `/api/v1/recordings/${recordingId}/live-ticket`,
        servername: 'sotto.test',
        rejectUnauthorized: false,
        headers: { authorization: `Bearer ${token}`, 'content-length': 0, ...(proxied ? FORWARDED : {}) },
        timeout: 60_000,
      },
      (res) => {
        const chunks: Buffer[] = [];
        res.on('data', (c: Buffer) => chunks.push(c));
        res.on('end', () => {
          if (res.statusCode !== 201) reject(new Error(`ticket ${res.statusCode}`));
          else resolve((JSON.parse(Buffer.concat(chunks).toString('utf8')) as { ticket: string }).ticket);
        });
      },
    );
    req.on('timeout', () => req.destroy(new Error('ticket timeout')));
    req.on('error', reject);
    req.end();
  });
}

function connect(port: number, recordingId: string, t: string, v: Viewer, proxied: boolean): Promise<void> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(
      `${proxied ? 'ws' : 'wss'}://127.0.0.1:${port}/api/v1/recordings/${recordingId}/watch`,
      ['sotto.live.v1', `sotto.ticket.${t}`],
      // As a browser does: permessage-deflate offered (the server decides), no certificate pinning here.
      { rejectUnauthorized: false, handshakeTimeout: 60_000, headers: proxied ? FORWARDED : {} },
    );
    v.ws = ws;
    v.closed = new Promise((res) => ws.on('close', (code) => res(code)));
    ws.on('message', (data) => {
      const at = now();
      if (v.ready) return void v.times.push(at);
      if ((JSON.parse(String(data)) as { type: string }).type === 'ready') {
        v.ready = true;
        resolve();
      }
    });
    ws.on('unexpected-response', (_req, res) => {
      res.resume();
      ws.terminate();
      reject(new Error(`handshake ${res.statusCode}`));
    });
    ws.on('error', (err) => reject(err));
    ws.on('close', () => reject(new Error('closed before ready')));
  });
}

async function open(order: OpenOrder): Promise<void> {
  // Ticket requests reuse a few TLS connections, as a browser's tab does.
  const agent = order.proxied
    ? new HttpAgent({ keepAlive: true, maxSockets: 8 })
    : new Agent({ keepAlive: true, maxSockets: 8 });
  let next = 0;
  let lastReadyAt = 0;
  const worker = async () => {
    while (next < order.viewers.length) {
      const { token, port } = order.viewers[next++]!;
      const v: Viewer = { times: [], ready: false };
      viewers.push(v);
      try {
        const t = await ticket(agent, port, order.recordingId, token, order.proxied);
        await connect(port, order.recordingId, t, v, order.proxied);
        lastReadyAt = now();
      } catch (err) {
        fail((err as Error).message.replace(/[0-9a-f-]{36}/g, ':id'));
        v.ws?.terminate();
      }
    }
  };
  // Progress for the parent's log line (a set-up of thousands takes minutes on a busy machine).
  const progress = setInterval(
    () => process.send!({ type: 'progress', ready: viewers.filter((v) => v.ready).length, failed }),
    10_000,
  );
  await Promise.all(Array.from({ length: order.concurrency }, worker));
  clearInterval(progress);
  agent.destroy();
  const msg: Opened = { type: 'opened', ready: viewers.filter((v) => v.ready).length, failed, lastReadyAt };
  process.send!(msg);
}

async function report(order: ReportOrder): Promise<void> {
  const open = viewers.filter((v) => v.ready);
  // The server closes every viewer (1000) after `stopped`; a bound in case some never close.
  const codes = await Promise.all(
    open.map((v) =>
      Promise.race([v.closed!, new Promise<number>((res) => setTimeout(() => res(-1), 30_000))]),
    ),
  );
  const closes: Record<string, number> = {};
  for (const c of codes) {
    const key = c === -1 ? 'still open' : String(c);
    closes[key] = (closes[key] ?? 0) + 1;
  }
  const histogram = new Map<number, number>();
  let max = 0;
  let samples = 0;
  let missing = 0;
  let extra = 0;
  const events = order.published.length - 1; // index 0 unused: sequence numbers start at 1
  for (const v of open) {
    missing += Math.max(0, events - v.times.length);
    extra += Math.max(0, v.times.length - events);
    for (let i = 0; i < Math.min(events, v.times.length); i++) {
      const p = order.published[i + 1];
      if (p === null || p === undefined) continue;
      const d = Math.max(0, v.times[i]! - p);
      const b = Math.floor(d / BUCKET_MS);
      histogram.set(b, (histogram.get(b) ?? 0) + 1);
      max = Math.max(max, d);
      samples++;
    }
  }
  for (const v of open) v.ws?.terminate();
  const msg: Result = { type: 'result', histogram: [...histogram], max, samples, missing, extra, closes };
  process.send!(msg, () => process.exit(0));
}

process.on('message', (m: OpenOrder | ReportOrder) => {
  if (m.type === 'open') void open(m);
  else void report(m);
});
