import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { actorOf } from '../../plugins/auth.js';
import type { RouteOptions } from '../../server.js';
import { auditQuery, auditResponse } from './schema.js';

/** GET /api/v1/audit: the org's audit log, newest first, with the chain's verification status. */
const auditRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  app.get(
    '/',
    {
      onRequest: app.requirePermission('audit.read'),
      schema: {
        tags: ['audit'],
        security: [{ bearer: [] }],
        querystring: auditQuery,
        response: { 200: auditResponse },
      },
    },
    async (req) => {
      const { entries, actions, verification } = await services.audit.read(actorOf(req), req.query);
      const last = entries.at(-1);
      return {
        entries: entries.map((e) => ({
          seq: e.seq,
          at: e.at.toISOString(),
          actorId: e.actorId,
          actorKind: e.actorKind,
          action: e.action,
          targetType: e.targetType,
          targetId: e.targetId,
          ip: e.ip,
          details: e.details,
          hash: e.hash,
          actorName: e.actorName,
          actorEmail: e.actorEmail,
          targetLabel: e.targetLabel,
        })),
        nextBeforeSeq: entries.length === req.query.limit && last && last.seq > 1 ? last.seq : null,
        actions,
        verification: {
          ok: verification.ok,
          entries: verification.entries,
          ...(verification.problem ? { problem: verification.problem } : {}),
        },
      };
    },
  );
};

export default auditRoutes;
