import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { addUser, bearer, createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { goToOrgTab, panelSkipReason, usePanel, withPassword } from './helpers/panel.js';
import { axeProblems, DESKTOP, expectSeen, PHONE, sidewaysOverflow } from './helpers/panel-checks.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel } from './helpers/test-app.js';
import { seedTranscript, seg } from './helpers/transcripts.js';

/**
 * The audit log as a person reads it (issue 13), at 1440×900 and 390×844 in real Chromium: who
 * did what to whom by name and recording title (no bare UUIDs), an action picker listing the
 * log's own actions, and a date range whose impossible order is refused beside the field and
 * never sent. The entries come from real API calls (a role change, a transcript edit).
 */
const skipReason = panelSkipReason('panel-audit');

const PASSWORD = 'amber-harbour-lantern-47';

describe.skipIf(Boolean(skipReason))(`panel: readable audit log (${backendLabel})`, () => {
  const panel = usePanel(() => ({ env: recordingEnv().env }));
  let page: Page;
  const auditQueries: URLSearchParams[] = [];
  let owner: TestUser & { password: string };
  let member: TestUser;
  let recordingId = '';

  const rowsText = () => page.locator('table.org-audit tbody').innerText();
  const actionsShown = async () => [...new Set(await page.locator('.org-audit tbody th').allInnerTexts())];

  beforeAll(async () => {
    owner = await withPassword(
      panel.t,
      await createOrgWithUser(panel.t.services, { role: 'owner', orgName: 'Harbour Practice' }),
      PASSWORD,
    );
    member = await addUser(panel.t.services, owner.orgId, { role: 'member', name: 'Mo Member' });
    recordingId = await seedTranscript(panel.t.services, owner, {
      title: 'Ward round, bed 4',
      segments: [seg(1, 'S1', 0, 'alpha bravo charlie')],
    });
    // Real actions through the API, each audited by its service.
    const api = (method: 'PATCH' | 'GET', url: string, payload?: object) =>
      panel.t.app.inject({
        method,
        url,
        headers: bearer(owner.accessToken),
        ...(payload ? { payload } : {}),
      });
    const { revision } = (await api('GET', `/api/v1/recordings/${recordingId}/transcript`)).json() as {
      revision: number;
    };
    expect((await api('PATCH', `/api/v1/org/members/${member.userId}`, { role: 'admin' })).statusCode).toBe(
      200,
    );
    expect(
      (
        await api('PATCH', `/api/v1/recordings/${recordingId}/transcript`, {
          revision,
          speakers: [{ id: 'S1', name: 'Dr Rossi' }],
        })
      ).statusCode,
    ).toBe(200);
    page = await panel.newPage(await panel.newContext(DESKTOP));
    page.on('request', (r) => {
      const u = new URL(r.url());
      if (u.pathname === '/api/v1/audit') auditQueries.push(u.searchParams);
    });
    await panel.loginAs(page, owner);
  }, 120_000);

  for (const size of [DESKTOP, PHONE]) {
    it(`${size.width}px: names and titles instead of ids; the action picker; a date range`, async () => {
      await page.setViewportSize(size);
      await page.goto(`${panel.base}/org/members`);
      await page.getByRole('heading', { name: /^Organization/ }).waitFor();
      await goToOrgTab(page, 'Audit log');
      await page.getByText('Chain verified').waitFor();
      await page.locator('table.org-audit tbody tr').first().waitFor();

      // Who did what to whom, by name; the recording by its (decrypted) title.
      const roleRow = page.locator('table.org-audit tbody tr', { hasText: 'member.role_changed' });
      expect(await roleRow.locator('td[data-label="Actor"]').innerText()).toContain('Test owner');
      expect(await roleRow.locator('td[data-label="Target"]').innerText()).toContain(
        `Mo Member (${member.email})`,
      );
      const editRow = page.locator('table.org-audit tbody tr', { hasText: 'transcript.edited' });
      expect(await editRow.locator('td[data-label="Target"]').innerText()).toContain('Ward round, bed 4');
      await expectSeen(roleRow.locator('td[data-label="Target"]'), 'the target cell', true);
      const text = await rowsText();
      for (const id of [owner.userId, member.userId, recordingId]) expect(text).not.toContain(id);
      expect(await sidewaysOverflow(page)).toBeLessThanOrEqual(0);

      // The picker holds the log's actions; choosing one applies at once.
      const picker = page.getByLabel('Action', { exact: true });
      await expectSeen(picker, 'the action picker', true);
      const options = await picker.locator('option').allInnerTexts();
      expect(options[0]).toBe('All actions');
      expect(options).toEqual(
        expect.arrayContaining(['member.role_changed', 'transcript.edited', 'auth.login']),
      );
      await picker.selectOption('transcript.edited');
      await expect.poll(actionsShown).toEqual(['transcript.edited']);
      await picker.selectOption('');
      await expect.poll(async () => (await actionsShown()).length).toBeGreaterThan(1);

      // A date range: today holds every entry, tomorrow none.
      const today = new Date().toISOString().slice(0, 10);
      const tomorrow = new Date(Date.now() + 86_400_000).toISOString().slice(0, 10);
      const from = page.getByLabel('From', { exact: true });
      const to = page.getByLabel('To (included)');
      await expectSeen(to, 'the end date', true);
      await from.fill(today);
      await to.fill(today);
      await expect.poll(async () => (await actionsShown()).includes('member.role_changed')).toBe(true);
      await from.fill(tomorrow);
      // An end before the start: said under the field, tied to it, and not sent.
      const sent = auditQueries.length;
      const alert = page.locator('#audit-to-error');
      await alert.waitFor();
      expect(await alert.innerText()).toContain('The end date is before the start date');
      expect(await to.getAttribute('aria-invalid')).toBe('true');
      expect(await to.getAttribute('aria-describedby')).toBe('audit-to-error');
      await expectSeen(alert, 'the date error', true);
      expect(auditQueries.length).toBe(sent);
      expect(
        auditQueries.every((q) => !q.get('from') || !q.get('to') || q.get('from')! <= q.get('to')!),
      ).toBe(true);
      expect(await axeProblems(page, `audit with a date error at ${size.width}px`)).toEqual([]);
      await to.fill('');
      await page.getByText('No entries match these filters.').waitFor();
      await page.getByRole('button', { name: 'Clear filters' }).click();
      await page.locator('table.org-audit tbody tr', { hasText: 'member.role_changed' }).waitFor();
      expect(await axeProblems(page, `audit at ${size.width}px`)).toEqual([]);
      expect(panel.cspViolations).toEqual([]);
    }, 90_000);
  }
});
