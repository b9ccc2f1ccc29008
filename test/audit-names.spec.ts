import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { withTenant } from '../src/db/tenant.js';
import {
  addUser,
  bearer,
  createOrgWithUser,
  createSupportUserFixture,
  eventually,
  type TestUser,
} from './helpers/fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';
import { seedTranscript } from './helpers/transcripts.js';

/**
 * GET /api/v1/audit made readable (issue 13): each entry names its actor and target (this org's
 * users by name and email, recordings by their decrypted title, for callers who may read them),
 * the answer lists the actions the log holds for a picker, and a date range filters it. Nothing of
 * another organization is ever named, hostile filters are refused with 400, and an API token that
 * may read the log but not the recordings gets no titles.
 */
describe(`audit log names and filters (${backendLabel})`, () => {
  let t: TestApp;
  let owner: TestUser;
  let member: TestUser;
  let foreign: TestUser;
  let recordingId = '';
  let foreignRecordingId = '';

  interface Entry {
    seq: number;
    at: string;
    action: string;
    actorId: string | null;
    actorKind: string;
    targetId: string | null;
    actorName: string | null;
    actorEmail: string | null;
    targetLabel: string | null;
  }
  const read = async (token: string, query = '') => {
    const res = await t.app.inject({ url: `/api/v1/audit${query}`, headers: bearer(token) });
    return { status: res.statusCode, body: res.json() as { entries: Entry[]; actions: string[] } };
  };
  /** Appends an entry to `orgId`'s chain as a service would, at the clock's time. */
  const record = (
    orgId: string,
    e: { actorId: string | null; action: string; targetType?: string; targetId?: string },
  ) =>
    withTenant(t.db, { orgId, userId: null }, (tx) =>
      t.services.audit.record(tx, { orgId, actorKind: e.actorId ? 'user' : 'system', ...e }),
    );

  beforeAll(async () => {
    t = await startTestApp();
    owner = await createOrgWithUser(t.services);
    member = await addUser(t.services, owner.orgId, {
      role: 'member',
      name: 'Mo Member',
      email: `mo-${Date.now()}@example.test`,
    });
    foreign = await createOrgWithUser(t.services);
    recordingId = await seedTranscript(t.services, owner, { title: 'Ward round, bed 4' });
    foreignRecordingId = await seedTranscript(t.services, foreign, { title: 'Their secret meeting' });
    await record(owner.orgId, {
      actorId: owner.userId,
      action: 'member.role_changed',
      targetType: 'user',
      targetId: member.userId,
    });
    await record(owner.orgId, {
      actorId: member.userId,
      action: 'recording.deleted',
      targetType: 'recording',
      targetId: recordingId,
    });
    // Ids of another organization in this org's chain (a forged or stale reference): never named.
    await record(owner.orgId, {
      actorId: foreign.userId,
      action: 'member.removed',
      targetType: 'user',
      targetId: foreign.userId,
    });
    await record(owner.orgId, {
      actorId: null,
      action: 'recording.archived',
      targetType: 'recording',
      targetId: foreignRecordingId,
    });
    await record(foreign.orgId, {
      actorId: foreign.userId,
      action: 'foreign.only',
      targetType: 'recording',
      targetId: foreignRecordingId,
    });
  });
  afterAll(async () => t?.close());

  it('names actors and target users of this org, and decrypts recording titles for owners', async () => {
    const { status, body } = await read(owner.accessToken);
    expect(status).toBe(200);
    const by = (action: string) => body.entries.find((e) => e.action === action)!;
    expect(by('member.role_changed')).toMatchObject({
      actorId: owner.userId,
      actorName: 'Test owner',
      actorEmail: owner.email,
      targetId: member.userId,
      targetLabel: `Mo Member (${member.email})`,
    });
    expect(by('recording.deleted')).toMatchObject({
      actorName: 'Mo Member',
      targetId: recordingId,
      targetLabel: 'Ward round, bed 4',
    });
    expect(body.actions).toEqual([
      'member.removed',
      'member.role_changed',
      'recording.archived',
      'recording.deleted',
    ]);
  });

  it('never names anything of another organization, and never shows its actions', async () => {
    const { body } = await read(owner.accessToken);
    const removed = body.entries.find((e) => e.action === 'member.removed')!;
    expect(removed).toMatchObject({ actorName: null, actorEmail: null, targetLabel: null });
    expect(body.entries.find((e) => e.action === 'recording.archived')!.targetLabel).toBeNull();
    const text = JSON.stringify(body);
    expect(text).not.toContain('Their secret meeting');
    expect(text).not.toContain(foreign.email);
    expect(text).not.toContain('foreign.only');
    // The other org reads its own log only: none of this org's names or actions.
    const theirs = await read(foreign.accessToken);
    expect(theirs.body.actions).toEqual(['foreign.only']);
    expect(JSON.stringify(theirs.body)).not.toContain('Ward round');
    expect(JSON.stringify(theirs.body)).not.toContain(member.email);
    // A member is refused outright.
    expect((await read(member.accessToken)).status).toBe(403);
  });

  it('an API token that may read the log but not the recordings gets names, never titles', async () => {
    const res = await t.app.inject({
      method: 'POST',
      url: '/api/v1/tokens',
      headers: bearer(owner.accessToken),
      payload: { name: 'auditor', scopes: ['audit:read'], expiresInDays: 7 },
    });
    expect(res.statusCode).toBe(201);
    const { body } = await read((res.json() as { token: string }).token);
    const deleted = body.entries.find((e) => e.action === 'recording.deleted')!;
    expect(deleted.targetLabel).toBeNull();
    expect(deleted.actorName).toBe('Mo Member');
    expect(JSON.stringify(body)).not.toContain('Ward round');
  });

  it('filters by action and by a date range (a bare `to` date includes that day)', async () => {
    const only = await read(owner.accessToken, '?action=recording.deleted');
    expect(only.body.entries.map((e) => e.action)).toEqual(['recording.deleted']);
    // Well formed but not in this log: nothing, not an error.
    expect((await read(owner.accessToken, '?action=no.such_action')).body.entries).toEqual([]);
    const all = (await read(owner.accessToken)).body.entries;
    const today = all[0]!.at.slice(0, 10);
    expect((await read(owner.accessToken, `?from=${today}&to=${today}`)).body.entries.length).toBe(
      all.length,
    );
    expect((await read(owner.accessToken, '?to=2001-01-01')).body.entries).toEqual([]);
    expect((await read(owner.accessToken, '?from=2999-01-01')).body.entries).toEqual([]);
    // A date-time bound cuts between entries.
    const newest = all[0]!;
    const after = await read(owner.accessToken, `?from=${encodeURIComponent(newest.at)}`);
    expect(after.body.entries.map((e) => e.seq)).toEqual(
      all.filter((e) => e.at >= newest.at).map((e) => e.seq),
    );
    const before = await read(owner.accessToken, `?to=${encodeURIComponent(newest.at)}`);
    expect(before.body.entries.every((e) => e.at < newest.at)).toBe(true);
  });

  it('refuses hostile filters with 400', async () => {
    const cases = [
      '?from=yesterday',
      '?from=2026-02-30',
      '?from=2026-13-01',
      '?to=1998-06-01',
      '?to=3000-01-01',
      '?from=2026-03-02&to=2026-03-01',
      '?from=2026-03-01T00:00:00',
      `?from=${'9'.repeat(5000)}`,
      '?from=2026-03-01&from=2026-03-02',
      '?action=member.role_changed%00',
      '?action=Member.Removed',
      "?action=x'--",
    ];
    for (const q of cases) expect((await read(owner.accessToken, q)).status, q).toBe(400);
  });

  // Last: it adds support's entries, which the exact action lists above do not expect.
  it('support staff acting through the org\'s grant are "Sotto support", never their own name or email', async () => {
    const support = await createSupportUserFixture(t.services);
    await t.db.query('UPDATE users SET name = $1 WHERE id = $2', ['Sam Staffer', support.userId]);
    const grant = await t.app.inject({
      method: 'POST',
      url: '/api/v1/org/support-grants',
      headers: bearer(owner.accessToken),
      payload: { hours: 1 },
    });
    expect(grant.statusCode).toBe(201);
    // A real request by support in this org: the auth plugin writes its `support.access` entry.
    const seen = await t.app.inject({
      url: '/api/v1/org',
      headers: bearer(support.accessToken, owner.orgId),
    });
    expect(seen.statusCode).toBe(200);

    // Written once the response is sent (onResponse), so it may land a moment after.
    const { body, theirs } = await eventually(async () => {
      const { body } = await read(owner.accessToken);
      const theirs = body.entries.filter((e) => e.actorKind === 'support');
      return theirs.some((e) => e.action === 'support.access') ? { body, theirs } : undefined;
    });
    for (const e of theirs)
      expect(e).toMatchObject({ actorId: support.userId, actorName: 'Sotto support', actorEmail: null });
    // The customer's own grant still names the owner who gave it.
    expect(body.entries.find((e) => e.action === 'support.granted')).toMatchObject({
      actorName: 'Test owner',
      actorEmail: owner.email,
    });
    const text = JSON.stringify(body);
    expect(text).not.toContain(support.email);
    expect(text).not.toContain('Sam Staffer');
    expect(body.actions).toContain('support.access');
  });
});
