import { randomUUID } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { incidentNotify } from '../src/cli/commands/incident.js';
import { ManualClock } from '../src/adapters/system/clock.adapter.js';
import { withSystem } from '../src/db/tenant.js';
import { IncidentService } from '../src/services/operations/incident.service.js';
import { IncidentNotifyService } from '../src/services/operations/incident-notify.service.js';
import { fakeSmtp, mailText, type FakeSmtp } from './helpers/fake-smtp.js';
import { addUser, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { backendLabel, startTestApp, type TestApp } from './helpers/test-app.js';

/**
 * `sotto incident notify` (docs/security.md, incident runbook): each affected org's drafted
 * notice goes to its owners over real SMTP (a capturing server), the org's audit chain records
 * it with counts only, the same window is not sent twice without --force, and --dry-run sends
 * and records nothing.
 */
describe(`sotto incident notify (${backendLabel})`, () => {
  const clock = new ManualClock(new Date('2026-04-01T09:00:00.000Z'));
  let smtp: FakeSmtp;
  let t: TestApp;
  let a: TestUser;
  let b: TestUser;
  let c: TestUser;
  const recordingOfA = randomUUID();
  const window = { from: '2026-04-02T00:00:00Z', to: '2026-04-03T00:00:00Z' };
  const quiet = () => undefined;

  const notifiedEntries = (orgId: string) =>
    withSystem(t.services.db, async (tx) => {
      const { rows } = await tx.query<{ details: Record<string, unknown>; actor_kind: string }>(
        "SELECT details, actor_kind FROM audit_log WHERE org_id = $1 AND action = 'incident.notified' ORDER BY seq",
        [orgId],
      );
      return rows;
    });

  beforeAll(async () => {
    smtp = await fakeSmtp();
    t = await startTestApp({
      clock,
      env: { SOTTO_SMTP_URL: smtp.url, SOTTO_MAIL_FROM: 'Sotto <no-reply@sotto.test>' },
    });
    a = await createOrgWithUser(t.services, { role: 'owner', orgName: 'Clinic A' });
    await addUser(t.services, a.orgId, { role: 'owner', email: 'second-owner@a.example' });
    const member = await addUser(t.services, a.orgId, { role: 'member', email: 'member@a.example' });
    // A hostile org name: line breaks and a right-to-left override must not reach the headers.
    b = await createOrgWithUser(t.services, {
      role: 'owner',
      orgName: 'Practice B\r\nBcc: attacker@evil.example \u202Egnp.exe',
    });
    c = await createOrgWithUser(t.services, { role: 'owner', orgName: 'Quiet C' });
    clock.set(new Date('2026-04-02T10:00:00.000Z'));
    await t.services.audit.recordStandalone({
      orgId: a.orgId,
      actorId: member.userId,
      actorKind: 'user',
      action: 'recording.exported',
      targetType: 'recording',
      targetId: recordingOfA,
    });
    await t.services.audit.recordStandalone({
      orgId: b.orgId,
      actorId: b.userId,
      actorKind: 'user',
      action: 'member.role_changed',
      targetType: 'user',
      targetId: b.userId,
    });
    // Org C's activity is outside the window: it is not notified.
    clock.set(new Date('2026-04-05T10:00:00.000Z'));
    await t.services.audit.recordStandalone({
      orgId: c.orgId,
      actorId: c.userId,
      actorKind: 'user',
      action: 'recording.deleted',
      targetType: 'recording',
      targetId: randomUUID(),
    });
  });
  afterAll(async () => {
    await t?.close();
    await smtp?.close();
  });

  it('--dry-run lists the recipients and sends and records nothing', async () => {
    const lines: string[] = [];
    const results = await incidentNotify(t.services, { ...window, dryRun: true }, (l) => lines.push(l));
    expect(results.map((r) => [r.orgId, r.outcome]).sort()).toEqual(
      [
        [a.orgId, 'would_send'],
        [b.orgId, 'would_send'],
      ].sort(),
    );
    expect(results.find((r) => r.orgId === a.orgId)!.recipients.sort()).toEqual(
      [a.email, 'second-owner@a.example'].sort(),
    );
    expect(lines.join('\n')).toContain('would send (dry run)');
    expect(smtp.messages).toHaveLength(0);
    expect(await notifiedEntries(a.orgId)).toEqual([]);
  });

  it("sends each org's notice to each of its owners, and records it in that org's chain with counts only", async () => {
    const results = await incidentNotify(t.services, window, quiet);
    expect(results.every((r) => r.outcome === 'sent')).toBe(true);
    // Two owners of A, one of B; none of C (outside the window), none to A's member.
    expect(smtp.messages).toHaveLength(3);
    const texts = smtp.messages.map(mailText);
    const toA = texts.filter((m) => m.includes('Subject: Security notice for Clinic A'));
    expect(toA).toHaveLength(2);
    expect(toA.some((m) => m.includes(`To: ${a.email}`))).toBe(true);
    expect(toA.some((m) => m.includes('To: second-owner@a.example'))).toBe(true);
    expect(toA[0]).toContain(`Recordings involved: 1 (${recordingOfA})`);
    expect(toA[0]).toContain('Questions: mailto:security@example.invalid');
    expect(texts.some((m) => m.includes('member@a.example') && /^To: member@/m.test(m))).toBe(false);
    // The hostile name: one To header, no Bcc header, no bidi override in the headers.
    const toB = texts.find((m) => m.includes(`To: ${b.email}`))!;
    const headers = toB.slice(0, toB.indexOf('\n\n'));
    expect(headers).not.toMatch(/^bcc:/im);
    expect(headers).not.toContain('\u202E');
    expect(texts.join('\n')).not.toContain(c.email);

    const [entryA] = await notifiedEntries(a.orgId);
    expect(entryA?.actor_kind).toBe('system');
    expect(entryA?.details).toEqual({
      windowFrom: '2026-04-02T00:00:00.000Z',
      windowTo: '2026-04-03T00:00:00.000Z',
      recipients: 2,
      sent: 2,
      failed: 0,
      entries: 1,
      recordings: 1,
      users: 0,
      forced: false,
    });
    // Counts only: no address, no notice text in the chain.
    expect(JSON.stringify(entryA)).not.toContain('@');
    expect(await notifiedEntries(c.orgId)).toEqual([]);
    // Written into the org's own hash chain, which still verifies.
    expect(await t.services.audit.verify(a.orgId)).toEqual([
      expect.objectContaining({ orgId: a.orgId, ok: true }),
    ]);
  });

  it('refuses to send the same window twice unless --force, and only to the org asked for', async () => {
    const before = smtp.messages.length;
    const again = await incidentNotify(t.services, window, quiet);
    expect(again.every((r) => r.outcome === 'already_notified')).toBe(true);
    expect(smtp.messages.length).toBe(before);

    const forced = await incidentNotify(t.services, { ...window, org: b.orgId, force: true }, quiet);
    expect(forced.map((r) => [r.orgId, r.outcome])).toEqual([[b.orgId, 'sent']]);
    expect(smtp.messages.length).toBe(before + 1);
    const entriesB = await notifiedEntries(b.orgId);
    expect(entriesB.map((e) => e.details.forced)).toEqual([false, true]);
    // A different window is a different notice.
    const wider = await incidentNotify(
      t.services,
      { from: '2026-04-01T00:00:00Z', to: '2026-04-03T00:00:00Z', org: a.orgId, dryRun: true },
      quiet,
    );
    expect(wider.map((r) => r.outcome)).toEqual(['would_send']);
  });

  it('refuses bad input, and says so when SMTP is not configured', async () => {
    await expect(incidentNotify(t.services, { from: '2026-04-03', to: '2026-04-02' }, quiet)).rejects.toThrow(
      '--from must be a date before --to',
    );
    await expect(incidentNotify(t.services, { ...window, org: "x' OR 1=1" }, quiet)).rejects.toThrow(
      '--org: not an organization id',
    );
    const noSmtp = await startTestApp({ env: { SOTTO_SMTP_URL: '' } });
    try {
      await expect(incidentNotify(noSmtp.services, window, quiet)).rejects.toThrow(
        'SOTTO_SMTP_URL is not set',
      );
      // A dry run needs no SMTP.
      await expect(
        incidentNotify(noSmtp.services, { ...window, dryRun: true }, quiet),
      ).resolves.toBeDefined();
    } finally {
      await noSmtp.close();
    }
  });

  it('reports a failed delivery and records nothing, so a re-run retries it', async () => {
    const down = await startTestApp({ env: { SOTTO_SMTP_URL: 'smtp://127.0.0.1:9' } });
    try {
      const o = await createOrgWithUser(down.services, { role: 'owner', orgName: 'Unlucky D' });
      await down.services.audit.recordStandalone({
        orgId: o.orgId,
        actorId: o.userId,
        actorKind: 'user',
        action: 'recording.deleted',
        targetType: 'recording',
        targetId: randomUUID(),
      });
      const now = new Date();
      const w = {
        from: new Date(now.getTime() - 3600_000).toISOString(),
        to: new Date(now.getTime() + 3600_000).toISOString(),
        org: o.orgId,
      };
      const lines: string[] = [];
      await expect(incidentNotify(down.services, w, (l) => lines.push(l))).rejects.toThrow(
        '1 organization(s) not fully notified',
      );
      expect(lines.join('\n')).toContain('FAILED (0/1)');
      const { rows } = await withSystem(down.services.db, (tx) =>
        tx.query("SELECT 1 FROM audit_log WHERE org_id = $1 AND action = 'incident.notified'", [o.orgId]),
      );
      expect(rows).toHaveLength(0);
    } finally {
      await down.close();
    }
  });

  it('an audit entry that cannot be recorded after the mails went out: said so, and the other orgs go on', async () => {
    const failing = {
      recordStandalone: async (e: Parameters<typeof t.services.audit.recordStandalone>[0]) => {
        if (e.orgId === a.orgId) throw new Error('database went away');
        return t.services.audit.recordStandalone(e);
      },
    };
    const contact = t.services.config.securityContact;
    const notifier = new IncidentNotifyService(
      t.services.db,
      new IncidentService(t.services.db, contact),
      failing,
      t.services.mailer,
      contact,
    );
    const before = (await notifiedEntries(b.orgId)).length;
    const results = await notifier.notify({
      from: new Date(window.from),
      to: new Date(window.to),
      force: true,
    });
    const byOrg = new Map(results.map((r) => [r.orgId, r]));
    expect(byOrg.get(a.orgId)).toMatchObject({ outcome: 'sent_unrecorded', sent: 2, failed: 0 });
    expect(byOrg.get(b.orgId)?.outcome).toBe('sent');
    expect((await notifiedEntries(b.orgId)).length).toBe(before + 1);
  });

  it('a window that includes earlier notices does not count them as activity', async () => {
    clock.set(new Date('2026-05-01T10:00:00.000Z'));
    const lines: string[] = [];
    await incidentNotify(t.services, { ...window, org: a.orgId, force: true }, quiet);
    expect((await notifiedEntries(a.orgId)).at(-1)?.details).toMatchObject({
      windowFrom: '2026-04-02T00:00:00.000Z',
    });
    // The notice just recorded (at 2026-05-01T10:00) is the org's only entry in this window.
    const results = await incidentNotify(
      t.services,
      { from: '2026-05-01T00:00:00Z', to: '2026-05-02T00:00:00Z', dryRun: true },
      (l) => lines.push(l),
    );
    expect(results.map((r) => r.orgId)).not.toContain(a.orgId);
  });
});
