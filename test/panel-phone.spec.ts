import path from 'node:path';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { addUser, createOrgWithUser } from './helpers/fixtures.js';
import { orgTab, panelSkipReason, screenshotDir as shots, usePanel, withPassword } from './helpers/panel.js';
import { axeProblems, DESKTOP, expectSeen, PHONE, seen, sidewaysOverflow } from './helpers/panel-checks.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel } from './helpers/test-app.js';
import { seedTranscript, seg } from './helpers/transcripts.js';
import { wavFile } from './helpers/wav-file.js';

/**
 * The phone layout (issue 13) in real Chromium at 390×844, and the desktop one it must leave as
 * it was at 1440×900: the recordings list comes first, upload is a button that opens a drawer,
 * the filters live in a drawer, the header and the organization tabs fold into compact menus
 * that keep the current page in view, and the tables (audit log, report) stack into cards instead
 * of scrolling sideways. Each check is of what a person sees: a real size, inside the viewport,
 * not covered, and no sideways scroll of the page or of a table's own region.
 */
const skipReason = panelSkipReason('panel-phone');

const PASSWORD = 'amber-harbour-lantern-47';
const segments = Array.from({ length: 6 }, (_, i) =>
  seg(i + 1, ['S1', 'S2', 'S3'][i % 3]!, i * 3, `line${i + 1} alpha bravo charlie`),
);

