import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { auditVerify } from '../src/cli/commands/audit.js';
import { CliError } from '../src/cli/cli-error.js';
import { withSystem, withTenant } from '../src/db/tenant.js';
import { addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

describe(`audit log API and verification (${backendLabel})`, () => {
  let t: TestApp;
  let owner: TestUser;
  let admin: TestUser;
  let member: TestUser;
  let other: TestUser;

  beforeAll(async () => {
    t = await startTestApp();
    owner = await createOrgWithUser(t.services);
    admin = await addUser(t.services, owner.orgId, { role: 'admin' });
    member = await addUser(t.services, owner.orgId, { role: 'member' });
    other = await createOrgWithUser(t.services, { role: 'admin' });
  });
  afterAll(async () => t?.close());

  const read = (u: TestUser, query = '') =>
    t.app.inject({ url: `/api/v1/audit${query}`, headers: bearer(u.accessToken) });

  /** Appends `n` entries to an org's chain the way services do: inside a tenant transaction. */
  async function append(orgId: string, n: number, action = 'test.event'): Promise<void> {
    for (let i = 0; i < n; i++) {
      await withTenant(t.db, { orgId, userId: null }, (tx) =>
        t.services.audit.record(tx, {
          orgId,
          actorId: null,
          actorKind: 'system',
          action,
          details: { i },
        }),
      );
    }
  }

  /** As the database superuser (the login role), outside the app's roles. */
  const asSuperuser = <T>(fn: Parameters<typeof t.db.transaction<T>>[0]) => t.db.transaction(fn);

  it('owners and admins read their org’s log, newest first, with the chain verified', async () => {
    await append(owner.orgId, 3);
    await append(other.orgId, 2, 'other.event');
    for (const u of [owner, admin]) {
      const res = await read(u);
      expect(res.statusCode).toBe(200);
      const body = res.json();
      expect(body.verification).toEqual({ ok: true, entries: 3 });
      expect(body.entries.map((e: { seq: number }) => e.seq)).toEqual([3, 2, 1]);
      expect(body.entries[0]).toEqual({
        seq: 3,
        at: expect.any(String),
        actorId: null,
        actorKind: 'system',
        action: 'test.event',
        targetType: null,
        targetId: null,
        ip: null,
        details: { i: 2 },
        hash: expect.stringMatching(/^[0-9a-f]{64}$/),
        actorName: null,
        actorEmail: null,
        targetLabel: null,
      });
      expect(body.actions).toEqual(['test.event']);
      expect(body.nextBeforeSeq).toBeNull();
      expect(JSON.stringify(body)).not.toContain('other.event');
    }
  });

  it('members get 403, anonymous 401', async () => {
    expect((await read(member)).statusCode).toBe(403);
    expect((await t.app.inject({ url: '/api/v1/audit' })).statusCode).toBe(401);
  });

  it('pages by seq and filters by action', async () => {
    await append(owner.orgId, 2, 'special.event');
    const page1 = (await read(owner, '?limit=2')).json();
    expect(page1.entries.map((e: { seq: number }) => e.seq)).toEqual([5, 4]);
    expect(page1.nextBeforeSeq).toBe(4);
    const page2 = (await read(owner, `?limit=2&beforeSeq=${page1.nextBeforeSeq}`)).json();
    expect(page2.entries.map((e: { seq: number }) => e.seq)).toEqual([3, 2]);
    const page3 = (await read(owner, `?limit=2&beforeSeq=${page2.nextBeforeSeq}`)).json();
    expect(page3.entries.map((e: { seq: number }) => e.seq)).toEqual([1]);
    expect(page3.nextBeforeSeq).toBeNull();
    const filtered = (await read(owner, '?action=special.event')).json();
    expect(filtered.entries.map((e: { seq: number }) => e.seq)).toEqual([5, 4]);
    expect((await read(other, '?action=special.event')).json().entries).toEqual([]);
  });

  it('rejects hostile query parameters with 400', async () => {
    const cases = [
      '?limit=0',
      '?limit=1000',
      '?limit=ten',
      '?beforeSeq=-1',
      '?beforeSeq=1e400',
      "?action=x' OR '1'='1",
      '?action=UPPER',
      `?action=${'a'.repeat(101)}`,
      '?orgId=00000000-0000-4000-8000-000000000000',
    ];
    for (const q of cases) expect((await read(owner, q)).statusCode, q).toBe(400);
  });

  it('the app role cannot UPDATE or DELETE the log, nor rewind or delete a chain head', async () => {
    const denied = async (sql: string) => {
      const err = await withTenant(t.db, { orgId: owner.orgId, userId: null }, (tx) => tx.query(sql)).then(
        () => undefined,
        (e: { code?: string; message: string }) => e,
      );
      expect(err, sql).toBeDefined();
      return err!;
    };
    for (const sql of [
      `UPDATE audit_log SET details = '{}'::jsonb`,
      'DELETE FROM audit_log',
      'DELETE FROM audit_heads',
      'TRUNCATE audit_log',
    ]) {
      const err = await denied(sql);
      expect(err.code, sql).toBe('42501');
      expect(err.message).toMatch(/permission denied/);
    }
    const rewind = await denied('UPDATE audit_heads SET seq = seq - 1');
    expect(rewind.message).toMatch(/only advances/);
    // The system role is no different.
    const err = await withSystem(t.db, (tx) => tx.query('DELETE FROM audit_log')).catch(
      (e: { code: string }) => e,
    );
    expect((err as { code: string }).code).toBe('42501');
    expect((await read(owner)).json().verification).toEqual({ ok: true, entries: 5 });
  });

  it('detects an entry altered by the superuser (API, service and CLI)', async () => {
    const victim = await createOrgWithUser(t.services);
    await append(victim.orgId, 4);
    await asSuperuser(async (tx) => {
      await tx.query('ALTER TABLE audit_log DISABLE TRIGGER audit_log_no_update');
      await tx.query(`UPDATE audit_log SET details = '{"i": 99}'::jsonb WHERE org_id = $1 AND seq = 2`, [
        victim.orgId,
      ]);
      await tx.query('ALTER TABLE audit_log ENABLE TRIGGER audit_log_no_update');
    });
    const [report] = await t.services.audit.verify(victim.orgId);
    expect(report).toEqual({
      orgId: victim.orgId,
      entries: 4,
      ok: false,
      problem: { seq: 2, reason: 'entry content does not match its hash (altered)' },
    });
    expect((await read(victim)).json().verification).toEqual({
      ok: false,
      entries: 4,
      problem: { seq: 2, reason: 'entry content does not match its hash (altered)' },
    });

    const lines: string[] = [];
    expect(await auditVerify(t.services, {}, (l) => lines.push(l))).toBe(1);
    expect(lines.find((l) => l.includes(victim.orgId))).toMatch(/^BROKEN .*seq 2/);
    expect(lines.find((l) => l.includes(owner.orgId))).toMatch(/^ok /);
    expect(lines.at(-1)).toMatch(/1 of \d+ chain\(s\) BROKEN/);
    // Other chains are unaffected.
    expect(await auditVerify(t.services, { org: owner.orgId }, () => undefined)).toBe(0);
    expect(await auditVerify(t.services, { org: victim.orgId.toUpperCase() }, () => undefined)).toBe(1);
  });

  it('detects a removed middle entry', async () => {
    const victim = await createOrgWithUser(t.services);
    await append(victim.orgId, 4);
    await asSuperuser((tx) =>
      tx.query('DELETE FROM audit_log WHERE org_id = $1 AND seq = 3', [victim.orgId]),
    );
    const [report] = await t.services.audit.verify(victim.orgId);
    expect(report).toMatchObject({
      ok: false,
      entries: 3,
      problem: { seq: 4, reason: expect.stringMatching(/entry 3 is missing/) },
    });
  });

  it('detects removed LAST entries (the chain head remembers), even after new appends', async () => {
    const victim = await createOrgWithUser(t.services);
    await append(victim.orgId, 5);
    await asSuperuser((tx) =>
      tx.query('DELETE FROM audit_log WHERE org_id = $1 AND seq >= 4', [victim.orgId]),
    );
    const [report] = await t.services.audit.verify(victim.orgId);
    expect(report).toEqual({
      orgId: victim.orgId,
      entries: 3,
      ok: false,
      problem: { seq: 4, reason: 'entries 4-5 are missing (removed from the end of the chain)' },
    });
    // The next entry continues after the head, so the hole stays visible instead of being refilled.
    await append(victim.orgId, 1);
    const [after] = await t.services.audit.verify(victim.orgId);
    expect(after).toMatchObject({
      ok: false,
      problem: { seq: 6, reason: expect.stringMatching(/entry 4 is missing/) },
    });
    const json: string[] = [];
    expect(await auditVerify(t.services, { org: victim.orgId, json: true }, (l) => json.push(l))).toBe(1);
    expect(JSON.parse(json[0]!)).toMatchObject({ ok: false, chains: [{ orgId: victim.orgId, ok: false }] });
  });

  it('detects a chain emptied completely, and a chain whose head was removed', async () => {
    const emptied = await createOrgWithUser(t.services);
    await append(emptied.orgId, 2);
    await asSuperuser((tx) => tx.query('DELETE FROM audit_log WHERE org_id = $1', [emptied.orgId]));
    const [gone] = await t.services.audit.verify(emptied.orgId);
    expect(gone).toMatchObject({ ok: false, entries: 0, problem: { seq: 1 } });
    const all = await t.services.audit.verify();
    expect(all.find((r) => r.orgId === emptied.orgId)?.ok).toBe(false);

    const headless = await createOrgWithUser(t.services);
    await append(headless.orgId, 2);
    await asSuperuser((tx) => tx.query('DELETE FROM audit_heads WHERE org_id = $1', [headless.orgId]));
    const [noHead] = await t.services.audit.verify(headless.orgId);
    expect(noHead).toMatchObject({
      ok: false,
      problem: { seq: 2, reason: 'the chain head record is missing' },
    });
  });

  it('an org with no entries verifies as an empty, intact chain', async () => {
    const fresh = await createOrgWithUser(t.services);
    expect((await read(fresh)).json()).toEqual({
      entries: [],
      nextBeforeSeq: null,
      actions: [],
      verification: { ok: true, entries: 0 },
    });
  });

  it('sotto audit verify refuses a malformed --org', async () => {
    await expect(
      auditVerify(t.services, { org: "x'; DROP TABLE audit_log; --" }, () => undefined),
    ).rejects.toThrow(CliError);
  });
});
