import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Services } from '../../app.js';
import { AppError } from '../../domain/errors.js';
import type { WorkerPrincipal } from '../../services/transcription/worker-token.service.js';
import { bearerToken } from './auth.js';

declare module 'fastify' {
  interface FastifyRequest {
    worker: WorkerPrincipal | null;
  }
  interface FastifyInstance {
    /** onRequest: requires a valid, unrevoked worker token (user access tokens are refused). */
    authenticateWorker: (req: FastifyRequest) => Promise<void>;
  }
}

/**
 * Worker-token authentication for /api/v1/worker. The two credential kinds never cross: a user
 * access token is not a worker token (refused here with 401), and a worker token is not a JWT
 * (the user routes refuse it with 401). Revocation is seen on the very next request: the token
 * row is read each time.
 */
export const workerAuthPlugin = fp(
  async (app: FastifyInstance, opts: { services: Services }) => {
    const { workerTokens } = opts.services;
    app.decorateRequest('worker', null);
    app.decorate('authenticateWorker', async (req: FastifyRequest) => {
      if (req.worker) return;
      const token = bearerToken(req);
      if (!token)
        throw new AppError('unauthenticated', 'Send a worker token: Authorization: Bearer sotto_wkr_…');
      req.worker = await workerTokens.authenticate(token);
    });
  },
  { name: 'sotto-worker-auth' },
);

/** The worker of an authenticated worker route (the onRequest hook guarantees it). */
export function workerOf(req: FastifyRequest): WorkerPrincipal {
  if (!req.worker) throw new AppError('unauthenticated');
  return req.worker;
}