describe.skipIf(Boolean(skipReason))(`panel: phone layout (${backendLabel})`, () => {
  const panel = usePanel(() => ({ env: recordingEnv().env }));
  let page: Page;
  let recordingId = '';

  const noSideways = async (where: string) =>
    expect(await sidewaysOverflow(page), `${where}: page scrolls sideways`).toBeLessThanOrEqual(0);
  /** A table's own scroll region must not scroll either: the rows stack instead. */
  const regionFits = async (name: string) => {
    const region = page.getByRole('region', { name });
    await region.waitFor();
    const { scrollWidth, clientWidth } = await region.evaluate((el) => ({
      scrollWidth: el.scrollWidth,
      clientWidth: el.clientWidth,
    }));
    expect(scrollWidth, `${name} scrolls sideways`).toBeLessThanOrEqual(clientWidth);
  };

  beforeAll(async () => {
    const owner = await withPassword(
      panel.t,
      await createOrgWithUser(panel.t.services, { role: 'owner', orgName: 'Harbour Practice' }),
      PASSWORD,
    );
    await addUser(panel.t.services, owner.orgId, { role: 'member', name: 'Mo Member' });
    recordingId = await seedTranscript(panel.t.services, owner, { title: 'Ward round', segments });
    await seedTranscript(panel.t.services, owner, { title: 'Morning clinic', segments });
    page = await panel.newPage(await panel.newContext(PHONE));
    await panel.loginAs(page, owner);
  }, 120_000);

  it('390px: the list comes first; upload is a button that opens a drawer, and the upload lands in the list', async () => {
    await page.goto(`${panel.base}/recordings`);
    const firstRow = page.locator('ul.recordings > li').first();
    await firstRow.waitFor();
    // The first recording is on the first screen, and no upload form stands before it.
    const row = await seen(firstRow);
    expect(row.height).toBeGreaterThan(0);
    expect(row.inViewport || (await firstRow.boundingBox())!.y < PHONE.height).toBe(true);
    expect(await page.getByLabel('Title (optional)').isVisible()).toBe(false);
    expect(await page.getByText('Drag an audio file here').isVisible()).toBe(false);
    const upload = page.getByRole('button', { name: 'Upload a recording' });
    await expectSeen(upload, 'the upload button');
    await noSideways('recordings');
    await page.screenshot({ path: path.join(shots, 'phone-recordings.png') });
    expect(await axeProblems(page, 'recordings at 390px')).toEqual([]);

    await upload.click();
    const drawer = page.getByRole('dialog', { name: 'Upload a recording' });
    await expectSeen(drawer, 'the upload drawer');
    await expectSeen(drawer.getByText('Choose a file'), 'the file button');
    await noSideways('upload drawer');
    expect(await axeProblems(page, 'upload drawer at 390px')).toEqual([]);
    await page.locator('#upload-file').setInputFiles({
      name: 'night-shift.wav',
      mimeType: 'audio/wav',
      buffer: wavFile(1),
    });
    expect(await drawer.getByLabel('Title (optional)').inputValue()).toBe('night-shift');
    await drawer.getByRole('button', { name: 'Upload and transcribe' }).click();
    await drawer.waitFor({ state: 'hidden' });
    await page.getByRole('link', { name: 'night-shift' }).waitFor();
    expect(panel.cspViolations).toEqual([]);
  }, 60_000);

  it('390px: the filters open in a drawer, apply at once, say how many are on, and Escape closes it', async () => {
    const open = page.getByRole('button', { name: 'Search and filters', exact: true });
    await expectSeen(open, 'the filters button');
    expect(await page.getByLabel('Status').isVisible()).toBe(false);
    await open.click();
    const drawer = page.getByRole('dialog', { name: 'Search and filters' });
    await expectSeen(drawer, 'the filters drawer');
    const status = drawer.getByLabel('Status');
    await expectSeen(status, 'the status filter');
    await expectSeen(drawer.getByLabel('Owner'), 'the owner filter');
    await expectSeen(drawer.getByLabel('Created from'), 'the date filter');
    await noSideways('filters drawer');
    await page.screenshot({ path: path.join(shots, 'phone-filters.png') });
    expect(await axeProblems(page, 'filters drawer at 390px')).toEqual([]);
    await status.selectOption('failed');
    // The list behind it follows at once.
    await page.getByText('No recordings match these filters').waitFor({ state: 'attached' });
    await page.keyboard.press('Escape');
    await drawer.waitFor({ state: 'hidden' });
    const on = page.getByRole('button', { name: 'Search and filters (1 on)' });
    await expectSeen(on, 'the filters button with a count');
    // Focus went back to the button that opened the drawer.
    expect(await on.evaluate((el) => el === document.activeElement)).toBe(true);
    await on.click();
    await drawer.getByRole('button', { name: 'Clear' }).click();
    await drawer.getByRole('button', { name: 'Done' }).click();
    await drawer.waitFor({ state: 'hidden' });
    await page.getByRole('link', { name: 'Ward round' }).waitFor();
  }, 60_000);

  it('390px: the header folds into a menu that keeps the current page in view', async () => {
    const menu = page.getByRole('button', { name: 'Menu' });
    await expectSeen(menu, 'the menu button');
    expect(await menu.getAttribute('aria-expanded')).toBe('false');
    expect(await page.locator('.topbar-here').innerText()).toBe('Recordings');
    const nav = page.getByRole('navigation', { name: 'Main' });
    expect(await nav.isVisible()).toBe(false);
    await menu.click();
    expect(await menu.getAttribute('aria-expanded')).toBe('true');
    for (const name of ['Recordings', 'Live', 'Organization', 'Security'])
      await expectSeen(nav.getByRole('link', { name, exact: true }), `the ${name} link`);
    expect(
      await nav.getByRole('link', { name: 'Recordings', exact: true }).getAttribute('aria-current'),
    ).toBe('page');
    await noSideways('open menu');
    await page.screenshot({ path: path.join(shots, 'phone-menu.png') });
    expect(await axeProblems(page, 'open menu at 390px')).toEqual([]);
    // Escape folds it and gives focus back to the button.
    await nav.getByRole('link', { name: 'Live', exact: true }).focus();
    await page.keyboard.press('Escape');
    expect(await nav.isVisible()).toBe(false);
    expect(await menu.evaluate((el) => el === document.activeElement)).toBe(true);
    await menu.click();
    await nav.getByRole('link', { name: 'Organization', exact: true }).click();
    await page.getByRole('heading', { name: /^Organization: Harbour Practice/ }).waitFor();
    expect(await nav.isVisible()).toBe(false);
    expect(await page.locator('.topbar-here').innerText()).toBe('Organization');
  }, 60_000);

  it('390px: the organization tabs fold behind "Section: …"; the audit log stacks instead of scrolling', async () => {
    const toggle = page.getByRole('button', { name: 'Section: Members' });
    await expectSeen(toggle, 'the section button');
    expect(await orgTab(page, 'Audit log').isVisible()).toBe(false);
    await toggle.click();
    expect(await toggle.getAttribute('aria-expanded')).toBe('true');
    for (const name of ['Members', 'Invitations', 'Settings', 'Audit log'])
      await expectSeen(orgTab(page, name), `the ${name} tab`);
    await noSideways('open sections');
    await orgTab(page, 'Audit log').click();
    await page.getByRole('button', { name: 'Section: Audit log' }).waitFor();
    expect(await orgTab(page, 'Members').isVisible()).toBe(false);
    await page.locator('table.org-audit tbody tr').first().waitFor();
    await noSideways('audit log');
    await regionFits('Audit log entries');
    await page.screenshot({ path: path.join(shots, 'phone-audit.png') });
    // Each cell of the first entry is on screen, labelled with its column.
    const cells = page.locator('table.org-audit tbody tr').first().locator('td, th');
    for (let i = 0; i < (await cells.count()); i++) {
      const box = (await cells.nth(i).boundingBox())!;
      expect(box.x).toBeGreaterThanOrEqual(0);
      expect(box.x + box.width).toBeLessThanOrEqual(PHONE.width);
    }
    expect(
      await page
        .locator('table.org-audit tbody tr')
        .first()
        .locator('td')
        .first()
        .evaluate((el) => getComputedStyle(el, '::before').content),
    ).toBe('"#"');
    expect(await axeProblems(page, 'audit log at 390px')).toEqual([]);
    expect(panel.cspViolations).toEqual([]);
  }, 60_000);

  it('390px: the report table stacks; the recording page does not scroll sideways', async () => {
    await page.goto(`${panel.base}/recordings/${recordingId}`);
    await page.getByRole('heading', { name: 'Ward round' }).waitFor();
    await page.getByRole('table', { name: 'Per speaker' }).waitFor();
    await noSideways('recording');
    await regionFits('Per speaker');
    const firstRow = page.getByRole('table', { name: 'Per speaker' }).locator('tbody tr').first();
    await firstRow.scrollIntoViewIfNeeded();
    for (const label of ['Talk time', 'Turns', 'Words/min', 'Longest']) {
      const cell = firstRow.locator(`td[data-label="${label}"]`);
      const box = (await cell.boundingBox())!;
      expect(box.width).toBeGreaterThan(0);
      expect(box.x + box.width).toBeLessThanOrEqual(PHONE.width);
    }
    expect(await axeProblems(page, 'recording at 390px')).toEqual([]);
  }, 60_000);

  it('1440px: the desktop layout is unchanged: upload and filters inline, the whole header, every tab, table headers', async () => {
    await page.setViewportSize(DESKTOP);
    await page.goto(`${panel.base}/recordings`);
    await page.getByRole('heading', { name: 'Recordings', exact: true }).waitFor();
    await expectSeen(page.getByLabel('Title (optional)'), 'the inline upload form');
    await expectSeen(page.getByLabel('Status'), 'the inline status filter');
    expect(await page.getByRole('button', { name: 'Menu' }).count()).toBe(0);
    expect(await page.getByRole('button', { name: 'Upload a recording' }).count()).toBe(0);
    const nav = page.getByRole('navigation', { name: 'Main' });
    for (const name of ['Recordings', 'Live', 'Organization', 'Security'])
      await expectSeen(nav.getByRole('link', { name, exact: true }), `the ${name} link`);
    await noSideways('recordings at 1440px');
    await nav.getByRole('link', { name: 'Organization', exact: true }).click();
    await page.getByRole('heading', { name: /^Organization: Harbour Practice/ }).waitFor();
    expect(await page.locator('.org-sections-toggle').count()).toBe(0);
    for (const name of ['Members', 'Invitations', 'Settings', 'Audit log'])
      await expectSeen(orgTab(page, name), `the ${name} tab`);
    await orgTab(page, 'Audit log').click();
    await page.locator('table.org-audit tbody tr').first().waitFor();
    await expectSeen(page.getByRole('columnheader', { name: 'Action' }), 'the Action column header');
    await noSideways('audit at 1440px');
    expect(await axeProblems(page, 'audit at 1440px')).toEqual([]);
    expect(panel.cspViolations).toEqual([]);
  }, 60_000);
  it('1440px and 390px: a title per page, focus on the page heading, the current page marked', async () => {
    for (const size of [DESKTOP, PHONE]) {
      await page.setViewportSize(size);
      await page.goto(`${panel.base}/recordings`);
      await page.getByRole('heading', { name: 'Recordings', exact: true }).waitFor();
      expect(await page.title()).toBe('Recordings · Sotto');
      await expect.poll(() => page.evaluate(() => document.activeElement?.tagName)).toBe('H1');
      if (size === PHONE) await page.getByRole('button', { name: 'Menu' }).click();
      const nav = page.getByRole('navigation', { name: 'Main' });
      const current = nav.getByRole('link', { name: 'Recordings', exact: true });
      const other = nav.getByRole('link', { name: 'Security', exact: true });
      expect(await current.getAttribute('aria-current')).toBe('page');
      expect(await other.getAttribute('aria-current')).toBeNull();
      // Marked for the eye too, not only for screen readers.
      const look = (l: typeof current) =>
        l.evaluate((el) => {
          const cs = getComputedStyle(el);
          return `${cs.fontWeight}|${cs.textDecorationThickness}|${cs.color}`;
        });
      expect(await look(current)).not.toBe(await look(other));
      await nav.getByRole('link', { name: 'Organization', exact: true }).click();
      await page.getByRole('heading', { name: /^Organization: Harbour Practice/ }).waitFor();
      expect(await page.title()).toBe('Organization: Members · Sotto');
      await expect
        .poll(() => page.evaluate(() => document.activeElement?.textContent ?? ''))
        .toMatch(/^Organization: Harbour Practice/);
      await page.goto(`${panel.base}/recordings/${recordingId}`);
      await page.getByRole('heading', { name: 'Ward round' }).waitFor();
      await expect.poll(() => page.title()).toBe('Ward round · Sotto');
      await page.goto(`${panel.base}/no-such-page`);
      await expect.poll(() => page.title()).toBe('Not found · Sotto');
    }
    expect(panel.cspViolations).toEqual([]);
  }, 60_000);
});
