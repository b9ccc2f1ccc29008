import type { FastifyRequest } from 'fastify';
import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import { AppError } from '../../../domain/errors.js';
import type { ClientMeta } from '../../../services/auth/session.service.js';
import { bearerToken } from '../../plugins/auth.js';
import type { RouteOptions } from '../../server.js';
import {
  clearRefreshCookie,
  csrfWhen,
  refreshCookieOf,
  registerCsrf,
  setRefreshCookie,
  wantsBrowserMode,
} from './browser.js';
import {
  codeBody,
  csrfResponse,
  deviceList,
  deviceParams,
  loginBody,
  logoutBody,
  noContent,
  passwordBody,
  recoveryCodesResponse,
  refreshBody,
  revokeAllResponse,
  signupAccepted,
  signupBody,
  signupResponse,
  signupVerifyBody,
  tokenResponse,
  totpStartResponse,
} from './schema.js';
import { sessionActorOf, sessionAuth } from './session-auth.js';

const meta = (req: FastifyRequest): ClientMeta => ({
  ip: req.ip,
  userAgent: typeof req.headers['user-agent'] === 'string' ? req.headers['user-agent'] : '',
});

const bodyRefreshToken = (req: FastifyRequest): string | undefined =>
  (req.body as { refreshToken?: string } | undefined)?.refreshToken;

/** /api/v1/auth: signup, login, token refresh, logout, devices, password and TOTP. */
const authRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  await registerCsrf(app);
  const requireSession = sessionAuth(app, services);
  // onRequest: an unauthenticated caller learns nothing, not even how its body would be validated.
  const authed = { onRequest: requireSession };
  const secured = [{ bearer: [] }];

  // 202 for every address: whether it already has an account is told only to its mailbox.
  app.post(
    '/signup',
    { schema: { tags: ['auth'], body: signupBody, response: { 202: signupAccepted } } },
    async (req, reply) => {
      await services.signup.request(req.body, meta(req));
      return reply.status(202).send({ status: 'check_email' as const });
    },
  );

  app.post(
    '/signup/verify',
    { schema: { tags: ['auth'], body: signupVerifyBody, response: { 201: signupResponse } } },
    async (req, reply) => reply.status(201).send(await services.signup.verify(req.body.token, meta(req))),
  );

  app.post(
    '/login',
    { schema: { tags: ['auth'], body: loginBody, response: { 200: tokenResponse } } },
    async (req, reply) => {
      const { client, ...input } = req.body;
      const r = await services.auth.login(input, meta(req));
      const body = { accessToken: r.accessToken, expiresIn: r.expiresIn, tokenType: 'Bearer' as const };
      if (wantsBrowserMode(req, client)) {
        setRefreshCookie(reply, r.refreshToken, r.sessionExpiresAt, services.clock.now());
        return body;
      }
      return { ...body, refreshToken: r.refreshToken };
    },
  );

  app.get('/csrf', { schema: { tags: ['auth'], response: { 200: csrfResponse } } }, async (_req, reply) => ({
    token: reply.generateCsrf(),
  }));

  // A token from the body is an API client's own credential; one from the cookie was attached
  // by the browser and needs the CSRF check.
  const ridesOnCookie = (req: FastifyRequest) => !bodyRefreshToken(req) && refreshCookieOf(req) !== undefined;

  app.post(
    '/refresh',
    {
      schema: { tags: ['auth'], body: refreshBody, response: { 200: tokenResponse } },
      preHandler: csrfWhen(app, ridesOnCookie),
    },
    async (req, reply) => {
      const fromBody = req.body?.refreshToken;
      const token = fromBody ?? refreshCookieOf(req);
      if (!token) throw new AppError('unauthenticated', 'Send a refresh token');
      const r = await services.sessions.refresh(token, meta(req)).catch((err: unknown) => {
        if (!fromBody) clearRefreshCookie(reply);
        throw err;
      });
      const body = { accessToken: r.accessToken, expiresIn: r.expiresIn, tokenType: 'Bearer' as const };
      if (!fromBody || wantsBrowserMode(req, req.body?.client)) {
        setRefreshCookie(reply, r.refreshToken, r.sessionExpiresAt, services.clock.now());
        return body;
      }
      return { ...body, refreshToken: r.refreshToken };
    },
  );

  app.post(
    '/logout',
    {
      schema: { tags: ['auth'], body: logoutBody, response: { 204: noContent } },
      preHandler: csrfWhen(app, (req) => !bearerToken(req) && ridesOnCookie(req)),
    },
    async (req, reply) => {
      const cookie = refreshCookieOf(req);
      if (bearerToken(req)) {
        await requireSession(req);
        await services.sessions.logout(sessionActorOf(req));
      } else {
        const token = req.body?.refreshToken ?? cookie;
        if (!token) throw new AppError('unauthenticated', 'Send an access token or a refresh token');
        await services.sessions.logoutByRefreshToken(token, req.ip);
      }
      if (cookie) clearRefreshCookie(reply);
      return reply.status(204).send();
    },
  );

  app.get(
    '/devices',
    { ...authed, schema: { tags: ['auth'], security: secured, response: { 200: deviceList } } },
    async (req) =>
      (await services.sessions.listDevices(sessionActorOf(req))).map((d) => ({
        id: d.id,
        userAgent: d.userAgent,
        ip: d.ip,
        createdAt: d.createdAt.toISOString(),
        lastSeenAt: d.lastSeenAt.toISOString(),
        expiresAt: d.expiresAt.toISOString(),
        current: d.current,
      })),
  );

  app.delete(
    '/devices/:id',
    {
      ...authed,
      schema: { tags: ['auth'], security: secured, params: deviceParams, response: { 204: noContent } },
    },
    async (req, reply) => {
      await services.sessions.revokeDevice(sessionActorOf(req), req.params.id);
      return reply.status(204).send();
    },
  );

  app.post(
    '/devices/revoke-all',
    { ...authed, schema: { tags: ['auth'], security: secured, response: { 200: revokeAllResponse } } },
    async (req, reply) => {
      const revoked = await services.sessions.revokeAll(sessionActorOf(req));
      clearRefreshCookie(reply);
      return { revoked };
    },
  );

  app.post(
    '/password',
    {
      ...authed,
      schema: { tags: ['auth'], security: secured, body: passwordBody, response: { 204: noContent } },
    },
    async (req, reply) => {
      await services.auth.changePassword(sessionActorOf(req), req.body.currentPassword, req.body.newPassword);
      return reply.status(204).send();
    },
  );

  app.post(
    '/mfa/totp',
    { ...authed, schema: { tags: ['auth'], security: secured, response: { 200: totpStartResponse } } },
    async (req) => services.mfa.startEnrolment(sessionActorOf(req)),
  );

  app.post(
    '/mfa/totp/confirm',
    {
      ...authed,
      schema: { tags: ['auth'], security: secured, body: codeBody, response: { 200: recoveryCodesResponse } },
    },
    async (req) => services.mfa.confirmEnrolment(sessionActorOf(req), req.body.code),
  );

  app.delete(
    '/mfa/totp',
    {
      ...authed,
      schema: { tags: ['auth'], security: secured, body: codeBody, response: { 204: noContent } },
    },
    async (req, reply) => {
      await services.mfa.disable(sessionActorOf(req), req.body.code);
      return reply.status(204).send();
    },
  );
};

export default authRoutes;
