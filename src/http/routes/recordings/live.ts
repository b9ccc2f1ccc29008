import type { IncomingMessage, ServerResponse } from 'node:http';
import type { FastifyBaseLogger, FastifyReply, FastifyRequest } from 'fastify';
import type { WebSocket } from 'ws';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Config } from '../../../config/config.js';
import { AppError } from '../../../domain/errors.js';
import { LIVE_CLOSE } from '../../../services/live/live-session.js';
import type { LivePurpose } from '../../../services/live/live.service.js';
import type { LiveServerMessage, LiveSocket } from '../../../services/live/live-viewers.js';
import { actorOf } from '../../plugins/auth.js';
import type { RouteOptions } from '../../server.js';
import { idParams } from './schema.js';
import {
  LIVE_PROTOCOL,
  MAX_CONTROL_BYTES,
  TICKET_PROTOCOL_PREFIX,
  liveControl,
  liveQuery,
  liveTicketResponse,
} from './live.schema.js';

/**
 * Live recordings over WSS (docs/live.md): `GET /:id/live` (ingest: PCM frames and JSON
 * control messages in, acks out) and `GET /:id/watch` (segments out), plus the browser ticket.
 * Every refusal happens before the upgrade, as HTTP: 401 without valid credentials, 404 for a
 * recording the caller may not see, 409 when it is not live. After the upgrade a bad frame
 * closes the socket with a 4xxx code and a reason; nothing else is affected.
 */
type Handshake = FastifyRequest<{ Params: { id: string }; Querystring: { ticket?: string | undefined } }>;

/** Ingest sockets of this process, told apart from viewers at shutdown. */
const ingestSockets = new WeakSet<WebSocket>();

/** Options for @fastify/websocket (registered in server.ts before every route). */
export function liveWebsocketOptions(config: Config) {
  return {
    /**
     * At shutdown, before the sessions are suspended (onClose): capture clients get 1012 (service
     * restart: reconnect and resume, nothing acknowledged is lost), viewers 1001 (going away).
     */
    preClose(this: { websocketServer: { clients: Set<WebSocket>; close(): void } }, done: () => void) {
      for (const client of this.websocketServer.clients)
        if (ingestSockets.has(client)) client.close(1012, 'server restarting: reconnect and resume');
        else client.close(LIVE_CLOSE.shuttingDown, 'server shutting down');
      this.websocketServer.close();
      done();
    },
    options: {
      // Hard stop in the parser; frames between the two limits get the clearer 4413 from us.
      maxPayload: config.live.maxFrameBytes * 2,
      // No permessage-deflate (the `ws` default, said out loud): a zlib compressor per socket would
      // cost memory for every viewer, and one event would be compressed again for every viewer
      // instead of sent as the one encoded frame (docs/live.md, "Fan-out").
      perMessageDeflate: false,
      // Only our own protocol is ever echoed back, never the offered ticket.
      handleProtocols: (offered: Set<string>) => (offered.has(LIVE_PROTOCOL) ? LIVE_PROTOCOL : false),
    },
    errorHandler: (err: Error, socket: WebSocket, req: FastifyRequest) => {
      req.log.warn({ err: err.name }, 'live socket error');
      socket.terminate();
    },
  };
}

function ticketOf(req: Handshake): string | undefined {
  const header = req.headers['sec-websocket-protocol'];
  const offered = typeof header === 'string' ? header.split(',').map((p) => p.trim()) : [];
  const fromHeader = offered.find((p) => p.startsWith(TICKET_PROTOCOL_PREFIX));
  return fromHeader ? fromHeader.slice(TICKET_PROTOCOL_PREFIX.length) : req.query.ticket;
}

/**
 * Messages as sent, by message object. LiveViewers hands the very same event object to every
 * viewer of a recording, so an event is serialised (and turned into bytes) once, not once per
 * socket: thousands of viewers would otherwise mean thousands of identical JSON.stringify and
 * UTF-8 copies per event (bench/fanout.ts). Weak: an entry lives as long as the event it encodes.
 */
const encoded = new WeakMap<LiveServerMessage, Buffer>();

function encode(message: LiveServerMessage): Buffer {
  let bytes = encoded.get(message);
  if (!bytes) encoded.set(message, (bytes = Buffer.from(JSON.stringify(message), 'utf8')));
  return bytes;
}

/**
 * `ws` as the services see it. A class, not an object literal of closures: a node holds one per
 * viewer, and this is one small object per socket where the literal was three closures and their
 * context (≈ 0.5 KiB per socket under tsx, whose kept function names turn each literal into a
 * property dictionary; bench/fanout.ts --heap).
 */
class WsLiveSocket implements LiveSocket {
  constructor(private readonly ws: WebSocket) {}

  send(message: LiveServerMessage): void {
    // A Buffer marked as text: `ws` frames it without copying (server frames are not masked).
    if (this.ws.readyState === this.ws.OPEN) this.ws.send(encode(message), { binary: false });
  }

  close(code: number, reason: string): void {
    const { ws } = this;
    if (ws.readyState === ws.OPEN || ws.readyState === ws.CONNECTING) ws.close(code, reason);
  }

  get bufferedAmount(): number {
    return this.ws.bufferedAmount;
  }

  ping(): void {
    if (this.ws.readyState === this.ws.OPEN) this.ws.ping();
  }
}

