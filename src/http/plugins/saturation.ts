import underPressure from '@fastify/under-pressure';
import type { FastifyPluginAsync, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Config } from '../../config/config.js';
import { AppError } from '../../domain/errors.js';

/**
 * A saturated node says so instead of queueing: while the event loop's mean delay (or its
 * utilization, or the process's memory) is above the configured limit, every new request — API
 * calls, uploads, WebSocket handshakes — gets 503 `unavailable` with Retry-After, so clients and a
 * load balancer go elsewhere or come back, and the work already accepted finishes. /readyz says
 * `load: saturated` with 503, which takes the node out of a load balancer's rotation until it
 * recovers; /healthz (liveness) stays 200, because a busy node is not a broken one and must not be
 * restarted for it.
 *
 * Measured by @fastify/under-pressure (perf_hooks' event-loop delay histogram and utilization,
 * sampled each second). One warning is logged when a spell of refusals begins, not one per request.
 */
// /readyz answers for itself (checks.load), in its own shape.
const EXEMPT = new Set(['/healthz', '/readyz']);
// Refusals less than this far apart belong to one spell (one log line).
const SPELL_GAP_MS = 30_000;

const plugin: FastifyPluginAsync<Config['saturation']> = async (app, limits) => {
  let lastRefusal = 0;
  await app.register(underPressure, {
    maxEventLoopDelay: limits.maxEventLoopDelayMs,
    maxEventLoopUtilization: limits.maxEventLoopUtilization,
    maxRssBytes: limits.maxRssBytes,
    // Utilization over the last second, not since start (the package's default).
    eventLoopUtilizationMode: 'interval',
    pressureHandler: (req: FastifyRequest, _reply, type: string, value: number | undefined) => {
      if (EXEMPT.has(req.url.split('?')[0] ?? '')) return undefined;
      const now = Date.now();
      if (now - lastRefusal > SPELL_GAP_MS) {
        req.log.warn(
          { measure: type, value },
          'node saturated: refusing new requests with 503 until it recovers',
        );
      }
      lastRefusal = now;
      return Promise.reject(
        new AppError('server_busy', 'This server is busy: try again shortly', {
          retryAfterSeconds: limits.retryAfterSeconds,
        }),
      );
    },
  });
};

export const saturationPlugin = fp(plugin, { name: 'sotto-saturation' });
