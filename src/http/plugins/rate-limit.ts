import type { FastifyInstance, FastifyReply, FastifyRequest, onRequestAsyncHookHandler } from 'fastify';
import fp from 'fastify-plugin';
import { AppError } from '../../domain/errors.js';
import {
  networkKey,
  type LimiterSpec,
  type LimitState,
  type RateLimitStore,
} from '../../adapters/redis/rate-limit.adapter.js';

/**
 * Per-route rate limits (docs/architecture.md, "Security model": abuse). Every /api route is
 * limited per client network by default (`policy.api`), the routes under /api/v1/auth/ more
 * tightly (`policy.auth`); a route declares its own limit in its options:
 *
 *   app.post('/x', { config: { rateLimit: { points: 5, durationSeconds: 60, key: 'user' } } }, …)
 *
 * `key: 'ip'` replaces the default per-network limit. `key: 'user'` adds a per-user limit, checked
 * after authentication, on top of the per-network default (which still bounds unauthenticated
 * floods). `rateLimit: false` exempts a route. Each route counts separately, except routes that
 * name the same `bucket` (audio playback), which share one count; requests to unknown /api paths
 * share one bucket with the api default. Over the limit: 429 problem+json
 * `rate_limited` with Retry-After. Every limited answer carries RateLimit-Limit, -Remaining,
 * -Reset (seconds) and RateLimit-Policy (`<points>;w=<seconds>`) of its tightest limit.
 *
 * Client networks are `req.ip` (honours SOTTO_TRUST_PROXY, so only trusted proxies can name the
 * client) with IPv6 counted per /64.
 */
export interface RouteRateLimit {
  points: number;
  durationSeconds: number;
  /** Whose budget: the client network (default) or the authenticated user. */
  key?: 'ip' | 'user';
  /**
   * A counter shared by every route that names it (audio playback: the bearer route and the
   * ticket route spend one budget), kept apart from the API default's.
   */
  bucket?: string;
}

export interface RateLimitPolicy {
  /** Default for every route under /api/. */
  api: RouteRateLimit;
  /** Default for routes under /api/v1/auth/ (credential endpoints). */
  auth: RouteRateLimit;
}

export const defaultRateLimitPolicy: RateLimitPolicy = {
  api: { points: 300, durationSeconds: 60 },
  auth: { points: 20, durationSeconds: 60 },
};

declare module 'fastify' {
  interface FastifyContextConfig {
    rateLimit?: RouteRateLimit | false;
  }
}

export interface RateLimitPluginOptions {
  limits: RateLimitStore;
  policy?: Partial<RateLimitPolicy>;
}

const API_PREFIX = '/api/';
const AUTH_PREFIX = '/api/v1/auth/';

function spec(name: string, limit: RouteRateLimit): LimiterSpec {
  return { name, points: limit.points, durationSeconds: limit.durationSeconds, inMemoryBlock: true };
}

function setHeaders(reply: FastifyReply, s: LimiterSpec, state: LimitState): void {
  const shown = reply.getHeader('ratelimit-remaining');
  // Several limits may apply; the client should see the one it will hit first.
  if (shown !== undefined && Number(shown) < state.remaining) return;
  const reset = state.msBeforeNext < 0 ? s.durationSeconds : Math.ceil(state.msBeforeNext / 1000);
  reply.header('ratelimit-limit', String(s.points));
  reply.header('ratelimit-remaining', String(state.allowed ? state.remaining : 0));
  reply.header('ratelimit-reset', String(reset));
  reply.header('ratelimit-policy', `${s.points};w=${s.durationSeconds}`);
}

async function enforce(
  limits: RateLimitStore,
  reply: FastifyReply,
  s: LimiterSpec,
  key: string,
): Promise<void> {
  const state = await limits.consume(s, key);
  setHeaders(reply, s, state);
  if (!state.allowed) {
    throw new AppError('rate_limited', 'Too many requests. Slow down and retry later.', {
      retryAfterSeconds: Math.max(1, Math.ceil(state.msBeforeNext / 1000)),
    });
  }
}

function asArray<T>(v: T | T[] | undefined): T[] {
  return v === undefined ? [] : Array.isArray(v) ? v : [v];
}

export const rateLimitPlugin = fp(
  async (app: FastifyInstance, opts: RateLimitPluginOptions) => {
    const { limits } = opts;
    const policy = { ...defaultRateLimitPolicy, ...opts.policy };

    app.addHook('onRoute', (route) => {
      const declared = route.config?.rateLimit;
      if (declared === false) return;
      const underApi = route.url.startsWith(API_PREFIX);
      if (!underApi && !declared) return;
      const routeId = `${asArray(route.method).join(',')} ${route.url}`;
      const fallback = route.url.startsWith(AUTH_PREFIX) ? policy.auth : policy.api;
      const byUser = declared && declared.key === 'user' ? declared : undefined;
      const byNetwork = declared && declared.key !== 'user' ? declared : underApi ? fallback : undefined;

      if (byNetwork) {
        const s = spec(byNetwork.bucket ? `bucket:${byNetwork.bucket}` : `route:${routeId}`, byNetwork);
        const hook: onRequestAsyncHookHandler = async (req, reply) =>
          enforce(limits, reply, s, networkKey(req.ip));
        route.onRequest = [hook, ...asArray(route.onRequest)];
      }
      if (byUser) {
        const s = spec(byUser.bucket ? `bucket-user:${byUser.bucket}` : `route-user:${routeId}`, byUser);
        // After the route's own preHandlers (authentication), so the actor is known.
        const hook = async (req: FastifyRequest, reply: FastifyReply) => {
          const userId = req.actor?.userId;
          await enforce(limits, reply, s, userId ? `user:${userId}` : networkKey(req.ip));
        };
        route.preHandler = [...asArray(route.preHandler), hook];
      }
    });

    // Unknown paths under /api/ (scanners, typos) share one per-network budget.
    const unmatched = spec('route:unmatched', policy.api);
    app.addHook('onRequest', async (req, reply) => {
      if (req.is404 && req.url.startsWith(API_PREFIX))
        await enforce(limits, reply, unmatched, networkKey(req.ip));
    });
  },
  { name: 'sotto-rate-limit' },
);
