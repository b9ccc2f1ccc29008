import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { RouteRateLimit } from '../../plugins/rate-limit.js';
import { workerOf } from '../../plugins/worker-auth.js';
import type { RouteOptions } from '../../server.js';
import {
  COMPLETE_BODY_LIMIT,
  audioQuery,
  claimResponse,
  completeBody,
  failBody,
  failResponse,
  heartbeatBody,
  heartbeatResponse,
  jobParams,
  noContent,
  okResponse,
  releaseBody,
  whoamiResponse,
} from './schema.js';

/**
 * /api/v1/worker: the remote transcription worker protocol (docs/workers.md). Worker tokens only
 * (user access tokens get 401); a worker reaches only the job it holds, with the lease it got.
 *
 * Rate limit: per client network like every /api route, but higher than the user default: a GPU
 * node runs several job slots, each polling for work and heartbeating. 600 a minute per route
 * still stops a stolen token from hammering the queue.
 */
const WORKER_RATE: RouteRateLimit = { points: 600, durationSeconds: 60 };

const workerRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  const tags = ['worker'];
  const security = [{ bearer: [] }];
  const onRequest = app.authenticateWorker;
  const config = { rateLimit: WORKER_RATE };
  const jobs = services.jobQueue;

  app.get(
    '/whoami',
    { onRequest, config, schema: { tags, security, response: { 200: whoamiResponse } } },
    async (req) => {
      const w = workerOf(req);
      return { id: w.tokenId, name: w.name, orgId: w.orgId };
    },
  );

  app.post(
    '/jobs/claim',
    { onRequest, config, schema: { tags, security, response: { 200: claimResponse, 204: noContent } } },
    async (req, reply) => {
      const job = await jobs.claim(workerOf(req));
      if (!job) return reply.status(204).send(null);
      return {
        job: {
          id: job.recordingId,
          leaseId: job.leaseId,
          leaseSeconds: jobs.leaseSeconds,
          language: job.language,
          speakersHint: job.speakersHint,
        },
      };
    },
  );

  app.get(
    '/jobs/:id/audio',
    { onRequest, config, schema: { tags, security, params: jobParams, querystring: audioQuery } },
    async (req, reply) => {
      const audio = await jobs.workerAudio(workerOf(req), req.params.id, req.query.lease);
      return reply
        .header('content-type', audio.contentType)
        .header('content-length', String(audio.size))
        .header('content-disposition', 'attachment')
        .send(audio.stream);
    },
  );

  app.post(
    '/jobs/:id/heartbeat',
    {
      onRequest,
      config,
      schema: {
        tags,
        security,
        params: jobParams,
        body: heartbeatBody,
        response: { 200: heartbeatResponse },
      },
    },
    async (req) => {
      await jobs.workerHeartbeat(workerOf(req), req.params.id, req.body.leaseId, req.body.progress);
      return { leaseSeconds: jobs.leaseSeconds };
    },
  );

  app.post(
    '/jobs/:id/complete',
    {
      onRequest,
      config,
      bodyLimit: COMPLETE_BODY_LIMIT,
      schema: { tags, security, params: jobParams, body: completeBody, response: { 200: okResponse } },
    },
    async (req) => {
      const { leaseId, segments, speakers, durationSeconds, channels, engine } = req.body;
      await jobs.workerComplete(workerOf(req), req.params.id, leaseId, {
        body: { segments, speakers },
        durationSeconds,
        channels,
        engine,
      });
      return { ok: true as const };
    },
  );

  app.post(
    '/jobs/:id/fail',
    {
      onRequest,
      config,
      schema: { tags, security, params: jobParams, body: failBody, response: { 200: failResponse } },
    },
    async (req) => ({
      outcome: await jobs.workerFail(workerOf(req), req.params.id, req.body.leaseId, req.body.code),
    }),
  );

  app.post(
    '/jobs/:id/release',
    {
      onRequest,
      config,
      schema: { tags, security, params: jobParams, body: releaseBody, response: { 200: okResponse } },
    },
    async (req) => {
      await jobs.workerRelease(workerOf(req), req.params.id, req.body.leaseId, req.body.delaySeconds);
      return { ok: true as const };
    },
  );
};

export default workerRoutes;
