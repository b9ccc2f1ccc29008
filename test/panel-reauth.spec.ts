import path from 'node:path';
import { request, type APIRequestContext, type Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { totp } from './helpers/auth-client.js';
import { createOrgWithUser, type TestUser } from './helpers/fixtures.js';
import { startIdp, type TestIdp } from './helpers/oidc-idp.js';
import { logIn, panelSkipReason, screenshotDir as shots, usePanel, withPassword } from './helpers/panel.js';
import { axeProblems, DESKTOP, expectSeen, PHONE, sidewaysOverflow } from './helpers/panel-checks.js';
import { recordingEnv } from './helpers/recordings.js';
import { backendLabel } from './helpers/test-app.js';
import { seedTranscript, seg } from './helpers/transcripts.js';

/**
 * Never losing input when the session ends under the page (issue 13): a Save refused because
 * the session was revoked elsewhere or expired opens "Sign in again to continue" on the same
 * page — password, then the authenticator code for an account with two-step verification — and
 * the refused Save (or rename) then completes, the page never left. A save that cannot reach
 * the server keeps the text, says so in a sentence beside the editor (never "Failed to fetch")
 * and goes through by itself when the connection is back. Real Chromium, real HTTPS, the
 * production CSP, at 1440×900 and 390×844; the transcripts are stored as the worker stores them.
 */
const skipReason = panelSkipReason('panel-reauth');

const PASSWORD = 'amber-harbour-lantern-47';
// The redirect URI the server advertises (SOTTO_PUBLIC_URL of the test app); the browser is sent on to the panel.
const PUBLIC = 'https://sotto.test';
const segments = Array.from({ length: 6 }, (_, i) =>
  seg(i + 1, i % 2 ? 'S2' : 'S1', i * 3, `line${i + 1} alpha bravo charlie`),
);

describe.skipIf(Boolean(skipReason))(
  `panel: sign in again without leaving the page (${backendLabel})`,
  () => {
    const panel = usePanel(() => ({
      env: {
        ...recordingEnv().env,
        SOTTO_RATE_LIMIT_AUTH_PER_MINUTE: '1000',
        // The test IdP listens on plain http://127.0.0.1.
        SOTTO_SSO_ALLOW_INSECURE_ISSUERS: 'true',
      },
    }));
    let api: APIRequestContext;
    let owner: TestUser & { password: string };
    let recordingId = '';
    let idp: TestIdp | undefined;

    /**
     * The stored transcript, read through a session of its own (not the browser's: "sign out
     * everywhere" ends the fixture's session too). The MFA account reads with its fixture session.
     */
    const transcriptOf = async (u: TestUser, id: string, token?: string) => {
      if (!token) {
        const res = await api.post('/api/v1/auth/login', { data: { email: u.email, password: PASSWORD } });
        expect(res.status()).toBe(200);
        token = (await res.json()).accessToken as string;
      }
      const res = await api.get(`/api/v1/recordings/${id}/transcript`, {
        headers: { authorization: `Bearer ${token}` },
      });
      expect(res.status()).toBe(200);
      return (await res.json()) as {
        segments: { id: string; text: string }[];
        speakers: { id: string; name: string }[];
      };
    };
    const openPage = async (size: { width: number; height: number }) => {
      const ctx = await panel.newContext(size);
      return { ctx, page: await panel.newPage(ctx) };
    };
    const openRecording = async (page: Page, id: string, title: string) => {
      await page.goto(`${panel.base}/recordings/${id}`);
      await page.getByRole('heading', { name: title }).waitFor();
      await page.locator('ol.segments li').first().waitFor();
    };
    const dialogOf = (page: Page) => page.getByRole('dialog', { name: 'Sign in again to continue' });
    /** The fixture session signs the browser out the way "Sign out everywhere" elsewhere does. */
    const revokeBrowserSessions = (u: TestUser) =>
      panel.t.db.query(
        `UPDATE sessions SET revoked_at = now(), revoked_reason = 'test' WHERE user_id = $1 AND id <> $2`,
        [u.userId, u.sessionId],
      );

    beforeAll(async () => {
      api = await request.newContext({ baseURL: panel.base, ignoreHTTPSErrors: true });
      owner = await withPassword(
        panel.t,
        await createOrgWithUser(panel.t.services, { role: 'owner' }),
        PASSWORD,
      );
      recordingId = await seedTranscript(panel.t.services, owner, { title: 'Ward round', segments });
    }, 120_000);

    afterAll(async () => {
      await api?.dispose();
      await idp?.close();
    });

    for (const [size, n] of [
      [DESKTOP, 0],
      [PHONE, 2],
    ] as const) {
      it(`${size.width}px: a Save refused by a revoked session asks for the password, then saves on the same page`, async () => {
        const { page } = await openPage(size);
        await panel.loginAs(page, owner);
        await openRecording(page, recordingId, 'Ward round');
        const seg = segments[n]!;
        const start = `0:${String(seg.start).padStart(2, '0')}`;
        await page.getByRole('button', { name: `Edit the segment at ${start}` }).click();
        const field = page.getByLabel(`Text of the segment at ${start}`);
        const typed = `Corrected after the revoke at ${size.width}`;
        await field.fill(typed);

        // Signed out elsewhere ("Sign out everywhere" through the API with another session).
        const other = await api.post('/api/v1/auth/login', {
          data: { email: owner.email, password: PASSWORD },
        });
        expect(other.status()).toBe(200);
        const revoke = await api.post('/api/v1/auth/devices/revoke-all', {
          headers: { authorization: `Bearer ${(await other.json()).accessToken as string}` },
          data: {},
        });
        expect(revoke.status()).toBe(200);
        const url = page.url();
        await page.getByRole('button', { name: 'Save', exact: true }).click();

        const dialog = dialogOf(page);
        await expectSeen(dialog, 'the sign-in dialog');
        expect(await sidewaysOverflow(page)).toBeLessThanOrEqual(0);
        expect(await dialog.innerText()).toContain(owner.email);
        const password = dialog.getByLabel('Password');
        await expectSeen(password, 'the password field');
        await expect.poll(() => page.evaluate(() => document.activeElement?.id)).toBe('reauth-password');
        expect(await axeProblems(page, `sign-in dialog at ${size.width}px`)).toEqual([]);
        // Escape does not throw the waiting Save away.
        await page.keyboard.press('Escape');
        expect(await dialog.isVisible()).toBe(true);

        // A wrong password: a sentence next to the field, tied to it.
        await password.fill('not-the-password');
        await dialog.getByRole('button', { name: 'Sign in and continue' }).click();
        const alert = dialog.getByRole('alert');
        await alert.waitFor();
        expect(await alert.innerText()).toBe('That password is not right. Try again.');
        expect(await password.getAttribute('aria-invalid')).toBe('true');
        expect(await password.getAttribute('aria-describedby')).toBe(await alert.getAttribute('id'));
        await expectSeen(alert, 'the refusal');
        await page.screenshot({
          path: path.join(shots, size === DESKTOP ? 'reauth.png' : 'reauth-phone.png'),
        });

        await password.fill(PASSWORD);
        await dialog.getByRole('button', { name: 'Sign in and continue' }).click();
        await dialog.waitFor({ state: 'hidden' });
        // The Save that hit the 401 went through: stored, shown, and the page never left.
        await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
        expect(page.url()).toBe(url);
        expect(await page.locator('ol.segments').innerText()).toContain(typed);
        const stored = await transcriptOf(owner, recordingId);
        expect(stored.segments.find((s) => s.id === seg.id)?.text).toBe(typed);
        expect(await page.getByRole('heading', { name: 'Log in to Sotto' }).count()).toBe(0);
        // The new session is this page's from now on.
        // (The brand link: at phone width the header's links are folded into its menu.)
        await page.getByRole('link', { name: 'Sotto', exact: true }).click();
        await page.getByRole('link', { name: 'Ward round' }).waitFor();
        expect(panel.cspViolations).toEqual([]);
      }, 90_000);

      it(`${size.width}px: a save that cannot reach the server keeps the text, says why beside the editor, and saves when back online`, async () => {
        const { ctx, page } = await openPage(size);
        await panel.loginAs(page, owner);
        await openRecording(page, recordingId, 'Ward round');
        const seg = segments[n + 1]!;
        const start = `0:${String(seg.start).padStart(2, '0')}`;
        await page.getByRole('button', { name: `Edit the segment at ${start}` }).click();
        const field = page.getByLabel(`Text of the segment at ${start}`);
        const typed = `Typed in the lift at ${size.width}`;
        await field.fill(typed);
        await ctx.setOffline(true);
        await page.getByRole('button', { name: 'Save', exact: true }).click();
        const editor = page.locator('form.segment-edit');
        const alert = editor.getByRole('alert');
        await alert.waitFor();
        expect(await alert.innerText()).toMatch(
          /^Not saved yet: Sotto cannot be reached\. Your text is kept/,
        );
        await expectSeen(alert, 'the offline message');
        expect((await field.getAttribute('aria-describedby'))?.split(' ')).toContain(
          await alert.getAttribute('id'),
        );
        expect(await field.inputValue()).toBe(typed);
        expect(await page.locator('body').innerText()).not.toMatch(/Failed to fetch|NetworkError|TypeError/);
        expect(await sidewaysOverflow(page)).toBeLessThanOrEqual(0);
        expect((await transcriptOf(owner, recordingId)).segments.find((s) => s.id === seg.id)?.text).not.toBe(
          typed,
        );

        // Back online: the kept text goes through by itself and the editor closes.
        await ctx.setOffline(false);
        await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor({ timeout: 15_000 });
        await editor.waitFor({ state: 'detached' });
        expect((await transcriptOf(owner, recordingId)).segments.find((s) => s.id === seg.id)?.text).toBe(
          typed,
        );
        expect(panel.cspViolations).toEqual([]);
      }, 90_000);
    }

    it('390px: an expired session of an account with two-step verification asks for the code; the rename completes', async () => {
      const mfa = await createOrgWithUser(panel.t.services, { role: 'owner' });
      await withPassword(panel.t, mfa, PASSWORD);
      const id = await seedTranscript(panel.t.services, mfa, { title: 'Clinic call', segments });
      const bearer = { authorization: `Bearer ${mfa.accessToken}` };
      const { secret } = (await (
        await api.post('/api/v1/auth/mfa/totp', { headers: bearer, data: {} })
      ).json()) as {
        secret: string;
      };
      const enrolledAt = Date.now();
      const confirm = await api.post('/api/v1/auth/mfa/totp/confirm', {
        headers: bearer,
        data: { code: totp(secret, enrolledAt) },
      });
      expect(confirm.status()).toBe(200);
      const { recoveryCodes } = (await confirm.json()) as { recoveryCodes: string[] };

      const { page } = await openPage(PHONE);
      await logIn(page, panel.base, mfa.email, PASSWORD);
      await page.getByRole('button', { name: 'Use a recovery code instead' }).click();
      await page.getByLabel('Recovery code').fill(recoveryCodes[0]!);
      await page.getByRole('button', { name: 'Verify' }).click();
      await page.getByRole('heading', { name: 'Recordings', exact: true }).waitFor();
      await openRecording(page, id, 'Clinic call');

      await page.getByRole('button', { name: 'Rename Speaker 1' }).click();
      await page.getByLabel('New name for Speaker 1').fill('Dr Rossi');
      // The session runs out (expired, not revoked) while the person types.
      await panel.t.db.query(
        `UPDATE sessions SET expires_at = now() - interval '1 second' WHERE user_id = $1 AND id <> $2`,
        [mfa.userId, mfa.sessionId],
      );
      await page.getByRole('button', { name: 'Save', exact: true }).click();

      const dialog = dialogOf(page);
      await expectSeen(dialog, 'the sign-in dialog');
      await dialog.getByLabel('Password').fill(PASSWORD);
      await dialog.getByRole('button', { name: 'Sign in and continue' }).click();
      const code = dialog.getByLabel('One-time code');
      await expectSeen(code, 'the code field');
      expect(await sidewaysOverflow(page)).toBeLessThanOrEqual(0);
      expect(await axeProblems(page, 'code step at 390px')).toEqual([]);
      await code.fill('000000');
      await dialog.getByRole('button', { name: 'Verify and continue' }).click();
      const alert = dialog.getByRole('alert');
      await alert.waitFor();
      expect(await alert.innerText()).toBe('That code was not accepted. Check it and try again.');
      expect(await code.getAttribute('aria-invalid')).toBe('true');
      // The next time step: the enrolment's code is used and not replayable.
      await code.fill(totp(secret, enrolledAt + 30_000));
      await dialog.getByRole('button', { name: 'Verify and continue' }).click();
      await dialog.waitFor({ state: 'hidden' });
      await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
      expect(await page.locator('ul.speakers').innerText()).toContain('Dr Rossi');
      expect((await transcriptOf(mfa, id, mfa.accessToken)).speakers.find((s) => s.id === 'S1')?.name).toBe(
        'Dr Rossi',
      );
      expect(page.url()).toBe(`${panel.base}/recordings/${id}`);
      expect(panel.cspViolations).toEqual([]);
    }, 90_000);

    it('"Log out instead" ends the session as before: the log-in page says why, and the draft comes back after logging in', async () => {
      const { page } = await openPage(DESKTOP);
      await panel.loginAs(page, owner);
      await openRecording(page, recordingId, 'Ward round');
      const seg = segments[5]!;
      const start = `0:${String(seg.start).padStart(2, '0')}`;
      await page.getByRole('button', { name: `Edit the segment at ${start}` }).click();
      await page.getByLabel(`Text of the segment at ${start}`).fill('Kept for later');
      await revokeBrowserSessions(owner);
      await page.getByRole('button', { name: 'Save', exact: true }).click();
      const dialog = dialogOf(page);
      await dialog.waitFor();
      await dialog.getByRole('button', { name: 'Log out instead' }).click();
      await page.getByRole('heading', { name: 'Log in to Sotto' }).waitFor();
      expect(await page.getByRole('alert').innerText()).toContain('You were signed out on this device');
      await page.getByLabel('Email').fill(owner.email);
      await page.getByLabel('Password').fill(PASSWORD);
      await page.getByRole('button', { name: 'Log in' }).click();
      const field = page.getByLabel(`Text of the segment at ${start}`);
      await field.waitFor();
      expect(await field.inputValue()).toBe('Kept for later');
      expect(panel.cspViolations).toEqual([]);
    }, 90_000);
    it('1440px: an account that signs in with SSO signs in again in a new tab; the waiting Save then completes here', async () => {
      const ssoOwner = await createOrgWithUser(panel.t.services, { role: 'owner' });
      const domain = `harbour-${Date.now()}.test`;
      idp = await startIdp({ redirectUri: `${PUBLIC}/api/v1/auth/sso/callback` });
      idp.accounts.set('nora', { email: `nora@${domain}`, email_verified: true, name: 'Nora Nurse' });
      idp.nextAccount = 'nora';
      const put = await api.put('/api/v1/org/sso', {
        headers: { authorization: `Bearer ${ssoOwner.accessToken}` },
        data: {
          issuer: idp.issuer,
          clientId: idp.clientId,
          clientSecret: idp.clientSecret,
          allowedDomains: [domain],
        },
      });
      expect(put.status()).toBe(200);

      const { ctx, page } = await openPage(DESKTOP);
      await ctx.route(`${PUBLIC}/**`, (route) =>
        route.fulfill({
          status: 302,
          headers: { location: route.request().url().replace(PUBLIC, panel.base) },
        }),
      );
      await page.goto(`${panel.base}/login`);
      await page.getByRole('button', { name: 'Continue with SSO' }).click();
      await page.getByLabel('Work email').fill(`nora@${domain}`);
      await page.getByRole('button', { name: 'Continue with SSO' }).click();
      await page.getByRole('heading', { name: 'Recordings', exact: true }).waitFor();
      const { rows } = await panel.t.db.query<{ id: string }>('SELECT id FROM users WHERE email = $1', [
        `nora@${domain}`,
      ]);
      const nora = { orgId: ssoOwner.orgId, userId: rows[0]!.id };
      const id = await seedTranscript(panel.t.services, nora, { title: 'Night shift', segments });
      await openRecording(page, id, 'Night shift');
      await page.getByRole('button', { name: 'Edit the segment at 0:00' }).click();
      await page.getByLabel('Text of the segment at 0:00').fill('Handed over at midnight');
      await panel.t.db.query(`UPDATE sessions SET revoked_at = now() WHERE user_id = $1`, [nora.userId]);
      await page.getByRole('button', { name: 'Save', exact: true }).click();

      const dialog = dialogOf(page);
      await dialog.waitFor();
      // Marks that survive only if this tab is never reloaded, and a listener of our own on the
      // same channel: the news must come by BroadcastChannel, not by a reload or a poll.
      await page.evaluate(() => {
        const w = window as unknown as { notReloaded: boolean; heard: string[] };
        w.notReloaded = true;
        w.heard = [];
        new BroadcastChannel('sotto-session').onmessage = (e) => w.heard.push(String(e.data));
      });
      await dialog.getByRole('button', { name: 'Use single sign-on instead' }).click();
      const [tab] = await Promise.all([
        ctx.waitForEvent('page'),
        dialog.getByRole('button', { name: 'Sign in with SSO in a new tab' }).click(),
      ]);
      // The other tab runs the IdP round trip and opens the panel there, signed in.
      await tab.getByRole('heading', { name: 'Recordings', exact: true }).waitFor();
      // This tab hears of it, takes the new session up and sends the Save that waited.
      await dialog.waitFor({ state: 'hidden' });
      await page.getByRole('status').filter({ hasText: 'Saved.' }).waitFor();
      expect(page.url()).toBe(`${panel.base}/recordings/${id}`);
      const marks = await page.evaluate(() => {
        const w = window as unknown as { notReloaded?: boolean; heard?: string[] };
        return { notReloaded: w.notReloaded, heard: w.heard };
      });
      expect(marks.notReloaded).toBe(true);
      // The other tab's news first (this tab's own refresh afterwards says the same).
      expect(marks.heard?.[0]).toBe('signed-in');
      const stored = await api.get(`/api/v1/recordings/${id}/transcript`, {
        headers: { authorization: `Bearer ${ssoOwner.accessToken}` },
      });
      expect(((await stored.json()) as { segments: { text: string }[] }).segments[0]?.text).toBe(
        'Handed over at midnight',
      );
      expect(panel.cspViolations).toEqual([]);
    }, 90_000);
  },
);
