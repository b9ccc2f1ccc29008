import { statSync } from 'node:fs';
import path from 'node:path';
import { beforeAll, describe, expect, it } from 'vitest';
import { corpusFile } from './helpers/corpus.js';
import {
  fillSignup,
  finishSignup,
  panelSkipReason,
  screenshotDir as shots,
  usePanel,
} from './helpers/panel.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel } from './helpers/test-app.js';

/**
 * The web panel end to end: a real browser (Debian's Chromium, headless, driven by
 * playwright-core) against a real HTTPS listener serving a fresh Vite build of web/ under the
 * production CSP, with the sphinx engine transcribing a corpus file for real.
 */
const skipReason = panelSkipReason('panel-e2e', true);

const PASSWORD = 'calm-harbour-lantern-47';

describe.skipIf(Boolean(skipReason))(`web panel in Chromium (${backendLabel})`, () => {
  const panel = usePanel(() => ({ env: recordingEnv().env }));
  const email = `clinician-${Date.now()}@example.test`;
  let recordingUrl = '';

  beforeAll(async () => {
    await panel.t.services.jobs.start();
  });

  it('serves the SPA: hashed assets cached for a year, index.html never cached, nothing under /api', async () => {
    const ctx = await panel.newContext();
    const res = await ctx.request.get(`${panel.base}/recordings/whatever`, {
      headers: { accept: 'text/html' },
    });
    expect(res.status()).toBe(200);
    expect(res.headers()['cache-control']).toBe('no-store');
    expect(res.headers()['content-security-policy']).toContain("script-src 'self'");
    const html = await res.text();
    // No inline script or style: only external, hashed files.
    expect(html).not.toMatch(/<script(?![^>]*\bsrc=)[^>]*>/);
    expect(html).not.toMatch(/<style|style=/);
    const asset = /src="(\/assets\/[^"]+\.js)"/.exec(html)?.[1];
    expect(asset).toBeTruthy();
    const js = await ctx.request.get(`${panel.base}${asset}`);
    expect(js.status()).toBe(200);
    expect(js.headers()['cache-control']).toMatch(/max-age=31536000.*immutable|immutable.*max-age=31536000/);
    // An unknown API path is a problem document, even for a browser navigation.
    const api = await ctx.request.get(`${panel.base}/api/v1/nope`, { headers: { accept: 'text/html' } });
    expect(api.status()).toBe(404);
    expect(api.headers()['content-type']).toContain('application/problem+json');
    // A missing asset is a 404, not the SPA.
    expect((await ctx.request.get(`${panel.base}/assets/missing.js`)).status()).toBe(404);
    await ctx.close();
  });

  it('notices a CSP violation when there is one (so the last test can fail)', async () => {
    const ctx = await panel.newContext();
    const seen: string[] = [];
    const page = await panel.newPage(ctx, seen);
    await page.goto(`${panel.base}/`);
    await page.getByRole('heading', { name: 'Log in to Sotto' }).waitFor();
    // An inline <style>, which the CSP refuses (a string: the test project has no DOM types).
    await page.evaluate(`{
      const s = document.createElement('style');
      s.textContent = 'body { color: red }';
      document.head.append(s);
    }`);
    await expect.poll(() => seen.join('\n'), { timeout: 5000 }).toMatch(/style-src/);
    await ctx.close();
  });

  it('signs up, uploads a corpus file, sees it transcribed, renames the speaker and sees the report', async () => {
    const ctx = await panel.newContext();
    const page = await panel.newPage(ctx);
    await page.goto(`${panel.base}/`);
    await page.getByRole('heading', { name: 'Log in to Sotto' }).waitFor();
    await page.screenshot({ path: path.join(shots, 'login.png') });

    await page.getByRole('link', { name: 'Create an organization' }).click();
    await fillSignup(page, { name: 'Dr Ada Rossi', email, password: PASSWORD, org: 'Harbour Practice' });
    await finishSignup(page, panel, email, PASSWORD);
    await page.getByRole('heading', { name: 'Recordings', exact: true }).waitFor();
    await page.getByText('No recordings yet').waitFor();

    await page.locator('#upload-file').setInputFiles(corpusFile('solo-03', 'wav'));
    await expect(page.getByLabel('Title (optional)').inputValue()).resolves.toBe('solo-03');
    await page.getByRole('button', { name: 'Upload and transcribe' }).click();
    const row = page.locator('li.recording', { hasText: 'solo-03' });
    await row.waitFor();
    await row.locator('.status-done, .status-failed').first().waitFor({ timeout: 150_000 });
    expect(await row.locator('.status').innerText()).toBe('Ready');
    await page.screenshot({ path: path.join(shots, 'recordings.png') });

    await row.getByRole('link', { name: 'solo-03' }).click();
    await page.getByRole('heading', { name: 'solo-03' }).waitFor();
    recordingUrl = page.url();
    expect(recordingUrl).toMatch(/\/recordings\/[0-9a-f-]{36}$/);
    const segments = page.locator('.segment-text');
    await segments.first().waitFor();
    const text = (await segments.allInnerTexts()).join(' ').toLowerCase();
    // The sphinx engine is not perfect; enough of the sentence's words must be there.
    const expected = ['meeting', 'monday', 'budget', 'plan', 'team', 'month', 'short', 'note'];
    expect(expected.filter((w) => text.includes(w)).length).toBeGreaterThanOrEqual(3);

    await page
      .getByRole('button', { name: /^Rename / })
      .first()
      .click();
    await page.getByLabel(/^New name for/).fill('Dr Rossi');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('.speaker-name', { hasText: 'Dr Rossi' }).waitFor();
    await page.locator('.segment-speaker', { hasText: 'Dr Rossi' }).first().waitFor();
    await page.getByRole('rowheader', { name: 'Dr Rossi' }).waitFor();
    const chart = page.getByRole('img', { name: /Talk time per speaker: Dr Rossi/ });
    await chart.waitFor();
    await expect(chart.locator('rect').count()).resolves.toBeGreaterThanOrEqual(1);

    // Edit a segment; the revision moves on and the segment is marked.
    await page
      .getByRole('button', { name: /^Edit the segment at/ })
      .first()
      .click();
    await page
      .getByLabel(/^Text of the segment at/)
      .fill('This is a short note about the meeting on Monday.');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('.badge', { hasText: 'edited' }).first().waitFor();
    await page.screenshot({ path: path.join(shots, 'recording.png'), fullPage: true });

    // A reload drops the in-memory token; the HttpOnly cookie + CSRF refresh brings the session back.
    await page.reload();
    await page.getByRole('heading', { name: 'solo-03' }).waitFor();
    await page.getByText('This is a short note about the meeting on Monday.').waitFor();

    // Phone width: one column, still usable.
    await page.setViewportSize({ width: 390, height: 800 });
    await page.screenshot({ path: path.join(shots, 'recording-phone.png') });
    await page.setViewportSize({ width: 1100, height: 760 });

    // Log out, and back in through the form.
    await page.getByRole('button', { name: 'Log out' }).click();
    await page.getByRole('heading', { name: 'Log in to Sotto' }).waitFor();
    await page.reload();
    await page.getByRole('heading', { name: 'Log in to Sotto' }).waitFor();
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill('wrong-password-entirely');
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('alert').filter({ hasText: 'do not match' }).waitFor();
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    await page.getByRole('heading', { name: 'Recordings', exact: true }).waitFor();
    await page.locator('li.recording', { hasText: 'solo-03' }).waitFor();
    await ctx.close();
  }, 240_000);

  it('streams kept audio from a ticket URL, reports a stale edit (409) and deletes with confirmation', async () => {
    const ctx = await panel.newContext();
    // The same user as an API client: turn on audio keeping and make a concurrent edit.
    const login = await ctx.request.post(`${panel.base}/api/v1/auth/login`, {
      data: { email, password: PASSWORD },
    });
    expect(login.status()).toBe(200);
    const auth = { authorization: `Bearer ${(await login.json()).accessToken as string}` };
    const settings = await ctx.request.patch(`${panel.base}/api/v1/org/settings`, {
      headers: auth,
      data: { storeAudio: true },
    });
    expect(settings.status()).toBe(200);

    const page = await panel.newPage(ctx);
    await panel.loginAs(page, { email, password: PASSWORD });
    await page.locator('#upload-file').setInputFiles(corpusFile('solo-03', 'wav'));
    await page.getByLabel('Title (optional)').fill('Kept audio');
    await page.getByRole('button', { name: 'Upload and transcribe' }).click();
    const row = page.locator('li.recording', { hasText: 'Kept audio' });
    await row.locator('.status-done, .status-failed').first().waitFor({ timeout: 150_000 });
    await row.getByRole('link', { name: 'Kept audio' }).click();
    await page.getByRole('heading', { name: 'Kept audio' }).waitFor();

    // Headless Chromium gives <audio controls> no box, so wait for its source, not visibility.
    const audio = page.locator('audio[src*="/audio/stream?ticket="]');
    await audio.waitFor({ state: 'attached' });
    // The browser decoded it: the duration of the corpus file (9.14 s).
    await expect
      .poll(() => audio.evaluate((a) => (a as unknown as { duration: number }).duration), { timeout: 10_000 })
      .toBeGreaterThan(8);
    // Segment times now play from there.
    await page
      .getByRole('button', { name: /^Play from 0:0/ })
      .first()
      .click();
    await expect
      .poll(() => audio.evaluate((a) => (a as unknown as { paused: boolean }).paused), { timeout: 10_000 })
      .toBe(false);

    // Someone else edits first: the panel's revision is now stale.
    const id = page.url().split('/').pop()!;
    const tr = await (
      await ctx.request.get(`${panel.base}/api/v1/recordings/${id}/transcript`, { headers: auth })
    ).json();
    const other = await ctx.request.patch(`${panel.base}/api/v1/recordings/${id}/transcript`, {
      headers: auth,
      data: { revision: tr.revision, speakers: [{ id: tr.speakers[0].id, name: 'Renamed elsewhere' }] },
    });
    expect(other.status()).toBe(200);
    await page
      .getByRole('button', { name: /^Edit the segment at/ })
      .first()
      .click();
    await page.getByLabel(/^Text of the segment at/).fill('A late correction.');
    await page.getByRole('button', { name: 'Save' }).click();
    // Said beside the editor whose Save was refused.
    await page.getByRole('alert').filter({ hasText: 'Reload the page' }).waitFor();

    // Delete asks first; "Keep it" keeps it, "Yes, delete" removes it.
    await page.getByRole('link', { name: 'Recordings' }).click();
    const kept = page.locator('li.recording', { hasText: 'Kept audio' });
    await kept.getByRole('button', { name: 'Delete Kept audio' }).click();
    await kept.getByRole('button', { name: 'Keep it' }).click();
    await kept.getByRole('button', { name: 'Delete Kept audio' }).click();
    await kept.getByRole('button', { name: 'Yes, delete' }).click();
    await kept.waitFor({ state: 'detached' });
    const gone = await ctx.request.get(`${panel.base}/api/v1/recordings/${id}`, { headers: auth });
    expect(gone.status()).toBe(404);
    await ctx.close();
  }, 240_000);

  it("shows another organization's recording as not found", async () => {
    expect(recordingUrl).not.toBe('');
    const ctx = await panel.newContext();
    const page = await panel.newPage(ctx);
    const otherEmail = `other-${Date.now()}@example.test`;
    await page.goto(`${panel.base}/signup`);
    await page.getByLabel('Your name').fill('Other Person');
    await page.getByLabel('Email').fill(otherEmail);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Organization').fill('Another Clinic');
    await page.getByRole('button', { name: 'Create account' }).click();
    await finishSignup(page, panel, otherEmail, PASSWORD);
    await page.getByRole('heading', { name: 'Recordings', exact: true }).waitFor();
    await page.goto(recordingUrl);
    await page.getByRole('heading', { name: 'Not found' }).waitFor();
    await expect(page.getByText('solo-03').count()).resolves.toBe(0);
    await page.screenshot({ path: path.join(shots, 'not-found.png') });
    await ctx.close();
  }, 60_000);

  it('ran without a single CSP violation or page error', () => {
    expect(panel.cspViolations).toEqual([]);
    for (const f of ['login.png', 'recordings.png', 'recording.png'])
      expect(statSync(path.join(shots, f)).size).toBeLessThan(400_000);
  });
});
