import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem, withTenant } from '../src/db/tenant.js';
import { recordingJobRepository } from '../src/repositories/transcription/recording-job.repository.js';
import { recordingRepository } from '../src/repositories/recordings/recording.repository.js';
import { enqueueWebhooks, recordingEvent } from '../src/services/webhooks/webhook-outbox.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';
import { addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { freshIp } from './helpers/auth-client.js';

/**
 * Every route, called by an owner of organization B against organization A's resources, must
 * answer exactly 404 and change nothing. Routes are taken from the live OpenAPI document, so a
 * new route with a path parameter fails this test until it is added to `targets` below.
 */
type Method = 'get' | 'post' | 'patch' | 'delete' | 'put';

interface Target {
  /** A's resource id to put in the path. */
  id: (a: OrgA) => string;
  body?: Record<string, unknown>;
  /** Query string a route requires (e.g. `?format=txt`), so it reaches its handler. */
  query?: string;
  /** Called with B's worker token (the /api/v1/worker routes take no user tokens). */
  worker?: true;
}

interface OrgA {
  owner: TestUser;
  member: TestUser;
  invitationId: string;
  grantId: string;
  recordingId: string;
  /** A's worker token and the lease it holds on A's recording's job. */
  workerTokenId: string;
  leaseId: string;
  /** An archived recording of A (docs/lifecycle.md). */
  archiveId: string;
  /** A's owner's personal API token, A's webhook and one of its deliveries. */
  apiTokenId: string;
  webhookId: string;
  webhookDeliveryId: string;
  /** A's data-portability export (docs/lifecycle.md). */
  exportId: string;
  /** A's slug (public SAML SP metadata is by slug; A has no SAML connection, so it is 404). */
  orgSlug: string;
}

const targets: Record<string, Partial<Record<Method, Target>>> = {
  '/api/v1/auth/devices/{id}': { delete: { id: (a) => a.member.sessionId } },
  '/api/v1/org/members/{id}': {
    patch: { id: (a) => a.member.userId, body: { role: 'admin' } },
    delete: { id: (a) => a.member.userId },
  },
  '/api/v1/org/invitations/{id}': { delete: { id: (a) => a.invitationId } },
  '/api/v1/org/support-grants/{id}': { delete: { id: (a) => a.grantId } },
  '/api/v1/recordings/{id}': { get: { id: (a) => a.recordingId }, delete: { id: (a) => a.recordingId } },
  '/api/v1/recordings/{id}/transcript': {
    get: { id: (a) => a.recordingId },
    patch: { id: (a) => a.recordingId, body: { revision: 0, speakers: [{ id: 'S1', name: 'B' }] } },
  },
  '/api/v1/recordings/{id}/export': { get: { id: (a) => a.recordingId, query: '?format=txt' } },
  '/api/v1/recordings/{id}/report': { get: { id: (a) => a.recordingId } },
  '/api/v1/recordings/{id}/live-ticket': { post: { id: (a) => a.recordingId } },
  '/api/v1/recordings/{id}/retry': { post: { id: (a) => a.recordingId } },
  '/api/v1/recordings/{id}/audio': {
    get: { id: (a) => a.recordingId },
    delete: { id: (a) => a.recordingId },
  },
  '/api/v1/recordings/{id}/audio-ticket': { post: { id: (a) => a.recordingId } },
  // The ticket is the credential here: B's bearer token opens nothing, a well-formed guess neither.
  '/api/v1/recordings/{id}/audio/stream': {
    get: { id: (a) => a.recordingId, query: `?ticket=${'A'.repeat(43)}` },
  },
  '/api/v1/org/workers/{id}': { delete: { id: (a) => a.workerTokenId } },
  '/api/v1/tokens/{id}': { delete: { id: (a) => a.apiTokenId } },
  '/api/v1/org/webhooks/{id}': {
    patch: { id: (a) => a.webhookId, body: { enabled: false } },
    delete: { id: (a) => a.webhookId },
  },
  '/api/v1/org/webhooks/{id}/rotate-secret': { post: { id: (a) => a.webhookId } },
  '/api/v1/org/webhooks/{id}/deliveries': { get: { id: (a) => a.webhookId } },
  '/api/v1/org/webhooks/{id}/deliveries/{deliveryId}/redeliver': { post: { id: (a) => a.webhookId } },
  '/api/v1/org/archive/{id}': { delete: { id: (a) => a.archiveId } },
  '/api/v1/org/exports/{id}': { get: { id: (a) => a.exportId }, delete: { id: (a) => a.exportId } },
  '/api/v1/org/exports/{id}/download': { get: { id: (a) => a.exportId } },
  '/api/v1/org/archive/{id}/restore': { post: { id: (a) => a.archiveId } },
  // SP metadata is public by design (the IdP fetches it); an org without SAML has none: 404.
  '/api/v1/auth/sso/saml/{orgSlug}/metadata': { get: { id: (a) => a.orgSlug } },
  '/api/v1/worker/jobs/{id}/audio': {
    get: { id: (a) => a.recordingId, worker: true, query: '?lease=LEASE' },
  },
  '/api/v1/worker/jobs/{id}/heartbeat': {
    post: { id: (a) => a.recordingId, worker: true, body: { leaseId: 'LEASE', progress: 0.5 } },
  },
  '/api/v1/worker/jobs/{id}/complete': {
    post: {
      id: (a) => a.recordingId,
      worker: true,
      body: { leaseId: 'LEASE', segments: [], speakers: [], durationSeconds: 1, channels: 1, engine: 'x' },
    },
  },
  '/api/v1/worker/jobs/{id}/fail': {
    post: { id: (a) => a.recordingId, worker: true, body: { leaseId: 'LEASE', code: 'internal' } },
  },
  '/api/v1/worker/jobs/{id}/release': {
    post: { id: (a) => a.recordingId, worker: true, body: { leaseId: 'LEASE' } },
  },
};
/** Worker targets carry A's lease id (placeholder LEASE): B's worker must not reach it even so. */
const withLease = <T>(v: T, leaseId: string): T =>
  JSON.parse(JSON.stringify(v).replaceAll('LEASE', leaseId)) as T;

describe(`cross-tenant sweep over every route (${backendLabel})`, () => {
  let t: TestApp;
  let a: OrgA;
  let b: TestUser;
  let bWorker: string;
  let paths: Record<string, Record<string, unknown>>;
  const ip = freshIp();

  const as = (user: TestUser, method: Method, url: string, payload?: Record<string, unknown>) =>
    t.app.inject({
      method: method.toUpperCase() as 'GET',
      url,
      headers: bearer(user.accessToken),
      remoteAddress: ip,
      ...(payload ? { payload } : {}),
    });

  beforeAll(async () => {
    t = await startTestApp();
    const owner = await createOrgWithUser(t.services, { role: 'owner' });
    const member = await addUser(t.services, owner.orgId, { role: 'member' });
    const inv = await as(owner, 'post', '/api/v1/org/invitations', {
      email: 'new@a.example',
      role: 'member',
    });
    const grant = await as(owner, 'post', '/api/v1/org/support-grants', { hours: 2 });
    expect([inv.statusCode, grant.statusCode]).toEqual([201, 201]);
    // A recording row (no upload needed: the sweep is about ids and RLS, not audio).
    const recordingId = randomUUID();
    await withTenant(t.services.db, { orgId: owner.orgId, userId: member.userId }, (tx) =>
      recordingRepository.insert(tx, {
        id: recordingId,
        orgId: owner.orgId,
        ownerId: member.userId,
        language: null,
        speakersHint: null,
        now: new Date(),
      }),
    );
    // A's job for that recording, held by A's worker token.
    await withTenant(t.services.db, { orgId: owner.orgId, userId: null }, (tx) =>
      recordingJobRepository.enqueue(tx, { recordingId, orgId: owner.orgId, now: new Date() }),
    );
    const aWorker = (await as(owner, 'post', '/api/v1/org/workers', { name: 'a' })).json();
    const claim = await t.app.inject({
      method: 'POST',
      url: '/api/v1/worker/jobs/claim',
      headers: bearer(aWorker.token),
      remoteAddress: ip,
      payload: {},
    });
    expect(claim.json().job.id).toBe(recordingId);
    // A finished recording of A, archived by retention.
    const archivedId = randomUUID();
    await withTenant(t.services.db, { orgId: owner.orgId, userId: null }, async (tx) => {
      await recordingRepository.insert(tx, {
        id: archivedId,
        orgId: owner.orgId,
        ownerId: member.userId,
        language: null,
        speakersHint: null,
        now: new Date(),
      });
      await recordingRepository.markDone(tx, archivedId, {
        durationSeconds: 1,
        channels: 1,
        engine: 'x',
        now: new Date(),
      });
    });
    const archiveId = (await t.services.archive.archiveRecording(owner.orgId, archivedId))!;
    const apiToken = await as(owner, 'post', '/api/v1/tokens', { name: 'a', scopes: ['recordings:read'] });
    const webhook = await as(owner, 'post', '/api/v1/org/webhooks', {
      url: 'https://hooks.example.com/a',
      events: ['recording.done'],
    });
    expect([apiToken.statusCode, webhook.statusCode]).toEqual([201, 201]);
    await withTenant(t.services.db, { orgId: owner.orgId, userId: null }, (tx) =>
      enqueueWebhooks(tx, recordingEvent(owner.orgId, recordingId, 'recording.done', new Date())),
    );
    const webhookDeliveries = await as(owner, 'get', `/api/v1/org/webhooks/${webhook.json().id}/deliveries`);
    const orgExport = await as(owner, 'post', '/api/v1/org/export');
    expect(orgExport.statusCode).toBe(202);
    await t.services.orgExports.idle();
    a = {
      apiTokenId: apiToken.json().id,
      webhookId: webhook.json().id,
      webhookDeliveryId: webhookDeliveries.json()[0].id,
      owner,
      member,
      invitationId: inv.json().id,
      grantId: grant.json().id,
      recordingId,
      workerTokenId: aWorker.id,
      leaseId: claim.json().job.leaseId,
      archiveId,
      exportId: orgExport.json().id,
      orgSlug: await withSystem(t.services.db, async (tx) => {
        const { rows } = await tx.query<{ slug: string }>('SELECT slug FROM orgs WHERE id = $1', [
          owner.orgId,
        ]);
        return rows[0]!.slug;
      }),
    };
    b = await createOrgWithUser(t.services, { role: 'owner' });
    bWorker = (await as(b, 'post', '/api/v1/org/workers', { name: 'b' })).json().token;
    paths = (t.app.swagger() as { paths: Record<string, Record<string, unknown>> }).paths;
  });
  afterAll(async () => t?.close());

  it('knows a target for every route that takes an id', () => {
    const parameterised = Object.keys(paths).filter((p) => p.includes('{'));
    expect(parameterised.length).toBeGreaterThan(0);
    for (const p of parameterised) {
      for (const method of Object.keys(paths[p]!)) {
        expect(
          targets[p]?.[method as Method],
          `${method.toUpperCase()} ${p} is missing from the sweep`,
        ).toBeDefined();
      }
    }
  });

  it("answers exactly 404 to another org's ids, on every method, and changes nothing", async () => {
    let swept = 0;
    for (const [path, methods] of Object.entries(targets)) {
      for (const [method, target] of Object.entries(methods) as [Method, Target][]) {
        const url =
          path
            .replace('{id}', target.id(a))
            .replace('{orgSlug}', target.id(a))
            .replace('{deliveryId}', a.webhookDeliveryId) + withLease(target.query ?? '', a.leaseId);
        const res = target.worker
          ? await t.app.inject({
              method: method.toUpperCase() as 'GET',
              url,
              headers: bearer(bWorker),
              remoteAddress: ip,
              ...(target.body ? { payload: withLease(target.body, a.leaseId) } : {}),
            })
          : await as(b, method, url, target.body);
        expect(res.statusCode, `${method.toUpperCase()} ${path}`).toBe(404);
        expect(res.json().code).toBe('not_found');
        swept++;
      }
    }
    expect(swept).toBe(Object.values(targets).reduce((n, m) => n + Object.keys(m).length, 0));
    // A's resources are all still there, untouched.
    const members = await as(a.owner, 'get', '/api/v1/org/members');
    const m = (members.json() as { id: string; role: string }[]).find((x) => x.id === a.member.userId);
    expect(m?.role).toBe('member');
    const devices = await as(a.member, 'get', '/api/v1/auth/devices');
    expect(devices.statusCode).toBe(200);
    const invitations = (await as(a.owner, 'get', '/api/v1/org/invitations')).json() as { id: string }[];
    expect(invitations.map((i) => i.id)).toContain(a.invitationId);
    const grants = (await as(a.owner, 'get', '/api/v1/org/support-grants')).json() as {
      id: string;
      status: string;
    }[];
    expect(grants.find((g) => g.id === a.grantId)?.status).toBe('active');
    expect((await as(a.member, 'get', `/api/v1/recordings/${a.recordingId}`)).statusCode).toBe(200);
    const archived = (await as(a.owner, 'get', '/api/v1/org/archive')).json() as { items: { id: string }[] };
    expect(archived.items.map((i) => i.id)).toEqual([a.archiveId]);
    const workers = (await as(a.owner, 'get', '/api/v1/org/workers')).json() as {
      id: string;
      status: string;
    }[];
    expect(workers.find((w) => w.id === a.workerTokenId)?.status).toBe('active');
    const exported = await as(a.owner, 'get', `/api/v1/org/exports/${a.exportId}`);
    expect(exported.json().status).toBe('ready');
    const job = await t.db.query('SELECT lease_id FROM recording_jobs WHERE recording_id = $1', [
      a.recordingId,
    ]);
    expect(job.rows[0]).toEqual({ lease_id: a.leaseId });
  });

  it("never shows A's data on B's collection routes", async () => {
    const secrets = [
      a.owner.orgId,
      a.owner.userId,
      a.member.userId,
      a.owner.email,
      a.member.email,
      a.invitationId,
      a.grantId,
      a.recordingId,
    ];
    let read = 0;
    for (const [path, methods] of Object.entries(paths)) {
      if (path.includes('{') || !('get' in methods) || path.startsWith('/api/docs')) continue;
      const res = await as(b, 'get', path);
      expect(res.statusCode, `GET ${path}`).toBeLessThan(500);
      for (const s of secrets) expect(res.body, `GET ${path} leaked ${s}`).not.toContain(s);
      read++;
    }
    expect(read).toBeGreaterThanOrEqual(8);
  });
});
