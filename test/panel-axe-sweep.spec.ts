import type { BrowserContext, Locator, Page } from 'playwright-core';
import { beforeAll, describe, expect, it } from 'vitest';
import { freshIp, totp, verificationToken } from './helpers/auth-client.js';
import {
  addUser,
  bearer,
  createOrgWithUser,
  createSupportUserFixture,
  type TestUser,
} from './helpers/fixtures.js';
import { createLive } from './helpers/live.js';
import { goToOrgTab, logIn, panelSkipReason, usePanel, withPassword } from './helpers/panel.js';
import { axeProblems, DESKTOP, PHONE, sidewaysOverflow } from './helpers/panel-checks.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel } from './helpers/test-app.js';
import { seedTranscript, seg } from './helpers/transcripts.js';

/**
 * Every page of the panel (issue 13), one after the other, at 1440×900 and 390×844 in Debian's
 * Chromium under the production CSP: axe reports no serious or critical violation, nothing scrolls
 * sideways on the phone (neither the page nor an element of it), the page's key controls have a
 * real size, and no CSP violation happens anywhere. The list follows web/src/app.tsx's routes:
 * signed out (log in with its SSO and code steps, sign up, the emailed link, an invitation), the
 * recordings list with its search and drawers, a recording in each state (waiting, transcribing,
 * ready, failed, live, not found), live capture, each Organization section, Security with its
 * enrolment, a support user's organization picker, the sign-in-again dialog and the 404 page.
 * Each size collects every problem before failing, so one run lists all there are.
 */
const skipReason = panelSkipReason('panel-axe-sweep');

const PASSWORD = 'quarry-velvet-lantern-82';

