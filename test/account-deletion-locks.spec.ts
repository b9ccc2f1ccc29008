import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../src/db/tenant.js';
import { auditRepository } from '../src/repositories/operations/audit.repository.js';
import { call, freshIp } from './helpers/auth-client.js';
import { addUser, createOrgWithUser, someoneWaitsOnLock } from './helpers/fixtures.js';
import { startTestApp, usingPostgres, type TestApp } from './helpers/test-app.js';

const PASSWORD = 'a long and private passphrase 78';

/**
 * Review finding 7: an account deletion request locks the org row and then appends to the org's
 * audit chain. Another request that already holds the chain lock takes KEY SHARE on the org row
 * when it inserts its audit entry (the foreign key). With FOR UPDATE on the row the two wait for
 * each other (40P01, a 500); FOR NO KEY UPDATE lets the audit insert through. Needs two real
 * connections: PostgreSQL only (PGlite has one connection and cannot interleave transactions).
 */
describe.skipIf(!usingPostgres)('account deletion beside a concurrent audit writer (PostgreSQL)', () => {
  let t: TestApp;
  beforeAll(async () => {
    t = await startTestApp();
  });
  afterAll(async () => t?.close());

  it('completes both, no deadlock, when another transaction holds the org audit lock', async () => {
    const org = await createOrgWithUser(t.services, { role: 'owner', orgName: 'Lock order' });
    const leaving = await addUser(t.services, org.orgId, { role: 'member' });
    await t.db.query('UPDATE users SET password_hash = $1 WHERE id = $2', [
      await t.services.hasher.hash(PASSWORD),
      leaving.userId,
    ]);
    let locked!: () => void;
    const chainLocked = new Promise<void>((r) => (locked = r));
    // Another request: holds the org's chain lock, then (once the deletion waits) inserts its entry.
    const other = withSystem(t.db, async (tx) => {
      await auditRepository.lockChain(tx, org.orgId);
      locked();
      await someoneWaitsOnLock(t.db, 'advisory');
      await t.services.audit.record(tx, {
        orgId: org.orgId,
        actorId: org.userId,
        actorKind: 'user',
        action: 'org.settings_changed',
        targetType: 'org',
        targetId: org.orgId,
      });
    });
    await chainLocked;
    const res = await call(t, freshIp(), {
      method: 'DELETE',
      url: '/api/v1/me',
      headers: { authorization: `Bearer ${leaving.accessToken}` },
      payload: { currentPassword: PASSWORD },
    });
    await other;
    expect(res.statusCode, res.body).toBe(202);
    const { rows } = await t.db.query<{ action: string }>(
      `SELECT action FROM audit_log WHERE org_id = $1 AND action IN ('org.settings_changed', 'account.deletion_requested') ORDER BY seq`,
      [org.orgId],
    );
    expect(rows.map((r) => r.action)).toEqual(['org.settings_changed', 'account.deletion_requested']);
  }, 30_000);
});
