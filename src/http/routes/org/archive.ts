import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { ArchiveItemView } from '../../../services/lifecycle/archive.service.js';
import { actorOf } from '../../plugins/auth.js';
import type { RouteOptions } from '../../server.js';
import { archiveList, archiveListQuery, deletionReceipt, restoreResponse } from './archive.schema.js';
import { idParams, iso } from './schema.js';

const view = (i: ArchiveItemView) => ({
  id: i.id,
  recordingId: i.recordingId,
  ownerId: i.ownerId,
  title: i.title,
  recordingCreatedAt: iso(i.recordingCreatedAt),
  archivedAt: iso(i.archivedAt),
  reason: i.archivedByPolicy ? ('retention' as const) : ('manual' as const),
  sizeBytes: i.sizeBytes,
  hasAudio: i.hasAudio,
});

/**
 * /api/v1/org/archive: recordings retention moved to cold storage (docs/lifecycle.md). Owners
 * and admins list them, restore one (it comes back under its own id) or destroy one for good
 * (the answer is the deletion receipt, also kept in the audit log).
 */
const archiveRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  const tags = ['organization'];
  const security = [{ bearer: [] }];

  app.get(
    '/',
    {
      onRequest: app.requirePermission('org.manage'),
      schema: { tags, security, querystring: archiveListQuery, response: { 200: archiveList } },
    },
    async (req) => {
      const page = await services.archive.list(actorOf(req), req.query);
      return { items: page.items.map(view), next: page.next };
    },
  );

  app.post(
    '/:id/restore',
    {
      onRequest: app.requirePermission('org.manage'),
      schema: { tags, security, params: idParams, response: { 200: restoreResponse } },
    },
    async (req) => services.archive.restore(actorOf(req), req.params.id),
  );

  app.delete(
    '/:id',
    {
      onRequest: app.requirePermission('org.manage'),
      schema: { tags, security, params: idParams, response: { 200: deletionReceipt } },
    },
    async (req) => {
      const r = await services.archive.delete(actorOf(req), req.params.id);
      return { ...r, deletedAt: iso(r.deletedAt) };
    },
  );
};

export default archiveRoutes;
