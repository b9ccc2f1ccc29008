import { execFileSync } from 'node:child_process';
import path from 'node:path';
import type { Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { findExecutable } from '../src/adapters/media/executable.adapter.js';
import { corpusEntry, corpusFile, hasCorpus } from './helpers/corpus.js';
import { panelSkipReason, screenshotDir as shots, usePanel } from './helpers/panel.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel } from './helpers/test-app.js';
import { FRAME_SAMPLES, Framer, Resampler } from '../web/src/live/resample.js';

/**
 * The live screens end to end: Chromium's fake microphone plays a corpus conversation (looped)
 * into the panel, which captures it through its AudioWorklet, resamples it to 16 kHz PCM16 and
 * streams it over the ingest socket; the real sphinx engine recognises it live. A second page of
 * the same user watches; the stop turns the recording into an ordinary transcript. All of it under
 * the production CSP (any violation fails the last test).
 */
const CORPUS_ID = 'intake-01';
const ffmpeg = findExecutable('ffmpeg', process.env.PATH ?? '');
const skipReason = panelSkipReason(
  'panel-live',
  true,
  ffmpeg ? '' : 'ffmpeg not found (needed to prepare the fake microphone file)',
);

const PASSWORD = 'calm-harbour-lantern-47';

/**
 * Runs in the test page before the app: keeps every ingest WebSocket so the test can drop one,
 * and while `__blockLive` is set sends new ingest handshakes to a path that refuses them (the
 * server out of reach, as the page sees it). The app itself is not changed.
 */
const SOCKET_TAP = `{
  const Native = window.WebSocket;
  window.__liveSockets = [];
  window.__blockLive = false;
  window.WebSocket = class extends Native {
    constructor(url, protocols) {
      const u = String(url);
      const ingest = u.endsWith('/live');
      super(ingest && window.__blockLive ? u.slice(0, -5) + '/unreachable' : u, protocols);
      if (ingest) window.__liveSockets.push(this);
    }
  };
}`;

/** Words of four letters or more: enough to tell recognised speech from noise. */
function words(text: string): Set<string> {
  return new Set(text.toLowerCase().match(/[a-z']{4,}/g) ?? []);
}

function overlap(seen: string, reference: Set<string>): string[] {
  return [...words(seen)].filter((w) => reference.has(w));
}

describe.skipIf(Boolean(skipReason))(
  `live screens in Chromium with a fake microphone (${backendLabel})`,
  () => {
    const reference = hasCorpus ? words(corpusEntry(CORPUS_ID).text) : new Set<string>();
    const panel = usePanel((dir) => {
      // Chromium reads a PCM WAV for its fake capture device and loops it; 48 kHz is its own rate,
      // so the panel's resampler (48 → 16 kHz) is exercised as with a real microphone.
      const wav = path.join(dir, 'mic.wav');
      execFileSync(ffmpeg!, [
        '-hide_banner',
        '-loglevel',
        'error',
        '-i',
        corpusFile(CORPUS_ID, 'wav'),
        '-ac',
        '1',
        '-ar',
        '48000',
        '-c:a',
        'pcm_s16le',
        wav,
      ]);
      return {
        env: recordingEnv().env,
        browserArgs: [
          '--use-fake-ui-for-media-stream',
          '--use-fake-device-for-media-stream',
          `--use-file-for-fake-audio-capture=${wav}`,
          '--autoplay-policy=no-user-gesture-required',
        ],
      };
    });

    beforeAll(async () => {
      await panel.t.services.jobs.start();
    });

    const finalTexts = async (page: Page) =>
      (await page.locator('.live-final .segment-text').allInnerTexts()).join(' ');

    it('records from the microphone, shows the live transcript to a second viewer, stops into a transcript', async () => {
      const { base } = panel;
      const ctx = await panel.newContext();
      const page = await panel.newPage(ctx);
      await page.addInitScript({ content: SOCKET_TAP });
      const email = `live-${Date.now()}@example.test`;
      await panel.signUp(page, { name: 'Dr Ada Rossi', email, password: PASSWORD, org: 'Harbour Practice' });

      // Start screen: permission first, then the microphones by name.
      await page.getByRole('link', { name: 'Live', exact: true }).click();
      await page.getByRole('heading', { name: 'Live recording' }).waitFor();
      await page.getByLabel('Title (optional)').fill('Live intake');
      // The browser may already have granted access (the fake UI does): then the list is there.
      const allow = page.getByRole('button', { name: 'Allow microphone' });
      const mic = page.getByLabel('Microphone', { exact: true });
      await mic.or(allow).waitFor();
      if (await allow.isVisible()) await allow.click();
      await mic.waitFor();
      expect(await mic.locator('option').count()).toBeGreaterThanOrEqual(1);
      await expect(page.getByLabel('Your name in the transcript').inputValue()).resolves.toBe('Me');
      // An online meeting's tab as a second participant (the fake UI picks a fake screen, whose
      // audio is the same fake file).
      await page.getByRole('button', { name: 'Add a browser tab’s audio' }).click();
      await page.getByText('A tab’s audio will be recorded as “Meeting”.').waitFor();
      await page.screenshot({ path: path.join(shots, 'live-start.png') });
      await page.getByRole('button', { name: 'Start recording' }).click();

      await page.waitForURL(/\/recordings\/[0-9a-f-]{36}\/live$/);
      const liveUrl = page.url();
      const id = liveUrl.split('/').at(-2)!;
      await page.getByRole('heading', { name: 'Live intake' }).waitFor();
      await page
        .getByRole('status')
        .filter({ hasText: /^Live$/ })
        .waitFor({ timeout: 20_000 });
      // How long until the first words show, partial or final: a figure for the log (the fake
      // microphone starts with the capture, and the conversation's first turn 0.5 s into it).
      const liveAt = Date.now();
      const firstWords = page
        .locator('.live-partial, .live-final')
        .first()
        .waitFor({ timeout: 90_000 })
        .then(() => Date.now() - liveAt);
      await page.getByRole('meter', { name: 'Me sound level' }).waitFor();
      await page.getByRole('meter', { name: 'Meeting sound level' }).waitFor();

      // A second page of the same user (the refresh cookie signs it in) watches without capturing.
      const viewer = await panel.newPage(ctx);
      await viewer.goto(liveUrl);
      await viewer.getByRole('heading', { name: 'Live intake' }).waitFor();
      await viewer.getByText('You are watching').waitFor();
      expect(await viewer.getByRole('button', { name: 'Stop recording' }).count()).toBe(0);
      await viewer
        .getByRole('status')
        .filter({ hasText: /^Live$/ })
        .waitFor({ timeout: 20_000 });

      console.log(
        `panel: first words ${((await firstWords) / 1000).toFixed(2)} s after the capture went live`,
      );
      // Real words, recognised live, reach both pages (the viewer joined later: it may miss the first).
      const finals = page.locator('.live-final');
      await finals.first().waitFor({ timeout: 90_000 });
      await viewer.locator('.live-final').first().waitFor({ timeout: 90_000 });
      await expect
        .poll(async () => overlap(await finalTexts(page), reference).length, { timeout: 60_000 })
        .toBeGreaterThanOrEqual(3);
      await expect
        .poll(async () => overlap(await finalTexts(viewer), reference).length, { timeout: 60_000 })
        .toBeGreaterThanOrEqual(2);
      // One ingest socket per participant: both sides are recognised, each under its own label.
      await expect
        .poll(
          async () => [...new Set(await page.locator('.live-final .segment-speaker').allInnerTexts())].sort(),
          {
            timeout: 60_000,
          },
        )
        .toEqual(['Me', 'Meeting']);
      // The newest final is announced politely.
      const announced = await page.locator('[aria-live="polite"]').last().innerText();
      expect(announced).toMatch(/^(Me|Meeting): \w/);
      // A dropped ingest socket, then the server out of reach for a few seconds: the page says so,
      // keeps capturing, and resumes from the last acknowledged frame with a new ticket.
      await page.evaluate(
        'window.__blockLive = true; window.__liveSockets.forEach((s) => s.close(4000, "test: dropped"))',
      );
      await page.getByRole('status').filter({ hasText: 'Reconnecting…' }).waitFor({ timeout: 10_000 });
      await page.waitForTimeout(4000);
      await page.evaluate('window.__blockLive = false');
      await page
        .getByRole('status')
        .filter({ hasText: /^Live$/ })
        .waitFor({ timeout: 20_000 });
      // Both participants' sockets came back (2 first ones, 2 refused while blocked, 2 resumed).
      expect(await page.evaluate('window.__liveSockets.length')).toBeGreaterThanOrEqual(6);

      // The meter moves with the speech (a fake microphone playing a conversation).
      await expect
        .poll(
          async () => Number(await page.getByRole('meter', { name: 'Me sound level' }).getAttribute('value')),
          {
            timeout: 10_000,
          },
        )
        .toBeGreaterThan(0);
      await page.screenshot({ path: path.join(shots, 'live.png') });
      await page.setViewportSize({ width: 390, height: 800 });
      await page.screenshot({ path: path.join(shots, 'live-phone.png') });
      // Phone width: nothing wider than the screen.
      expect(await page.evaluate('document.documentElement.scrollWidth')).toBeLessThanOrEqual(390);
      await page.setViewportSize({ width: 1100, height: 760 });

      // Capture belongs to the tab, not the screen: the start screen leads back to it.
      await page.getByRole('link', { name: 'Live', exact: true }).click();
      await page.getByText('This tab is recording “Live intake”.').waitFor();
      await page.getByRole('link', { name: 'Back to it' }).click();
      await page.waitForURL(liveUrl);
      await page.getByRole('meter', { name: 'Meeting sound level' }).waitFor();

      // Stop asks first; "Keep recording" keeps it going (keyboard: Escape does the same).
      await page.getByRole('button', { name: 'Stop recording' }).click();
      await page.getByRole('button', { name: 'Keep recording' }).click();
      await page.getByRole('button', { name: 'Stop recording' }).click();
      await page.keyboard.press('Escape');
      await page.getByRole('button', { name: 'Stop recording' }).click();
      await page.getByRole('button', { name: 'Stop now' }).click();
      await page
        .getByRole('status')
        .filter({ hasText: 'Stopped — transcript processing' })
        .waitFor({ timeout: 90_000 });
      await viewer
        .getByRole('status')
        .filter({ hasText: 'Stopped — transcript processing' })
        .waitFor({ timeout: 30_000 });
      const recorded = /Recorded (\d+):(\d+)/.exec(await page.locator('.live-elapsed').innerText())!;
      const capturedSeconds = Number(recorded[1]) * 60 + Number(recorded[2]);

      // The recording became an ordinary one, transcribed in full by a job.
      await page.getByRole('link', { name: 'Open the transcript' }).click();
      await page.waitForURL(`${base}/recordings/${id}`);
      await page.getByRole('heading', { name: 'Live intake' }).waitFor();
      await page.locator('.status-done, .status-failed').first().waitFor({ timeout: 150_000 });
      expect(await page.locator('.status').first().innerText()).toBe('Ready');
      // Everything captured reached the server once: no gap from the outage, no duplicate.
      const login = await ctx.request.post(`${base}/api/v1/auth/login`, {
        data: { email, password: PASSWORD },
      });
      const auth = { authorization: `Bearer ${(await login.json()).accessToken as string}` };
      const rec = await ctx.request.get(`${base}/api/v1/recordings/${id}`, { headers: auth });
      const { durationSeconds } = (await rec.json()) as { durationSeconds: number };
      expect(durationSeconds).toBeGreaterThanOrEqual(capturedSeconds - 0.2);
      expect(durationSeconds).toBeLessThan(capturedSeconds + 1.2);
      const stored = (await page.locator('.segment-text').allInnerTexts()).join(' ');
      expect(overlap(stored, reference).length).toBeGreaterThanOrEqual(5);

      // Opening the live address afterwards says it is over and links to the transcript.
      await viewer.goto(liveUrl);
      await viewer.getByText('This recording is not live any more.').waitFor();
      await ctx.close();
    }, 360_000);

    it('saw no CSP violation (the AudioWorklet is a same-origin file, not a blob: URL)', () => {
      expect(panel.cspViolations).toEqual([]);
    });
  },
);

/** The panel's capture arithmetic, apart from any browser (Chromium's fake device runs at 16 kHz). */
describe('live capture: 48 kHz → 16 kHz PCM16 frames', () => {
  const tone = (hz: number, rate: number, seconds: number) =>
    Float32Array.from(
      { length: Math.round(rate * seconds) },
      (_, i) => 0.5 * Math.sin((2 * Math.PI * hz * i) / rate),
    );
  const rms = (x: Float32Array) => Math.sqrt(x.reduce((a, v) => a + v * v, 0) / x.length);

  function resample(input: Float32Array, chunk: number): Float32Array {
    const r = new Resampler(48_000, 16_000);
    const parts: Float32Array[] = [];
    for (let i = 0; i < input.length; i += chunk) parts.push(r.push(input.subarray(i, i + chunk)));
    return Float32Array.from(parts.flatMap((p) => [...p]));
  }

  it('keeps speech-band tones (rate, pitch, level) whatever the batch size, and removes what 16 kHz cannot hold', () => {
    const a = resample(tone(440, 48_000, 1), 1920);
    const b = resample(tone(440, 48_000, 1), 77);
    expect(Math.abs(a.length - 16_000)).toBeLessThanOrEqual(20);
    expect(b.length).toBe(a.length);
    for (let i = 0; i < a.length; i++) expect(Math.abs(a[i]! - b[i]!)).toBeLessThan(1e-6);
    // 440 Hz: 880 zero crossings a second, level kept (0.5 / √2).
    const body = a.subarray(100, 15_900);
    let crossings = 0;
    for (let i = 1; i < body.length; i++) if (body[i - 1]! < 0 !== body[i]! < 0) crossings++;
    expect(crossings / (body.length / 16_000)).toBeCloseTo(880, -1);
    expect(rms(body)).toBeCloseTo(0.5 / Math.SQRT2, 2);
    // 12 kHz would fold back to 4 kHz, into the speech band, without the low-pass.
    expect(rms(resample(tone(12_000, 48_000, 1), 1920).subarray(100, 15_900))).toBeLessThan(0.01);
  });

  it('cuts 100 ms little-endian PCM16 frames, clipping out-of-range samples', () => {
    const frames: ArrayBuffer[] = [];
    const f = new Framer((b) => frames.push(b));
    f.push(
      Float32Array.from({ length: FRAME_SAMPLES * 2 + 5 }, (_, i) => (i === 0 ? 2 : i === 1 ? -2 : 0.25)),
    );
    expect(frames.map((b) => b.byteLength)).toEqual([3200, 3200]);
    const v = new DataView(frames[0]!);
    expect([v.getInt16(0, true), v.getInt16(2, true), v.getInt16(4, true)]).toEqual([32767, -32768, 8192]);
  });
});
