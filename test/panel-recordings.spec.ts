import { readFileSync } from 'node:fs';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { corpusFile } from './helpers/corpus.js';
import { panelSkipReason, screenshotDir as shots, usePanel } from './helpers/panel.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel } from './helpers/test-app.js';

/**
 * The recordings list and the transcript/report screens in Chromium: upload by drag-and-drop
 * (a real drop event carrying a DataTransfer with the corpus file), the job's progress to done,
 * find in transcript, click a word to play from it (the <audio> element's position moves there),
 * the machine original, the turn timeline, list filters and search, and the delete dialog
 * (Escape keeps, focus returns). No CSP violation on any page.
 */
const skipReason = panelSkipReason('panel-recordings', true);

const PASSWORD = 'quiet-meadow-compass-82';
const CORPUS = 'call-02';

interface ApiTranscript {
  segments: { id: string; text: string; words: { w: string; start: number }[] }[];
}

describe.skipIf(Boolean(skipReason))(`panel: recordings, transcript and report (${backendLabel})`, () => {
  const panel = usePanel(() => ({ env: recordingEnv().env }));
  let ctx: BrowserContext;
  let page: Page;
  const email = `recordist-${Date.now()}@example.test`;
  let auth: Record<string, string> = {};
  let recordingId = '';
  let word = '';

  const api = (p: string) => `${panel.base}/api/v1${p}`;

  beforeAll(async () => {
    await panel.t.services.jobs.start();
    ctx = await panel.newContext();
    page = await panel.newPage(ctx);
  });

  it('signs up, keeps audio, and uploads a corpus file by drag-and-drop', async () => {
    await panel.signUp(page, { name: 'Dr Lena Ward', email, password: PASSWORD, org: 'Meadow Clinic' });
    await page.getByText('No recordings yet — upload one above or').waitFor();
    await page.getByRole('link', { name: 'start a live recording' }).waitFor();

    const login = await ctx.request.post(api('/auth/login'), { data: { email, password: PASSWORD } });
    expect(login.status()).toBe(200);
    auth = { authorization: `Bearer ${(await login.json()).accessToken as string}` };
    const settings = await ctx.request.patch(api('/org/settings'), {
      headers: auth,
      data: { storeAudio: true },
    });
    expect(settings.status()).toBe(200);

    // A real drop: a DataTransfer holding the WAV, built in the page (the test project has no DOM
    // types, hence the string), dispatched on the drop zone.
    const b64 = readFileSync(corpusFile(CORPUS, 'wav')).toString('base64');
    const dt = await page.evaluateHandle(`(() => {
      const bin = atob('${b64}');
      const bytes = new Uint8Array(bin.length);
      for (let i = 0; i < bin.length; i++) bytes[i] = bin.charCodeAt(i);
      const dt = new DataTransfer();
      dt.items.add(new File([bytes], '${CORPUS}.wav', { type: 'audio/wav' }));
      return dt;
    })()`);
    const zone = page.locator('.dropzone');
    await zone.dispatchEvent('dragover', { dataTransfer: dt });
    await zone.dispatchEvent('drop', { dataTransfer: dt });
    await page.getByText(`Selected: ${CORPUS}.wav`).waitFor();
    await expect(page.getByLabel('Title (optional)').inputValue()).resolves.toBe(CORPUS);
    await page.getByLabel('Title (optional)').fill('Dropped call');
    await page.getByRole('button', { name: 'Upload and transcribe' }).click();
    const row = page.locator('li.recording', { hasText: 'Dropped call' });
    await row.waitFor();
    await row.locator('.status-done, .status-failed').first().waitFor({ timeout: 180_000 });
    expect(await row.locator('.status').innerText()).toBe('Ready');
    recordingId = (await row.getByRole('link', { name: 'Dropped call' }).getAttribute('href'))!
      .split('/')
      .pop()!;
    expect(recordingId).toMatch(/^[0-9a-f-]{36}$/);
  }, 240_000);

  it('finds a word of the transcript with a match count, and plays from a clicked word', async () => {
    const tr = (await (
      await ctx.request.get(api(`/recordings/${recordingId}/transcript`), { headers: auth })
    ).json()) as ApiTranscript;
    // A word the engine recognised (read from the API, not hard-coded), long enough to be a word.
    const all = tr.segments.flatMap((s) => s.words);
    const chosen = all.find((w) => /^[a-z]{5,}$/i.test(w.w)) ?? all.find((w) => /^[a-z]{3,}$/i.test(w.w));
    expect(chosen, 'the transcript has a word').toBeTruthy();
    word = chosen!.w.toLowerCase();
    const needle = word.toLowerCase();
    const expectedCount = tr.segments.reduce((n, s) => n + s.text.toLowerCase().split(needle).length - 1, 0);
    expect(expectedCount).toBeGreaterThan(0);

    await page.goto(`${panel.base}/recordings/${recordingId}`);
    await page.getByRole('heading', { name: 'Dropped call' }).waitFor();
    await page.locator('.segment-text').first().waitFor();

    // Find: upper case in the box, case-insensitive matches, counted and highlighted.
    const find = page.getByLabel('Find in transcript', { exact: true });
    await find.fill(word.toUpperCase());
    const count = page.locator('.find-count');
    await expect
      .poll(() => count.innerText())
      .toBe(`1 of ${expectedCount} match${expectedCount === 1 ? '' : 'es'}`);
    const marked = await page
      .locator('mark[data-match]')
      .evaluateAll((els) => new Set(els.map((e) => e.getAttribute('data-match'))).size);
    expect(marked).toBe(expectedCount);
    await expect(page.locator('mark.current').count()).resolves.toBeGreaterThan(0);
    if (expectedCount > 1) {
      await find.press('Enter');
      await expect.poll(() => count.innerText()).toMatch(/^2 of /);
      await find.press('Shift+Enter');
      await expect.poll(() => count.innerText()).toMatch(/^1 of /);
    }
    await page.screenshot({ path: path.join(shots, 'transcript.png'), fullPage: true });

    // Click the word itself (audio kept: the click seeks the streamed audio to the word).
    const target = page.locator('.word.playable', { hasText: new RegExp(`^${chosen!.w}$`, 'i') }).first();
    await target.click();
    const audio = page.locator('audio[src*="/audio/stream?ticket="]');
    await audio.waitFor({ state: 'attached', timeout: 20_000 });
    const start = Number(await target.getAttribute('data-start'));
    expect(Math.abs(start - chosen!.start)).toBeLessThan(60); // some occurrence of that word
    await expect
      .poll(() => audio.evaluate((a) => (a as unknown as { currentTime: number }).currentTime), {
        timeout: 10_000,
      })
      .toBeGreaterThanOrEqual(start - 0.05);
    const at = await audio.evaluate((a) => {
      const el = a as unknown as { currentTime: number; pause(): void };
      el.pause();
      return el.currentTime;
    });
    expect(at).toBeLessThan(start + 3);
    // The word being played is highlighted (after the seek the position is inside a word or
    // just past it; seek exactly to the word's start to check).
    await audio.evaluate((a, s) => {
      (a as unknown as { currentTime: number }).currentTime = s + 0.01;
    }, start);
    await page.locator('.word.playing').first().waitFor({ timeout: 5000 });
  }, 120_000);

  it('edits a segment, then shows the machine original read-only', async () => {
    await page.getByLabel('Find in transcript', { exact: true }).fill('');
    await page
      .getByRole('button', { name: /^Edit the segment at/ })
      .first()
      .click();
    await page.getByLabel(/^Text of the segment at/).fill('A corrected opening line.');
    await page.getByRole('button', { name: 'Save' }).click();
    await page.locator('.badge', { hasText: 'edited' }).first().waitFor();

    await page.getByRole('button', { name: 'Machine original' }).click();
    await page.getByText('The machine original, as recognised before any edit.').waitFor();
    await page.locator('ol.segments[data-version="original"]').waitFor();
    await expect(page.getByText('A corrected opening line.').count()).resolves.toBe(0);
    await expect(page.getByRole('button', { name: /^Edit the segment at/ }).count()).resolves.toBe(0);
    await expect(page.getByRole('button', { name: /^Rename / }).count()).resolves.toBe(0);
    await expect(
      page.getByRole('button', { name: 'Machine original' }).getAttribute('aria-pressed'),
    ).resolves.toBe('true');
    await page.getByRole('button', { name: 'Edited', exact: true }).click();
    await page.getByText('A corrected opening line.').waitFor();
  }, 60_000);

  it('shows the turn timeline beside the talk-time chart, with a text alternative', async () => {
    const timeline = page.getByRole('img', { name: /^Turn timeline: \d+ turns? over/ });
    await timeline.waitFor();
    await expect(timeline.locator('rect.turn').count()).resolves.toBeGreaterThanOrEqual(1);
    await page.getByRole('img', { name: /^Talk time per speaker/ }).waitFor();
    // The hidden table lists every turn: as many rows as bars.
    const table = page.locator('figure.timeline table');
    await expect(table.locator('tbody tr').count()).resolves.toBe(
      await timeline.locator('rect.turn').count(),
    );
    await expect(table.locator('caption').innerText()).resolves.toBe('Turns in order');
    await page
      .locator('section[aria-labelledby="report-heading"]')
      .screenshot({ path: path.join(shots, 'report.png') });
  }, 30_000);

  it('filters the list by status and searches by a word of the transcript', async () => {
    await page.getByRole('link', { name: 'Recordings', exact: true }).click();
    const row = page.locator('li.recording', { hasText: 'Dropped call' });
    await row.waitFor();
    await page.getByLabel('Status').selectOption('failed');
    await page.getByText('No recordings match these filters').waitFor();
    await expect(row.count()).resolves.toBe(0);
    await page.getByLabel('Status').selectOption('done');
    await row.waitFor();
    await page.getByLabel('Status').selectOption('');

    await page.getByLabel('Search titles and transcripts').fill('zzqx');
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    await page.getByText('Nothing matched your search').waitFor();
    await page.getByText('The only recording searched: 0 found.').waitFor();
    await page.getByLabel('Search titles and transcripts').fill(word);
    await page.getByLabel('Search titles and transcripts').press('Enter');
    await row.waitFor();
    await page.getByText('The only recording searched: 1 found.').waitFor();
    await expect(row.locator('.snippets li').count()).resolves.toBeGreaterThan(0);
    await page.screenshot({ path: path.join(shots, 'recordings-search.png') });
    await page.getByRole('button', { name: 'Clear' }).click();
    await row.waitFor();
  }, 60_000);

  it('deletes through an accessible dialog: Escape keeps it and focus returns', async () => {
    const row = page.locator('li.recording', { hasText: 'Dropped call' });
    const del = row.getByRole('button', { name: 'Delete Dropped call' });
    await del.click();
    const dialog = page.getByRole('dialog', { name: 'Delete “Dropped call”?' });
    await dialog.waitFor();
    // Focus starts on the safe choice.
    await expect(page.evaluate('document.activeElement.textContent')).resolves.toBe('Keep it');
    await page.keyboard.press('Escape');
    await dialog.waitFor({ state: 'detached' });
    await expect(page.evaluate('document.activeElement.getAttribute("aria-label")')).resolves.toBe(
      'Delete Dropped call',
    );
    await del.click();
    await dialog.getByRole('button', { name: 'Yes, delete' }).click();
    await row.waitFor({ state: 'detached' });
    const gone = await ctx.request.get(api(`/recordings/${recordingId}`), { headers: auth });
    expect(gone.status()).toBe(404);
    await page.getByText('No recordings yet').waitFor();
  }, 60_000);

  it('ran without a CSP violation or page error', () => {
    expect(panel.cspViolations).toEqual([]);
  });
});
