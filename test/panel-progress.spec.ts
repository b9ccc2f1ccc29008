import { readFileSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { sphinxAvailability } from '../src/adapters/asr/sphinx.engine.js';
import { freshIp } from './helpers/auth-client.js';
import { createOrgWithUser, eventually, type TestUser } from './helpers/fixtures.js';
import { createLive, frames, mustOpen, type Conn, type Listening } from './helpers/live.js';
import { panelSkipReason, usePanel, withPassword } from './helpers/panel.js';
import { recordingEnv, upload } from './helpers/recordings.js';
import { buildLongTrack, FIXTURES, pcmOf, readReferences } from './helpers/speech-fixtures.js';
import { axeProblems, DESKTOP, PHONE } from './helpers/panel-checks.js';
import { backendLabel } from './helpers/test-app.js';

/**
 * The panel as a transcript workspace, live and progress parts, in Debian's Chromium at desktop
 * (1440×900) and phone (390×844) sizes: a viewer who opens a live recording late sees what was
 * said before; the recording page shows the job's stage in the list's words, its percentage,
 * the elapsed time and an estimate, and says so when it finishes. Real server over HTTPS/WSS,
 * real sphinx engine and worker, real speech; no CSP violation, no serious axe violation.
 */
const sphinx = sphinxAvailability(process.env.PATH ?? '');
const skipReason = panelSkipReason(
  'panel-progress',
  false,
  sphinx.available ? '' : (sphinx.reason ?? 'no sphinx'),
);

const PASSWORD = 'lantern-copper-meadow-31';
const RATE = 16_000;

describe.skipIf(Boolean(skipReason))(`panel: late live viewer and job progress (${backendLabel})`, () => {
  // The progress page is watched while recognition runs: the real recognizer, not a replay's instant.
  const panel = usePanel(() => ({ env: recordingEnv().env, engine: 'real' }));
  let owner: TestUser & { password: string };
  let server: Listening;
  const ip = freshIp();

  const signedIn = async (size: { width: number; height: number }) => {
    const page = await panel.newPage(await panel.newContext(size));
    await panel.loginAs(page, owner);
    return page;
  };
  const axe = axeProblems;

  beforeAll(async () => {
    owner = await withPassword(
      panel.t,
      await createOrgWithUser(panel.t.services, { role: 'owner' }),
      PASSWORD,
    );
    // The panel's own HTTPS port also serves the live sockets (a self-signed certificate).
    server = { port: Number(new URL(panel.base).port), ca: '', close: async () => undefined };
  }, 120_000);

  afterAll(async () => {
    await panel.t.services.jobs.stop();
  });

  it('a viewer who opens a live recording late sees the segments said before, at desktop and phone sizes', async () => {
    const id = await createLive(panel.t, owner.accessToken, ip, 'Late arrival');
    const early = await mustOpen(server, `/api/v1/recordings/${id}/watch`, { token: owner.accessToken });
    await early.waitFor((m) => m.type === 'ready');
    const bot: Conn = await mustOpen(server, `/api/v1/recordings/${id}/live`, { token: owner.accessToken });
    bot.ws.send(JSON.stringify({ type: 'start', participant: 'Dr Rossi' }));
    const speech = ['librivox-0870.wav', 'librivox-0880.wav', 'librivox-0890.wav'].map((f) =>
      pcmOf(path.join(FIXTURES, f)),
    );
    const pause = new Int16Array(2 * RATE).map((_, i) => ((i * 7919) % 13) - 6);
    const all = frames(Int16Array.from(speech.flatMap((p) => [...p, ...pause])));
    for (const f of all) bot.ws.send(f);
    await bot.waitFor((m) => m.type === 'ack' && m.seq === all.length - 1);
    const segs = () => early.messages.filter((m) => m.type === 'segment') as unknown as { text: string }[];
    await eventually(async () => (segs().length >= 2 ? true : undefined), 60_000);
    const said = segs().map((s) => s.text);

    const found: string[] = [];
    for (const size of [DESKTOP, PHONE]) {
      const page = await signedIn(size);
      await page.goto(`${panel.base}/recordings/${id}/live`);
      await page.getByRole('heading', { name: 'Late arrival' }).waitFor();
      // Everything said before this page opened, in order, with the speaker's name (the early
      // viewer may still get the last utterance's final meanwhile: both must end up the same).
      // Both sides are read on every poll: a final that reaches both meanwhile is not a mismatch.
      const shownAndSent = async () => ({
        shown: (await page.locator('.live-final .segment-text').allInnerTexts()).join('|'),
        sent: segs()
          .map((s) => s.text)
          .join('|'),
      });
      await expect
        .poll(
          async () => {
            const { shown, sent } = await shownAndSent();
            return shown === sent ? 'same' : `page "${shown}" but the early viewer got "${sent}"`;
          },
          { timeout: 30_000 },
        )
        .toBe('same');
      expect(await page.locator('.live-final').count()).toBeGreaterThanOrEqual(said.length);
      expect(await page.locator('.live-final .segment-speaker').first().innerText()).toBe('Dr Rossi');
      expect(await page.getByText('Waiting for speech…').count()).toBe(0);
      found.push(...(await axe(page, `live page at ${size.width}px`)));
    }
    expect(found).toEqual([]);
    bot.ws.send(JSON.stringify({ type: 'stop' }));
    expect((await bot.closed).code).toBe(1000);
    expect(panel.cspViolations).toEqual([]);
  }, 180_000);

  it('the recording page shows the stage, percentage, elapsed time and estimate, then announces the end', async () => {
    const out = path.join(panel.dir, 'track.wav');
    buildLongTrack(
      readReferences().filter((r) => r.file.startsWith('librivox')),
      out,
    );
    // The stopped live recording's job first, so the worker started below has this one only.
    while (await panel.t.services.jobs.runOnce());
    const res = await upload(panel.t, owner.accessToken, ip, readFileSync(out), { title: 'Progress visit' });
    expect(res.statusCode).toBe(202);
    const id = (res.json() as { id: string }).id;

    const desktop = await signedIn(DESKTOP);
    const phone = await signedIn(PHONE);
    // The list row says the same as the recording page.
    await phone.getByRole('link', { name: 'Progress visit' }).waitFor();
    await desktop.goto(`${panel.base}/recordings/${id}`);
    await desktop.getByRole('heading', { name: 'Progress visit' }).waitFor();
    await desktop.getByText('Waiting to be transcribed…').waitFor();

    await panel.t.services.jobs.start();
    // Recognition: the stage in words, the percentage and the elapsed time, on both sizes.
    await desktop.getByText('Transcribing · Recognising speech').waitFor({ timeout: 60_000 });
    await phone.locator('.recording[data-status="processing"] .stage').waitFor({ timeout: 30_000 });
    expect(await phone.locator('.recording[data-status="processing"] .stage').innerText()).toMatch(
      /^(Reading the audio|Recognising speech|Identifying speakers|Saving the transcript) · \d+%$/,
    );
    expect(await desktop.locator('.job-percent').innerText()).toMatch(/^\d+%$/);
    await desktop.locator('.job-time', { hasText: /^Elapsed \d+:\d\d/ }).waitFor({ timeout: 30_000 });
    const found = await axe(desktop, 'recording page (processing) at 1440px');
    await phone.goto(`${panel.base}/recordings/${id}`);
    await phone.getByRole('heading', { name: 'Progress visit' }).waitFor();
    expect(await phone.locator('.job-stage').innerText()).toMatch(/^Transcribing · /);
    found.push(...(await axe(phone, 'recording page (processing) at 390px')));
    // An estimate shows once the fraction means something.
    await desktop.locator('.job-time', { hasText: / left$/ }).waitFor({ timeout: 60_000 });

    // The end is said (role="status"), and the transcript replaces the progress.
    await desktop
      .getByRole('status')
      .filter({ hasText: 'Transcription finished: the transcript is ready below.' })
      .waitFor({ timeout: 120_000 });
    expect(await desktop.locator('.job-progress').count()).toBe(0);
    found.push(...(await axe(desktop, 'recording page (done) at 1440px')));
    expect(found).toEqual([]);
    expect(panel.cspViolations).toEqual([]);
  }, 300_000);
});
