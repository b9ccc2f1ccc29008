import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { WorkerTokenView } from '../../../services/transcription/worker-token.service.js';
import { actorOf } from '../../plugins/auth.js';
import type { RouteOptions } from '../../server.js';
import { idParams, iso, isoOrNull, noContent } from './schema.js';
import { workerTokenCreate, workerTokenCreated, workerTokenResponse } from './workers.schema.js';

const view = (t: WorkerTokenView) => ({
  id: t.id,
  name: t.name,
  createdBy: t.createdBy,
  createdAt: iso(t.createdAt),
  lastUsedAt: isoOrNull(t.lastUsedAt),
  revokedAt: isoOrNull(t.revokedAt),
  status: t.revokedAt ? ('revoked' as const) : ('active' as const),
});

/**
 * /api/v1/org/workers: the org's remote transcription worker tokens (owners and admins). The
 * token is in the creation answer only; lists never carry it (it is not stored).
 */
const orgWorkerRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  const tags = ['organization'];
  const security = [{ bearer: [] }];

  app.post(
    '/',
    {
      onRequest: app.requirePermission('workers.manage'),
      schema: { tags, security, body: workerTokenCreate, response: { 201: workerTokenCreated } },
    },
    async (req, reply) => {
      const { token, secret } = await services.workerTokens.createForOrg(actorOf(req), req.body.name);
      return reply.status(201).send({ ...view(token), token: secret });
    },
  );

  app.get(
    '/',
    {
      onRequest: app.requirePermission('workers.manage'),
      schema: { tags, security, response: { 200: workerTokenResponse.array() } },
    },
    async (req) => (await services.workerTokens.listForOrg(actorOf(req))).map(view),
  );

  app.delete(
    '/:id',
    {
      onRequest: app.requirePermission('workers.manage'),
      schema: { tags, security, params: idParams, response: { 204: noContent } },
    },
    async (req, reply) => {
      await services.workerTokens.revokeForOrg(actorOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  );
};

export default orgWorkerRoutes;
