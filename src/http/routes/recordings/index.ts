import multipart from '@fastify/multipart';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { AppError } from '../../../domain/errors.js';
import type { RecordingView } from '../../../services/recordings/recording.service.js';
import { actorOf } from '../../plugins/auth.js';
import type { RouteOptions } from '../../server.js';
import {
  created,
  exportQuery,
  exportResponse,
  idParams,
  listQuery,
  listResponse,
  noContent,
  recordingResponse,
  reportResponse,
  transcriptEdit,
  transcriptQuery,
  transcriptResponse,
  uploadFields,
} from './schema.js';
import { liveCreate, liveCreated } from './live.schema.js';
import { readUploadForm } from './upload.form.js';

const recording = (r: RecordingView) => ({
  ...r,
  createdAt: r.createdAt.toISOString(),
  completedAt: r.completedAt ? r.completedAt.toISOString() : null,
});

/**
 * Content-Disposition for a download: a plain ASCII `filename` (the export's slug, for old
 * clients) and the title itself as RFC 8187 `filename*` UTF-8. Quotes, backslashes, path
 * separators, control characters (C0, C1) and bidirectional controls cannot reach the header from
 * either.
 */
function attachment(asciiName: string, title: string, extension: string): string {
  const safeAscii = asciiName.replace(/[^A-Za-z0-9._-]/g, '_');
  const cleaned = title
    // Bidirectional controls (embeddings, overrides, isolates, marks) would let a title show a
    // different name or extension than the file really has ("invoice\u202Etxt.exe").
    .replace(/[\u202a-\u202e\u2066-\u2069\u200e\u200f\u061c]/g, '')
    // eslint-disable-next-line no-control-regex -- stripping control characters is the point
    .replace(/[\u0000-\u001f\u007f-\u009f/\\"]/g, ' ')
    .replace(/\s+/g, ' ')
    .trim();
  // By code point: cutting inside a surrogate pair would make encodeURIComponent throw.
  const display = `${Array.from(cleaned).slice(0, 120).join('') || 'transcript'}.${extension}`;
  const encoded = encodeURIComponent(display).replace(
    /['()*]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase()}`,
  );
  return `attachment; filename="${safeAscii}"; filename*=UTF-8''${encoded}`;
}

/**
 * /api/v1/recordings: upload, list and search, status, transcript (read, edit, export, report),
 * delete. A recording the caller may not see (another org's, or a colleague's for a member) is
 * 404, exactly like one that does not exist.
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
      // Upload (recordings.create) or a live recording (live.ingest): the service checks which.
      onRequest: app.requireAnyPermission(['recordings.create', 'live.ingest']),
      // The body deadline is a minimum rate, not a fixed time (plugins/request-deadline.ts).
      config: { upload: true },
      schema: {
        tags,
        security,
        consumes: ['multipart/form-data'],
        response: { 201: liveCreated, 202: created },
      },
    },
    async (req, reply) => {
      const actor = actorOf(req);
      // A live recording has no audio yet: JSON {mode: "live", title?} (docs/live.md).
      const body = req.body as { mode?: unknown } | undefined;
      if (!req.isMultipart() && body?.mode === 'live') {
        const live = liveCreate.safeParse(body);
        if (!live.success)
          throw new AppError('validation_failed', 'The request did not match the expected shape', {
            errors: live.error.issues.map((i) => ({
              path: ['body', ...i.path].join('.'),
              message: i.message,
            })),
          });
        const { id } = await services.live.create(actor, live.data);
        return reply.code(201).send({ id, status: 'live' as const });
      }
      if (!req.isMultipart())
        throw new AppError(
          'unsupported_media_type',
          'Send multipart/form-data with the audio in an "audio" field',
        );
      const form = await readUploadForm(
        req,
        (file) => services.recordings.stage(actor, file),
        (file) => services.recordings.discard(file),
      );
      let staged: string | undefined = form.staged;
      try {
        const parsed = uploadFields.safeParse(form.fields);
        if (!parsed.success)
          throw new AppError('validation_failed', 'The request did not match the expected shape', {
            errors: parsed.error.issues.map((i) => ({
              path: ['body', ...i.path].join('.'),
              message: i.message,
            })),
          });
        staged = undefined; // the service owns it now (and removes it if it refuses the file)
        const result = await services.recordings.create(actor, { file: form.staged, ...parsed.data });
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
      const { q, speaker, limit, after, ...filter } = req.query;
      const page = { limit, after, filter };
      if (q || speaker) {
        const found = await services.search.search(actorOf(req), { q, speaker, ...page });
        return { items: found.items.map(recording), next: found.next, scan: found.scan };
      }
      const found = await services.recordings.list(actorOf(req), page);
      return { items: found.items.map(recording), next: found.next };
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
      schema: {
        tags,
        security,
        params: idParams,
        querystring: transcriptQuery,
        response: { 200: transcriptResponse },
      },
    },
    async (req) => services.transcripts.get(actorOf(req), req.params.id, req.query.version),
  );

  app.patch(
    '/:id/transcript',
    {
      // Support staff read through a grant but never change the customer's data (403, as delete).
      onRequest: app.requirePermission('recordings.create'),
      schema: {
        tags,
        security,
        params: idParams,
        body: transcriptEdit,
        response: { 200: transcriptResponse },
      },
    },
    async (req) => services.transcripts.edit(actorOf(req), req.params.id, req.body),
  );

  app.get(
    '/:id/export',
    {
      onRequest: app.requirePermission('recordings.read'),
      schema: {
        tags,
        security,
        params: idParams,
        querystring: exportQuery,
        response: { 200: exportResponse },
      },
    },
    async (req, reply) => {
      const { file, title } = await services.transcripts.export(
        actorOf(req),
        req.params.id,
        req.query.format,
      );
      return (
        reply
          .type(file.contentType)
          .header('content-disposition', attachment(file.filename, title, file.extension))
          .header('cache-control', 'no-store')
          .header('x-content-type-options', 'nosniff')
          // Bytes go out as they are (Fastify never re-serialises a Buffer); the typed reply only
          // knows the documented shapes, hence the cast.
          .send(file.body as unknown as string)
      );
    },
  );

  app.get(
    '/:id/report',
    {
      onRequest: app.requirePermission('recordings.read'),
      schema: { tags, security, params: idParams, response: { 200: reportResponse } },
    },
    async (req) => services.transcripts.report(actorOf(req), req.params.id),
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
