import Fastify, { type FastifyBaseLogger, type FastifyInstance } from 'fastify';
import cookie from '@fastify/cookie';
import websocket from '@fastify/websocket';
import helmet from '@fastify/helmet';
import swagger from '@fastify/swagger';
import swaggerUi from '@fastify/swagger-ui';
import { jsonSchemaTransform, serializerCompiler, validatorCompiler } from 'fastify-type-provider-zod';
import type { Services } from '../app.js';
import { authPlugin } from './plugins/auth.js';
import { frameworkErrors, registerErrorHandler } from './plugins/error-handler.js';
import { rateLimitPlugin } from './plugins/rate-limit.js';
import { saturationPlugin } from './plugins/saturation.js';
import { requestDeadlinePlugin, serverDeadlines, tlsServerDeadlines } from './plugins/request-deadline.js';
import { upgradeGuardPlugin } from './plugins/upgrade-guard.js';
import { workerAuthPlugin } from './plugins/worker-auth.js';
import auditRoutes from './routes/audit/index.js';
import authRoutes from './routes/auth/index.js';
import healthRoutes from './routes/health/index.js';
import invitationRoutes from './routes/invitations/index.js';
import meRoutes from './routes/me/index.js';
import lifecycleRoutes from './routes/lifecycle/index.js';
import orgRoutes from './routes/org/index.js';
import recordingRoutes from './routes/recordings/index.js';
import liveRoutes, { liveWebsocketOptions } from './routes/recordings/live.js';
import recordingAudioRoutes from './routes/recordings/audio.js';
import recordingRetryRoutes from './routes/recordings/retry.js';
import supportRoutes from './routes/support/index.js';
import orgWorkerRoutes from './routes/org/workers.js';
import orgTranscriptionRoutes from './routes/org/transcription.js';
import orgArchiveRoutes from './routes/org/archive.js';
import orgExportRoutes from './routes/org/exports.js';
import orgSsoRoutes from './routes/org/sso.js';
import ssoRoutes from './routes/auth/sso.js';
import samlRoutes from './routes/auth/sso-saml.js';
import apiTokenRoutes from './routes/tokens/index.js';
import webhookRoutes from './routes/webhooks/index.js';
import workerRoutes from './routes/worker/index.js';
import { registerWebPanel } from './web-panel.js';

export interface ServerOptions {
  services: Services;
  /** TLS material when Sotto terminates TLS itself; omitted behind a trusted proxy and in inject-only tests. */
  https?: { key: string | Buffer; cert: string | Buffer } | undefined;
  /** The built web panel (default dist/web); the server is API-only when it is absent. */
  webRoot?: string | undefined;
}

export const HSTS_MAX_AGE = 63_072_000; // two years

/**
 * Builds the HTTP application (no listening). Route modules are thin: they parse with their zod
 * schemas, call one service and shape the answer.
 */
