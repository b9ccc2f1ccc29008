import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withSystem } from '../src/db/tenant.js';
import { addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

describe(`GET /org and /org/settings (${backendLabel})`, () => {
  let t: TestApp;
  let owner: TestUser;
  let admin: TestUser;
  let member: TestUser;
  let other: TestUser;

  beforeAll(async () => {
    t = await startTestApp();
    owner = await createOrgWithUser(t.services, { orgName: 'Acme Therapy' });
    admin = await addUser(t.services, owner.orgId, { role: 'admin' });
    member = await addUser(t.services, owner.orgId, { role: 'member' });
    other = await createOrgWithUser(t.services, { role: 'admin', orgName: 'Other Org' });
  });
  afterAll(async () => t?.close());

  const get = (url: string, u: TestUser) => t.app.inject({ url, headers: bearer(u.accessToken) });
  const patch = (u: TestUser, payload: unknown) =>
    t.app.inject({
      method: 'PATCH',
      url: '/api/v1/org/settings',
      headers: bearer(u.accessToken),
      payload: payload as object,
    });

  it('GET /org shows every member their own organization, and only that one', async () => {
    const res = await get('/api/v1/org', member);
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      id: owner.orgId,
      name: 'Acme Therapy',
      slug: expect.stringMatching(/^org-/),
      createdAt: expect.any(String),
      retentionDays: 90,
      storeAudio: false,
    });
    expect((await get('/api/v1/org', other)).json().id).toBe(other.orgId);
  });

  it('needs a valid access token', async () => {
    expect((await t.app.inject({ url: '/api/v1/org' })).statusCode).toBe(401);
    const forged = `${owner.accessToken.slice(0, -4)}AAAA`;
    expect((await t.app.inject({ url: '/api/v1/org', headers: bearer(forged) })).statusCode).toBe(401);
  });

  it('settings are for admins: members get 403 on GET and PATCH', async () => {
    expect((await get('/api/v1/org/settings', member)).statusCode).toBe(403);
    const res = await patch(member, { retentionDays: 30 });
    expect(res.statusCode).toBe(403);
    expect(res.json().code).toBe('forbidden');
  });

  it('PATCH changes settings, stores the vocabulary encrypted, and audits keys but not words', async () => {
    const before = await get('/api/v1/org/settings', admin);
    expect(before.json()).toEqual({
      retentionDays: 90,
      storeAudio: false,
      vocabulary: [],
      departedUserRecordings: 'transfer',
    });

    const words = ['Zyprexa', 'Dr. Okonkwo', 'Hallowell Clinic'];
    const res = await patch(admin, { retentionDays: 30, vocabulary: words });
    expect(res.statusCode).toBe(200);
    expect(res.json()).toEqual({
      retentionDays: 30,
      storeAudio: false,
      vocabulary: words,
      departedUserRecordings: 'transfer',
    });
    expect((await get('/api/v1/org/settings', owner)).json().vocabulary).toEqual(words);
    expect((await get('/api/v1/org', member)).json().retentionDays).toBe(30);

    // The raw row holds ciphertext, not the words.
    const raw = await withSystem(t.db, async (tx) => {
      const { rows } = await tx.query<{ settings_enc: Uint8Array }>(
        'SELECT settings_enc FROM orgs WHERE id = $1',
        [owner.orgId],
      );
      return Buffer.from(rows[0]!.settings_enc);
    });
    expect(raw.length).toBeGreaterThan(33);
    for (const w of words) expect(raw.includes(Buffer.from(w))).toBe(false);

    const audit = await get('/api/v1/audit?action=org.settings_changed', owner);
    expect(audit.statusCode).toBe(200);
    const details = audit.json().entries[0].details;
    expect(details).toEqual({
      changed: ['retentionDays', 'vocabulary'],
      retentionDays: { from: 90, to: 30 },
    });
    expect(JSON.stringify(audit.json())).not.toContain('Zyprexa');
  });

  it('a PATCH that changes nothing writes no audit entry', async () => {
    const count = async () =>
      (await get('/api/v1/audit?action=org.settings_changed', owner)).json().entries.length;
    const n = await count();
    expect((await patch(owner, { retentionDays: 30 })).statusCode).toBe(200);
    expect(await count()).toBe(n);
    expect((await patch(owner, { storeAudio: true })).json().storeAudio).toBe(true);
    expect(await count()).toBe(n + 1);
  });

  it('another org sees its own settings, never these', async () => {
    const res = await get('/api/v1/org/settings', other);
    expect(res.json()).toEqual({
      retentionDays: 90,
      storeAudio: false,
      vocabulary: [],
      departedUserRecordings: 'transfer',
    });
  });

  it('rejects hostile and malformed bodies with 400 and changes nothing', async () => {
    const cases: unknown[] = [
      { retentionDays: 0 },
      { retentionDays: 3651 },
      { retentionDays: '30' },
      { retentionDays: 1.5 },
      { storeAudio: 'yes' },
      { departedUserRecordings: 'keep' },
      { departedUserRecordings: true },
      { vocabulary: 'one word' },
      { vocabulary: [42] },
      { vocabulary: ['x'.repeat(101)] },
      { vocabulary: Array.from({ length: 1001 }, (_, i) => `w${i}`) },
      { vocabulary: ['bad\u0000word'] },
      { retentionDays: 30, orgId: other.orgId },
      {},
      [],
      null,
    ];
    for (const payload of cases) {
      const res = await patch(admin, payload);
      expect(res.statusCode, JSON.stringify(payload)?.slice(0, 80)).toBe(400);
      expect(res.json().code).toMatch(/validation_failed|bad_request/);
    }
    const res = await t.app.inject({
      method: 'PATCH',
      url: '/api/v1/org/settings',
      headers: { ...bearer(admin.accessToken), 'content-type': 'application/json' },
      payload: '{"retentionDays": 30',
    });
    expect(res.statusCode).toBe(400);
    expect((await get('/api/v1/org/settings', admin)).json().retentionDays).toBe(30);
  });

  it('keeps SQL metacharacters in vocabulary words as plain data', async () => {
    const words = ["'; DROP TABLE orgs; --", 'Robert"); DELETE FROM users; --', '%_\\'];
    const res = await patch(admin, { vocabulary: words });
    expect(res.statusCode).toBe(200);
    expect((await get('/api/v1/org/settings', admin)).json().vocabulary).toEqual(words);
    expect((await get('/api/v1/org/members', admin)).json()).toHaveLength(3);
  });

  it('documents every org, invitation and audit route in the OpenAPI spec', async () => {
    const res = await t.app.inject({ url: '/api/docs/json' });
    expect(res.statusCode).toBe(200);
    const paths = res.json().paths as Record<string, Record<string, unknown>>;
    expect(Object.keys(paths['/api/v1/org/members/{id}'] ?? {}).sort()).toEqual(['delete', 'patch']);
    expect(Object.keys(paths['/api/v1/org/settings'] ?? {}).sort()).toEqual(['get', 'patch']);
    expect(paths['/api/v1/org/invitations']).toHaveProperty('post');
    expect(paths['/api/v1/org/support-grants/{id}']).toHaveProperty('delete');
    expect(paths['/api/v1/auth/accept-invitation']).toHaveProperty('post');
    expect(paths['/api/v1/audit/'] ?? paths['/api/v1/audit']).toHaveProperty('get');
  });
});
