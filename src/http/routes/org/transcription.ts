import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { actorOf } from '../../plugins/auth.js';
import type { RouteOptions } from '../../server.js';
import { transcriptionQuery, transcriptionStatusResponse } from './transcription.schema.js';

/**
 * GET /api/v1/org/transcription: whether the caller's org's uploads can be transcribed now (an
 * engine on the server, or an active remote worker for the org), and the fix when not. For owners
 * and admins (workers.manage); no org id in the path, so it only ever describes the caller's org.
 */
const orgTranscriptionRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  app.get(
    '/',
    {
      onRequest: app.requirePermission('workers.manage'),
      schema: {
        tags: ['organization'],
        security: [{ bearer: [] }],
        querystring: transcriptionQuery,
        response: { 200: transcriptionStatusResponse },
      },
    },
    async (req) => services.health.transcriptionStatus(actorOf(req)),
  );
};

export default orgTranscriptionRoutes;
