import { randomUUID } from 'node:crypto';
import type { Services } from '../../src/app.js';
import type { Queryable } from '../../src/db/database.js';
import type { Actor } from '../../src/domain/auth-context.js';
import { withSystem, withTenant } from '../../src/db/tenant.js';
import type { OrgRole } from '../../src/domain/roles.js';

/**
 * Fast fixtures: organizations, users and live sessions written straight to the database (no
 * signup, no argon2), with real access tokens from the token service. The accounts cannot log in
 * with a password; tests that need that go through the auth routes.
 */
export interface TestUser {
  orgId: string;
  userId: string;
  email: string;
  accessToken: string;
  sessionId: string;
}

/** The service-level actor of a signed-in user, for specs that call services directly. */
export function actorOf(u: TestUser, role: Actor['role'], ip = '127.0.0.1'): Actor {
  return { userId: u.userId, orgId: u.orgId, role, sessionId: u.sessionId, viaSupportGrant: false, ip };
}

export interface SupportUser {
  userId: string;
  email: string;
  accessToken: string;
  sessionId: string;
}

const NO_LOGIN_HASH = 'fixture-account-without-password';
const SESSION_TTL_MS = 24 * 3600 * 1000;

function unique(): string {
  return randomUUID().slice(0, 8);
}

/** A new org with a data key and one user of `role` (default owner), signed in. */
export async function createOrgWithUser(
  services: Services,
  opts: { role?: OrgRole; orgName?: string } = {},
): Promise<TestUser> {
  const orgId = randomUUID();
  const suffix = unique();
  await withTenant(services.db, { orgId, userId: null }, async (tx) => {
    await tx.query('INSERT INTO orgs (id, name, slug, created_at) VALUES ($1, $2, $3, $4)', [
      orgId,
      opts.orgName ?? `Org ${suffix}`,
      `org-${suffix}`,
      services.clock.now(),
    ]);
    await services.keys.createOrgKey(tx, orgId);
  });
  return addUser(services, orgId, { role: opts.role ?? 'owner' });
}

/** Another signed-in user in an existing org. */
export async function addUser(
  services: Services,
  orgId: string,
  opts: { role: OrgRole; email?: string; name?: string },
): Promise<TestUser> {
  const email = opts.email ?? `${opts.role}-${unique()}@example.test`;
  const now = services.clock.now();
  const { userId, sessionId } = await withTenant(services.db, { orgId, userId: null }, async (tx) => {
    const user = await tx.query<{ id: string }>(
      `INSERT INTO users (org_id, email, name, role, password_hash, created_at)
       VALUES ($1, $2, $3, $4, $5, $6) RETURNING id`,
      [orgId, email, opts.name ?? `Test ${opts.role}`, opts.role, NO_LOGIN_HASH, now],
    );
    const userId = user.rows[0]!.id;
    return { userId, sessionId: await insertSession(tx, orgId, userId, now) };
  });
  const accessToken = await services.tokens.issue({ sub: userId, sid: sessionId, org: orgId });
  return { orgId, userId, email, accessToken, sessionId };
}

/** A platform support account (no org), signed in. */
export async function createSupportUserFixture(services: Services): Promise<SupportUser> {
  const email = `support-${unique()}@example.test`;
  const now = services.clock.now();
  const { userId, sessionId } = await withSystem(services.db, async (tx) => {
    const user = await tx.query<{ id: string }>(
      `INSERT INTO users (org_id, email, name, role, platform_role, password_hash)
       VALUES (NULL, $1, 'Support', NULL, 'support', $2) RETURNING id`,
      [email, NO_LOGIN_HASH],
    );
    const userId = user.rows[0]!.id;
    return { userId, sessionId: await insertSession(tx, null, userId, now) };
  });
  const accessToken = await services.tokens.issue({ sub: userId, sid: sessionId, org: null });
  return { userId, email, accessToken, sessionId };
}

async function insertSession(
  tx: Queryable,
  orgId: string | null,
  userId: string,
  now: Date,
): Promise<string> {
  const { rows } = await tx.query<{ id: string }>(
    `INSERT INTO sessions (org_id, user_id, user_agent, ip, created_at, last_seen_at, expires_at)
     VALUES ($1, $2, 'vitest', '127.0.0.1', $3, $3, $4) RETURNING id`,
    [orgId, userId, now, new Date(now.getTime() + SESSION_TTL_MS)],
  );
  return rows[0]!.id;
}

/** Authorization header (and, for support, the org to act in). */
export function bearer(token: string, supportOrg?: string): Record<string, string> {
  return {
    authorization: `Bearer ${token}`,
    ...(supportOrg ? { 'x-sotto-org': supportOrg } : {}),
  };
}

/** Waits for something written after the response (the support-access audit runs onResponse). */
export async function eventually<T>(probe: () => Promise<T | undefined>, timeoutMs = 3000): Promise<T> {
  const until = Date.now() + timeoutMs;
  for (;;) {
    const v = await probe();
    if (v !== undefined) return v;
    if (Date.now() > until) throw new Error('condition not met in time');
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Waits until some PostgreSQL backend waits for a lock of `locktype` ('advisory', 'transactionid'
 * for a row another transaction holds): the moment to let the holding transaction go on in a
 * lock-order spec. PostgreSQL only (pg_locks).
 */
export async function someoneWaitsOnLock(
  db: Queryable,
  locktype: 'advisory' | 'transactionid',
): Promise<void> {
  await eventually(async () => {
    const { rows } = await db.query<{ n: number }>(
      `SELECT count(*)::int AS n FROM pg_locks WHERE locktype = $1 AND NOT granted`,
      [locktype],
    );
    return rows[0]!.n > 0 ? true : undefined;
  }, 15_000);
}
