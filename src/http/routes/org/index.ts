import type { FastifyPluginAsyncZod } from 'fastify-type-provider-zod';
import type { Member } from '../../../repositories/orgs/member.repository.js';
import type { InvitationView } from '../../../services/orgs/invitation.service.js';
import type { GrantView } from '../../../services/orgs/support.service.js';
import { actorOf } from '../../plugins/auth.js';
import type { RouteOptions } from '../../server.js';
import {
  grantCreate,
  grantResponse,
  idParams,
  invitationCreate,
  invitationCreated,
  invitationResponse,
  iso,
  isoOrNull,
  memberResponse,
  membersQuery,
  noContent,
  orgResponse,
  rolePatch,
  settingsPatch,
  settingsResponse,
} from './schema.js';

const member = (m: Member) => ({
  id: m.id,
  email: m.email,
  name: m.name,
  role: m.role,
  mfaEnabled: m.mfaEnabled,
  createdAt: iso(m.createdAt),
});

const invitation = (i: InvitationView) => ({
  id: i.id,
  email: i.email,
  role: i.role,
  status: i.status,
  createdAt: iso(i.createdAt),
  expiresAt: iso(i.expiresAt),
  emailSentAt: isoOrNull(i.emailSentAt),
});

const grant = (g: GrantView) => ({
  id: g.id,
  status: g.status,
  grantedBy: g.grantedBy,
  createdAt: iso(g.createdAt),
  expiresAt: iso(g.expiresAt),
  revokedAt: isoOrNull(g.revokedAt),
});

/**
 * /api/v1/org: the caller's organization, its settings, members, invitations and support grants.
 * There is no org id in any path: the org is always the actor's own, so another org's resources
 * are simply not found (RLS hides them). Authorisation runs onRequest, before the body is parsed
 * or validated: a caller without the permission learns nothing about the expected shapes.
 */
const orgRoutes: FastifyPluginAsyncZod<RouteOptions> = async (app, { services }) => {
  const tags = ['organization'];
  const security = [{ bearer: [] }];

  app.get(
    '/',
    {
      onRequest: app.requirePermission('org.read'),
      schema: { tags, security, response: { 200: orgResponse } },
    },
    async (req) => {
      const org = await services.orgs.get(actorOf(req));
      return { ...org, createdAt: iso(org.createdAt) };
    },
  );

  app.get(
    '/settings',
    {
      onRequest: app.requirePermission('org.manage'),
      schema: { tags, security, response: { 200: settingsResponse } },
    },
    async (req) => services.orgs.getSettings(actorOf(req)),
  );

  app.patch(
    '/settings',
    {
      onRequest: app.requirePermission('org.manage'),
      schema: { tags, security, body: settingsPatch, response: { 200: settingsResponse } },
    },
    async (req) => services.orgs.updateSettings(actorOf(req), req.body),
  );

  app.get(
    '/members',
    {
      onRequest: app.requirePermission('members.read'),
      schema: { tags, security, querystring: membersQuery, response: { 200: memberResponse.array() } },
    },
    async (req) => (await services.members.list(actorOf(req), req.query)).map(member),
  );

  app.patch(
    '/members/:id',
    {
      onRequest: app.requirePermission('members.manage'),
      schema: { tags, security, params: idParams, body: rolePatch, response: { 200: memberResponse } },
    },
    async (req) => member(await services.members.changeRole(actorOf(req), req.params.id, req.body.role)),
  );

  app.delete(
    '/members/:id',
    {
      onRequest: app.requirePermission('members.manage'),
      schema: { tags, security, params: idParams, response: { 204: noContent } },
    },
    async (req, reply) => {
      await services.members.remove(actorOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/invitations',
    {
      onRequest: app.requirePermission('members.manage'),
      // Each invitation may send an email: bound what one account can make the server send.
      config: { rateLimit: { points: 50, durationSeconds: 3600, key: 'user' } },
      schema: { tags, security, body: invitationCreate, response: { 201: invitationCreated } },
    },
    async (req, reply) => {
      const created = await services.invitations.create(actorOf(req), req.body);
      return reply.status(201).send({
        ...invitation(created.invitation),
        inviteUrl: created.inviteUrl,
        emailSent: created.emailSent,
      });
    },
  );

  app.get(
    '/invitations',
    {
      onRequest: app.requirePermission('members.manage'),
      schema: { tags, security, response: { 200: invitationResponse.array() } },
    },
    async (req) => (await services.invitations.list(actorOf(req))).map(invitation),
  );

  app.delete(
    '/invitations/:id',
    {
      onRequest: app.requirePermission('members.manage'),
      schema: { tags, security, params: idParams, response: { 204: noContent } },
    },
    async (req, reply) => {
      await services.invitations.revoke(actorOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  );

  app.post(
    '/support-grants',
    {
      onRequest: app.requirePermission('support.grant'),
      schema: { tags, security, body: grantCreate, response: { 201: grantResponse } },
    },
    async (req, reply) =>
      reply.status(201).send(grant(await services.support.grant(actorOf(req), req.body.hours))),
  );

  app.get(
    '/support-grants',
    {
      onRequest: app.requirePermission('support.grant'),
      schema: { tags, security, response: { 200: grantResponse.array() } },
    },
    async (req) => (await services.support.list(actorOf(req))).map(grant),
  );

  app.delete(
    '/support-grants/:id',
    {
      onRequest: app.requirePermission('support.grant'),
      schema: { tags, security, params: idParams, response: { 204: noContent } },
    },
    async (req, reply) => {
      await services.support.revoke(actorOf(req), req.params.id);
      return reply.status(204).send(null);
    },
  );
};

export default orgRoutes;
