import type { FastifyInstance, FastifyRequest } from 'fastify';
import fp from 'fastify-plugin';
import type { Actor } from '../../domain/auth-context.js';
import { AppError } from '../../domain/errors.js';
import { actorCan } from '../../domain/api-scopes.js';
import type { Permission } from '../../domain/roles.js';
import type { Services } from '../../app.js';

declare module 'fastify' {
  interface FastifyRequest {
    actor: Actor | null;
  }
  interface FastifyInstance {
    /** preHandler: requires a valid bearer access token and a live session. */
    authenticate: (req: FastifyRequest) => Promise<void>;
    /** preHandler factory: requires authentication and a permission of the actor's role. */
    requirePermission: (permission: Permission) => (req: FastifyRequest) => Promise<void>;
    /** preHandler factory: like requirePermission, passing when ANY of the permissions is held. */
    requireAnyPermission: (permissions: readonly Permission[]) => (req: FastifyRequest) => Promise<void>;
  }
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function bearerToken(req: FastifyRequest): string | undefined {
  const header = req.headers.authorization;
  if (!header) return undefined;
  // The scheme is case-insensitive (RFC 9110 §11.1), one or more spaces before the token68.
  const match = /^bearer +([A-Za-z0-9._~+/-]+=*)$/i.exec(header);
  return match?.[1];
}

/**
 * Names a guard after the permissions it checks, so `printRoutes({ includeHooks: true })` shows
 * every route's requirement (test/api-tokens.spec.ts walks all routes with it).
 */
function guardNamed<T extends (req: FastifyRequest) => Promise<void>>(
  wanted: readonly Permission[],
  fn: T,
): T {
  return Object.defineProperty(fn, 'name', { value: `requirePermission(${wanted.join('|')})` });
}

/** Resolves the actor on routes that ask for it, and audits every request made through a support grant. */
export const authPlugin = fp(async (app: FastifyInstance, opts: { services: Services }) => {
  const { actors, audit } = opts.services;
  app.decorateRequest('actor', null);

  app.decorate('authenticate', async (req: FastifyRequest) => {
    if (req.actor) return;
    const token = bearerToken(req);
    if (!token) throw new AppError('unauthenticated', 'Send an access token: Authorization: Bearer <token>');
    const orgHeader = req.headers['x-sotto-org'];
    const supportOrg =
      typeof orgHeader === 'string' && UUID.test(orgHeader) ? orgHeader.toLowerCase() : undefined;
    req.actor = await actors.resolve(token, req.ip, supportOrg);
  });

  app.decorate('requirePermission', (permission: Permission) =>
    guardNamed([permission], async (req: FastifyRequest) => {
      await app.authenticate(req);
      if (!actorCan(req.actor!, permission)) throw new AppError('forbidden', 'Your role does not allow this');
    }),
  );

  app.decorate('requireAnyPermission', (wanted: readonly Permission[]) =>
    guardNamed(wanted, async (req: FastifyRequest) => {
      await app.authenticate(req);
      if (!wanted.some((p) => actorCan(req.actor!, p)))
        throw new AppError('forbidden', 'Your role does not allow this');
    }),
  );

  app.addHook('onResponse', async (req, reply) => {
    const actor = req.actor;
    if (!actor?.viaSupportGrant) return;
    await audit.recordStandalone({
      orgId: actor.orgId,
      actorId: actor.userId,
      actorKind: 'support',
      action: 'support.access',
      ip: actor.ip,
      details: { method: req.method, route: req.routeOptions.url ?? 'unknown', status: reply.statusCode },
    });
  });
});

/** The actor of an authenticated route (the preHandler guarantees it). */
export function actorOf(req: FastifyRequest): Actor {
  if (!req.actor) throw new AppError('unauthenticated');
  return req.actor;
}
