import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { SsoConnectionView } from '../../../services/sso/sso.service.js';
import { actorOf } from '../../plugins/auth.js';
import type { RouteOptions } from '../../server.js';
import { iso, noContent } from './schema.js';
import { ssoPut, ssoResponse } from './sso.schema.js';

const view = (c: SsoConnectionView) => ({ ...c, createdAt: iso(c.createdAt), updatedAt: iso(c.updatedAt) });

/**
 * /api/v1/org/sso: the org's OIDC connection (owners and admins). No org id in the path: it is
 * always the caller's own org, so another org's connection is simply not there.
 */
const orgSsoRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  const tags = ['organization'];
  const security = [{ bearer: [] }];

  app.get(
    '/',
    {
      onRequest: app.requirePermission('org.manage'),
      schema: { tags, security, response: { 200: ssoResponse } },
    },
    async (req) => view(await services.sso.get(actorOf(req))),
  );

  app.put(
    '/',
    {
      onRequest: app.requirePermission('sso.manage'),
      schema: { tags, security, body: ssoPut, response: { 200: ssoResponse } },
    },
    async (req) => view(await services.sso.put(actorOf(req), req.body)),
  );

  app.delete(
    '/',
    {
      onRequest: app.requirePermission('sso.manage'),
      schema: { tags, security, response: { 204: noContent } },
    },
    async (req, reply) => {
      await services.sso.remove(actorOf(req));
      return reply.status(204).send(null);
    },
  );
};

export default orgSsoRoutes;
