import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { AppError } from '../../../domain/errors.js';
import { actorOf } from '../../plugins/auth.js';
import type { RouteOptions } from '../../server.js';
import type { FastifyReply } from 'fastify';
import type { Playback } from '../../../services/recordings/audio-store.service.js';
import {
  audioDeleted,
  audioHeaders,
  audioParams,
  audioResponse,
  audioStreamQuery,
  audioTicketResponse,
} from './audio.schema.js';

/**
 * /api/v1/recordings/:id/audio: range-capable playback of kept audio (decrypted on the fly, only
 * the chunks a range needs) and its early deletion. Who may play it and when: see
 * AudioStoreService.playback and docs/audio-storage.md; anything else is 404.
 */
const audioRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  const tags = ['recordings'];
  const security = [{ bearer: [] }];
  // Playback's own per-network budget (SOTTO_RATE_LIMIT_AUDIO_PER_MINUTE): a player makes a range
  // request per seek, and seeking through a long recording must not spend the API's.
  const playback = {
    rateLimit: {
      points: services.config.rateLimitPerMinute.audio,
      durationSeconds: 60,
      bucket: 'audio-playback',
    },
  };

  // Runs after the server-wide `no-store` hook (parent hooks first): decrypted audio must not be
  // kept by shared caches nor by the browser's.
  app.addHook('onSend', async (_req, reply) => {
    reply.header('cache-control', 'private, no-store');
  });

  app.get(
    '/:id/audio',
    {
      config: playback,
      onRequest: app.requirePermission('recordings.read'),
      schema: { tags, security, params: audioParams, headers: audioHeaders, response: audioResponse },
    },
    async (req, reply) =>
      sendPlayback(reply, await services.audio.playback(actorOf(req), req.params.id, req.headers.range)),
  );

  app.post(
    '/:id/audio-ticket',
    {
      onRequest: app.requirePermission('recordings.read'),
      schema: { tags, security, params: audioParams, response: { 201: audioTicketResponse } },
    },
    async (req, reply) => {
      const { ticket, expiresIn } = await services.audioTickets.issue(actorOf(req), req.params.id);
      const url = `/api/v1/recordings/${req.params.id.toLowerCase()}/audio/stream?ticket=${ticket}`;
      return reply.code(201).send({ url, expiresIn });
    },
  );

  // No bearer: the ticket in the query is the credential (AudioTicketService). Every failure is
  // 404, like audio that does not exist.
  app.get(
    '/:id/audio/stream',
    {
      config: playback,
      schema: {
        tags,
        params: audioParams,
        querystring: audioStreamQuery,
        headers: audioHeaders,
        response: audioResponse,
      },
    },
    async (req, reply) =>
      sendPlayback(
        reply,
        await services.audioTickets.playback(req.query.ticket, req.params.id, req.headers.range, req.ip),
      ),
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

/** 200/206 with the decrypting stream, or 416 (problem+json) with the size. */
function sendPlayback(reply: FastifyReply, play: Playback) {
  reply.header('accept-ranges', 'bytes');
  if (play.status === 416) {
    reply.header('content-range', `bytes */${play.size}`);
    throw new AppError('range_not_satisfiable', 'The requested range is outside the audio');
  }
  const length = play.range ? play.range.end - play.range.start + 1 : play.size;
  if (play.range) reply.header('content-range', `bytes ${play.range.start}-${play.range.end}/${play.size}`);
  return (
    reply
      .code(play.status)
      .type(play.contentType)
      .header('content-length', String(length))
      .header('content-disposition', 'inline')
      .header('x-content-type-options', 'nosniff')
      // A stream goes out as it is (Fastify never serialises one); the typed reply only knows
      // the documented shapes, hence the cast.
      .send(play.stream as unknown as string)
  );
}

export default audioRoutes;
