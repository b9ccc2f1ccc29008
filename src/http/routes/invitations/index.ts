import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { RouteOptions } from '../../server.js';
import {
  acceptInvitationBody,
  acceptInvitationResponse,
  previewInvitationBody,
  previewInvitationResponse,
} from './schema.js';

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

  // What the accept page names before the person types anything (organization, inviter). Under
  // /auth/, so the auth rate limit applies; the same 404 as accept for any unusable token.
  app.post(
    '/auth/accept-invitation/preview',
    {
      schema: {
        tags: ['auth'],
        body: previewInvitationBody,
        response: { 200: previewInvitationResponse },
      },
    },
    async (req) => {
      const p = await services.invitations.preview(req.body.token);
      return { ...p, expiresAt: p.expiresAt.toISOString() };
    },
  );
};

export default invitationRoutes;
