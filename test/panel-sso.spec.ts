/**
 * The login page's single sign-on entry in a real browser (Chromium, production CSP): the
 * "Continue with SSO" button, the navigation to the server's start route, and the messages of
 * `/login?sso_error=<code>`. The IdP side of the flow is covered in sso-oidc.spec.ts.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createOrgWithUser } from './helpers/fixtures.js';
import { startIdp, type TestIdp } from './helpers/oidc-idp.js';
import { panelSkipReason, usePanel } from './helpers/panel.js';
import { backendLabel } from './helpers/test-app.js';

const skipReason = panelSkipReason('panel-sso');

describe.skipIf(Boolean(skipReason))(`login page SSO in Chromium (${backendLabel})`, () => {
  const panel = usePanel({ env: { SOTTO_SSO_ALLOW_INSECURE_ISSUERS: 'true' } });
  let idp: TestIdp;
  // The server's configured public URL (test-app): the IdP sends the browser back there.
  const PUBLIC = 'https://sotto.test';

  beforeAll(async () => {
    idp = await startIdp({ redirectUri: `${PUBLIC}/api/v1/auth/sso/callback` });
    idp.accounts.set('gina', { email: 'gina@g.example', email_verified: true, name: 'Gina' });
    const owner = await createOrgWithUser(panel.t.services);
    const res = await panel.t.app.inject({
      method: 'PUT',
      url: '/api/v1/org/sso',
      headers: { authorization: `Bearer ${owner.accessToken}` },
      payload: {
        issuer: idp.issuer,
        clientId: idp.clientId,
        clientSecret: idp.clientSecret,
        allowedDomains: ['g.example'],
      },
    });
    if (res.statusCode !== 200) throw new Error(res.body);
  }, 120_000);

  afterAll(async () => {
    await idp?.close();
  });

  it('signs in through the IdP and lands in the panel with a session', async () => {
    const ctx = await panel.newContext();
    // sotto.test is the public name of the listener on 127.0.0.1 (a DNS entry, in effect).
    await ctx.route(`${PUBLIC}/**`, (route) =>
      route.fulfill({
        status: 302,
        headers: { location: route.request().url().replace(PUBLIC, panel.base) },
      }),
    );
    const page = await panel.newPage(ctx);
    await page.goto(`${panel.base}/login`);
    await page.getByRole('button', { name: 'Continue with SSO' }).click();
    await page.getByLabel('Work email').fill('gina@g.example');
    idp.nextAccount = 'gina';
    await page.getByRole('button', { name: 'Continue with SSO' }).click();
    await page.getByRole('heading', { name: 'Recordings', exact: true }).waitFor();
    const cookies = await ctx.cookies(panel.base);
    expect(cookies.map((c) => c.name)).toContain('__Host-sotto_refresh');
    expect(cookies.map((c) => c.name)).not.toContain('__Host-sotto_sso');
    await ctx.close();
  });

  it('shows an sso_error message without details', async () => {
    const ctx = await panel.newContext();
    const page = await panel.newPage(ctx);
    await page.goto(`${panel.base}/login?sso_error=domain_not_allowed`);
    await page.getByText('Your email domain is not allowed to sign in to this organization.').waitFor();
    await page.goto(`${panel.base}/login?sso_error=<script>`);
    await page.getByText('Single sign-on failed. Try again.').waitFor();
    await ctx.close();
  });

  it('asks for the work email and hands the browser to the start route', async () => {
    const ctx = await panel.newContext();
    const page = await panel.newPage(ctx);
    await page.goto(`${panel.base}/login`);
    await page.getByRole('button', { name: 'Continue with SSO' }).click();
    await page.getByLabel('Work email').fill('someone@unconfigured.example');
    const start = page.waitForRequest((r) => r.url().includes('/api/v1/auth/sso/start'));
    await page.getByRole('button', { name: 'Continue with SSO' }).click();
    expect((await start).url()).toContain('email=someone%40unconfigured.example');
    // No connection for that domain: back on the login page with the reason.
    await page.getByText('Single sign-on is not set up for that email domain or organization.').waitFor();
    expect(new URL(page.url()).pathname).toBe('/login');
    await ctx.close();
  });

  it('saw no CSP violation', () => {
    expect(panel.cspViolations).toEqual([]);
  });
});
