import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { DeliveryRow } from '../../../repositories/webhooks/webhook.repository.js';
import type { WebhookView } from '../../../services/webhooks/webhook.service.js';
import { actorOf } from '../../plugins/auth.js';
import type { RouteOptions } from '../../server.js';
import { iso, isoOrNull, noContent } from '../org/schema.js';
import {
  deliveryParams,
  deliveryResponse,
  webhookCreate,
  webhookCreated,
  webhookParams,
  webhookPatch,
  webhookResponse,
  webhookRotated,
} from './schema.js';

const view = (w: WebhookView) => ({
  id: w.id,
  url: w.url,
  events: w.events,
  enabled: w.enabled,
  createdAt: iso(w.createdAt),
  rotatedAt: isoOrNull(w.rotatedAt),
});

const deliveryView = (d: DeliveryRow) => ({
  id: d.id,
  event: d.event,
  status: d.status,
  attempts: d.attempts,
  nextAttemptAt: d.status === 'pending' ? iso(d.nextAttemptAt) : null,
  lastStatusCode: d.lastStatusCode,
  lastError: d.lastError,
  createdAt: iso(d.createdAt),
  deliveredAt: isoOrNull(d.deliveredAt),
  payload: d.payload,
});

/** /api/v1/org/webhooks: owners and admins (API tokens: org:admin). Secrets are shown once. */
const webhookRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  const tags = ['webhooks'];
  const security = [{ bearer: [] }];
  const onRequest = app.requirePermission('webhooks.manage');

  app.post(
    '/',
    { onRequest, schema: { tags, security, body: webhookCreate, response: { 201: webhookCreated } } },
    async (req, reply) => {
      const { webhook, secret } = await services.webhooks.create(actorOf(req), req.body);
      return reply.status(201).send({ ...view(webhook), secret });
    },
  );

  app.get(
    '/',
    { onRequest, schema: { tags, security, response: { 200: webhookResponse.array() } } },
    async (req) => (await services.webhooks.list(actorOf(req))).map(view),
  );

  app.patch(
    '/:id',
    {
      onRequest,
      schema: {
        tags,
        security,
        params: webhookParams,
        body: webhookPatch,
        response: { 200: webhookResponse },
      },
    },
    async (req) => view(await services.webhooks.update(actorOf(req), req.params.id, req.body)),
  );

  app.delete(
    '/:id',
    { onRequest, schema: { tags, security, params: webhookParams, response: { 204: noContent } } },
    async (req, reply) => {
      await services.webhooks.remove(actorOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/:id/rotate-secret',
    { onRequest, schema: { tags, security, params: webhookParams, response: { 200: webhookRotated } } },
    async (req) => {
      const r = await services.webhooks.rotate(actorOf(req), req.params.id);
      return { secret: r.secret, previousValidUntil: iso(r.previousValidUntil) };
    },
  );

  app.get(
    '/:id/deliveries',
    {
      onRequest,
      schema: { tags, security, params: webhookParams, response: { 200: deliveryResponse.array() } },
    },
    async (req) => (await services.webhooks.deliveries(actorOf(req), req.params.id)).map(deliveryView),
  );

  app.post(
    '/:id/deliveries/:deliveryId/redeliver',
    { onRequest, schema: { tags, security, params: deliveryParams, response: { 202: deliveryResponse } } },
    async (req, reply) =>
      reply
        .status(202)
        .send(
          deliveryView(await services.webhooks.redeliver(actorOf(req), req.params.id, req.params.deliveryId)),
        ),
  );
};

export default webhookRoutes;
