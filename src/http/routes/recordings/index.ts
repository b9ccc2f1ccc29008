import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { AppError } from '../../../domain/errors.js';
import type { RecordingView } from '../../../services/recording.service.js';
import { actorOf } from '../../plugins/auth.js';
import type { RouteOptions } from '../../server.js';
import {
  created,
  idParams,
  listQuery,
  listResponse,
  noContent,
  recordingResponse,
  transcriptResponse,
  uploadFields,
} from './schema.js';

const recording = (r: RecordingView) => ({
  ...r,
  createdAt: r.createdAt.toISOString(),
  completedAt: r.completedAt ? r.completedAt.toISOString() : null,
});

/**
 * /api/v1/recordings: upload, list, status, transcript, delete. A recording the caller may not
 * see (another org's, or a colleague's for a member) is 404, exactly like one that does not exist.
 */
const recordingRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  const tags = ['recordings'];
  const security = [{ bearer: [] }];

  // Scoped to this plugin: no other route accepts multipart bodies.
  await app.register(multipart, {
    // One byte over the limit is enough for the staging code to answer 413; we enforce it there.
    limits: { fileSize: services.config.maxUploadBytes + 1, files: 1, fields: 3, fieldSize: 1024, parts: 4 },
    throwFileSizeLimit: false,
  });

  app.post(
    '/',
    {
      onRequest: app.requirePermission('recordings.create'),
      schema: { tags, security, consumes: ['multipart/form-data'], response: { 202: created } },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      if (!req.isMultipart())
        throw new AppError(
          'unsupported_media_type',
          'Send multipart/form-data with the audio in an "audio" field',
        );
      let staged: string | undefined;
      try {
        const fields: Record<string, string> = {};
        for await (const part of req.parts()) {
          if (part.type === 'file') {
            if (part.fieldname !== 'audio' || staged) {
              part.file.resume();
              throw new AppError('bad_request', 'Send exactly one file, in the "audio" field');
            }
            staged = await services.recordings.stage(actor, part.file);
          } else {
            fields[part.fieldname] = String(part.value);
          }
        }
        if (!staged) throw new AppError('bad_request', 'The "audio" file field is missing');
        const parsed = uploadFields.safeParse(fields);
        if (!parsed.success)
          throw new AppError('validation_failed', 'The request did not match the expected shape', {
            errors: parsed.error.issues.map((i) => ({
              path: ['body', ...i.path].join('.'),
              message: i.message,
            })),
          });
        const file = staged;
        staged = undefined; // the service owns it now (and removes it if it refuses the file)
        const result = await services.recordings.create(actor, { file, ...parsed.data });
        return reply.code(202).send({ id: result.id, status: 'queued' as const });
      } finally {
        if (staged) await services.recordings.discard(staged);
      }
    },
  );

  app.get(
    '/',
    {
      onRequest: app.requirePermission('recordings.read'),
      schema: { tags, security, querystring: listQuery, response: { 200: listResponse } },
    },
    async (req) => {
      const page = await services.recordings.list(actorOf(req), req.query);
      return { items: page.items.map(recording), next: page.next };
    },
  );

  app.get(
    '/:id',
    {
      onRequest: app.requirePermission('recordings.read'),
      schema: { tags, security, params: idParams, response: { 200: recordingResponse } },
    },
    async (req) => recording(await services.recordings.get(actorOf(req), req.params.id)),
  );

  app.get(
    '/:id/transcript',
    {
      onRequest: app.requirePermission('recordings.read'),
      schema: { tags, security, params: idParams, response: { 200: transcriptResponse } },
    },
    async (req) => services.recordings.transcript(actorOf(req), req.params.id),
  );

  app.delete(
    '/:id',
    {
      onRequest: app.requirePermission('recordings.create'),
      schema: { tags, security, params: idParams, response: { 204: noContent } },
    },
    async (req, reply) => {
      await services.recordings.delete(actorOf(req), req.params.id);
      return reply.code(204).send(null);
    },
  );
};

export default recordingRoutes;
