import https from 'node:https';
import type { AddressInfo } from 'node:net';
import path from 'node:path';
import type { BrowserContext, Page } from 'playwright-core';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ensureSelfSignedCert } from '../src/adapters/network/tls.adapter.js';
import { call, freshIp, login } from './helpers/auth-client.js';
import { bearer } from './helpers/fixtures.js';
import { createLive } from './helpers/live.js';
import { startIdp, type TestIdp } from './helpers/oidc-idp.js';
import { orgTab, panelSkipReason, screenshotDir as shots, usePanel } from './helpers/panel.js';
import { backendLabel } from './helpers/test-app.js';

/**
 * The integration screens in Chromium under the production CSP: an owner sets up OIDC single
 * sign-on (the client secret never comes back) and turns Require SSO on past its warning; creates
 * a scoped API token (shown once, copied), which then works against the API within its scopes
 * only and stops when revoked; adds a webhook to a real HTTPS receiver, sees its secret once and
 * the delivery of a deleted recording in the log, and sends it again. A member sees neither tab.
 */
const skipReason = panelSkipReason('panel-integrations');

const PASSWORD = 'amber-harbor-lantern-63';
const MEMBER_PASSWORD = 'copper-willow-anchor-27';
// The redirect URI the server advertises (SOTTO_PUBLIC_URL of the test app); the browser is sent on to the panel.
const PUBLIC = 'https://sotto.test';

