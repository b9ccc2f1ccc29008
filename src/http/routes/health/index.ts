import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { RouteOptions } from '../../server.js';
import { healthResponse, readyResponse } from './schema.js';

/** Liveness, readiness and the RFC 9116 security.txt. Unauthenticated by design. */
const healthRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  app.get('/healthz', { schema: { hide: true, response: { 200: healthResponse } } }, async () => ({
    status: 'ok' as const,
  }));

  app.get(
    '/readyz',
    { schema: { hide: true, response: { 200: readyResponse, 503: readyResponse } } },
    async (_req, reply) => {
      const [r, key] = await Promise.all([
        services.health.readiness(),
        // An old key is a warning for the operator, not a reason to take the node out of service.
        services.keyAge.activeKey().catch(() => ({ status: 'unknown' as const })),
      ]);
      const saturated = app.isUnderPressure();
      const ready = r.ready && !saturated;
      return reply.status(ready ? 200 : 503).send({
        status: ready ? 'ok' : 'unavailable',
        checks: {
          database: r.database,
          redis: r.redis,
          disk: r.disk,
          storage: r.storage,
          engine: r.engine.status,
          remoteWorkers: r.remoteWorkers,
          publicUrl: r.publicUrl,
          masterKeyAge: key.status,
          load: saturated ? ('saturated' as const) : ('ok' as const),
        },
        engine: r.engine,
      });
    },
  );

  app.get('/.well-known/security.txt', { schema: { hide: true } }, async (_req, reply) => {
    const expires = new Date(services.clock.now().getTime() + 180 * 24 * 3600 * 1000);
    const body = [
      `Contact: ${services.config.securityContact}`,
      `Expires: ${expires.toISOString().replace(/\.\d{3}Z$/, 'Z')}`,
      'Preferred-Languages: en',
      `Canonical: ${services.config.publicUrl}/.well-known/security.txt`,
      '',
    ].join('\n');
    return reply.type('text/plain; charset=utf-8').send(body);
  });
};

export default healthRoutes;
