import type { FastifyInstance } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from '../../domain/errors.js';

/**
 * @fastify/websocket completes the handshake (101) on any GET route, then closes the socket when
 * the route is not a websocket one, so `/healthz` or the panel's catch-all would hold a socket
 * for nothing, without credentials. An upgrade is refused as plain HTTP (404, before any 101)
 * unless its route is a websocket route (today the live ones, src/http/routes/recordings/live.ts).
 * Register after @fastify/websocket (its onRequest hook marks upgrades) and before any route.
 */
export const upgradeGuardPlugin = fp(async (app: FastifyInstance) => {
  const websocketRoutes = new Set<string>();
  app.addHook('onRoute', (route) => {
    if (route.websocket) websocketRoutes.add(route.url);
  });
  app.addHook('onRequest', async (req) => {
    if (req.ws && !websocketRoutes.has(req.routeOptions.url ?? ''))
      throw new AppError('not_found', 'No websocket endpoint at this path');
  });
});
