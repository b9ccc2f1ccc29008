import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../src/db/tenant.js';
import { AppError } from '../src/domain/errors.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';
import { createOrgWithUser, type TestUser } from './helpers/fixtures.js';

describe(`data keys stay inside their tenant (${backendLabel})`, () => {
  let t: TestApp;
  let a: TestUser;
  let b: TestUser;
  beforeAll(async () => {
    t = await startTestApp();
    a = await createOrgWithUser(t.services);
    b = await createOrgWithUser(t.services);
  });
  afterAll(async () => t?.close());

  it("refuses org A's cached key inside org B's transaction, for encrypt and decrypt", async () => {
    const loc = { orgId: a.orgId, table: 'orgs', rowId: a.orgId, field: 'settings' };
    // A's key is now cached in memory.
    const sealed = await withTenant(t.db, { orgId: a.orgId, userId: a.userId }, (tx) =>
      t.services.keys.encrypt(tx, loc, 'private vocabulary'),
    );
    const inB = <T>(fn: Parameters<typeof withTenant<T>>[2]) =>
      withTenant(t.db, { orgId: b.orgId, userId: b.userId }, fn);
    await expect(inB((tx) => t.services.keys.decrypt(tx, loc, sealed))).rejects.toMatchObject({
      code: 'decryption_failed',
    });
    await expect(inB((tx) => t.services.keys.encrypt(tx, loc, 'x'))).rejects.toBeInstanceOf(AppError);
    // In its own tenant it still reads.
    const plain = await withTenant(t.db, { orgId: a.orgId, userId: a.userId }, (tx) =>
      t.services.keys.decryptString(tx, loc, sealed),
    );
    expect(plain).toBe('private vocabulary');
  });
});
