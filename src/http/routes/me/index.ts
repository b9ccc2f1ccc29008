import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { RouteOptions } from '../../server.js';
import { sessionActorOf, sessionAuth } from '../auth/session-auth.js';
import { meResponse } from './schema.js';

/** GET /api/v1/me: who I am, my org and role, whether my second factor is on. */
const meRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  app.get(
    '/me',
    {
      onRequest: sessionAuth(app, services),
      schema: { tags: ['me'], security: [{ bearer: [] }], response: { 200: meResponse } },
    },
    async (req) => services.auth.me(sessionActorOf(req)),
  );
};

export default meRoutes;
