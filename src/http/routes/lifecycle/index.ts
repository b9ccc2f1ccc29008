import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { RouteOptions } from '../../server.js';
import { sessionActorOf, sessionAuth } from '../auth/session-auth.js';
import {
  accountDeletionBody,
  accountDeletionResponse,
  orgDeletionBody,
  orgDeletionResponse,
} from './schema.js';

/** 24 hours: the promise made to the user (the job usually runs within the maintenance interval). */
const ACCOUNT_DELETION_PROMISE_MS = 24 * 3600 * 1000;

/**
 * Deletions that need re-authentication (docs/lifecycle.md), registered at /api/v1:
 *   DELETE /org — the owner deletes the organization (slug typed + password + TOTP if enabled);
 *   DELETE /me  — a member deletes their own account (password + TOTP if enabled).
 * Session tokens only (not API tokens): destroying an account or an org is a person's act.
 */
const lifecycleRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  const requireSession = sessionAuth(app, services);
  const secured = [{ bearer: [] }];

  app.delete(
    '/org',
    {
      onRequest: requireSession,
      schema: {
        tags: ['org'],
        security: secured,
        body: orgDeletionBody,
        response: { 200: orgDeletionResponse },
      },
    },
    async (req) => {
      const r = await services.orgDeletion.deleteOrg(sessionActorOf(req), {
        confirmSlug: req.body.confirm,
        password: req.body.currentPassword,
        code: req.body.code,
      });
      return { orgId: r.orgId, deletedAt: r.deletedAt.toISOString(), counts: r.counts };
    },
  );

  app.delete(
    '/me',
    {
      onRequest: requireSession,
      schema: {
        tags: ['me'],
        security: secured,
        body: accountDeletionBody,
        response: { 202: accountDeletionResponse },
      },
    },
    async (req, reply) => {
      const { dueAt } = await services.accountDeletion.request(sessionActorOf(req), {
        password: req.body.currentPassword,
        code: req.body.code,
      });
      const completeBy = new Date(dueAt.getTime() + ACCOUNT_DELETION_PROMISE_MS).toISOString();
      return reply.status(202).send({ completeBy, status: 'scheduled' as const });
    },
  );
};

export default lifecycleRoutes;
