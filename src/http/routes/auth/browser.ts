import csrfProtection from '@fastify/csrf-protection';
import type { FastifyInstance, FastifyReply, FastifyRequest } from 'fastify';

/**
 * Browser clients keep the refresh token out of JavaScript's reach: it lives in a `__Host-`
 * cookie (Secure, HttpOnly, SameSite=Strict, Path=/, no Domain — a sibling subdomain cannot set
 * or overwrite it). A request authenticated by that cookie alone could be forged by another
 * site, so it must also carry a CSRF token: @fastify/csrf-protection with its secret in a second
 * `__Host-` cookie and the token in the X-CSRF-Token header (synchroniser token bound to the
 * secret cookie; the `__Host-` prefix rules out cookie tossing). API clients send the refresh
 * token in the body and need none of this.
 */
export const REFRESH_COOKIE = '__Host-sotto_refresh';
export const CSRF_COOKIE = '__Host-sotto_csrf';
export const CSRF_HEADER = 'x-csrf-token';
export const CLIENT_HEADER = 'x-sotto-client';

const hostCookie = { path: '/', secure: true, httpOnly: true, sameSite: 'strict' } as const;

export async function registerCsrf(app: FastifyInstance): Promise<void> {
  await app.register(csrfProtection, {
    cookieKey: CSRF_COOKIE,
    cookieOpts: hostCookie,
    getToken: (req) => {
      const v = req.headers[CSRF_HEADER];
      return typeof v === 'string' ? v : undefined;
    },
  });
}

export function wantsBrowserMode(req: FastifyRequest, bodyFlag?: 'browser' | 'api'): boolean {
  if (bodyFlag) return bodyFlag === 'browser';
  return req.headers[CLIENT_HEADER] === 'browser';
}

export function refreshCookieOf(req: FastifyRequest): string | undefined {
  const v = req.cookies[REFRESH_COOKIE];
  return v ? v : undefined;
}

export function setRefreshCookie(
  reply: FastifyReply,
  token: string,
  sessionExpiresAt: Date,
  now: Date,
): void {
  const maxAge = Math.max(0, Math.floor((sessionExpiresAt.getTime() - now.getTime()) / 1000));
  reply.setCookie(REFRESH_COOKIE, token, { ...hostCookie, maxAge });
}

export function clearRefreshCookie(reply: FastifyReply): void {
  reply.clearCookie(REFRESH_COOKIE, hostCookie);
}

/** preHandler: runs the CSRF check only when `needed` says the request rides on the cookie. */
export function csrfWhen(app: FastifyInstance, needed: (req: FastifyRequest) => boolean) {
  return (req: FastifyRequest, reply: FastifyReply, done: (err?: Error) => void) => {
    if (!needed(req)) return done();
    app.csrfProtection(req, reply, done);
  };
}
