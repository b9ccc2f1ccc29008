import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { AppError } from '../../../domain/errors.js';
import type { ApiTokenView } from '../../../services/auth/api-token.service.js';
import { actorOf } from '../../plugins/auth.js';
import type { RouteOptions } from '../../server.js';
import { idParams, iso, isoOrNull, noContent } from '../org/schema.js';
import { apiTokenCreate, apiTokenCreated, apiTokenListQuery, apiTokenResponse } from './schema.js';

/**
 * /api/v1/tokens: personal API tokens. Session-only (the service refuses a request made with a
 * token: a leaked token must not mint others). The secret is in the creation answer only.
 */
const apiTokenRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  const tags = ['tokens'];
  const security = [{ bearer: [] }];
  // onRequest, before the body is even parsed: a request made with an API token stops here.
  const signedIn = async (req: FastifyRequest) => {
    await app.authenticate(req);
    if (req.actor?.apiToken) throw new AppError('forbidden', 'API tokens cannot manage API tokens: sign in');
  };
  const view = (t: ApiTokenView) => ({
    id: t.id,
    userId: t.userId,
    name: t.name,
    scopes: t.scopes,
    createdAt: iso(t.createdAt),
    expiresAt: iso(t.expiresAt),
    lastUsedAt: isoOrNull(t.lastUsedAt),
    revokedAt: isoOrNull(t.revokedAt),
    status: t.status,
  });

  app.post(
    '/',
    {
      onRequest: signedIn,
      schema: { tags, security, body: apiTokenCreate, response: { 201: apiTokenCreated } },
    },
    async (req, reply) => {
      const { token, secret } = await services.apiTokens.create(actorOf(req), req.body);
      return reply.status(201).send({ ...view(token), token: secret });
    },
  );

  app.get(
    '/',
    {
      onRequest: signedIn,
      schema: { tags, security, querystring: apiTokenListQuery, response: { 200: apiTokenResponse.array() } },
    },
    async (req) => (await services.apiTokens.list(actorOf(req), { all: req.query.all === 'true' })).map(view),
  );

  app.delete(
    '/:id',
    {
      onRequest: signedIn,
      schema: { tags, security, params: idParams, response: { 204: noContent } },
    },
    async (req, reply) => {
      await services.apiTokens.revoke(actorOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  );
};

export default apiTokenRoutes;