describe.skipIf(Boolean(skipReason))(`panel: every page passes axe at both sizes (${backendLabel})`, () => {
  const panel = usePanel(() => ({
    env: {
      ...recordingEnv().env,
      // Every page.goto is a reload that signs in again through the refresh cookie.
      SOTTO_RATE_LIMIT_AUTH_PER_MINUTE: '1000',
      SOTTO_RATE_LIMIT_API_PER_MINUTE: '5000',
    },
    browserArgs: ['--use-fake-ui-for-media-stream', '--use-fake-device-for-media-stream'],
  }));
  let owner: TestUser;
  let mfaUser: TestUser;
  let mfaSecret = '';
  let supportEmail = '';
  let inviteUrl = '';
  const ids = { done: '', queued: '', processing: '', failed: '', live: '' };

  beforeAll(async () => {
    const { t } = panel;
    owner = await createOrgWithUser(t.services, { role: 'owner', orgName: 'Harbour Practice' });
    await withPassword(t, owner, PASSWORD);
    await t.db.query('UPDATE users SET name = $1 WHERE id = $2', ['Dr Ines Park', owner.userId]);
    await addUser(t.services, owner.orgId, { role: 'admin', name: 'Ada Admin' });

    // Someone who signs in with a code from an authenticator app.
    mfaUser = await addUser(t.services, owner.orgId, { role: 'member', name: 'Mo Member' });
    await withPassword(t, mfaUser, PASSWORD);
    const ip = freshIp();
    const enrol = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/mfa/totp',
      headers: bearer(mfaUser.accessToken),
      remoteAddress: ip,
    });
    expect(enrol.statusCode).toBe(200);
    mfaSecret = (enrol.json() as { secret: string }).secret;
    const confirm = await t.app.inject({
      method: 'POST',
      url: '/api/v1/auth/mfa/totp/confirm',
      headers: bearer(mfaUser.accessToken),
      payload: { code: totp(mfaSecret, Date.now()) },
      remoteAddress: ip,
    });
    expect(confirm.statusCode).toBe(200);

    // Platform support with a grant from this org.
    const support = await createSupportUserFixture(t.services);
    supportEmail = support.email;
    await withPassword(t, support, PASSWORD);
    const grant = await t.app.inject({
      method: 'POST',
      url: '/api/v1/org/support-grants',
      headers: bearer(owner.accessToken),
      payload: { hours: 2 },
    });
    expect(grant.statusCode).toBe(201);

    const invite = await t.app.inject({
      method: 'POST',
      url: '/api/v1/org/invitations',
      headers: bearer(owner.accessToken),
      payload: { email: 'new.nurse@example.test', role: 'member' },
    });
    expect(invite.statusCode).toBe(201);
    inviteUrl = (invite.json() as { inviteUrl: string }).inviteUrl.replace(
      /^https:\/\/sotto\.test/,
      panel.base,
    );

    // A recording in each state. None has a job, so nothing moves them on during the sweep.
    ids.done = await seedTranscript(t.services, owner, {
      title: 'Ward round',
      segments: [
        seg(0, 'Speaker 1', 0, 'Good morning, how did you sleep'),
        seg(1, 'Speaker 2', 4, 'Not well, the zebra crossing noise again'),
        seg(2, 'Speaker 1', 9, 'We can move you to a quieter room today'),
      ],
    });
    ids.queued = await seedTranscript(t.services, owner, { title: 'Waiting intake', done: false });
    ids.processing = await seedTranscript(t.services, owner, { title: 'Night handover', done: false });
    ids.failed = await seedTranscript(t.services, owner, { title: 'Broken upload', done: false });
    await t.db.query(
      `UPDATE recordings SET status = 'processing', progress = 0.42, stage = 'transcribing',
              started_at = now() - interval '40 seconds' WHERE id = $1`,
      [ids.processing],
    );
    await t.db.query(`UPDATE recordings SET status = 'failed', error_code = 'decode_failed' WHERE id = $1`, [
      ids.failed,
    ]);
    ids.live = await createLive(t, owner.accessToken, freshIp(), 'Clinic live');
  }, 180_000);

  /** A control a person needs on this page: shown with a real size (scrolled to, as a person would). */
  async function sized(loc: Locator, what: string, problems: string[]): Promise<void> {
    try {
      await loc.first().waitFor({ timeout: 10_000 });
      await loc.first().scrollIntoViewIfNeeded();
      const box = await loc.first().boundingBox();
      if (!box || box.width < 1 || box.height < 1) problems.push(`${what}: no size (${JSON.stringify(box)})`);
    } catch (err) {
      problems.push(`${what}: not shown (${(err as Error).message.split('\n')[0]})`);
    }
  }

  /** Elements that scroll sideways inside the page (a wide table in a scroll box, say). */
  const sidewaysElements = (page: Page) =>
    page.evaluate(() =>
      Array.from(document.querySelectorAll<HTMLElement>('body *'))
        .filter((el) => {
          if (el instanceof HTMLInputElement || el instanceof HTMLTextAreaElement) return false;
          const { overflowX } = getComputedStyle(el);
          return (overflowX === 'auto' || overflowX === 'scroll') && el.scrollWidth > el.clientWidth + 1;
        })
        .map((el) => {
          const name = (e: Element) =>
            `${e.tagName.toLowerCase()}${Array.from(e.classList, (c) => `.${c}`).join('')}`;
          // What sticks out: the deepest descendant that reaches past the box's right edge.
          const edge = el.getBoundingClientRect().right;
          const out = Array.from(el.querySelectorAll('*')).filter(
            (d) => d.getBoundingClientRect().right > edge + 1,
          );
          const culprit = out.at(-1);
          return `${name(el)}${culprit ? ` (${name(culprit)} is ${Math.round(culprit.getBoundingClientRect().width)}px wide)` : ''}`;
        }),
    );

  /** Waits until nothing is loading, then runs every check on the page as it is now. */
  async function check(
    page: Page,
    where: string,
    problems: string[],
    controls: [Locator, string][] = [],
  ): Promise<void> {
    await page
      .waitForFunction(() => !document.querySelector('[aria-busy="true"]'), undefined, { timeout: 10_000 })
      .catch(() => problems.push(`${where}: still loading after 10 s`));
    for (const [loc, what] of controls) await sized(loc, `${where}: ${what}`, problems);
    problems.push(...(await axeProblems(page, where)));
    const size = page.viewportSize()!;
    if (size.width === PHONE.width) {
      const over = await sidewaysOverflow(page);
      if (over > 0) problems.push(`${where}: the page scrolls sideways by ${over}px`);
      for (const el of await sidewaysElements(page)) problems.push(`${where}: ${el} scrolls sideways`);
    }
  }

  const heading = (page: Page, name: string | RegExp) =>
    page.getByRole('heading', { name, level: 1 }).waitFor();

  async function signedOutPages(ctx: BrowserContext, tag: string, problems: string[]): Promise<void> {
    const page = await panel.newPage(ctx);
    await page.goto(`${panel.base}/login`);
    await heading(page, 'Log in to Sotto');
    await check(page, `${tag} log in`, problems, [
      [page.getByLabel('Email'), 'Email'],
      [page.getByLabel('Password'), 'Password'],
      [page.getByRole('button', { name: 'Log in' }), 'Log in'],
    ]);
    // The checks can fail: a nameless button (critical for axe) and a too-wide box are caught.
    await page.evaluate(() => {
      const b = document.createElement('button');
      b.id = 'sweep-probe';
      b.style.setProperty('width', '2000px');
      document.body.append(b);
    });
    const caught = await axeProblems(page, 'probe');
    if (!caught.some((p) => p.includes('button-name')))
      problems.push(`axe missed a nameless button: ${caught}`);
    if ((await sidewaysOverflow(page)) <= 0 && page.viewportSize()!.width < 2000)
      problems.push('a 2000px wide button did not count as sideways scrolling');
    await page.evaluate(() => document.getElementById('sweep-probe')?.remove());

    await page.getByRole('button', { name: 'Continue with SSO' }).click();
    await page.getByLabel('Work email').waitFor();
    await check(page, `${tag} log in with SSO`, problems, [[page.getByLabel('Work email'), 'Work email']]);

    // The code step of an account with an authenticator app.
    await page.goto(`${panel.base}/login`);
    await page.getByLabel('Email').fill(mfaUser.email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Log in' }).click();
    const code = page.getByLabel(/code/i).first();
    await code.waitFor();
    await check(page, `${tag} log in: code step`, problems, [[code, 'the code field']]);

    await page.goto(`${panel.base}/signup`);
    await heading(page, 'Create your organization');
    await check(page, `${tag} sign up`, problems, [
      [page.getByRole('button', { name: 'Create account' }), 'Create account'],
    ]);
    await page.getByLabel('Your name').fill('Sam Signup');
    const signupEmail = `signup-${tag}-${Date.now()}@example.test`;
    await page.getByLabel('Email').fill(signupEmail);
    await page.getByLabel('Password', { exact: true }).fill(PASSWORD);
    await page.getByLabel('Organization').fill('Quay Clinic');
    await page.getByRole('button', { name: 'Create account' }).click();
    await page.getByRole('heading', { name: 'Check your email' }).waitFor();
    await check(page, `${tag} sign up: check your email`, problems);
    await page.goto(`${panel.base}/verify-email#token=${await verificationToken(panel.t, signupEmail)}`);
    await heading(page, 'Email verified');
    await check(page, `${tag} verify email: verified`, problems);

    await page.goto('about:blank'); // only the fragment changes (see the invitation below)
    await page.goto(`${panel.base}/verify-email#token=${'B'.repeat(43)}`);
    await heading(page, 'This link does not work');
    await check(page, `${tag} verify email: a link that does not work`, problems);

    await page.goto(inviteUrl);
    await heading(page, 'Join your organization on Sotto');
    await page.locator('.invite-about').waitFor();
    await check(page, `${tag} invitation`, problems, [[page.getByLabel('Your name'), 'Your name']]);
    // Only the fragment differs from the page shown: a goto alone would not load it again.
    await page.goto('about:blank');
    await page.goto(`${panel.base}/invite#token=${'A'.repeat(43)}`);
    await heading(page, 'This invitation does not work');
    await check(page, `${tag} invitation that does not work`, problems);
    await page.close();
  }

  async function ownerPages(ctx: BrowserContext, tag: string, phone: boolean, problems: string[]) {
    const page = await panel.newPage(ctx);
    await logIn(page, panel.base, owner.email, PASSWORD);
    await heading(page, 'Recordings');
    await page.locator('.status').first().waitFor();
    await check(page, `${tag} recordings`, problems, [
      [page.getByRole('link', { name: 'Ward round' }), 'a recording link'],
      [page.getByRole('button', { name: 'Delete Ward round' }), 'Delete'],
      ...(phone
        ? ([
            [page.getByRole('button', { name: 'Menu' }), 'Menu'],
            [page.getByRole('button', { name: 'Upload a recording' }), 'Upload a recording'],
            [page.getByRole('button', { name: 'Search and filters', exact: true }), 'Search and filters'],
          ] as [Locator, string][])
        : []),
    ]);

    if (phone) {
      await page.getByRole('button', { name: 'Menu' }).click();
      await page.getByRole('link', { name: 'Organization' }).waitFor();
      await check(page, `${tag} header menu open`, problems);
      await page.getByRole('button', { name: 'Menu' }).click();
      await page.getByRole('button', { name: 'Upload a recording' }).click();
      await page.getByRole('dialog').waitFor();
      await check(page, `${tag} upload drawer`, problems);
      await page.keyboard.press('Escape');
      await page.getByRole('dialog').waitFor({ state: 'hidden' });
      await page.getByRole('button', { name: 'Search and filters', exact: true }).click();
    }
    await page.getByLabel('Search titles and transcripts').fill('zebra');
    if (phone) await check(page, `${tag} search and filters drawer`, problems);
    await page.getByRole('button', { name: 'Search', exact: true }).click();
    if (phone) await page.getByRole('dialog').getByRole('button', { name: 'Done' }).click();
    const hit = page.getByRole('link', { name: /in Ward round$/ });
    await hit.first().waitFor();
    await check(page, `${tag} search results`, problems, [[hit, 'the search hit']]);

    await page.getByRole('button', { name: 'Delete Ward round' }).click();
    await page.getByRole('dialog').waitFor();
    await check(page, `${tag} delete dialog`, problems);
    await page.keyboard.press('Escape');
    await page.getByRole('dialog').waitFor({ state: 'hidden' });

    await page.goto(`${panel.base}/recordings/${ids.done}`);
    await heading(page, 'Ward round');
    // A seeded transcript keeps no audio, so no player here (panel-player.spec.ts has one).
    await check(page, `${tag} recording: ready`, problems, [
      [page.getByRole('button', { name: /^Edit the segment at/ }), 'Edit'],
      [page.locator('summary', { hasText: 'Export' }), 'Export'],
    ]);
    await page.getByRole('button', { name: 'Edit the segment at 0:00' }).click();
    const editor = page.getByLabel('Text of the segment at 0:00');
    await check(page, `${tag} recording: editing a segment`, problems, [
      [editor, 'the segment editor'],
      [page.getByRole('button', { name: 'Save', exact: true }), 'Save'],
    ]);
    for (const [state, id, title] of [
      ['waiting', ids.queued, 'Waiting intake'],
      ['transcribing', ids.processing, 'Night handover'],
      ['failed', ids.failed, 'Broken upload'],
    ] as const) {
      await page.goto(`${panel.base}/recordings/${id}`);
      await heading(page, title);
      await page.locator('.status').first().waitFor();
      await check(page, `${tag} recording: ${state}`, problems);
    }
    await page.goto(`${panel.base}/recordings/${ids.live}/live`);
    await heading(page, 'Clinic live');
    await check(page, `${tag} live recording (viewer)`, problems);
    await page.goto(`${panel.base}/recordings/00000000-0000-4000-8000-000000000000`);
    await heading(page, /not found|Not found|does not exist/i);
    await check(page, `${tag} recording not found`, problems);

    await page.goto(`${panel.base}/live`);
    await heading(page, 'Live recording');
    const allow = page.getByRole('button', { name: 'Allow microphone' });
    const mic = page.getByLabel('Microphone', { exact: true });
    await mic.or(allow).waitFor();
    if (await allow.isVisible()) await allow.click();
    await mic.waitFor();
    await check(page, `${tag} live: start`, problems, [
      [page.getByRole('button', { name: 'Start recording' }), 'Start recording'],
    ]);
    // Capturing (Chromium's fake microphone), then the stop confirmation.
    await page.getByLabel('Title (optional)').fill(`Sweep live ${tag}`);
    await page.getByRole('button', { name: 'Start recording' }).click();
    await page.waitForURL(/\/recordings\/[0-9a-f-]{36}\/live$/);
    await heading(page, `Sweep live ${tag}`);
    await page.getByRole('button', { name: 'Stop recording' }).waitFor();
    await check(page, `${tag} live: capturing`, problems, [
      [page.getByRole('button', { name: 'Stop recording' }), 'Stop recording'],
    ]);
    await page.getByRole('button', { name: 'Stop recording' }).click();
    await page.getByRole('button', { name: 'Stop now' }).waitFor();
    await check(page, `${tag} live: stop confirmation`, problems);
    await page.getByRole('button', { name: 'Stop now' }).click();
    await page.getByRole('button', { name: 'Stop recording' }).waitFor({ state: 'detached' });

    await page.goto(`${panel.base}/org/members`);
    await heading(page, /^Organization/);
    const sections = [
      'Members',
      'Invitations',
      'Settings',
      'Support access',
      'Workers',
      'Single sign-on',
      'Webhooks',
      'Archive',
      'Data',
      'Audit log',
    ];
    for (const name of sections) {
      await goToOrgTab(page, name);
      await page.getByRole('heading', { level: 2 }).first().waitFor();
      await check(page, `${tag} organization: ${name}`, problems);
    }

    await page.goto(`${panel.base}/settings/security`);
    await heading(page, 'Security');
    await page.getByText('Off. Turn it on').waitFor();
    await check(page, `${tag} security`, problems, [
      [page.getByRole('button', { name: 'Set up an authenticator app' }), 'Set up an authenticator app'],
    ]);
    await page.getByRole('button', { name: 'Set up an authenticator app' }).click();
    await page.getByRole('img', { name: 'QR code for your authenticator app' }).waitFor();
    await check(page, `${tag} security: authenticator set-up`, problems, [
      [page.getByLabel('Code from the app'), 'Code from the app'],
    ]);

    await page.goto(`${panel.base}/no/such/page`);
    await heading(page, 'Not found');
    await check(page, `${tag} 404`, problems);

    // Signed in, an invitation link offers to log out first.
    await page.goto(inviteUrl);
    await page.getByRole('heading', { level: 1 }).waitFor();
    await check(page, `${tag} invitation while signed in`, problems);

    // The session ends under the page: the sign-in-again dialog.
    await page.goto(`${panel.base}/recordings/${ids.done}`);
    await heading(page, 'Ward round');
    await page.getByRole('button', { name: 'Edit the segment at 0:04' }).click();
    await page.getByLabel('Text of the segment at 0:04').fill('Not well, the crossing noise again');
    await panel.t.db.query(
      'UPDATE sessions SET revoked_at = now() WHERE user_id = $1 AND revoked_at IS NULL',
      [owner.userId],
    );
    await page.getByRole('button', { name: 'Save', exact: true }).click();
    const dialog = page.getByRole('dialog');
    await dialog.waitFor();
    await check(page, `${tag} sign in again dialog`, problems, [[dialog.getByLabel('Password'), 'Password']]);
    await page.close();
  }

  async function supportPages(ctx: BrowserContext, tag: string, problems: string[]) {
    const page = await panel.newPage(ctx);
    await logIn(page, panel.base, supportEmail, PASSWORD);
    await page.getByRole('heading', { level: 1 }).waitFor();
    await page.getByText('Harbour Practice').first().waitFor();
    await check(page, `${tag} support: organization picker`, problems, [
      [page.getByRole('button', { name: 'Open Harbour Practice' }), 'Open'],
    ]);
    await page.getByRole('button', { name: 'Open Harbour Practice' }).click();
    await heading(page, 'Recordings');
    await page.locator('.status').first().waitFor();
    await check(page, `${tag} support: the organization's recordings`, problems);
    await page.close();
  }

  for (const [tag, size] of [
    ['1440px', DESKTOP],
    ['390px', PHONE],
  ] as const) {
    it(`${tag}: no serious axe violation, nothing sideways, key controls sized, no CSP violation`, async () => {
      const problems: string[] = [];
      const ctx = await panel.newContext(size);
      try {
        await signedOutPages(ctx, tag, problems);
        await ownerPages(ctx, tag, size === PHONE, problems);
        await ctx.clearCookies();
        await supportPages(ctx, tag, problems);
      } catch (err) {
        for (const p of ctx.pages()) await p.screenshot({ path: `/tmp/sweep-${tag}.png` }).catch(() => {});
        // Reported with what was found before it, so one run shows every problem it reached.
        const at = [...((err as Error).stack ?? '').matchAll(/panel-axe-sweep\.spec\.ts:(\d+)/g)]
          .map((m) => m[1])
          .join(' < ');
        problems.push(`the sweep stopped at lines ${at}: ${(err as Error).message.split('\n')[0]}`);
      } finally {
        await ctx.close();
      }
      expect(problems).toEqual([]);
      expect(panel.cspViolations).toEqual([]);
    }, 420_000);
  }
});
