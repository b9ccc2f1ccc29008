import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { RouteOptions } from '../../server.js';
import { acceptInvitationBody, acceptInvitationResponse } from './schema.js';

/**
 * POST /api/v1/auth/accept-invitation: the one unauthenticated route of the invitation flow. The
 * token is the credential; an unknown, used, revoked or expired token gets the same 404.
 */
const invitationRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  app.post(
    '/auth/accept-invitation',
    {
      schema: {
        tags: ['auth'],
        body: acceptInvitationBody,
        response: { 201: acceptInvitationResponse },
      },
    },
    async (req, reply) => reply.status(201).send(await services.invitations.accept(req.body, req.ip)),
  );
};

export default invitationRoutes;
