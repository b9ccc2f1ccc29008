import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Redis } from 'ioredis';
import WebSocket from 'ws';
import { startTransport, type Transport } from '../../src/http/listen.js';
import { ensureSelfSignedCert } from '../../src/adapters/network/tls.adapter.js';
import { createServices, type Services } from '../../src/app.js';
import { withTenant } from '../../src/db/tenant.js';
import type { LiveBus } from '../../src/adapters/redis/live-bus.types.js';
import { liveSegmentLocation } from '../../src/services/live/live-protocol.js';
import type { LiveEvent } from '../../src/services/live/live-viewers.js';
import type { TestApp } from './test-app.js';
import { bearer } from './fixtures.js';
import { replayWrap } from './replay-engine.js';

/**
 * Live-recording test client: the real server listening with TLS 1.3 on an ephemeral port and
 * the `ws` client, as a capture bot or a browser would connect.
 */
export interface Listening {
  port: number;
  ca: string;
  /** The server's application, when it runs in this process (listenTls). */
  app?: Transport['app'];
  close(): Promise<void>;
}

export async function listenTls(services: Services): Promise<Listening> {
  const dir = mkdtempSync(path.join(tmpdir(), 'sotto-live-tls-'));
  const cert = await ensureSelfSignedCert(path.join(dir, 'tls'), ['sotto.test']);
  const transport: Transport = await startTransport({
    services: { ...services, config: { ...services.config, host: '127.0.0.1', httpsPort: 0, httpPort: 0 } },
    tls: cert,
  });
  return {
    port: transport.address.port,
    ca: cert.cert,
    app: transport.app,
    close: async () => {
      await transport.close();
      rmSync(dir, { recursive: true, force: true });
    },
  };
}

export type LiveMessage = Record<string, unknown> & { type: string };

export interface Conn {
  ws: WebSocket;
  messages: LiveMessage[];
  closed: Promise<{ code: number; reason: string }>;
  waitFor(pred: (m: LiveMessage) => boolean, timeoutMs?: number): Promise<LiveMessage>;
}

/** Opens a socket; resolves the HTTP status instead when the handshake is refused. */
export function openWs(
  server: Listening,
  urlPath: string,
  opts: { token?: string; protocols?: string[]; supportOrg?: string } = {},
): Promise<Conn | number> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(`wss://127.0.0.1:${server.port}${urlPath}`, opts.protocols ?? [], {
      // An empty CA: a server process with its own self-signed certificate (test/live-restart).
      ...(server.ca ? { ca: server.ca } : { rejectUnauthorized: false }),
      headers: opts.token ? bearer(opts.token, opts.supportOrg) : {},
    });
    const messages: LiveMessage[] = [];
    const waiters = new Set<() => void>();
    ws.on('message', (data, isBinary) => {
      if (!isBinary) messages.push(JSON.parse(String(data)) as LiveMessage);
      for (const w of [...waiters]) w();
    });
    const closed = new Promise<{ code: number; reason: string }>((res) =>
      ws.on('close', (code, reason) => {
        res({ code, reason: reason.toString() });
        for (const w of [...waiters]) w();
      }),
    );
    ws.on('unexpected-response', (_req, res) => {
      resolve(res.statusCode ?? 0);
      res.resume();
      ws.terminate();
    });
    ws.on('error', (err) => reject(err));
    ws.on('open', () =>
      resolve({
        ws,
        messages,
        closed,
        waitFor: (pred, timeoutMs = 60_000) =>
          new Promise((res, rej) => {
            const check = () => {
              const found = messages.find(pred);
              if (found) {
                waiters.delete(check);
                clearTimeout(timer);
                res(found);
              } else if (ws.readyState === WebSocket.CLOSED) {
                waiters.delete(check);
                clearTimeout(timer);
                rej(
                  new Error(
                    `socket closed before the expected message; got ${JSON.stringify(messages.slice(-3))}`,
                  ),
                );
              }
            };
            const timer = setTimeout(() => {
              waiters.delete(check);
              rej(new Error('timed out waiting for a message'));
            }, timeoutMs);
            waiters.add(check);
            check();
          }),
      }),
    );
  });
}

export async function mustOpen(
  server: Listening,
  urlPath: string,
  opts: { token?: string; protocols?: string[] } = {},
) {
  const c = await openWs(server, urlPath, opts);
  if (typeof c === 'number') throw new Error(`handshake refused with ${c}`);
  return c;
}

/** PCM16 LE frames of `frameSamples` samples. */
export function frames(pcm: Int16Array, frameSamples = 1600): Buffer[] {
  const out: Buffer[] = [];
  for (let i = 0; i < pcm.length; i += frameSamples) {
    const part = pcm.subarray(i, Math.min(pcm.length, i + frameSamples));
    out.push(Buffer.from(part.buffer, part.byteOffset, part.byteLength));
  }
  return out;
}

/** Streams PCM as fast as the socket takes it (start, frames); resolves at the last frame's ack. */
export async function streamPcm(c: Conn, pcm: Int16Array, participant?: string): Promise<void> {
  c.ws.send(JSON.stringify({ type: 'start', ...(participant ? { participant } : {}) }));
  const all = frames(pcm);
  for (const f of all) c.ws.send(f);
  await c.waitFor((m) => m.type === 'ack' && m.seq === all.length - 1);
}

export async function createLive(t: TestApp, token: string, ip: string, title?: string): Promise<string> {
  const res = await t.app.inject({
    method: 'POST',
    url: '/api/v1/recordings',
    headers: bearer(token),
    payload: { mode: 'live', ...(title ? { title } : {}) },
    remoteAddress: ip,
  });
  if (res.statusCode !== 201) throw new Error(`create live: ${res.statusCode} ${res.body}`);
  return (res.json() as { id: string }).id;
}

/**
 * A second API node beside a test app: its own services and Redis connection over the same
 * database and config, listening on its own HTTPS port (live fan-out between nodes needs REDIS_URL).
 */
export async function secondNode(
  t: TestApp,
): Promise<{ services: Services; server: Listening; redis: Redis; close(): Promise<void> }> {
  const redis = new Redis(process.env.REDIS_URL!, { maxRetriesPerRequest: 2 });
  const services = await createServices({
    config: t.services.config,
    db: t.db,
    redis,
    logger: t.services.logger,
    engineDeps: { wrap: replayWrap },
  });
  const server = await listenTls(services);
  return {
    services,
    server,
    redis,
    close: async () => {
      await server.close();
      redis.disconnect();
    },
  };
}

/** The node's live bus (LiveService keeps it private): specs publish on it as the ingest side does. */
export const busOf = (services: Services): LiveBus =>
  (services.live as unknown as { d: { bus: LiveBus } }).d.bus;

/** `event` sealed for the recording exactly as LiveService seals it: a payload for the bus. */
export function sealLiveEvent(
  t: Pick<TestApp, 'db' | 'services'>,
  orgId: string,
  recordingId: string,
  event: LiveEvent,
): Promise<Buffer> {
  return withTenant(t.db, { orgId, userId: null }, (tx) =>
    t.services.keys.encryptJson(tx, liveSegmentLocation(orgId, recordingId), event),
  );
}
