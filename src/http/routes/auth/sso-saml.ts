import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { z } from 'zod';
import { SsoLoginError } from '../../../services/sso/sso.service.js';
import type { RouteOptions } from '../../server.js';
import { finishTo, SAML_COOKIE, samlCookie, SSO_COOKIE, ssoCookie } from './sso.js';

/** A signed response with a few certificates and attributes is well under this. */
const ACS_BODY_LIMIT = 512 * 1024;
const METADATA_TYPE = 'application/samlmetadata+xml';

const metadataParams = z.strictObject({
  orgSlug: z
    .string()
    .max(64)
    .regex(/^[A-Za-z0-9-]+$/),
});
const metadataResponse = {
  description: 'The SP metadata of the org (entity id, ACS URL, signed assertions wanted)',
  content: { [METADATA_TYPE]: { schema: z.string() } },
};
// HTTP-POST binding: the IdP's auto-submitted form.
const acsBody = z.looseObject({
  SAMLResponse: z
    .string()
    .min(1)
    .max(ACS_BODY_LIMIT)
    .regex(/^[A-Za-z0-9+/=\s]+$/),
  RelayState: z.string().max(1024).optional(),
});
const redirect = z.undefined();

const failTo = (code: string) => `/login?sso_error=${encodeURIComponent(code)}`;

/**
 * /api/v1/auth/sso/saml: the SAML side of single sign-on (docs/sso.md). Sign-in starts at the
 * shared GET /api/v1/auth/sso/start (which sends an HTTP-Redirect AuthnRequest when the org's
 * connection is SAML); the IdP answers here.
 *
 * The ACS is the one route that accepts a cross-site form POST: it needs no CSRF token (the
 * IdP's page cannot have one) and reads no session cookie. What binds the POST to our request
 * is the RelayState handle (single use, stored hashed), the SameSite=None binding cookie of the
 * same value, and the signed InResponseTo of the AuthnRequest stored under that handle.
 */
const samlRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  const tags = ['auth'];

  // Form bodies are accepted in this plugin only (encapsulated), for the ACS.
  app.addContentTypeParser(
    'application/x-www-form-urlencoded',
    { parseAs: 'string', bodyLimit: ACS_BODY_LIMIT },
    (_req, body, done) => {
      done(null, Object.fromEntries(new URLSearchParams(body as string)));
    },
  );

  app.get(
    '/:orgSlug/metadata',
    { schema: { tags, params: metadataParams, response: { 200: metadataResponse } } },
    async (req, reply) => {
      const xml = await services.sso.saml.metadata(req.params.orgSlug);
      return reply.header('content-type', `${METADATA_TYPE}; charset=utf-8`).send(xml);
    },
  );

  app.post(
    '/acs',
    { bodyLimit: ACS_BODY_LIMIT, schema: { tags, body: acsBody, response: { 303: redirect } } },
    async (req, reply) => {
      reply.clearCookie(SSO_COOKIE, ssoCookie);
      reply.clearCookie(SAML_COOKIE, samlCookie);
      try {
        const r = await services.sso.saml.acs(
          req.body.RelayState || undefined,
          req.cookies[SAML_COOKIE] || undefined,
          req.body.SAMLResponse.replace(/\s+/g, ''),
          {
            ip: req.ip,
            userAgent: typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'] : '',
          },
        );
        // 303: the browser follows with a GET; the panel trades the refresh cookie on load.
        return finishTo(reply, r, services.clock.now(), 303);
      } catch (err) {
        if (err instanceof SsoLoginError) return reply.redirect(failTo(err.code), 303);
        req.log.error({ err }, 'saml sign-in failed');
        return reply.redirect(failTo('failed'), 303);
      }
    },
  );
};

export default samlRoutes;
