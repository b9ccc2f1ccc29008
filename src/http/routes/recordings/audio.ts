import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { AppError } from '../../../domain/errors.js';
import { actorOf } from '../../plugins/auth.js';
import type { RouteOptions } from '../../server.js';
import { audioDeleted, audioHeaders, audioParams, audioResponse } from './audio.schema.js';

/**
 * /api/v1/recordings/:id/audio: range-capable playback of kept audio (decrypted on the fly, only
 * the chunks a range needs) and its early deletion. Who may play it and when: see
 * AudioStoreService.playback and docs/audio-storage.md; anything else is 404.
 */
const audioRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  const tags = ['recordings'];
  const security = [{ bearer: [] }];

  // Runs after the server-wide `no-store` hook (parent hooks first): decrypted audio must not be
  // kept by shared caches nor by the browser's.
  app.addHook('onSend', async (_req, reply) => {
    reply.header('cache-control', 'private, no-store');
  });

  app.get(
    '/:id/audio',
    {
      onRequest: app.requirePermission('recordings.read'),
      schema: { tags, security, params: audioParams, headers: audioHeaders, response: audioResponse },
    },
    async (req, reply) => {
      const play = await services.audio.playback(actorOf(req), req.params.id, req.headers.range);
      reply.header('accept-ranges', 'bytes');
      if (play.status === 416) {
        reply.header('content-range', `bytes */${play.size}`);
        throw new AppError('range_not_satisfiable', 'The requested range is outside the audio');
      }
      const length = play.range ? play.range.end - play.range.start + 1 : play.size;
      if (play.range)
        reply.header('content-range', `bytes ${play.range.start}-${play.range.end}/${play.size}`);
      return (
        reply
          .code(play.status)
          .type(play.contentType)
          .header('content-length', String(length))
          .header('content-disposition', 'inline')
          .header('x-content-type-options', 'nosniff')
          // A stream goes out as it is (Fastify never serialises one); the typed reply only
          // knows the documented shapes, hence the cast.
          .send(play.stream as unknown as string)
      );
    },
  );

  app.delete(
    '/:id/audio',
    {
      onRequest: app.requirePermission('org.manage'),
      schema: { tags, security, params: audioParams, response: { 204: audioDeleted } },
    },
    async (req, reply) => {
      await services.audio.deleteKept(actorOf(req), req.params.id);
      return reply.code(204).send(null);
    },
  );
};

export default audioRoutes;