/**
 * The response object @fastify/websocket made for each upgrade, by its raw request: the
 * handshake records it, the socket handler lets go of it (releaseUpgradeRequest).
 */
const upgradeResponses = new WeakMap<IncomingMessage, ServerResponse>();

/**
 * Lets go of the upgrade's HTTP request once the WebSocket is open. Two things would otherwise
 * hold it for as long as the socket lives — about 5 KiB of heap per socket, the most a node
 * spends per idle viewer after the socket itself (bench/fanout.ts --heap):
 * - the TCP socket still points at the response object @fastify/websocket assigned to it
 *   (`ServerResponse.assignSocket`), whose 'finish' and 'error' listeners hold Fastify's reply and
 *   request, the raw request with its headers, and the request's child logger;
 * - @fastify/websocket's own 'error' listener on the WebSocket holds the same request and reply:
 *   replaced by one doing what our errorHandler does, holding only the socket and the request id.
 * The 101 is written by `ws` straight to the socket, so the response object has nothing left to
 * send (test/live-fanout.spec.ts checks the request is collected).
 */
function releaseUpgradeRequest(ws: WebSocket, req: FastifyRequest, log: FastifyBaseLogger): void {
  const res = upgradeResponses.get(req.raw);
  upgradeResponses.delete(req.raw);
  if (res?.socket) res.detachSocket(res.socket);
  // The request id, not the request's child logger (which would keep the request's bindings).
  const reqId = req.id;
  ws.removeAllListeners('error');
  ws.on('error', (err: Error) => {
    log.warn({ err: err.name, reqId }, 'live socket error');
    ws.terminate();
  });
}

function asBuffer(data: Buffer | ArrayBuffer | Buffer[]): Buffer {
  if (Buffer.isBuffer(data)) return data;
  return Array.isArray(data) ? Buffer.concat(data) : Buffer.from(data);
}

const liveRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  const tags = ['recordings'];
  const security = [{ bearer: [] }];
  // Sessions on this node are finalised (audio sealed, job queued) when the server stops.
  app.addHook('onClose', async () => {
    await services.live.close();
    // After the sessions are suspended (their decoders given back): helper processes end.
    await services.engines.close();
  });

  /** Handshake authentication: a bearer header (capture bot) or a single-use ticket (browser). */
  const handshake = (purpose: LivePurpose) => async (req: Handshake, reply: FastifyReply) => {
    upgradeResponses.set(req.raw, reply.raw);
    const ticket = ticketOf(req);
    if (ticket) req.actor = await services.live.redeem(ticket, req.params.id, req.ip);
    else await app.authenticate(req);
    await services.live.authorize(actorOf(req), req.params.id, purpose);
  };
  const wsSchema = { hide: true, params: idParams, querystring: liveQuery };

  app.post(
    '/:id/live-ticket',
    {
      onRequest: app.requirePermission('recordings.read'),
      schema: { tags, security, params: idParams, response: { 201: liveTicketResponse } },
    },
    async (req, reply) => reply.code(201).send(await services.live.ticket(actorOf(req), req.params.id)),
  );

  app.get('/:id/live', { websocket: true, preHandler: handshake('ingest'), schema: wsSchema }, (ws, req) => {
    releaseUpgradeRequest(ws, req, app.log);
    const socket = new WsLiveSocket(ws);
    ingestSockets.add(ws);
    let handle: ReturnType<typeof services.live.openIngest>;
    try {
      handle = services.live.openIngest(actorOf(req), req.params.id, socket);
    } catch (err) {
      socket.close(LIVE_CLOSE.conflict, err instanceof AppError ? err.message : 'refused');
      return;
    }
    ws.on('message', (data: Buffer | ArrayBuffer | Buffer[], isBinary: boolean) => {
      const bytes = asBuffer(data);
      if (isBinary) return handle.audio(bytes);
      let parsed: ReturnType<typeof liveControl.safeParse> | undefined;
      try {
        if (bytes.length <= MAX_CONTROL_BYTES)
          parsed = liveControl.safeParse(JSON.parse(bytes.toString('utf8')));
      } catch {
        parsed = undefined;
      }
      if (!parsed?.success) return socket.close(LIVE_CLOSE.malformed, 'malformed control message');
      if (parsed.data.type === 'start') handle.start(parsed.data.participant, parsed.data.seq);
      else void handle.stop();
    });
    ws.on('close', () => handle.closed());
  });

  app.get('/:id/watch', { websocket: true, preHandler: handshake('watch'), schema: wsSchema }, (ws, req) => {
    releaseUpgradeRequest(ws, req, app.log);
    const socket = new WsLiveSocket(ws);
    let stop: (() => void) | undefined;
    let closed = false;
    ws.on('message', () => socket.close(LIVE_CLOSE.malformed, 'viewers send nothing'));
    ws.on('close', () => {
      closed = true;
      stop?.();
    });
    services.live.watch(actorOf(req), req.params.id, socket).then(
      // `ready`, the backlog (what was said so far), then live events: sent by the service.
      (s) => {
        if (closed) return s();
        stop = s;
      },
      // Redis down: not the viewer's fault nor final; it reconnects when Redis is back.
      () => socket.close(LIVE_CLOSE.tryAgainLater, 'live fan-out unavailable: reconnect later'),
    );
  });
};

export default liveRoutes;
