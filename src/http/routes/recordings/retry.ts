import { z } from 'zod';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { actorOf } from '../../plugins/auth.js';
import type { RouteOptions } from '../../server.js';

/**
 * POST /api/v1/recordings/:id/retry (owners and admins): a failed recording whose sealed audio
 * still exists is queued again, attempts from zero (RecordingRetryService). 404 for a recording
 * the caller cannot see, 409 when it is not failed or its audio is gone.
 */
const params = z.strictObject({ id: z.guid() });
const retried = z.object({ id: z.guid(), status: z.literal('queued') });

const retryRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  app.post(
    '/:id/retry',
    {
      onRequest: app.requirePermission('org.manage'),
      schema: { tags: ['recordings'], security: [{ bearer: [] }], params, response: { 202: retried } },
    },
    async (req, reply) => {
      const result = await services.recordingRetry.retry(actorOf(req), req.params.id);
      // The worker looks at once instead of at its next poll.
      services.jobs.wake();
      return reply.code(202).send(result);
    },
  );
};

export default retryRoutes;
