import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { incidentReport } from '../src/cli/commands/incident.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { addUser, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * `sotto incident report` (docs/security.md, incident runbook) on a seeded audit log: what was
 * touched in the window, by whom, and a draft notice for each affected org's owners.
 */
describe(`sotto incident report (${backendLabel})`, () => {
  const clock = new ManualClock(new Date('2026-03-01T09:00:00.000Z'));
  let t: TestApp;
  let a: TestUser;
  let aMember: TestUser;
  let b: TestUser;
  const recordingInWindow = randomUUID();
  const recordingBefore = randomUUID();
  const recordingOfB = randomUUID();

  const at = async (iso: string, entry: Parameters<TestApp['services']['audit']['recordStandalone']>[0]) => {
    clock.set(new Date(iso));
    await t.services.audit.recordStandalone(entry);
  };

  beforeAll(async () => {
    t = await startTestApp({ clock });
    a = await createOrgWithUser(t.services, { role: 'owner', orgName: 'Clinic A' });
    aMember = await addUser(t.services, a.orgId, { role: 'member', email: 'mallory@a.example' });
    b = await createOrgWithUser(t.services, { role: 'owner', orgName: 'Practice B' });
    const base = { actorKind: 'user' as const };
    await at('2026-03-01T09:30:00.000Z', {
      ...base,
      orgId: a.orgId,
      actorId: aMember.userId,
      action: 'recording.deleted',
      targetType: 'recording',
      targetId: recordingBefore,
    });
    await at('2026-03-02T10:00:00.000Z', {
      ...base,
      orgId: a.orgId,
      actorId: aMember.userId,
      action: 'recording.exported',
      targetType: 'recording',
      targetId: recordingInWindow,
    });
    await at('2026-03-02T10:05:00.000Z', {
      ...base,
      orgId: a.orgId,
      actorId: a.userId,
      action: 'member.role_changed',
      targetType: 'user',
      targetId: aMember.userId,
      details: { role: 'admin' },
    });
    await at('2026-03-02T11:00:00.000Z', {
      ...base,
      orgId: b.orgId,
      actorId: b.userId,
      action: 'recording.deleted',
      targetType: 'recording',
      targetId: recordingOfB,
    });
    await at('2026-03-02T11:30:00.000Z', {
      orgId: null,
      actorId: null,
      actorKind: 'system',
      action: 'keys.rotated',
      targetType: 'master_key',
      targetId: 'v2',
    });
    await at('2026-03-04T00:00:00.000Z', {
      ...base,
      orgId: a.orgId,
      actorId: a.userId,
      action: 'webhook.created',
      targetType: 'webhook',
      targetId: randomUUID(),
    });
  });
  afterAll(async () => t?.close());

  it('lists the orgs, users and recordings touched in the window, by whom, with a notice per org', async () => {
    const lines: string[] = [];
    const report = await incidentReport(
      t.services,
      { from: '2026-03-02T00:00:00Z', to: '2026-03-03T00:00:00Z' },
      (l) => lines.push(l),
    );
    const out = lines.join('\n');
    expect(report.entries).toBe(4);
    expect(report.platformEntries).toBe(1);
    expect(report.orgs.map((o) => o.name).sort()).toEqual(['Clinic A', 'Practice B']);
    const orgA = report.orgs.find((o) => o.orgId === a.orgId)!;
    expect(orgA.recordingsTouched).toEqual([{ id: recordingInWindow, actions: ['recording.exported'] }]);
    expect(orgA.usersTouched).toEqual([
      { id: aMember.userId, email: 'mallory@a.example', actions: ['member.role_changed'] },
    ]);
    expect(orgA.actors).toEqual(
      expect.arrayContaining([
        expect.objectContaining({ email: 'mallory@a.example', actions: { 'recording.exported': 1 } }),
        expect.objectContaining({ email: a.email, actions: { 'member.role_changed': 1 } }),
      ]),
    );
    // Outside the window: neither the earlier deletion nor the later webhook.
    expect(out).not.toContain(recordingBefore);
    expect(out).not.toContain('webhook.created');
    expect(out).toContain(`user mallory@a.example: recording.exported ×1`);
    // The draft goes to the org's owners, names what was touched, and nothing of content.
    expect(orgA.owners.map((o) => o.email)).toEqual([a.email]);
    expect(orgA.notice).toContain(`To: Test owner <${a.email}>`);
    expect(orgA.notice).toContain('Subject: Security notice for Clinic A');
    expect(orgA.notice).toContain(`Recordings involved: 1 (${recordingInWindow})`);
    expect(orgA.notice).toContain('User accounts involved: 1 (mallory@a.example)');
    expect(orgA.notice).toContain('Questions: mailto:security@example.invalid');
    const orgB = report.orgs.find((o) => o.orgId === b.orgId)!;
    expect(orgB.notice).not.toContain('Clinic A');
    expect(orgB.notice).not.toContain(recordingInWindow);
  });

  it('narrows to one org with --org, and refuses a bad window or id', async () => {
    const report = await incidentReport(
      t.services,
      { from: '2026-03-01T00:00:00Z', to: '2026-03-05T00:00:00Z', org: b.orgId },
      () => undefined,
    );
    expect(report.orgs.map((o) => o.orgId)).toEqual([b.orgId]);
    expect(report.entries).toBe(1);
    await expect(
      incidentReport(t.services, { from: '2026-03-03', to: '2026-03-02' }, () => undefined),
    ).rejects.toThrow('--from must be a date before --to');
    await expect(
      incidentReport(t.services, { from: 'yesterday', to: '2026-03-02' }, () => undefined),
    ).rejects.toThrow('--from must be a date before --to');
    await expect(
      incidentReport(t.services, { from: '2026-03-01', to: '2026-03-02', org: "x' OR 1=1" }, () => undefined),
    ).rejects.toThrow('--org: not an organization id');
  });
});
