import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Database, Queryable } from '../src/db/database.js';
import { APP_ROLE, SYSTEM_ROLE, withTenant } from '../src/db/tenant.js';
import { backendLabel, freshDatabase, usingPostgres } from './helpers/test-app.js';

/**
 * Tenant isolation enforced by the database itself. Rows are seeded as the login role (a
 * superuser, which RLS does not bind); every assertion then runs as sotto_app, exactly as the
 * application does, with no application code in between that could filter anything.
 */
interface Seeded {
  org: string;
  user: string;
  session: string;
}

async function seedOrg(tx: Queryable, slug: string): Promise<Seeded> {
  const org = randomUUID();
  const user = randomUUID();
  const session = randomUUID();
  await tx.query(`INSERT INTO orgs (id, name, slug) VALUES ($1, $2, $3)`, [org, `Org ${slug}`, slug]);
  await tx.query(
    `INSERT INTO users (id, org_id, email, name, role, password_hash)
     VALUES ($1, $2, $3, 'Owner', 'owner', 'x')`,
    [user, org, `owner@${slug}.test`],
  );
  await tx.query(`INSERT INTO recovery_codes (org_id, user_id, code_hash) VALUES ($1, $2, 'h')`, [org, user]);
  await tx.query(
    `INSERT INTO sessions (id, org_id, user_id, expires_at) VALUES ($1, $2, $3, now() + interval '1 day')`,
    [session, org, user],
  );
  await tx.query(`INSERT INTO refresh_tokens (session_id, org_id, token_hash) VALUES ($1, $2, $3)`, [
    session,
    org,
    randomUUID(),
  ]);
  await tx.query(
    `INSERT INTO invitations (org_id, email, role, token_hash, expires_at)
     VALUES ($1, $2, 'member', $3, now() + interval '1 day')`,
    [org, `invitee@${slug}.test`, randomUUID()],
  );
  await tx.query(`INSERT INTO support_grants (org_id, expires_at) VALUES ($1, now() + interval '1 hour')`, [
    org,
  ]);
  await tx.query(
    `INSERT INTO org_keys (org_id, version, wrapped, master_version) VALUES ($1, 1, '\\x00', 1)`,
    [org],
  );
  await tx.query(
    `INSERT INTO audit_log (org_id, seq, actor_kind, action, prev_hash, hash)
     VALUES ($1, 1, 'system', 'test.seeded', $2, $3)`,
    [org, '0'.repeat(64), 'f'.repeat(64)],
  );
  return { org, user, session };
}

/** A transaction as sotto_app with no tenant set at all (a repository that forgot withTenant). */
function asAppWithoutTenant<T>(db: Database, fn: (tx: Queryable) => Promise<T>): Promise<T> {
  return db.transaction(async (tx) => {
    await tx.query(`SELECT set_config('role', '${APP_ROLE}', true)`);
    return fn(tx);
  });
}

const RLS_ERROR = /row-level security/;

