import type { FastifyInstance, FastifyRequest } from 'fastify';
import type { Services } from '../../../app.js';
import { AppError } from '../../../domain/errors.js';
import type { SessionActor } from '../../../services/auth/session.service.js';
import { bearerToken } from '../../plugins/auth.js';

declare module 'fastify' {
  interface FastifyRequest {
    /** Set by requireSession: the holder of a live session (org member or support account). */
    sessionActor: SessionActor | null;
  }
}

/**
 * Authentication for one's own account (me, devices, password, MFA). Unlike `app.authenticate`,
 * this does not act inside an org, so platform support accounts can manage their own sessions
 * and second factor without a customer's grant.
 */
export function sessionAuth(app: FastifyInstance, services: Services) {
  if (!app.hasRequestDecorator('sessionActor')) app.decorateRequest('sessionActor', null);
  return async (req: FastifyRequest): Promise<void> => {
    const token = bearerToken(req);
    if (!token) throw new AppError('unauthenticated', 'Send an access token: Authorization: Bearer <token>');
    req.sessionActor = await services.sessions.authenticate(token, req.ip);
  };
}

export function sessionActorOf(req: FastifyRequest): SessionActor {
  if (!req.sessionActor) throw new AppError('unauthenticated');
  return req.sessionActor;
}
