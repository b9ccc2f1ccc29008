import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { RouteOptions } from '../../server.js';
import { sessionActorOf, sessionAuth } from '../auth/session-auth.js';
import { grantedOrgResponse } from './schema.js';

/**
 * /api/v1/support: for platform support accounts, which belong to no organization. Session
 * authentication (not `requirePermission`): this runs before support has picked an org to act
 * in with X-Sotto-Org, and the header is ignored here.
 */
const supportRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  app.get(
    '/orgs',
    {
      onRequest: sessionAuth(app, services),
      schema: {
        tags: ['support'],
        security: [{ bearer: [] }],
        response: { 200: grantedOrgResponse.array() },
      },
    },
    async (req) =>
      (await services.support.listGrantedOrgs(sessionActorOf(req))).map((o) => ({
        id: o.orgId,
        name: o.name,
        grantExpiresAt: o.expiresAt.toISOString(),
      })),
  );
};

export default supportRoutes;