describe(`row-level security isolates tenants (${backendLabel})`, () => {
  let db: Database;
  let drop: () => Promise<void>;
  let a: Seeded;
  let b: Seeded;
  /** Every table in public with row-level security enabled. */
  let rlsTables: string[];

  beforeAll(async () => {
    ({ db, drop } = await freshDatabase());
    ({ a, b } = await db.transaction(async (tx) => ({
      a: await seedOrg(tx, `a-${randomUUID().slice(0, 8)}`),
      b: await seedOrg(tx, `b-${randomUUID().slice(0, 8)}`),
    })));
    const { rows } = await db.query<{ relname: string }>(
      `SELECT c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r' AND c.relrowsecurity ORDER BY c.relname`,
    );
    rlsTables = rows.map((r) => r.relname);
  });
  afterAll(async () => drop?.());

  it('puts ENABLE + FORCE RLS with USING and WITH CHECK on every table that has an org_id', async () => {
    const { rows } = await db.query<{
      table: string;
      enabled: boolean;
      forced: boolean;
      policies: number;
      complete: number;
    }>(
      `SELECT c.relname AS table, c.relrowsecurity AS enabled, c.relforcerowsecurity AS forced,
              (SELECT count(*)::int FROM pg_policies p WHERE p.schemaname = 'public' AND p.tablename = c.relname) AS policies,
              (SELECT count(*)::int FROM pg_policies p WHERE p.schemaname = 'public' AND p.tablename = c.relname
                  AND p.qual IS NOT NULL AND p.with_check IS NOT NULL) AS complete
         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE n.nspname = 'public' AND c.relkind = 'r'
          AND (c.relname = 'orgs' OR EXISTS (SELECT 1 FROM pg_attribute a
                 WHERE a.attrelid = c.oid AND a.attname = 'org_id' AND NOT a.attisdropped))
        ORDER BY 1`,
    );
    expect(rows.length).toBeGreaterThanOrEqual(10);
    for (const r of rows) {
      expect({ table: r.table, enabled: r.enabled, forced: r.forced }).toEqual({
        table: r.table,
        enabled: true,
        forced: true,
      });
      expect(r.policies, `${r.table} policies`).toBeGreaterThan(0);
      expect(r.complete, `${r.table}: every policy needs USING and WITH CHECK`).toBe(r.policies);
    }
  });

  it('shows sotto_app nothing without a tenant, although every table holds rows', async () => {
    const seededTables = [
      'orgs',
      'users',
      'recovery_codes',
      'sessions',
      'refresh_tokens',
      'invitations',
      'support_grants',
      'org_keys',
      'audit_log',
    ];
    for (const table of seededTables) expect(rlsTables).toContain(table);
    for (const table of rlsTables) {
      const { rows } = await db.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
      if (seededTables.includes(table)) expect(rows[0]!.n, `${table} seeded`).toBeGreaterThanOrEqual(2);
      const canSelect = (
        await db.query<{ ok: boolean }>(`SELECT has_table_privilege($1, $2, 'SELECT') AS ok`, [
          APP_ROLE,
          table,
        ])
      ).rows[0]!.ok;
      if (!canSelect) continue; // e.g. signing_keys: see the permission test below
      const unset = await asAppWithoutTenant(db, (tx) =>
        tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`),
      );
      expect(unset.rows[0]!.n, `${table} without app.org_id`).toBe(0);
      const empty = await db.transaction(async (tx) => {
        await tx.query(`SELECT set_config('role', '${APP_ROLE}', true), set_config('app.org_id', '', true)`);
        return tx.query<{ n: number }>(`SELECT count(*)::int AS n FROM ${table}`);
      });
      expect(empty.rows[0]!.n, `${table} with empty app.org_id`).toBe(0);
    }
  });

  it('shows a tenant exactly its own rows', async () => {
    for (const table of ['users', 'sessions', 'refresh_tokens', 'invitations', 'org_keys', 'audit_log']) {
      const { rows } = await withTenant(db, { orgId: a.org, userId: a.user }, (tx) =>
        tx.query<{ org_id: string }>(`SELECT org_id FROM ${table}`),
      );
      expect(rows.length, table).toBeGreaterThan(0);
      expect(
        rows.every((r) => r.org_id === a.org),
        table,
      ).toBe(true);
    }
    const orgs = await withTenant(db, { orgId: a.org, userId: a.user }, (tx) =>
      tx.query<{ id: string }>('SELECT id FROM orgs'),
    );
    expect(orgs.rows.map((r) => r.id)).toEqual([a.org]);
  });

  it('refuses, in the database, an INSERT into another tenant', async () => {
    const attempts: [string, string, unknown[]][] = [
      [
        'orgs',
        `INSERT INTO orgs (id, name, slug) VALUES ($1, 'x', $2)`,
        [randomUUID(), `x-${randomUUID().slice(0, 8)}`],
      ],
      [
        'users',
        `INSERT INTO users (org_id, email, name, role, password_hash) VALUES ($1, $2, 'M', 'member', 'x')`,
        [b.org, `intruder-${randomUUID()}@b.test`],
      ],
      [
        'sessions',
        `INSERT INTO sessions (org_id, user_id, expires_at) VALUES ($1, $2, now() + interval '1 day')`,
        [b.org, b.user],
      ],
      [
        'invitations',
        `INSERT INTO invitations (org_id, email, role, token_hash, expires_at)
         VALUES ($1, 'x@b.test', 'admin', $2, now() + interval '1 day')`,
        [b.org, randomUUID()],
      ],
      [
        'org_keys',
        `INSERT INTO org_keys (org_id, version, wrapped, master_version) VALUES ($1, 2, '\\x00', 1)`,
        [b.org],
      ],
      [
        'audit_log',
        `INSERT INTO audit_log (org_id, seq, actor_kind, action, prev_hash, hash)
         VALUES ($1, 99, 'system', 'forged', $2, $2)`,
        [b.org, '0'.repeat(64)],
      ],
    ];
    for (const [table, sql, params] of attempts) {
      await expect(
        withTenant(db, { orgId: a.org, userId: a.user }, (tx) => tx.query(sql, params)),
        table,
      ).rejects.toThrow(RLS_ERROR);
    }
  });

  it('refuses an UPDATE that moves a row into another tenant', async () => {
    await expect(
      withTenant(db, { orgId: a.org, userId: a.user }, (tx) =>
        tx.query('UPDATE users SET org_id = $1 WHERE id = $2', [b.org, a.user]),
      ),
    ).rejects.toThrow(RLS_ERROR);
    await expect(
      withTenant(db, { orgId: a.org, userId: a.user }, (tx) =>
        tx.query('UPDATE sessions SET org_id = $1 WHERE id = $2', [b.org, a.session]),
      ),
    ).rejects.toThrow(RLS_ERROR);
    await expect(
      withTenant(db, { orgId: a.org, userId: a.user }, (tx) =>
        tx.query('UPDATE orgs SET id = $1 WHERE id = $2', [randomUUID(), a.org]),
      ),
    ).rejects.toThrow(RLS_ERROR);
    const { rows } = await db.query<{ org_id: string }>('SELECT org_id FROM users WHERE id = $1', [a.user]);
    expect(rows[0]!.org_id).toBe(a.org);
  });

  it("cannot see, change or delete another tenant's rows even by id", async () => {
    const result = await withTenant(db, { orgId: a.org, userId: a.user }, async (tx) => ({
      read: (await tx.query('SELECT * FROM users WHERE id = $1', [b.user])).rows.length,
      updated: (await tx.query(`UPDATE users SET name = 'pwned' WHERE id = $1`, [b.user])).rowCount,
      renamed: (await tx.query(`UPDATE orgs SET name = 'pwned' WHERE id = $1`, [b.org])).rowCount,
      deleted: (await tx.query('DELETE FROM sessions WHERE org_id = $1', [b.org])).rowCount,
    }));
    expect(result).toEqual({ read: 0, updated: 0, renamed: 0, deleted: 0 });
    const { rows } = await db.query<{ name: string }>('SELECT name FROM users WHERE id = $1', [b.user]);
    expect(rows[0]!.name).toBe('Owner');
    const sessions = await db.query('SELECT 1 FROM sessions WHERE org_id = $1', [b.org]);
    expect(sessions.rows).toHaveLength(1);
  });

  it('denies sotto_app the signing keys, and any UPDATE or DELETE of the audit log', async () => {
    await expect(asAppWithoutTenant(db, (tx) => tx.query('SELECT * FROM signing_keys'))).rejects.toThrow(
      /permission denied/,
    );
    await expect(
      withTenant(db, { orgId: a.org, userId: a.user }, (tx) => tx.query('SELECT * FROM signing_keys')),
    ).rejects.toThrow(/permission denied/);
    for (const sql of [`UPDATE audit_log SET action = 'x'`, 'DELETE FROM audit_log']) {
      await expect(withTenant(db, { orgId: a.org, userId: a.user }, (tx) => tx.query(sql))).rejects.toThrow(
        /permission denied/,
      );
    }
  });

  it('runs tenant queries as a role that owns nothing and cannot bypass RLS', async () => {
    const role = await withTenant(db, { orgId: a.org, userId: a.user }, (tx) =>
      tx.query<{ who: string }>('SELECT current_user AS who'),
    );
    expect(role.rows[0]!.who).toBe(APP_ROLE);
    const { rows } = await db.query<{
      rolname: string;
      rolsuper: boolean;
      rolbypassrls: boolean;
      rolcanlogin: boolean;
      rolcreaterole: boolean;
      rolcreatedb: boolean;
    }>(
      `SELECT rolname, rolsuper, rolbypassrls, rolcanlogin, rolcreaterole, rolcreatedb FROM pg_roles
        WHERE rolname IN ($1, $2) ORDER BY rolname`,
      [APP_ROLE, SYSTEM_ROLE],
    );
    const app = rows.find((r) => r.rolname === APP_ROLE)!;
    expect(app).toMatchObject({
      rolsuper: false,
      rolbypassrls: false,
      rolcanlogin: false,
      rolcreaterole: false,
    });
    const system = rows.find((r) => r.rolname === SYSTEM_ROLE)!;
    expect(system).toMatchObject({ rolsuper: false, rolcanlogin: false, rolcreaterole: false });
    const owned = await db.query<{ n: number }>(
      `SELECT (SELECT count(*) FROM pg_class WHERE relowner IN (SELECT oid FROM pg_roles WHERE rolname IN ($1, $2)))
            + (SELECT count(*) FROM pg_proc WHERE proowner IN (SELECT oid FROM pg_roles WHERE rolname IN ($1, $2)))
            + (SELECT count(*) FROM pg_namespace WHERE nspowner IN (SELECT oid FROM pg_roles WHERE rolname IN ($1, $2)))
            + (SELECT count(*) FROM pg_type WHERE typowner IN (SELECT oid FROM pg_roles WHERE rolname IN ($1, $2)))
            AS n`,
      [APP_ROLE, SYSTEM_ROLE],
    );
    expect(Number(owned.rows[0]!.n)).toBe(0);
    // Owning a table would exempt the owner from non-forced RLS and allow ALTER/DROP.
    await expect(
      withTenant(db, { orgId: a.org, userId: a.user }, (tx) => tx.query('DROP TABLE users')),
    ).rejects.toThrow(/must be owner|permission denied/);
    await expect(
      withTenant(db, { orgId: a.org, userId: a.user }, (tx) =>
        tx.query('ALTER TABLE users DISABLE ROW LEVEL SECURITY'),
      ),
    ).rejects.toThrow(/must be owner|permission denied/);
  });

  it('leaves no tenant setting behind on a reused connection', async () => {
    // Many tenant transactions, then plain ones on (with PostgreSQL) the same pooled connections.
    await Promise.all(
      Array.from({ length: 20 }, (_, i) =>
        withTenant(db, { orgId: i % 2 ? a.org : b.org, userId: null }, (tx) => tx.query('SELECT 1')),
      ),
    );
    const seen = await Promise.all(
      Array.from({ length: 20 }, () =>
        db.transaction(async (tx) => {
          const { rows } = await tx.query<{ who: string; org: string | null }>(
            `SELECT current_user AS who, current_setting('app.org_id', true) AS org`,
          );
          return rows[0]!;
        }),
      ),
    );
    for (const s of seen) {
      expect(s.who).not.toBe(APP_ROLE);
      expect(s.org ?? '').toBe('');
    }
    if (usingPostgres) expect(seen).toHaveLength(20);
  });
});
