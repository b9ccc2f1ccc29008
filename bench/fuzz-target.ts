/**
 * The fuzzer's target: the real app over HTTPS on 127.0.0.1 (never another host), on PGlite or
 * DATABASE_URL like the test suite, with two organizations whose ids are hostile to each other.
 */
import { randomUUID } from 'node:crypto';
import type { FastifyInstance } from 'fastify';
import selfsigned from 'selfsigned';
import { withSystem, withTenant } from '../src/db/tenant.js';
import { buildServer } from '../src/http/server.js';
import { recordingRepository } from '../src/repositories/recordings/recording.repository.js';
import { addUser, bearer, createOrgWithUser, type TestUser } from '../test/helpers/fixtures.js';
import { startTestApp, type TestApp } from '../test/helpers/test-app.js';
import { operationsOf, type Identities, type Operation } from './fuzz-cases.js';

export interface FuzzTarget {
  port: number;
  harness: TestApp;
  operations: Operation[];
  identities: () => Identities;
  refreshIdentities: () => Promise<void>;
  close(): Promise<void>;
}

export async function startFuzzTarget(): Promise<FuzzTarget> {
  const harness = await startTestApp({
    env: {
      // Errors only: the harness keeps every log line in memory, which would read as a leak.
      SOTTO_LOG_LEVEL: 'error',
      // The limiters would answer 429 before handlers see most cases; rate limits have their own tests.
      SOTTO_RATE_LIMIT_API_PER_MINUTE: '100000000',
      SOTTO_RATE_LIMIT_AUTH_PER_MINUTE: '100000000',
      // Short deadlines so slow clients end within the run (docs/security.md, slow clients).
      SOTTO_HTTP_HEADERS_TIMEOUT_SECONDS: '3',
      SOTTO_HTTP_BODY_IDLE_SECONDS: '2',
      SOTTO_HTTP_REQUEST_TIMEOUT_SECONDS: '10',
    },
  });
  const { services } = harness;
  const pems = await selfsigned.generate([{ name: 'commonName', value: 'localhost' }], { keySize: 2048 });
  const app: FastifyInstance = await buildServer({ services, https: { key: pems.private, cert: pems.cert } });
  await app.listen({ host: '127.0.0.1', port: 0 });
  const address = app.server.address();
  const port = typeof address === 'object' && address ? address.port : 0;

  const orgA = await createOrgWithUser(services, { role: 'owner' });
  const orgB = await createOrgWithUser(services, { role: 'owner' });
  const recording = async (u: TestUser) => {
    const id = randomUUID();
    await withTenant(services.db, { orgId: u.orgId, userId: u.userId }, (tx) =>
      recordingRepository.insert(tx, {
        id,
        orgId: u.orgId,
        ownerId: u.userId,
        language: null,
        speakersHint: null,
        now: new Date(),
      }),
    );
    return id;
  };
  const worker = await app.inject({
    method: 'POST',
    url: '/api/v1/org/workers',
    headers: bearer(orgB.accessToken),
    payload: { name: 'fuzz' },
  });
  if (worker.statusCode !== 201) throw new Error(`worker token: ${worker.statusCode} ${worker.body}`);
  const slugs = await withSystem(services.db, async (tx) => {
    const { rows } = await tx.query<{ slug: string }>('SELECT slug FROM orgs WHERE id = ANY($1)', [
      [orgA.orgId, orgB.orgId],
    ]);
    return rows.map((r) => r.slug);
  });
  const idsOf = async (u: TestUser) => [u.userId, u.sessionId, u.orgId, await recording(u)];
  let ids: Identities = {
    tokens: {
      ownerA: orgA.accessToken,
      memberA: (await addUser(services, orgA.orgId, { role: 'member' })).accessToken,
      ownerB: orgB.accessToken,
      workerB: (worker.json() as { token: string }).token,
    },
    ids: { a: await idsOf(orgA), b: await idsOf(orgB) },
    slugs,
  };
  return {
    port,
    harness,
    operations: operationsOf(app.swagger() as Parameters<typeof operationsOf>[0]),
    identities: () => ids,
    refreshIdentities: async () => {
      const [ownerA, memberA, ownerB] = await Promise.all([
        addUser(services, orgA.orgId, { role: 'owner' }),
        addUser(services, orgA.orgId, { role: 'member' }),
        addUser(services, orgB.orgId, { role: 'owner' }),
      ]);
      ids = {
        ...ids,
        tokens: {
          ...ids.tokens,
          ownerA: ownerA.accessToken,
          memberA: memberA.accessToken,
          ownerB: ownerB.accessToken,
        },
      };
    },
    close: async () => {
      await app.close();
      await harness.close();
    },
  };
}