describe.skipIf(Boolean(skipReason))(`integration screens in Chromium (${backendLabel})`, () => {
  let receiverTls: { key: string; cert: string };
  const panel = usePanel(async (dir) => {
    receiverTls = await ensureSelfSignedCert(path.join(dir, 'tls'), ['receiver.test']);
    return {
      env: {
        SOTTO_WEBHOOK_ALLOW_PRIVATE: 'true',
        SOTTO_WEBHOOK_CA_FILE: path.join(dir, 'tls', 'cert.pem'),
        // The test IdP listens on plain http://127.0.0.1.
        SOTTO_SSO_ALLOW_INSECURE_ISSUERS: 'true',
      },
    };
  });
  let receiver: https.Server;
  let receiverPort: number;
  const received: { event: string; body: string }[] = [];
  let owner: { ctx: BrowserContext; page: Page };
  let idp: TestIdp;
  let apiToken = '';
  let webhookSecret = '';
  const stamp = Date.now();
  const ownerEmail = `owner-${stamp}@example.test`;
  const memberEmail = `member-${stamp}@example.test`;

  beforeAll(async () => {
    receiver = https.createServer({ key: receiverTls.key, cert: receiverTls.cert }, (req, res) => {
      let body = '';
      req.on('data', (c: Buffer) => (body += c.toString()));
      req.on('end', () => {
        received.push({ event: String(req.headers['sotto-event']), body });
        res.end('ok');
      });
    });
    await new Promise<void>((r) => receiver.listen(0, '127.0.0.1', r));
    receiverPort = (receiver.address() as AddressInfo).port;
    idp = await startIdp({ redirectUri: `${PUBLIC}/api/v1/auth/sso/callback` });
    idp.accounts.set('nora', {
      email: `nora@lighthouse-${stamp}.test`,
      email_verified: true,
      name: 'Nora Nurse',
      groups: ['staff', 'sotto-admins'],
    });
  }, 120_000);

  afterAll(async () => {
    await idp?.close();
    receiver?.close();
  });

  const api = (token: string, method: string, url: string, payload?: object) =>
    call(panel.t, freshIp(), {
      method: method as 'GET',
      url,
      headers: bearer(token),
      ...(payload ? { payload } : {}),
    });
  const fitsPhone = async (page: Page) => {
    await page.setViewportSize({ width: 390, height: 800 });
    const fits = await page.evaluate(
      'document.documentElement.scrollWidth <= document.documentElement.clientWidth',
    );
    await page.setViewportSize({ width: 1100, height: 760 });
    return fits;
  };

  it('an owner sets up OIDC single sign-on; the secret is never shown back; Require SSO warns', async () => {
    const ctx = await panel.newContext();
    await ctx.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: panel.base });
    const page = await panel.newPage(ctx);
    owner = { ctx, page };
    await panel.signUp(page, {
      name: 'Ines Integrator',
      email: ownerEmail,
      password: PASSWORD,
      org: 'Lighthouse Clinic',
    });

    await page.goto(`${panel.base}/org/sso`);
    expect(await orgTab(page, 'Single sign-on').getAttribute('aria-current')).toBe('page');
    await page.getByText('Not set up yet').waitFor();
    // The form's own checks, each under its field.
    await page.getByLabel('Issuer URL').fill(idp.issuer);
    await page.getByLabel('Client ID').fill(idp.clientId);
    await page.getByRole('button', { name: 'Set up single sign-on' }).click();
    await page.getByText('Enter the client secret').waitFor();
    await page.getByLabel('Client secret').fill(idp.clientSecret);
    await page.getByLabel('Allowed email domains').fill('lighthouse.test\nnot a domain');
    await page.getByRole('button', { name: 'Set up single sign-on' }).click();
    await page.getByText('"not a domain" is not a domain name').waitFor();
    await page.getByLabel('Allowed email domains').fill(`lighthouse-${stamp}.test\nclinic-${stamp}.test`);
    await page.getByLabel('Role claim').fill('groups');
    await page.getByLabel('Values that make someone an admin').fill('sotto-admins');
    await page.getByRole('button', { name: 'Set up single sign-on' }).click();
    await page.getByRole('status').filter({ hasText: 'Single sign-on saved.' }).waitFor();

    // Stored: the API has it, the redirect URI is offered, the secret is nowhere on the page.
    const { accessToken } = await login(panel.t, { email: ownerEmail, password: PASSWORD, ip: freshIp() });
    const stored = await api(accessToken, 'GET', '/api/v1/org/sso');
    expect(stored.statusCode).toBe(200);
    expect(stored.json()).toMatchObject({
      kind: 'oidc',
      issuer: idp.issuer,
      clientId: idp.clientId,
      allowedDomains: [`lighthouse-${stamp}.test`, `clinic-${stamp}.test`],
      roleClaim: 'groups',
      roleMapping: { 'sotto-admins': 'admin' },
      requireSso: false,
    });
    expect(stored.body).not.toContain(idp.clientSecret);
    await page.getByTestId('sso-redirect-uri').filter({ hasText: '/api/v1/auth/sso/callback' }).waitFor();
    expect(await page.getByLabel('Client secret').inputValue()).toBe('');
    expect(await page.content()).not.toContain(idp.clientSecret);
    await page.reload();
    await page.getByLabel('Issuer URL').waitFor();
    expect(await page.getByLabel('Issuer URL').inputValue()).toBe(idp.issuer);
    expect(await page.content()).not.toContain(idp.clientSecret);
    await page.getByRole('button', { name: 'Copy redirect URI' }).click();
    await page.getByText('Copied to the clipboard.').waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(`${PUBLIC}/api/v1/auth/sso/callback`);

    // The connection as saved works: Nora signs in through the real IdP and, being in the
    // sotto-admins group of the role claim, joins as an admin.
    const nora = await panel.newContext();
    await nora.route(`${PUBLIC}/**`, (route) =>
      route.fulfill({
        status: 302,
        headers: { location: route.request().url().replace(PUBLIC, panel.base) },
      }),
    );
    const noraPage = await panel.newPage(nora);
    await noraPage.goto(`${panel.base}/login`);
    await noraPage.getByRole('button', { name: 'Continue with SSO' }).click();
    await noraPage.getByLabel('Work email').fill(`nora@lighthouse-${stamp}.test`);
    idp.nextAccount = 'nora';
    await noraPage.getByRole('button', { name: 'Continue with SSO' }).click();
    await noraPage.getByRole('heading', { name: 'Recordings', exact: true }).waitFor();
    await nora.close();
    const members = (await api(accessToken, 'GET', '/api/v1/org/members')).json() as {
      email: string;
      role: string;
    }[];
    expect(members.find((m) => m.email === `nora@lighthouse-${stamp}.test`)?.role).toBe('admin');

    // Require SSO: the warning appears as it is ticked; saving keeps the secret (left empty).
    await page.getByText('Require single sign-on for admins and members').click();
    await page
      .getByRole('alert')
      .filter({ hasText: 'every admin and member except you is signed out' })
      .waitFor();
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').filter({ hasText: 'Require SSO is on' }).waitFor();
    const after = await api(accessToken, 'GET', '/api/v1/org/sso');
    expect(after.json()).toMatchObject({ requireSso: true, hasClientSecret: true });
    await page.screenshot({ path: path.join(shots, 'org-sso.png'), fullPage: true });
    expect(await fitsPhone(page)).toBe(true);

    // Off again for the rest of the test (the member signs in with a password below).
    await page.getByText('Require single sign-on for admins and members').click();
    await page.getByRole('button', { name: 'Save changes' }).click();
    await page.getByRole('status').filter({ hasText: 'Single sign-on saved.' }).waitFor();
    expect((await api(accessToken, 'GET', '/api/v1/org/sso')).json()).toMatchObject({ requireSso: false });
  }, 90_000);

  it('an owner adds a webhook to a real HTTPS receiver and sees its secret once', async () => {
    const { page } = owner;
    await orgTab(page, 'Webhooks').click();
    await page.waitForURL(`${panel.base}/org/webhooks`);
    await page.getByText('No webhooks yet').waitFor();
    const hookUrl = `https://127.0.0.1:${receiverPort}/hook`;
    await page.getByLabel('Receiver URL').fill(hookUrl);
    await page.getByLabel('Transcript ready (recording.done)').uncheck();
    await page.getByRole('button', { name: 'Add webhook' }).click();
    webhookSecret = await page.getByTestId('webhook-secret').innerText();
    expect(webhookSecret).toMatch(/^whsec_[A-Za-z0-9_-]{43}$/);
    await page.getByRole('button', { name: 'Copy secret' }).click();
    await page.getByText('Copied to the clipboard.').waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(webhookSecret);
    const row = page.locator('.org-row', { hasText: hookUrl });
    await row.getByText('recording.failed, recording.deleted').waitFor();
    await page.getByRole('button', { name: 'Done, hide it' }).click();
    await page.reload();
    await row.waitFor();
    expect(await page.content()).not.toContain(webhookSecret);
  }, 60_000);

  it('an owner creates a scoped API token, shown once; it works within its scopes, then is revoked', async () => {
    const { page } = owner;
    await page.goto(`${panel.base}/settings/security`);
    await page.getByText('No API tokens yet').waitFor();
    await page.getByLabel('Token name').fill('clinic script');
    // recordings:read is ticked by default; add write, so the script can delete.
    await page.getByLabel(/^Upload, edit and delete recordings/).check();
    await page.getByLabel('Expires after').selectOption('30');
    await page.getByRole('button', { name: 'Create token' }).click();
    apiToken = await page.getByTestId('api-token').innerText();
    expect(apiToken).toMatch(/^sotto_pat_/);
    await page.getByRole('button', { name: 'Copy token' }).click();
    await page.getByText('Copied to the clipboard.').waitFor();
    expect(await page.evaluate('navigator.clipboard.readText()')).toBe(apiToken);
    const row = page.locator('.org-row', { hasText: 'clinic script' });
    await row.getByText('recordings:read, recordings:write').waitFor();
    await row.locator('.status', { hasText: 'Active' }).waitFor();
    await page.screenshot({ path: path.join(shots, 'tokens.png'), fullPage: true });
    expect(await fitsPhone(page)).toBe(true);
    await page.getByRole('button', { name: 'Done, hide it' }).click();
    await page.reload();
    await row.waitFor();
    await row.getByText(/expires/).waitFor();
    expect(await page.content()).not.toContain(apiToken);

    // With its scopes: list, create and delete recordings (which fires recording.deleted).
    expect((await api(apiToken, 'GET', '/api/v1/recordings')).statusCode).toBe(200);
    const id = await createLive(panel.t, apiToken, freshIp(), 'Session with Jane Example');
    expect((await api(apiToken, 'DELETE', `/api/v1/recordings/${id}`)).statusCode).toBe(204);
    // Without them: the webhooks need org:admin, the audit log audit:read.
    expect((await api(apiToken, 'GET', '/api/v1/org/webhooks')).statusCode).toBe(403);
    expect((await api(apiToken, 'GET', '/api/v1/audit')).statusCode).toBe(403);

    await row.getByRole('button', { name: 'Revoke clinic script' }).click();
    // The safe choice has focus.
    expect(await page.evaluate('document.activeElement?.textContent')).toBe('Keep it');
    await page.getByRole('button', { name: 'Revoke', exact: true }).click();
    await page.getByRole('status').filter({ hasText: 'clinic script was revoked' }).waitFor();
    await row.locator('.status', { hasText: 'Revoked' }).waitFor();
    expect((await api(apiToken, 'GET', '/api/v1/recordings')).statusCode).toBe(401);
  }, 60_000);

  it('the delivery of the deleted recording is in the log, and can be sent again', async () => {
    const { page } = owner;
    // What `sotto serve` does every 2 seconds.
    for (let i = 0; i < 20 && received.length === 0; i++) {
      await panel.t.services.webhooks.deliverDue();
      if (received.length === 0) await new Promise((r) => setTimeout(r, 250));
    }
    expect(received.map((r) => r.event)).toEqual(['recording.deleted']);
    expect(received[0]!.body).not.toContain('Jane');

    await page.goto(`${panel.base}/org/webhooks`);
    const hookUrl = `https://127.0.0.1:${receiverPort}/hook`;
    await page.getByRole('button', { name: `Delivery log of ${hookUrl}` }).click();
    const log = page.getByRole('list', { name: `Deliveries to ${hookUrl}` });
    await log.locator('.org-row', { hasText: 'recording.deleted' }).getByText('Delivered').waitFor();
    await log.getByText(/HTTP 200/).waitFor();
    await log.getByRole('button', { name: /^Send the recording.deleted delivery/ }).click();
    await page.getByRole('status').filter({ hasText: 'queued again' }).waitFor();
    for (let i = 0; i < 20 && received.length < 2; i++) {
      await panel.t.services.webhooks.deliverDue();
      if (received.length < 2) await new Promise((r) => setTimeout(r, 250));
    }
    expect(received).toHaveLength(2);
    await page.getByRole('button', { name: 'Refresh' }).click();
    await expect.poll(() => log.getByText('Delivered').count()).toBe(2);
    await page.screenshot({ path: path.join(shots, 'org-webhooks.png'), fullPage: true });
    expect(await fitsPhone(page)).toBe(true);

    // A new secret is shown once; deleting asks first, with the safe choice focused.
    await page.getByRole('button', { name: `New secret for ${hookUrl}` }).click();
    await page.getByRole('button', { name: 'New secret', exact: true }).click();
    const rotated = await page.getByTestId('webhook-secret').innerText();
    expect(rotated).toMatch(/^whsec_/);
    expect(rotated).not.toBe(webhookSecret);
    await page.getByRole('button', { name: `Delete the webhook to ${hookUrl}` }).click();
    expect(await page.evaluate('document.activeElement?.textContent')).toBe('Keep it');
    await page.getByRole('button', { name: 'Delete', exact: true }).click();
    await page.getByText('No webhooks yet').waitFor();
  }, 60_000);

  it('a member sees neither Single sign-on nor Webhooks, and no access at /org/sso', async () => {
    const { accessToken } = await login(panel.t, { email: ownerEmail, password: PASSWORD, ip: freshIp() });
    const inv = await api(accessToken, 'POST', '/api/v1/org/invitations', {
      email: memberEmail,
      role: 'member',
    });
    expect(inv.statusCode, inv.body).toBe(201);
    const token = /#token=(.+)$/.exec((inv.json() as { inviteUrl: string }).inviteUrl)![1]!;
    const accepted = await call(panel.t, freshIp(), {
      method: 'POST',
      url: '/api/v1/auth/accept-invitation',
      payload: { token, name: 'Milo Member', password: MEMBER_PASSWORD },
    });
    expect(accepted.statusCode, accepted.body).toBeLessThan(300);

    const ctx = await panel.newContext();
    const page = await panel.newPage(ctx);
    await panel.loginAs(page, { email: memberEmail, password: MEMBER_PASSWORD });
    for (const p of ['/org/sso', '/org/webhooks']) {
      await page.goto(`${panel.base}${p}`);
      await page.getByRole('heading', { name: 'No access' }).waitFor();
      expect(await page.getByRole('link', { name: 'Single sign-on' }).count()).toBe(0);
      expect(await page.getByRole('link', { name: 'Webhooks' }).count()).toBe(0);
    }
    // The member's own tokens live in Settings → Security.
    await page.goto(`${panel.base}/settings/security`);
    await page.getByText('No API tokens yet').waitFor();
    await ctx.close();
  }, 60_000);

  it('no page had a CSP violation', async () => {
    await owner?.ctx.close();
    expect(panel.cspViolations).toEqual([]);
  });
});
