/**
 * The SSO link step in a real browser (Chromium, production CSP): an IdP asserting the email of
 * an existing password account lands on `/login?sso_link=1`, which asks for the account's
 * password; the right one links the IdP identity and opens the panel.
 */
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { login, signup, type Account } from './helpers/auth-client.js';
import { startIdp, type TestIdp } from './helpers/oidc-idp.js';
import { hasChromium, noChromiumReason, startPanel, type Panel } from './helpers/panel.js';
import { backendLabel } from './helpers/test-app.js';

if (!hasChromium) console.warn(`sso-link-panel skipped: ${noChromiumReason}`);

describe.skipIf(!hasChromium)(`SSO link step in Chromium (${backendLabel})`, () => {
  let panel: Panel;
  let idp: TestIdp;
  let owner: Account;
  const csp: string[] = [];
  const PUBLIC = 'https://sotto.test';

  beforeAll(async () => {
    panel = await startPanel({ SOTTO_SSO_ALLOW_INSECURE_ISSUERS: 'true' });
    idp = await startIdp({ redirectUri: `${PUBLIC}/api/v1/auth/sso/callback` });
    owner = await signup(panel.t, { email: 'kim@k.example', organization: 'Kay Org' });
    idp.accounts.set('kim-sub', { email: 'kim@k.example', email_verified: true, name: 'Kim' });
    const { accessToken } = await login(panel.t, owner);
    const res = await panel.t.app.inject({
      method: 'PUT',
      url: '/api/v1/org/sso',
      headers: { authorization: `Bearer ${accessToken}` },
      payload: {
        issuer: idp.issuer,
        clientId: idp.clientId,
        clientSecret: idp.clientSecret,
        allowedDomains: ['k.example'],
      },
    });
    if (res.statusCode !== 200) throw new Error(res.body);
  }, 120_000);

  afterAll(async () => {
    await idp?.close();
    await panel?.close();
  });

  it('asks for the password of the existing account, then links and signs in', async () => {
    const ctx = await panel.newContext();
    await ctx.route(`${PUBLIC}/**`, (route) =>
      route.fulfill({
        status: 302,
        headers: { location: route.request().url().replace(PUBLIC, panel.base) },
      }),
    );
    const page = await panel.newPage(ctx, csp);
    const startSso = async () => {
      await page.goto(`${panel.base}/login`);
      await page.getByRole('button', { name: 'Continue with SSO' }).click();
      await page.getByLabel('Work email').fill('kim@k.example');
      idp.nextAccount = 'kim-sub';
      await page.getByRole('button', { name: 'Continue with SSO' }).click();
      await page.getByRole('heading', { name: "Confirm it's you to link single sign-on" }).waitFor();
    };
    await startSso();
    expect(new URL(page.url()).search).toBe('?sso_link=1');
    expect((await ctx.cookies(panel.base)).map((c) => c.name)).not.toContain('__Host-sotto_refresh');
    await page.getByLabel('Password').fill('not the right password 9');
    await page.getByRole('button', { name: 'Link and sign in' }).click();
    await page.getByRole('alert').filter({ hasText: 'Sign in with SSO again' }).waitFor();

    await startSso();
    await page.getByLabel('Password').fill(owner.password);
    await page.getByRole('button', { name: 'Link and sign in' }).click();
    await page.getByRole('heading', { name: 'Recordings', exact: true }).waitFor();
    expect((await ctx.cookies(panel.base)).map((c) => c.name)).toContain('__Host-sotto_refresh');
    await ctx.close();
    expect(csp).toEqual([]);
  });
});
