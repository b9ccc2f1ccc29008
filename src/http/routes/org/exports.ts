import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { OrgExportView } from '../../../services/org-export/org-export.service.js';
import { actorOf } from '../../plugins/auth.js';
import type { RouteOptions } from '../../server.js';
import {
  exportDeleted,
  exportDownloadResponse,
  exportList,
  exportParams,
  exportRequestBody,
  exportResponse,
} from './exports.schema.js';

const iso = (d: Date | null): string | null => (d ? d.toISOString() : null);

const view = (e: OrgExportView) => ({
  ...e,
  createdAt: e.createdAt.toISOString(),
  readyAt: iso(e.readyAt),
  expiresAt: iso(e.expiresAt),
});

/**
 * /api/v1/org/export(s): data-portability exports of the whole org (owners and admins). The zip
 * is built in the background (202 + id; poll the list), sealed at rest, downloadable until it
 * expires; see OrgExportService and docs/lifecycle.md. Another org's export is 404 everywhere.
 */
const orgExportRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  const tags = ['organization'];
  const security = [{ bearer: [] }];

  app.post(
    '/export',
    {
      onRequest: app.requirePermission('org.export'),
      schema: { tags, security, body: exportRequestBody, response: { 202: exportResponse } },
    },
    async (req, reply) => reply.status(202).send(view(await services.orgExports.request(actorOf(req)))),
  );

  app.get(
    '/exports',
    {
      onRequest: app.requirePermission('org.manage'),
      schema: { tags, security, response: { 200: exportList } },
    },
    async (req) => ({ items: (await services.orgExports.list(actorOf(req))).map(view) }),
  );

  app.get(
    '/exports/:id',
    {
      onRequest: app.requirePermission('org.manage'),
      schema: { tags, security, params: exportParams, response: { 200: exportResponse } },
    },
    async (req) => view(await services.orgExports.get(actorOf(req), req.params.id)),
  );

  app.get(
    '/exports/:id/download',
    {
      onRequest: app.requirePermission('org.export'),
      schema: { tags, security, params: exportParams, response: exportDownloadResponse },
    },
    async (req, reply) => {
      const file = await services.orgExports.download(actorOf(req), req.params.id);
      return (
        reply
          .code(200)
          .type('application/zip')
          .header('content-length', String(file.size))
          .header('content-disposition', `attachment; filename="${file.filename}"`)
          .header('cache-control', 'private, no-store')
          .header('x-content-type-options', 'nosniff')
          // A stream goes out as it is; the typed reply only knows the documented shapes.
          .send(file.stream as unknown as string)
      );
    },
  );

  app.delete(
    '/exports/:id',
    {
      onRequest: app.requirePermission('org.manage'),
      schema: { tags, security, params: exportParams, response: { 204: exportDeleted } },
    },
    async (req, reply) => {
      await services.orgExports.remove(actorOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  );
};

export default orgExportRoutes;
