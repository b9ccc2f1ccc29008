import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { SsoLoginError } from '../../../services/sso.service.js';
import type { RouteOptions } from '../../server.js';
import { setRefreshCookie } from './browser.js';

/**
 * The sign-in flow state travels as a random handle in this cookie; the state, nonce and PKCE
 * verifier stay in the database (sso_login_states, single use, 10 minutes). SameSite=Lax, not
 * Strict: the callback is a top-level navigation coming back from the IdP's site, and a Strict
 * cookie would not be sent with it. `__Host-` pins it to this origin (no Domain, Path=/, Secure).
 */
export const SSO_COOKIE = '__Host-sotto_sso';
export const ssoCookie = { path: '/', secure: true, httpOnly: true, sameSite: 'lax' } as const;
/**
 * SAML only: the same handle again, SameSite=None, because the IdP answers with a cross-site
 * form POST that carries no Lax cookie. It binds that POST to the browser that started the
 * sign-in (no login CSRF); it opens nothing by itself (the ACS also needs the matching
 * RelayState and a signed response to the stored AuthnRequest).
 */
export const SAML_COOKIE = '__Host-sotto_saml';
export const samlCookie = { path: '/', secure: true, httpOnly: true, sameSite: 'none' } as const;

const MAX_QUERY = 8192;
const startQuery = z.strictObject({
  email: z.string().trim().max(320).optional(),
  org: z
    .string()
    .trim()
    .max(64)
    .regex(/^[A-Za-z0-9-]*$/)
    .optional(),
});
// The IdP's answer: openid-client reads the raw query itself; this only bounds it.
const callbackQuery = z.looseObject({
  code: z.string().max(2048).optional(),
  state: z.string().max(1024).optional(),
  error: z.string().max(256).optional(),
});
const redirect = z.undefined();

const failTo = (code: string) => `/login?sso_error=${encodeURIComponent(code)}`;

/** Anything unexpected becomes a generic code; details stay in the server log (no content). */
function failure(req: FastifyRequest, reply: FastifyReply, err: unknown) {
  reply.clearCookie(SSO_COOKIE, ssoCookie);
  if (err instanceof SsoLoginError) return reply.redirect(failTo(err.code), 302);
  req.log.error({ err }, 'sso sign-in failed');
  return reply.redirect(failTo('failed'), 302);
}

/**
 * /api/v1/auth/sso: browser sign-in through the org's OpenID Connect IdP (docs/sso.md). Both
 * routes answer with redirects, never with details: errors land on /login?sso_error=<code>.
 * They sit under /api/v1/auth/, so the auth rate limit (per client network) applies.
 */
const ssoRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  const tags = ['auth'];

  app.get(
    '/start',
    { schema: { tags, querystring: startQuery, response: { 302: redirect } } },
    async (req, reply) => {
      try {
        const r = await services.sso.start({ email: req.query.email, org: req.query.org });
        reply.setCookie(SSO_COOKIE, r.handle, { ...ssoCookie, maxAge: r.ttlSeconds });
        if (r.kind === 'saml')
          reply.setCookie(SAML_COOKIE, r.handle, { ...samlCookie, maxAge: r.ttlSeconds });
        return reply.redirect(r.url, 302);
      } catch (err) {
        return failure(req, reply, err);
      }
    },
  );

  app.get(
    '/callback',
    { schema: { tags, querystring: callbackQuery, response: { 302: redirect } } },
    async (req, reply) => {
      try {
        const raw = req.url.includes('?') ? req.url.slice(req.url.indexOf('?') + 1) : '';
        if (raw.length > MAX_QUERY) throw new SsoLoginError('state_invalid');
        const handle = req.cookies[SSO_COOKIE] || undefined;
        const r = await services.sso.callback(handle, raw, {
          ip: req.ip,
          userAgent: typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'] : '',
        });
        reply.clearCookie(SSO_COOKIE, ssoCookie);
        setRefreshCookie(reply, r.refreshToken, r.sessionExpiresAt, services.clock.now());
        // The panel trades the refresh cookie for an access token when it loads.
        return reply.redirect('/', 302);
      } catch (err) {
        return failure(req, reply, err);
      }
    },
  );
};

export default ssoRoutes;
