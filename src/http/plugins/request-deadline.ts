import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config/config.js';
import { AppError } from '../../domain/errors.js';

declare module 'fastify' {
  interface FastifyContextConfig {
    /**
     * A streamed upload: its body has no fixed deadline, only a minimum average rate
     * (SOTTO_UPLOAD_MIN_BYTES_PER_SECOND), so a big file on a slow link still arrives.
     */
    upload?: boolean;
  }
}

/**
 * Every request has a deadline for arriving, so a slow or stalled client cannot hold a socket, a
 * file descriptor or a staged file for ever (docs/security.md, "Slow and stalled clients"):
 *
 * - TLS handshake and request headers: SOTTO_HTTP_HEADERS_TIMEOUT_SECONDS, enforced by Node
 *   (`handshakeTimeout`, `headersTimeout`; the server answers 408 and closes).
 * - The body: no pause longer than SOTTO_HTTP_BODY_IDLE_SECONDS, and the whole body within
 *   SOTTO_HTTP_REQUEST_TIMEOUT_SECONDS; routes marked `config.upload` get that much plus the time
 *   their bytes need at SOTTO_UPLOAD_MIN_BYTES_PER_SECOND instead. Node's own `requestTimeout`
 *   cannot tell an upload from a login, so the body watchdog below does this.
 *
 * A body that misses its deadline ends the request with 408 problem+json and the connection is
 * closed (the rest of that body will never be read).
 */
export type RequestDeadlines = Config['http'];

/**
 * Node server options (buildServer passes them to Fastify's `https` or `http` options): the
 * header deadline and how often Node looks for connections past it; with TLS, the handshake's
 * deadline too. `requestTimeout` stays 0 (Fastify's default): Node's fixed whole-request limit
 * would cut long uploads, so the body watchdog below replaces it.
 */
export function serverDeadlines(d: RequestDeadlines): {
  headersTimeout: number;
  connectionsCheckingInterval: number;
} {
  return {
    headersTimeout: d.headersTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, Math.max(50, Math.floor(d.headersTimeoutMs / 4))),
  };
}

export function tlsServerDeadlines(
  d: RequestDeadlines,
): ReturnType<typeof serverDeadlines> & { handshakeTimeout: number } {
  return { ...serverDeadlines(d), handshakeTimeout: d.headersTimeoutMs };
}

/** Why a request's body was cut, when its deadline did it (routes that stream the body ask). */
const expired = new WeakMap<object, AppError>();

export function bodyDeadlineError(req: FastifyRequest): AppError | undefined {
  return expired.get(req.raw);
}

function hasBody(req: FastifyRequest): boolean {
  const length = req.headers['content-length'];
  return req.headers['transfer-encoding'] !== undefined || (length !== undefined && length !== '0');
}

function watch(req: FastifyRequest, reply: FastifyReply, d: RequestDeadlines, upload: boolean): void {
  const raw = req.raw;
  const socket = raw.socket;
  const start = Date.now();
  const startBytes = socket.bytesRead;
  let seen = startBytes;
  let lastProgress = start;
  let lastCheck = start;
  // Time the body waited on us (our buffer full) counts against no deadline.
  let ours = 0;
  const tick = Math.min(1000, Math.max(25, Math.floor(Math.min(d.bodyIdleMs, d.requestTimeoutMs) / 4)));

  const check = () => {
    if (raw.complete || raw.destroyed || reply.raw.writableEnded) return stop();
    const now = Date.now();
    const bytes = socket.bytesRead;
    // A full buffer means we are not reading (backpressure): not the client's pause.
    const waitingOnUs = raw.readableLength >= raw.readableHighWaterMark;
    if (waitingOnUs) ours += now - lastCheck;
    lastCheck = now;
    if (bytes !== seen || waitingOnUs) {
      seen = bytes;
      lastProgress = now;
    }
    const allowedMs = upload
      ? d.requestTimeoutMs + ((seen - startBytes) / d.uploadMinBytesPerSecond) * 1000
      : d.requestTimeoutMs;
    if (now - lastProgress > d.bodyIdleMs)
      return expire(`Nothing of the request body arrived for ${d.bodyIdleMs / 1000} s`);
    if (now - start - ours > allowedMs)
      return expire(
        upload
          ? `The upload arrived slower than ${d.uploadMinBytesPerSecond} bytes per second`
          : `The request body did not arrive within ${d.requestTimeoutMs / 1000} s`,
      );
  };

  const expire = (detail: string) => {
    stop();
    const err = new AppError('request_timeout', detail);
    expired.set(raw, err);
    // Whoever reads the body (Fastify's body parser, @fastify/multipart) fails with the error and
    // answers it through the error handler; otherwise nobody reads it and we answer here.
    if (raw.listenerCount('error') > 0) raw.emit('error', err);
    else if (!reply.sent) void reply.send(err);
    // Backstop: the connection goes whatever happens (the answer, if any, had its chance).
    setTimeout(() => socket.destroy(), Math.min(d.bodyIdleMs, 5000)).unref();
  };

  const timer = setInterval(check, tick);
  timer.unref();
  const stop = () => {
    clearInterval(timer);
    raw.off('end', stop);
    raw.off('close', stop);
    reply.raw.off('close', stop);
  };
  raw.once('end', stop);
  raw.once('close', stop);
  reply.raw.once('close', stop);
}

/** Arms the body watchdog on every request that still has a body on the way. */
export const requestDeadlinePlugin = fp(
  async (app: FastifyInstance, opts: { deadlines: RequestDeadlines }) => {
    app.addHook('onRequest', async (req, reply) => {
      // `complete` is undefined on injected requests (no socket): nothing to time.
      if (req.raw.complete !== false || !hasBody(req)) return;
      watch(req, reply, opts.deadlines, req.routeOptions.config.upload === true);
    });
  },
);
