import type { FastifyReply, FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { SsoLoginError, type SsoOutcome } from '../../../services/sso/sso.service.js';
import type { RouteOptions } from '../../server.js';
import { NO_CONTROL } from '../text.schema.js';
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
  // No control characters: a NUL reached PostgreSQL's domain lookup as an encoding error (the
  // fuzzer's finding, docs/security-fuzz.md); no address or domain contains one.
  email: z.string().trim().max(320).regex(NO_CONTROL).optional(),
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

/**
 * The end of a sign-in, OIDC or SAML: a session (refresh cookie, then the panel), or a pending
 * link of an existing account — its handle replaces the flow handle in the Lax flow cookie (the
 * same browser-binding), and the login page asks for the account's password (+ code).
 */
export function finishTo(reply: FastifyReply, r: SsoOutcome, now: Date, status: 302 | 303) {
  if (r.kind === 'link') {
    reply.setCookie(SSO_COOKIE, r.handle, { ...ssoCookie, maxAge: r.ttlSeconds });
    return reply.redirect('/login?sso_link=1', status);
  }
  reply.clearCookie(SSO_COOKIE, ssoCookie);
  setRefreshCookie(reply, r.refreshToken, r.sessionExpiresAt, now);
  // The panel trades the refresh cookie for an access token when it loads.
  return reply.redirect('/', status);
}

const linkBody = z.strictObject({
  password: z.string().min(1).max(1024),
  code: z.string().trim().max(64).optional(),
});

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
        return finishTo(reply, r, services.clock.now(), 302);
      } catch (err) {
        return failure(req, reply, err);
      }
    },
  );

  // The link step of an existing account (docs/sso.md): the pending link rides on the flow
  // cookie of the browser that ran the sign-in; the password (+ code) proves the account.
  // JSON only (no form post from another site), and nothing opens without the password.
  app.post('/link', { schema: { tags, body: linkBody, response: { 204: z.null() } } }, async (req, reply) => {
    const handle = req.cookies[SSO_COOKIE] || undefined;
    // Single use whatever the outcome: the cookie goes too.
    reply.clearCookie(SSO_COOKIE, ssoCookie);
    const r = await services.sso.confirmLink(handle, req.body.password, req.body.code || undefined, {
      ip: req.ip,
      userAgent: typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'] : '',
    });
    setRefreshCookie(reply, r.refreshToken, r.sessionExpiresAt, services.clock.now());
    return reply.status(204).send(null);
  });
};

export default ssoRoutes;