export async function buildServer({ services, https, webRoot }: ServerOptions): Promise<FastifyInstance> {
  const { config } = services;
  const app = Fastify({
    loggerInstance: services.logger as FastifyBaseLogger,
    ...(https
      ? {
          https: {
            ...https,
            minVersion: 'TLSv1.3' as const,
            maxVersion: 'TLSv1.3' as const,
            ...tlsServerDeadlines(config.http),
          },
          http2: false,
        }
      : { http: serverDeadlines(config.http) }),
    trustProxy: config.trustProxy ?? false,
    bodyLimit: config.bodyLimitBytes,
    // Request ids are ours, never taken from a client header (they end up in logs).
    genReqId: () => crypto.randomUUID(),
    ajv: { customOptions: { removeAdditional: false } },
    routerOptions: { maxParamLength: 200 },
    // Router errors (bad percent-encoding, over-long params) become problem+json like all others.
    frameworkErrors,
  }) as unknown as FastifyInstance; // the https variant is the same API over a TLS socket
  app.setValidatorCompiler(validatorCompiler);
  app.setSerializerCompiler(serializerCompiler);
  registerErrorHandler(app);

  await app.register(helmet, {
    hsts: { maxAge: HSTS_MAX_AGE, includeSubDomains: true, preload: false },
    contentSecurityPolicy: {
      useDefaults: false,
      directives: {
        defaultSrc: ["'self'"],
        baseUri: ["'none'"],
        objectSrc: ["'none'"],
        frameAncestors: ["'none'"],
        formAction: ["'self'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", 'data:', 'blob:'],
        // Audio streams from the server through a playback ticket; no blob: media is made.
        mediaSrc: ["'self'"],
        connectSrc: ["'self'"],
        upgradeInsecureRequests: [],
      },
    },
    referrerPolicy: { policy: 'no-referrer' },
    crossOriginEmbedderPolicy: false,
  });
  await app.register(cookie);
  // First of the request hooks: a saturated node refuses before doing any work (docs/deployment.md).
  await app.register(saturationPlugin, config.saturation);
  // Before any route: it must see every upgrade request (docs/live.md).
  await app.register(websocket, liveWebsocketOptions(config));
  // Right after it: upgrades anywhere but a websocket route are refused before the handshake.
  await app.register(upgradeGuardPlugin);
  await app.register(requestDeadlinePlugin, { deadlines: config.http });
  // Before any route is registered: it attaches each route's limit as the route is added.
  await app.register(rateLimitPlugin, {
    limits: services.rateLimits,
    policy: {
      api: { points: config.rateLimitPerMinute.api, durationSeconds: 60 },
      auth: { points: config.rateLimitPerMinute.auth, durationSeconds: 60 },
    },
  });

  // API answers carry credentials and private data: never cache them anywhere.
  app.addHook('onSend', async (req, reply) => {
    if (req.url.startsWith('/api/')) reply.header('cache-control', 'no-store');
  });

  await app.register(swagger, {
    openapi: {
      info: { title: 'Sotto API', version: '1' },
      components: { securitySchemes: { bearer: { type: 'http', scheme: 'bearer', bearerFormat: 'JWT' } } },
    },
    // A module's root route ('/' under its prefix) answers with and without the slash; the
    // document names it without, as clients (the panel's generated client too) call it.
    transform: (input) => {
      const out = jsonSchemaTransform(input);
      return { ...out, url: out.url.replace(/(.)\/$/, '$1') };
    },
  });
  await app.register(swaggerUi, { routePrefix: '/api/docs', staticCSP: true });

  await app.register(authPlugin, { services });
  await app.register(workerAuthPlugin, { services });
  await app.register(healthRoutes, { services });
  await app.register(authRoutes, { prefix: '/api/v1/auth', services });
  await app.register(meRoutes, { prefix: '/api/v1', services });
  await app.register(lifecycleRoutes, { prefix: '/api/v1', services });
  await app.register(orgRoutes, { prefix: '/api/v1/org', services });
  await app.register(auditRoutes, { prefix: '/api/v1/audit', services });
  await app.register(recordingRoutes, { prefix: '/api/v1/recordings', services });
  await app.register(liveRoutes, { prefix: '/api/v1/recordings', services });
  await app.register(recordingAudioRoutes, { prefix: '/api/v1/recordings', services });
  await app.register(recordingRetryRoutes, { prefix: '/api/v1/recordings', services });
  await app.register(orgWorkerRoutes, { prefix: '/api/v1/org/workers', services });
  await app.register(orgTranscriptionRoutes, { prefix: '/api/v1/org/transcription', services });
  await app.register(orgArchiveRoutes, { prefix: '/api/v1/org/archive', services });
  await app.register(orgExportRoutes, { prefix: '/api/v1/org', services });
  await app.register(orgSsoRoutes, { prefix: '/api/v1/org/sso', services });
  await app.register(ssoRoutes, { prefix: '/api/v1/auth/sso', services });
  await app.register(samlRoutes, { prefix: '/api/v1/auth/sso/saml', services });
  await app.register(apiTokenRoutes, { prefix: '/api/v1/tokens', services });
  await app.register(webhookRoutes, { prefix: '/api/v1/org/webhooks', services });
  // Remote transcription workers (worker tokens only).
  await app.register(workerRoutes, { prefix: '/api/v1/worker', services });
  // POST /api/v1/auth/accept-invitation (kept beside the rest of the invitation flow).
  await app.register(invitationRoutes, { prefix: '/api/v1', services });
  // Platform support: the organizations whose grant lets them in (GET /api/v1/support/orgs).
  await app.register(supportRoutes, { prefix: '/api/v1/support', services });
  // Last: its catch-all GET must not shadow any API route (it refuses /api/* itself too).
  await registerWebPanel(app, webRoot);
  return app;
}

/** Options every route module receives. */
export interface RouteOptions {
  services: Services;
}
