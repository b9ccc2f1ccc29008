import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { describe, expect, it } from 'vitest';
import { withSystem } from '../src/db/tenant.js';
import type { Actor } from '../src/domain/auth-context.js';
import { goToOrgTab, orgTab, panelSkipReason, screenshotDir as shots, usePanel } from './helpers/panel.js';
import { totp } from './helpers/auth-client.js';
import { backendLabel } from './helpers/test-app.js';
import { seedTranscript, seg } from './helpers/transcripts.js';

/**
 * The data lifecycle screens in Chromium under the production CSP (docs/lifecycle.md): an admin
 * restores an archived recording (back in Recordings) and destroys another (receipt shown); takes
 * a whole-org export (progress, Ready, a zip downloaded); the owner sets the departed-user policy;
 * a member deletes their account and cannot log in again; the owner deletes the organization by
 * typing its slug, is signed out, and cannot log in again.
 */
const skipReason = panelSkipReason('panel-lifecycle');

const OWNER_PASSWORD = 'linden-harbour-compass-47';
const ADMIN_PASSWORD = 'copper-kestrel-meadow-62';
const MEMBER_PASSWORD = 'velvet-anchor-orchard-38';

describe.skipIf(Boolean(skipReason))(`data lifecycle screens in Chromium (${backendLabel})`, () => {
  // Its own data dir (the archive and the exports are files there), removed with the panel.
  const panel = usePanel((dir) => ({ env: { SOTTO_DATA_DIR: dir } }));
  const stamp = Date.now();
  const ownerEmail = `owner-${stamp}@example.test`;
  const adminEmail = `admin-${stamp}@example.test`;
  const memberEmail = `member-${stamp}@example.test`;
  let orgId = '';
  let slug = '';
  let ownerId = '';
  let adminId = '';
  let memberId = '';
  const archived: Record<string, string> = {};
  let owner: { ctx: BrowserContext; page: Page };
  let admin: { ctx: BrowserContext; page: Page };

  const isFocused = (page: Page, name: string) =>
    page.getByRole('button', { name, exact: true }).evaluate((b) => b === b.ownerDocument.activeElement);

  it('the owner signs up; an admin and a member join; three recordings go to the archive', async () => {
    const ctx = await panel.newContext();
    const page = await panel.newPage(ctx);
    owner = { ctx, page };
    await panel.signUp(page, {
      name: 'Olive Owner',
      email: ownerEmail,
      password: OWNER_PASSWORD,
      org: 'Linden Clinic',
    });

    const row = await withSystem(panel.t.db, (tx) =>
      tx.query<{ id: string; org_id: string; slug: string }>(
        'SELECT u.id, u.org_id, o.slug FROM users u JOIN orgs o ON o.id = u.org_id WHERE u.email = $1',
        [ownerEmail],
      ),
    );
    ownerId = row.rows[0]!.id;
    orgId = row.rows[0]!.org_id;
    slug = row.rows[0]!.slug;
    const actor: Actor = {
      userId: ownerId,
      orgId,
      role: 'owner',
      sessionId: 'test',
      viaSupportGrant: false,
      ip: '127.0.0.1',
    };
    const join = async (email: string, role: 'admin' | 'member', name: string, password: string) => {
      const inv = await panel.t.services.invitations.create(actor, { email, role });
      const token = /#token=(.+)$/.exec(inv.inviteUrl)![1]!;
      return (await panel.t.services.invitations.accept({ token, name, password }, '127.0.0.1')).user.id;
    };
    adminId = await join(adminEmail, 'admin', 'Ada Admin', ADMIN_PASSWORD);
    memberId = await join(memberEmail, 'member', 'Milo Member', MEMBER_PASSWORD);

    // Finished recordings as the worker stores them, moved to the archive as retention would.
    for (const title of ['Quarterly review', 'Old intake call', 'Budget meeting']) {
      const id = await seedTranscript(
        panel.t.services,
        { orgId, userId: adminId },
        { title, segments: [seg(1, 'S1', 0, `notes about the ${title.toLowerCase()}`)] },
      );
      const archiveId = await panel.t.services.archive.archiveRecording(orgId, id);
      expect(archiveId).toBeDefined();
      archived[title] = id;
    }
    // The member owns one active recording (what the departed-user policy is about).
    await seedTranscript(panel.t.services, { orgId, userId: memberId }, { title: 'Member notes' });
  }, 120_000);

  it('an admin sees the archive, restores one (back in Recordings) and deletes another (receipt)', async () => {
    const ctx = await panel.newContext();
    const page = await panel.newPage(ctx);
    admin = { ctx, page };
    await panel.loginAs(page, { email: adminEmail, password: ADMIN_PASSWORD });
    expect(await page.locator('li.recording', { hasText: 'Quarterly review' }).count()).toBe(0);

    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Organization' }).click();
    await orgTab(page, 'Archive').click();
    await page.waitForURL(`${panel.base}/org/archive`);
    const list = page.getByRole('list', { name: 'Archived recordings' });
    for (const title of Object.keys(archived)) await list.locator('.org-row', { hasText: title }).waitFor();

    await page.getByRole('button', { name: 'Restore Quarterly review' }).click();
    await page.getByRole('status').filter({ hasText: 'Quarterly review is back in Recordings.' }).waitFor();
    expect(await list.locator('.org-row', { hasText: 'Quarterly review' }).count()).toBe(0);
    expect(await page.getByRole('link', { name: 'Open it' }).getAttribute('href')).toBe(
      `/recordings/${archived['Quarterly review']}`,
    );

    // Deleting asks first, with "Keep it" focused; keeping changes nothing.
    await page.getByRole('button', { name: 'Delete Old intake call for good' }).click();
    await expect.poll(() => isFocused(page, 'Keep it')).toBe(true);
    await page.getByRole('button', { name: 'Keep it', exact: true }).click();
    await page.getByRole('button', { name: 'Delete Old intake call for good' }).click();
    await page.getByRole('button', { name: 'Delete for good', exact: true }).click();
    await page.getByRole('heading', { name: 'Deleted for good: Old intake call' }).waitFor();
    const sha = await page.getByTestId('receipt-content-sha').innerText();
    expect(sha).toMatch(/^[0-9a-f]{64}$/);
    expect(await list.locator('.org-row', { hasText: 'Old intake call' }).count()).toBe(0);
    // The receipt on screen is the one in the audit log.
    const audit = await withSystem(panel.t.db, (tx) =>
      tx.query<{ details: { contentSha256?: string } }>(
        `SELECT details FROM audit_log WHERE action = 'archive.deleted' AND org_id = $1`,
        [orgId],
      ),
    );
    expect(JSON.stringify(audit.rows)).toContain(sha);
    await page.screenshot({ path: path.join(shots, 'org-archive.png'), fullPage: true });

    // The restored recording is back in Recordings under its own id.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Recordings' }).click();
    await page.locator('li.recording', { hasText: 'Quarterly review' }).waitFor();
    await page.goto(`${panel.base}/recordings/${archived['Quarterly review']}`);
    await page.getByText('notes about the quarterly review').first().waitFor();
  }, 120_000);

  it('the admin requests an export, sees it prepared, then Ready, and downloads the zip', async () => {
    const { page } = admin;
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Organization' }).click();
    await orgTab(page, 'Data').click();
    await page.waitForURL(`${panel.base}/org/data`);
    await page.getByText('No exports yet').waitFor();
    // An admin is told that only an owner can delete the organization; no form for them.
    await page.getByText('Only an owner of the organization can delete it.').waitFor();
    expect(await page.getByLabel("Type the organization's slug to confirm").count()).toBe(0);

    await page.getByRole('button', { name: 'Request an export' }).click();
    const row = page.getByRole('list', { name: 'Exports' }).locator('.org-row').first();
    await row.getByRole('progressbar', { name: /^Progress of the export of/ }).waitFor();
    await row.locator('.status', { hasText: 'Ready' }).waitFor({ timeout: 90_000 });
    await page.getByRole('status').filter({ hasText: 'The export is ready to download.' }).waitFor();
    expect(await row.getByRole('progressbar').count()).toBe(0);
    const shown = (await row.locator('.org-id').innerText()).replace('SHA-256 ', '');

    const [download] = await Promise.all([
      page.waitForEvent('download'),
      row.getByRole('button', { name: /^Download the export of/ }).click(),
    ]);
    const file = await download.path();
    const zip = readFileSync(file);
    expect(zip.subarray(0, 2).toString('latin1')).toBe('PK');
    expect(createHash('sha256').update(zip).digest('hex')).toBe(shown);
    expect(download.suggestedFilename()).toMatch(/^sotto-export-[0-9a-f-]{36}\.zip$/);
    await page
      .getByRole('status')
      .filter({ hasText: /^Downloaded sotto-export-/ })
      .waitFor();

    // Phone width: the archive and data sections fit without running off the side.
    await page.setViewportSize({ width: 390, height: 800 });
    for (const name of ['Archive', 'Data']) {
      await goToOrgTab(page, name);
      await page.locator('[aria-busy="true"]').first().waitFor({ state: 'detached' });
      const fits = await page.evaluate(
        'document.documentElement.scrollWidth <= document.documentElement.clientWidth',
      );
      expect(fits, name).toBe(true);
    }
    await page.setViewportSize({ width: 1100, height: 760 });

    // Deleting the export asks first, then removes it.
    await orgTab(page, 'Data').click();
    await page.getByRole('button', { name: /^Delete the export of/ }).click();
    await expect.poll(() => isFocused(page, 'Keep it')).toBe(true);
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'The export and its file were deleted.' }).waitFor();
    await page.getByText('No exports yet').waitFor();

    // A fresh one for the owner's screen (and the screenshot there).
    await page.getByRole('button', { name: 'Request an export' }).click();
    await page
      .getByRole('list', { name: 'Exports' })
      .locator('.status', { hasText: 'Ready' })
      .waitFor({ timeout: 90_000 });
  }, 180_000);

  it('the owner chooses to delete the recordings of departed users', async () => {
    const { page } = owner;
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Organization' }).click();
    await orgTab(page, 'Settings').click();
    const transfer = page.getByLabel(/^Transfer their recordings/);
    await transfer.waitFor();
    expect(await transfer.isChecked()).toBe(true);
    await page.getByLabel(/^Delete their recordings/).check();
    await page.getByRole('button', { name: 'Save settings' }).click();
    await page.getByRole('status').filter({ hasText: 'Settings saved.' }).waitFor();
    await page.reload();
    await page.getByLabel(/^Delete their recordings/).waitFor();
    expect(await page.getByLabel(/^Delete their recordings/).isChecked()).toBe(true);
    const policy = await withSystem(panel.t.db, (tx) =>
      tx.query<{ p: string }>('SELECT departed_user_recordings AS p FROM orgs WHERE id = $1', [orgId]),
    );
    expect(policy.rows[0]?.p).toBe('delete');
    // The owner's Security page says what will happen to their recordings, as the org decided.
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Security' }).click();
    await page.getByText(/this organization deletes them/).waitFor();
  }, 60_000);

  it('a member deletes their account, lands on the login page and cannot log in again', async () => {
    const ctx = await panel.newContext();
    const page = await panel.newPage(ctx);
    await panel.loginAs(page, { email: memberEmail, password: MEMBER_PASSWORD });
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Security' }).click();
    const section = page.getByRole('region', { name: 'Delete my account' });
    await section
      .getByText(/within 24 hours/i)
      .first()
      .waitFor();
    // A member cannot read the org's policy: both outcomes are explained.
    await section.getByText(/chose one or the other/).waitFor();
    await page.setViewportSize({ width: 390, height: 800 });
    expect(
      await page.evaluate('document.documentElement.scrollWidth <= document.documentElement.clientWidth'),
    ).toBe(true);
    await page.setViewportSize({ width: 1100, height: 760 });

    // A wrong password is refused under its field, and nothing is deleted.
    await section.getByLabel('Your password').fill('not-my-password-at-all');
    await section.getByRole('button', { name: 'Delete my account…' }).click();
    await expect.poll(() => isFocused(page, 'Keep my account')).toBe(true);
    await page.getByRole('button', { name: 'Delete my account', exact: true }).click();
    await section.getByText('Your password is not correct.').waitFor();
    expect(await section.getByLabel('Your password').getAttribute('aria-invalid')).toBe('true');

    await section.getByLabel('Your password').fill(MEMBER_PASSWORD);
    await section.getByRole('button', { name: 'Delete my account…' }).click();
    await page.getByRole('button', { name: 'Delete my account', exact: true }).click();
    await page.getByRole('heading', { name: 'Log in to Sotto' }).waitFor();
    await page
      .getByRole('alert')
      .filter({ hasText: /can no longer log in.*at the latest/ })
      .waitFor();

    await page.getByLabel('Email').fill(memberEmail);
    await page.getByLabel('Password').fill(MEMBER_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByText('That email and password do not match an account.').waitFor();
    const queued = await withSystem(panel.t.db, (tx) =>
      tx.query('SELECT 1 FROM account_deletions WHERE user_id = $1', [memberId]),
    );
    expect(queued.rows.length).toBe(1);
    await ctx.close();
  }, 90_000);

  it('the owner deletes the organization by typing its slug, is signed out, and cannot log in again', async () => {
    const { page } = owner;
    await page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Organization' }).click();
    await orgTab(page, 'Data').click();
    const section = page.getByRole('region', { name: 'Delete the organization' });
    await section.getByText(/crypto-shredding/).waitFor();
    await section.getByText(/not in\s+database backups/).waitFor();
    await page.getByRole('list', { name: 'Exports' }).locator('.status', { hasText: 'Ready' }).waitFor();
    await page.screenshot({ path: path.join(shots, 'org-data.png'), fullPage: true });
    await page.setViewportSize({ width: 390, height: 800 });
    expect(
      await page.evaluate('document.documentElement.scrollWidth <= document.documentElement.clientWidth'),
    ).toBe(true);
    await page.setViewportSize({ width: 1100, height: 760 });

    // A wrong slug is refused under its field, before anything is sent.
    await section.getByLabel("Type the organization's slug to confirm").fill('not-the-slug');
    await section.getByLabel('Your password').fill(OWNER_PASSWORD);
    await section.getByRole('button', { name: 'Delete the organization…' }).click();
    await section.locator('#delete-org-slug-error', { hasText: slug }).waitFor();

    // Two-step verification turned on after the page loaded: the server asks for a code, the form
    // grows the field and focuses it; a recovery code does.
    const who = {
      userId: ownerId,
      sessionId: 'test',
      orgId,
      role: 'owner' as const,
      platformRole: null,
      ip: '127.0.0.1',
    };
    const { secret } = await panel.t.services.mfa.startEnrolment(who);
    const { recoveryCodes } = await panel.t.services.mfa.confirmEnrolment(who, totp(secret, Date.now()));
    await section.getByLabel("Type the organization's slug to confirm").fill(slug);
    await section.getByRole('button', { name: 'Delete the organization…' }).click();
    await expect.poll(() => isFocused(page, 'Keep the organization')).toBe(true);
    await page.getByRole('button', { name: 'Delete the organization', exact: true }).click();
    const code = section.getByLabel('Code from your authenticator app');
    await section.getByText('Your account has two-step verification: enter a code as well.').waitFor();
    await expect.poll(() => code.evaluate((i) => i === i.ownerDocument.activeElement)).toBe(true);
    await code.fill(recoveryCodes[0]!);
    await section.getByRole('button', { name: 'Delete the organization…' }).click();
    await page.getByRole('button', { name: 'Delete the organization', exact: true }).click();
    await page.getByRole('heading', { name: 'Log in to Sotto' }).waitFor();
    await page.getByRole('alert').filter({ hasText: 'Linden Clinic was deleted' }).waitFor();

    await page.getByLabel('Email').fill(ownerEmail);
    await page.getByLabel('Password').fill(OWNER_PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByText('That email and password do not match an account.').waitFor();
    const left = await withSystem(panel.t.db, (tx) => tx.query('SELECT 1 FROM orgs WHERE id = $1', [orgId]));
    expect(left.rows.length).toBe(0);

    // The admin's open panel is signed out at its next request.
    await admin.page.reload();
    await admin.page.getByRole('heading', { name: 'Log in to Sotto' }).waitFor();
  }, 90_000);

  it('no page had a CSP violation', async () => {
    await owner?.ctx.close();
    await admin?.ctx.close();
    expect(panel.cspViolations).toEqual([]);
  });
});
